//! Errors of the BPF layer: each says what failed, why, and what to do.

use std::io;

/// What went wrong while creating, loading or attaching BPF objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller lacks the capabilities BPF needs.
    #[error(
        "{what}: permission denied; need CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run as root"
    )]
    Permission {
        /// The operation that was refused.
        what: String,
    },
    /// The verifier rejected a program.
    #[error("the kernel's verifier rejected BPF program `{program}`: {summary} (run with -v for the full verifier log)")]
    Verifier {
        /// Program name.
        program: String,
        /// The last meaningful line of the log.
        summary: String,
        /// The whole verifier log.
        log: String,
    },
    /// A system call failed for another reason.
    #[error("{what}: {source}")]
    Sys {
        /// The operation that failed.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel lacks a feature (a PMU, a program type) that was asked for.
    #[error("{0}")]
    Unsupported(String),
    /// A probe's target (file, symbol, function) is missing or refused.
    #[error("{0}")]
    Probe(String),
    /// A program could not be assembled.
    #[error("assembling BPF program: {0}")]
    Asm(#[from] crate::insn::AsmError),
}

impl Error {
    /// Classifies an OS error from `what`, turning EPERM/EACCES into [`Error::Permission`].
    pub fn sys(what: impl Into<String>, source: io::Error) -> Self {
        let what = what.into();
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::Permission { what },
            _ => Error::Sys { what, source },
        }
    }
}

/// Result of the BPF layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
