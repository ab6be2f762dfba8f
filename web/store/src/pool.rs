//! Read connections, one per concurrent query, kept for reuse.
//!
//! SQLite connections are not shareable between threads, and in WAL mode
//! readers never block the writer nor each other, so each query takes its
//! own read-only connection: an idle one from the pool, or a new one. At
//! most [`MAX_IDLE`] are kept; opening one costs well under a millisecond.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, SqlContext};
use crate::schema;

/// Idle connections kept for the next queries.
const MAX_IDLE: usize = 4;

/// The pool.
pub(crate) struct Pool {
    db: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// A pool of connections to `db`.
    pub(crate) fn new(db: &Path) -> Self {
        Self {
            db: db.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a read connection.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.db)?,
        };
        let result = f(&mut conn);
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }
}

/// Opens a read-only connection.
pub(crate) fn open_reader(db: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ctx("opening a read connection")?;
    schema::configure(&conn)?;
    Ok(conn)
}
