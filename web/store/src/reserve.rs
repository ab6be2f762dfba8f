//! A reserve of disk space for getting out of a full disk.
//!
//! In WAL mode, making room needs room: deleting windows appends to the WAL,
//! and the checkpoint that lets the WAL shrink first copies its pages into
//! the database file, which may have to grow. On a disk that is completely
//! full none of that can happen. So the store keeps `store.reserve`, a file
//! of [`crate::StoreOptions::reserve_bytes`] zeros, beside the database;
//! retention deletes it when a write has failed for lack of space, does its
//! work, shrinks the files, then writes the reserve again if space allows.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The reserve file.
pub(crate) struct Reserve {
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    /// The reserve of `bytes` in `dir` (not created yet).
    pub(crate) fn new(dir: &Path, bytes: u64) -> Self {
        Self {
            path: dir.join("store.reserve"),
            bytes,
        }
    }

    /// Makes sure the reserve holds its size of real (not sparse) blocks;
    /// when the disk has no room for it, what could not be written is
    /// removed again and the reserve is missing until the next call.
    pub(crate) fn fill(&self) -> bool {
        if self.bytes == 0 {
            return true;
        }
        if fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.bytes) {
            return true;
        }
        let written = (|| -> io::Result<()> {
            let mut file: File = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&self.path)?;
            let chunk = vec![0u8; 64 << 10];
            let mut left = self.bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            file.sync_all()
        })();
        if written.is_err() {
            self.release();
        }
        written.is_ok()
    }

    /// Gives the reserved space back to the file system.
    pub(crate) fn release(&self) {
        let _ = fs::remove_file(&self.path);
    }
}
