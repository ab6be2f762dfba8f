//! One writing process per store directory.
//!
//! The writer keeps caches of what the dictionaries hold and garbage
//! collects them, which is only safe when no other process writes; an
//! exclusive `flock` on `store.lock` makes sure. The lock dies with the
//! process, however it ends. Read-only stores take no lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::Error;

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` for writing, or fails with [`Error::Locked`].
    pub(crate) fn acquire(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("store.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Lock {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Self { _file: file });
        }
        let source = io::Error::last_os_error();
        if source.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Err(Error::Locked {
                path: dir.to_path_buf(),
            })
        } else {
            Err(Error::Lock { path, source })
        }
    }
}
