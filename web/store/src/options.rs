//! How a store is opened and kept: retention, size, corruption policy.

use std::time::Duration;

use crate::error::Error;

/// What to do when the database file turns out to be corrupt at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorruption {
    /// Rename the file to `store.db.corrupt-<unix seconds>` (keeping it for
    /// inspection), start a fresh database, and copy into it every window
    /// that is still readable with all it refers to. The agent keeps
    /// profiling; [`crate::OpenReport::recovery`] says what happened.
    #[default]
    MoveAside,
    /// Fail with [`crate::Error::Corrupt`] and leave the file alone.
    Fail,
}

/// Settings of a [`crate::Store`]. Start from [`StoreOptions::default`] or
/// [`StoreOptions::new`] and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Windows that started longer ago than this are deleted by
    /// [`crate::Store::enforce_retention`]. Default: 7 days.
    pub retention: Duration,
    /// Live database size (pages in use, WAL excluded) above which
    /// retention deletes the oldest windows. Default: 1 GiB.
    pub max_disk_bytes: u64,
    /// What to do with a corrupt database at open. Default:
    /// [`OnCorruption::MoveAside`].
    pub on_corruption: OnCorruption,
    /// Time allowed for `PRAGMA quick_check` at open; the check stops there
    /// (and the store opens) when it has found nothing by then. Zero skips
    /// it. Default: 2 s.
    pub check_budget: Duration,
    /// Dictionary entries cached in memory, per dictionary table, for the
    /// writer and for readers each. Default: 262144.
    pub cache_entries: usize,
    /// Disk space kept in `store.reserve` beside the database, given up
    /// when the disk is full so that retention can still run (in WAL mode,
    /// deleting needs space first). Zero disables it. Default: 8 MiB.
    pub reserve_bytes: u64,
    /// zstd level of window blobs (1 fastest … 19 smallest). Default: 3.
    pub compression_level: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 24 * 3600),
            max_disk_bytes: 1 << 30,
            on_corruption: OnCorruption::MoveAside,
            check_budget: Duration::from_secs(2),
            cache_entries: 1 << 18,
            reserve_bytes: 8 << 20,
            compression_level: 3,
        }
    }
}

impl StoreOptions {
    /// Checks the options that can be wrong.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let levels = zstd::compression_level_range();
        if !levels.contains(&self.compression_level) {
            return Err(Error::InvalidOptions(format!(
                "zstd compression level {} is outside {}..={}; 3 is a good default",
                self.compression_level,
                levels.start(),
                levels.end()
            )));
        }
        Ok(())
    }

    /// Defaults with the given retention and size limit.
    pub fn new(retention: Duration, max_disk_bytes: u64) -> Self {
        Self {
            retention,
            max_disk_bytes,
            ..Self::default()
        }
    }
}
