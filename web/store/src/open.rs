//! Opening: create or check the database, and handle corruption.
//!
//! A new directory gets a new database. An existing one is identified
//! (ours? which version?) and checked with `PRAGMA quick_check` within a
//! time budget. When it is corrupt, [`OnCorruption`] decides: fail, or move
//! the file (with its WAL) aside as `store.db.corrupt-<unix seconds>`,
//! create a fresh one, and salvage into it what is still readable. The agent
//! can then keep profiling, and [`OpenReport`] says what happened so it can
//! tell the user.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, SqlContext};
use crate::options::{OnCorruption, StoreOptions};
use crate::salvage::{self, SalvageReport};
use crate::schema::{self, CheckOutcome, Found};

/// How opening went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// The integrity check of the database in use.
    pub check: CheckOutcome,
    /// What was done about a corrupt database, when there was one.
    pub recovery: Option<Recovery>,
}

/// A corrupt database that was moved aside and replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// What was wrong with it.
    pub problem: String,
    /// Where the corrupt file is now (its WAL beside it, `-wal` appended).
    pub moved_to: PathBuf,
    /// What was copied from it into the new database.
    pub salvage: SalvageReport,
}

/// Opens (creating if needed) and checks the database for writing.
pub(crate) fn open_writer(
    db: &Path,
    options: &StoreOptions,
) -> Result<(Connection, OpenReport), Error> {
    match open_checked(db, options) {
        Ok((conn, check)) => Ok((
            conn,
            OpenReport {
                check,
                recovery: None,
            },
        )),
        Err(Error::Corrupt { detail, .. }) if options.on_corruption == OnCorruption::MoveAside => {
            let moved_to = move_aside(db)?;
            let (mut conn, check) = open_checked(db, options)?;
            let salvage = salvage::salvage(&moved_to, &mut conn, db);
            Ok((
                conn,
                OpenReport {
                    check,
                    recovery: Some(Recovery {
                        problem: detail,
                        moved_to,
                        salvage,
                    }),
                },
            ))
        }
        Err(e) => Err(e),
    }
}

fn open_checked(db: &Path, options: &StoreOptions) -> Result<(Connection, CheckOutcome), Error> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ctx("opening the database")?;
    let found = schema::identify(&conn)?;
    schema::configure(&conn)?;
    match found {
        Found::Empty => {
            schema::create(&conn)?;
            Ok((conn, CheckOutcome::NewDatabase))
        }
        Found::Store => {
            schema::configure_writer(&conn)?;
            let check = schema::quick_check(&conn, options.check_budget)?;
            Ok((conn, check))
        }
        Found::Older(version) => {
            schema::configure_writer(&conn)?;
            let check = schema::quick_check(&conn, options.check_budget)?;
            schema::migrate(&conn, version)?;
            Ok((conn, check))
        }
    }
}

/// Checks an existing database for reading only.
pub(crate) fn check_read_only(db: &Path, options: &StoreOptions) -> Result<OpenReport, Error> {
    let no_store = || Error::NoStore {
        path: db.to_path_buf(),
    };
    if !db.is_file() {
        return Err(no_store());
    }
    let conn = crate::pool::open_reader(db)?;
    match schema::identify(&conn)? {
        Found::Empty => Err(no_store()),
        Found::Store | Found::Older(_) => Ok(OpenReport {
            check: schema::quick_check(&conn, options.check_budget)?,
            recovery: None,
        }),
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// Renames the database and its WAL and shared-memory files aside.
fn move_aside(db: &Path) -> Result<PathBuf, Error> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = with_suffix(db, &format!(".corrupt-{secs}"));
    let mut target = base.clone();
    let mut n = 1;
    while target.exists() || with_suffix(&target, "-wal").exists() {
        target = with_suffix(&base, &format!("-{n}"));
        n += 1;
    }
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| Error::MoveAside {
            path: db.to_path_buf(),
            source,
        })
    };
    rename(db, &target)?;
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(db, suffix);
        if from.exists() {
            rename(&from, &with_suffix(&target, suffix))?;
        }
    }
    Ok(target)
}
