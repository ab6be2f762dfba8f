//! Errors of table building: each names the file and what to do.

use std::path::PathBuf;

/// Why a table could not be built for a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a 64-bit little-endian ELF file we can read.
    #[error("{path} is not an x86_64 ELF file we can read: {reason}")]
    NotElf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file has neither `.eh_frame` nor `.debug_frame` (nor a debug link to one).
    #[error("{path} has no call frame information (.eh_frame or .debug_frame): unwind it with frame pointers")]
    NoUnwindInfo {
        /// The file.
        path: PathBuf,
    },
    /// A call frame section is malformed.
    #[error("{path}: malformed {section} at offset {offset:#x}: {source}")]
    Cfi {
        /// The file holding the section.
        path: PathBuf,
        /// `.eh_frame`, `.eh_frame_hdr` or `.debug_frame`.
        section: &'static str,
        /// Offset of the bad entry in the section.
        offset: u64,
        /// What gimli found wrong.
        source: gimli::Error,
    },
}

/// Result of table building.
pub type Result<T> = std::result::Result<T, Error>;
