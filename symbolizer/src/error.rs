//! What can fail while symbolizing, and what to do about it.
//!
//! Only whole operations fail: reading the kernel's symbol table, or taking
//! the snapshot of a process. A single address that cannot be resolved is
//! never an error; it comes back as a frame without lines.

use std::io;
use std::path::PathBuf;

/// An operation of the symbolizer that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process exited (or never existed) before its memory map was read.
    #[error(
        "cannot capture process {pid}: it is gone (it exited before its memory map could be read); \
         capture a process while it runs, e.g. when its first sample arrives"
    )]
    ProcessGone {
        /// The process id.
        pid: u32,
    },
    /// A file the symbolizer needs could not be read.
    #[error("cannot read {}: {source}; {hint}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
}

impl Error {
    /// A failed read of `path`, with a hint chosen from the cause.
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                "reading another user's process needs CAP_SYS_PTRACE, and opening \
                 its mapped files CAP_SYS_ADMIN: run as root"
            }
            io::ErrorKind::NotFound => {
                "check that procfs is mounted at /proc (mount -t proc proc /proc)"
            }
            _ => "check that /proc is procfs and readable",
        };
        Error::Read {
            path: path.into(),
            source,
            hint,
        }
    }
}

/// Whether an I/O error on `/proc/PID/...` means the process no longer exists.
pub(crate) fn is_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(libc::ESRCH)
}
