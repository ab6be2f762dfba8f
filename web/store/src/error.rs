//! What can go wrong, said so that the reader knows what to do about it.
//!
//! Internal code builds errors without the database path (it rarely has it at
//! hand); [`crate::Store`] fills the path in at its public boundary with
//! [`Error::in_store`].

use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong while opening, writing or querying a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store directory could not be created.
    #[error(
        "cannot create the store directory {path}: {source}; check its permissions \
         or choose another store directory"
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The lock file of the store directory could not be created or locked.
    #[error("cannot lock the store directory with {path}: {source}; check its permissions")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Another process holds the store directory for writing.
    #[error(
        "the store in {path} is in use by another scorch process; stop it, give this \
         one its own store directory, or open the store read-only"
    )]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// There is no store to open read-only.
    #[error("there is no scorch store at {path}: check the store directory, or run the agent to create one")]
    NoStore {
        /// The database file.
        path: PathBuf,
    },
    /// The database file is corrupt.
    #[error(
        "the store database {path} is corrupt ({detail}); reopen it with the default \
         corruption policy (`OnCorruption::MoveAside`), which moves the file aside and \
         keeps what is still readable, or move or delete the file by hand"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The corrupt database could not be moved aside.
    #[error(
        "cannot move the corrupt store database {path} aside: {source}; move or delete it by hand"
    )]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is a SQLite database of some other program.
    #[error(
        "{path} is a SQLite database but not a scorch store; scorch leaves it alone: \
         give scorch another store directory"
    )]
    NotAStore {
        /// The database file.
        path: PathBuf,
    },
    /// The store was written by a newer scorch.
    #[error(
        "the store database {path} has format version {found}, newer than version \
         {supported} that this scorch understands; upgrade scorch or use another store directory"
    )]
    NewerFormat {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The disk (or the file system's quota) is full.
    #[error(
        "no space left for the store database {path} while {action}; free disk space or \
         lower the store's size limit; the store stays usable, and retention makes room"
    )]
    DiskFull {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
    },
    /// SQLite would not switch the database to WAL mode.
    #[error(
        "the store database {path} cannot use WAL mode (the journal mode stays `{mode}`); \
         put the store directory on a local file system"
    )]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// A write was attempted on a store opened read-only.
    #[error("the store database {path} is open read-only; open it with `Store::open` to write")]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The window cannot be stored as given.
    #[error("invalid profile window: {0}")]
    InvalidWindow(String),
    /// The query cannot be answered as given.
    #[error("invalid store query: {0}")]
    InvalidQuery(String),
    /// An option is out of range.
    #[error("invalid store option: {0}")]
    InvalidOptions(String),
    /// zstd could not set up (it only fails when memory runs out).
    #[error("zstd cannot start: {source}; the machine may be out of memory")]
    Zstd {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// SQLite failed for another reason.
    #[error("the store database {path} failed while {action}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl Error {
    /// Fills in the database path of errors built without one.
    pub(crate) fn in_store(mut self, db: &Path) -> Self {
        match &mut self {
            Error::Corrupt { path, .. }
            | Error::DiskFull { path, .. }
            | Error::Sqlite { path, .. }
            | Error::ReadOnly { path }
            | Error::NotAStore { path }
            | Error::NewerFormat { path, .. }
            | Error::NoWal { path, .. }
                if path.as_os_str().is_empty() =>
            {
                *path = db.to_path_buf();
            }
            _ => {}
        }
        self
    }

    /// A corruption found by the store itself (not by SQLite).
    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: PathBuf::new(),
            detail: detail.into(),
        }
    }

    /// Whether this is [`Error::DiskFull`].
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, Error::DiskFull { .. })
    }
}

/// Turns SQLite errors into ours, naming what the store was doing.
pub(crate) trait SqlContext<T> {
    /// Maps the error, classifying disk-full and corruption.
    fn ctx(self, action: &'static str) -> Result<T, Error>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn ctx(self, action: &'static str) -> Result<T, Error> {
        self.map_err(|e| classify(e, action))
    }
}

/// Sorts a SQLite error into disk full, corrupt, or other.
pub(crate) fn classify(e: rusqlite::Error, action: &'static str) -> Error {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => Error::DiskFull {
            path: PathBuf::new(),
            action,
        },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            Error::corrupt(format!("{e}, while {action}"))
        }
        _ => Error::Sqlite {
            path: PathBuf::new(),
            action,
            source: e,
        },
    }
}
