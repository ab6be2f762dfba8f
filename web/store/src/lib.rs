//! The embedded profile store of scorch: where `scorch agent` keeps its
//! history and where the web page reads it from.
//!
//! # Concepts
//!
//! - A **series** is a label set: `host`, `pid`, `comm`, `exe`, `cgroup`, and
//!   whatever the user adds with `--label k=v`. The agent splits each
//!   host-wide window by process before writing, so that label filters pick
//!   whole series and never look inside a profile.
//! - A **window** is the profile of one series over one span of time (10 s
//!   for the agent): a [`Window`] in, a [`WindowId`] out.
//! - A **trace** is what identifies a sample apart from its count: pid, tid,
//!   comm, user stack, kernel stack. Traces, stacks, locations, mappings and
//!   strings live once each in **dictionaries**; a window is stored as a
//!   zstd-compressed list of (trace id, count).
//! - An [`Upload`] is a window a client sent (to `scorch serve`'s ingest)
//!   with an id of its own: [`Store::write_uploads`] stores each id once,
//!   so a client that retries after a lost answer adds nothing twice.
//! - A [`Query`] picks series by label equality and windows by start time;
//!   [`Store::query`] returns them merged into one [`Profile`], identical
//!   traces summed.
//! - Every series has a measure, from its windows' `meta.measure`: on-CPU
//!   samples or off-CPU nanoseconds. A query reads one measure
//!   ([`Query::measure`], on-CPU by default), so counts of different units
//!   are never summed.
//!
//! # Using it
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use scorch_store::{Error, Query, Store, StoreOptions, Window};
//!
//! # fn windows_of_this_tick() -> Vec<Window> { Vec::new() }
//! # fn now_unix_ns() -> u64 { 0 }
//! # fn main() -> Result<(), Error> {
//! let options = StoreOptions::new(Duration::from_secs(3 * 24 * 3600), 2 << 30);
//! let store = Store::open(Path::new("/var/lib/scorch"), options)?;
//! if let Some(recovery) = &store.open_report().recovery {
//!     eprintln!("store was corrupt ({}), moved to {}", recovery.problem, recovery.moved_to.display());
//! }
//!
//! // The writer thread, every 10 s: one window per process, one transaction.
//! match store.write_windows(&windows_of_this_tick()) {
//!     Ok(_ids) => {}
//!     // This tick is lost; retention makes room for the next ones.
//!     Err(Error::DiskFull { .. }) => {
//!         store.enforce_retention(now_unix_ns())?;
//!     }
//!     Err(e) => return Err(e),
//! }
//! // Every few minutes, from the same thread.
//! store.enforce_retention(now_unix_ns())?;
//!
//! // The web server (from `spawn_blocking`): the last hour of one host.
//! let now = now_unix_ns();
//! let query = Query::range(now - 3_600_000_000_000, now).label("host", "web1");
//! let profile = store.query(&query)?;
//! let timeline = store.timeline(&query, Duration::from_secs(60))?;
//! # let _ = (profile, timeline);
//! # Ok(())
//! # }
//! ```
//!
//! # Design constraints
//!
//! - **No server**: SQLite (bundled) in WAL mode, one file, in one directory.
//! - **One writer process** per directory (an exclusive lock file), any
//!   number of readers. Inside a process, [`Store`] is `Send + Sync`: share
//!   it in an `Arc`. Writes serialize on one connection; every query takes
//!   its own read-only connection from a small pool, and in WAL mode readers
//!   and the writer never block each other. All calls are synchronous: call
//!   them from plain threads, or `spawn_blocking` in async code.
//! - **Crash safety**: a call to [`Store::write_windows`] is one transaction;
//!   a crash (even `kill -9`) loses at most the batch being written, never
//!   part of one. Commits survive a crash of the process; a power loss may
//!   lose the last few (`synchronous=NORMAL`), never consistency.
//! - **Fast merges**: merging is summing counts per trace id across blobs;
//!   only the distinct traces of the result are decoded into stacks, through
//!   bounded in-memory caches. A day of 10 s windows of 2000 stacks each
//!   merges in a fraction of a second (see `benches/merge.rs`).
//! - **Bounded disk**: [`Store::enforce_retention`] deletes windows by age
//!   and, oldest first, by size; unused dictionary entries are collected by
//!   generation (hour of use), not by scanning blobs.
//! - **Damage is survivable**: a corrupt file is found at open and moved
//!   aside with what is readable copied out ([`OnCorruption`]); a full disk
//!   fails the write with [`Error::DiskFull`] and the store keeps working; a
//!   window whose blob is damaged is left out of queries and deleted by the
//!   next retention run. Nothing panics on any input.
//! - **Versioned format**: `PRAGMA user_version`; a newer file is refused
//!   with [`Error::NewerFormat`], never misread.
//!
//! # How it stays fast and small
//!
//! - Writing: a window's locations are recognised by a 128-bit fingerprint
//!   of their content, so a frame seen before costs one probe of an
//!   in-memory table, not a database lookup; dictionary rows are only
//!   touched when new, or once an hour to mark them used.
//! - Querying: trace ids are dense, so the merge sums into an array indexed
//!   by id (at most 8 MiB; a hash map beyond), blobs of a long range are
//!   decompressed and summed on a few worker threads; the timeline reads only the
//!   per-window totals; a cold dictionary cache is filled by range scans,
//!   each id looked up once. The page's flame tree
//!   ([`Store::flame_tree_with_window_set`]) is built from dictionary ids
//!   with no profile of strings in between, its paths written on a second
//!   thread while the strings are read.
//! - Memory: the writer's and the readers' caches hold at most
//!   [`StoreOptions::cache_entries`] entries per dictionary table each;
//!   every SQLite connection keeps at most 8 MiB of pages.
//!
//! # Non-goals
//!
//! A distributed or multi-host database (at fleet scale the agent pushes
//! pprof to Pyroscope or Parca); several writing processes; per-sample
//! timestamps (a window is the unit of time); downsampling old windows into
//! coarser ones; label matching other than equality (regex may come later).
//!
//! # Layout
//!
//! `schema` (tables, version, checks), `codec` (byte layouts), `dict`
//! (interning and lookup), `write`, `query` (selection), `merge` (summing
//! window blobs, in parallel), `materialise` (ids back to a profile),
//! `flame` (ids straight to the page's flame tree),
//! `retention`, `open` and `salvage`
//! (opening and corruption), `reserve` (space for a full disk), `pool`
//! (read connections), `cache`, `lock`, `error`, `options`.

mod cache;
mod codec;
mod dict;
mod error;
mod flame;
mod lock;
mod materialise;
mod merge;
mod open;
mod options;
mod pool;
mod query;
mod reserve;
mod resolved;
mod retention;
mod salvage;
mod schema;
mod write;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use scorch_formats::flame::FlameTree;
use scorch_formats::Profile;

pub use error::Error;
pub use open::{OpenReport, Recovery};
pub use options::{OnCorruption, StoreOptions};
pub use query::{Bucket, Query, WindowSet};
pub use retention::RetentionReport;
pub use salvage::SalvageReport;
pub use schema::CheckOutcome;
pub use write::{Upload, Window, WindowId};

use dict::DictCache;
use error::SqlContext;
use lock::DirLock;
use pool::Pool;
use reserve::Reserve;
use write::Writer;

/// The file name of the database inside the store directory.
pub const DB_FILE: &str = "store.db";

/// The newest on-disk format version this build reads and writes.
pub const FORMAT_VERSION: i64 = schema::SCHEMA_VERSION;

/// Counts and sizes, for status pages and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Stored windows.
    pub windows: u64,
    /// Stored series.
    pub series: u64,
    /// Entries in all dictionaries.
    pub dictionary_entries: u64,
    /// Compressed size of all window blobs (the rest of the live size is
    /// dictionaries, indexes and labels).
    pub window_bytes: u64,
    /// Start of the oldest window, ns since the Unix epoch.
    pub oldest_unix_ns: Option<u64>,
    /// Start of the newest window, ns since the Unix epoch.
    pub newest_unix_ns: Option<u64>,
    /// Pages in use × page size: what the size limit applies to.
    pub live_bytes: u64,
    /// Size of the database and WAL files.
    pub file_bytes: u64,
}

/// An open profile store. See the crate docs for how to share it.
pub struct Store {
    db: PathBuf,
    options: StoreOptions,
    report: OpenReport,
    /// `None` when opened read-only.
    writer: Option<Mutex<Writer>>,
    readers: Pool,
    dict: Mutex<DictCache>,
    /// Windows whose blobs a query could not decode, for retention to delete.
    damaged: Mutex<BTreeSet<i64>>,
    _lock: Option<DirLock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db)
            .field("read_only", &self.writer.is_none())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` for writing, creating the directory and the
    /// database if needed, and checking an existing database (see
    /// [`StoreOptions::on_corruption`] and [`Store::open_report`]).
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store, Error> {
        options.validate()?;
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = DirLock::acquire(dir)?;
        let db = dir.join(DB_FILE);
        let (conn, report) = open::open_writer(&db, &options).map_err(|e| e.in_store(&db))?;
        let reserve = Reserve::new(dir, options.reserve_bytes);
        // Best effort: on a full disk the store opens without its reserve.
        reserve.fill();
        let writer = Writer::new(conn, &options, reserve)?;
        Ok(Self::assemble(
            db,
            options,
            report,
            Some(writer),
            Some(lock),
        ))
    }

    /// Opens the store in `dir` for queries only, without taking the
    /// writer's lock: for a second process looking at an agent's store.
    /// A corrupt database is reported, never moved.
    pub fn open_read_only(dir: &Path, options: StoreOptions) -> Result<Store, Error> {
        let db = dir.join(DB_FILE);
        let report = open::check_read_only(&db, &options).map_err(|e| e.in_store(&db))?;
        Ok(Self::assemble(db, options, report, None, None))
    }

    fn assemble(
        db: PathBuf,
        options: StoreOptions,
        report: OpenReport,
        writer: Option<Writer>,
        lock: Option<DirLock>,
    ) -> Store {
        Store {
            readers: Pool::new(&db),
            dict: Mutex::new(DictCache::new(options.cache_entries)),
            damaged: Mutex::new(BTreeSet::new()),
            writer: writer.map(Mutex::new),
            db,
            options,
            report,
            _lock: lock,
        }
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.db
    }

    /// What opening found and did (integrity check, recovery).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Stores one window, in its own transaction.
    pub fn write_window(&self, window: &Window) -> Result<WindowId, Error> {
        let ids = self.write_windows(std::slice::from_ref(window))?;
        ids.into_iter().next().ok_or_else(|| {
            Error::corrupt("a committed write returned no window id").in_store(&self.db)
        })
    }

    /// Stores windows (typically the per-process split of one host window)
    /// in one transaction: all of them or, on error, none.
    pub fn write_windows(&self, windows: &[Window]) -> Result<Vec<WindowId>, Error> {
        let windows: Vec<(Option<&str>, &Window)> = windows.iter().map(|w| (None, w)).collect();
        let ids = self
            .writer()?
            .write(&windows)
            .map_err(|e| e.in_store(&self.db))?;
        Ok(ids.into_iter().flatten().collect())
    }

    /// Stores windows that clients sent, in one transaction, each at most
    /// once per upload id: a window whose id is already stored (a client's
    /// retry after a lost answer) is skipped and its place in the result is
    /// `None`. An id is forgotten when its window is deleted.
    pub fn write_uploads(&self, uploads: &[Upload]) -> Result<Vec<Option<WindowId>>, Error> {
        let windows: Vec<(Option<&str>, &Window)> = uploads
            .iter()
            .map(|u| (u.id.as_deref(), &u.window))
            .collect();
        self.writer()?
            .write(&windows)
            .map_err(|e| e.in_store(&self.db))
    }

    /// Merges every window of the matching series that starts in the
    /// query's range into one profile. `meta` spans the windows found; its
    /// frequency and period are set when all windows agree on them.
    pub fn query(&self, query: &Query) -> Result<Profile, Error> {
        self.query_with_window_set(query)
            .map(|(profile, _)| profile)
    }

    /// [`Store::query`], with the [`WindowSet`] the profile was merged from
    /// (read in the same transaction): what a cache of the result is keyed by.
    pub fn query_with_window_set(&self, query: &Query) -> Result<(Profile, WindowSet), Error> {
        self.readers
            .with(|conn| query::merged_profile(conn, &self.dict, &self.damaged, query))
            .map_err(|e| e.in_store(&self.db))
    }

    /// The page's flame tree of [`Store::query`]'s profile, covering the
    /// query's range: the tree [`FlameTree::from_profile`] builds from that
    /// profile, built straight from the dictionaries (without the profile),
    /// with the [`WindowSet`] it was merged from.
    pub fn flame_tree_with_window_set(
        &self,
        query: &Query,
    ) -> Result<(FlameTree, WindowSet), Error> {
        self.readers
            .with(|conn| query::merged_flame_tree(conn, &self.dict, &self.damaged, query))
            .map_err(|e| e.in_store(&self.db))
    }

    /// [`Store::flame_tree_with_window_set`]'s tree pruned to `min_share` of
    /// its samples ([`FlameTree::pruned`]): what the page draws first. Of
    /// the function and command names it reads only those of the nodes that
    /// stay (see `flame::pruned`), so a name missing from the dictionary is
    /// reported only by a tree that shows it.
    pub fn pruned_flame_tree_with_window_set(
        &self,
        query: &Query,
        min_share: f64,
    ) -> Result<(FlameTree, WindowSet), Error> {
        self.readers
            .with(|conn| {
                query::merged_pruned_flame_tree(conn, &self.dict, &self.damaged, query, min_share)
            })
            .map_err(|e| e.in_store(&self.db))
    }

    /// The windows `query` selects, as a value that changes whenever they
    /// do (see [`WindowSet`]); no blob is read.
    pub fn window_set(&self, query: &Query) -> Result<WindowSet, Error> {
        self.readers
            .with(|conn| query::window_set(conn, query))
            .map_err(|e| e.in_store(&self.db))
    }

    /// Total samples per `step` over the query's range (every bucket, empty
    /// ones included), from window totals: no blob is read.
    pub fn timeline(&self, query: &Query, step: Duration) -> Result<Vec<Bucket>, Error> {
        let step_ns = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
        self.readers
            .with(|conn| query::timeline(conn, query, step_ns))
            .map_err(|e| e.in_store(&self.db))
    }

    /// Every label key of the stored series, sorted.
    pub fn label_keys(&self) -> Result<Vec<String>, Error> {
        self.readers
            .with(|conn| query::label_keys(conn))
            .map_err(|e| e.in_store(&self.db))
    }

    /// Values of label `key` among series with windows starting in
    /// `[from, until)`, sorted.
    pub fn label_values(
        &self,
        key: &str,
        from_unix_ns: u64,
        until_unix_ns: u64,
    ) -> Result<Vec<String>, Error> {
        self.readers
            .with(|conn| query::label_values(conn, key, from_unix_ns, until_unix_ns))
            .map_err(|e| e.in_store(&self.db))
    }

    /// Deletes windows older than the retention (relative to `now_unix_ns`),
    /// then the oldest while over the size limit, and windows found damaged;
    /// collects unused dictionary entries. Call it every few minutes from
    /// the writer's thread; it holds the writer for short transactions.
    pub fn enforce_retention(&self, now_unix_ns: u64) -> Result<RetentionReport, Error> {
        let mut writer = self.writer()?;
        let damaged: Vec<i64> = self
            .damaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        let report =
            retention::enforce(&mut writer, &self.options, &self.db, now_unix_ns, &damaged)
                .map_err(|e| e.in_store(&self.db))?;
        let mut set = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        for id in &damaged {
            set.remove(id);
        }
        Ok(report)
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.readers
            .with(|conn| {
                let action = "reading statistics";
                let tx = conn.transaction().ctx(action)?;
                let count = |sql: &str| -> Result<u64, Error> {
                    tx.query_row(sql, [], |r| r.get::<_, i64>(0))
                        .map(|n| n.max(0) as u64)
                        .ctx(action)
                };
                let mut dictionary_entries = 0;
                for table in schema::DICT_TABLES {
                    dictionary_entries += count(&format!("SELECT count(*) FROM {table}"))?;
                }
                let (oldest, newest): (Option<i64>, Option<i64>) = tx
                    .query_row(
                        "SELECT min(start_ns), max(start_ns) FROM window_meta",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .ctx(action)?;
                Ok(Stats {
                    windows: count("SELECT count(*) FROM window_meta")?,
                    window_bytes: count("SELECT coalesce(sum(bytes), 0) FROM window_meta")?,
                    series: count("SELECT count(*) FROM series")?,
                    dictionary_entries,
                    oldest_unix_ns: oldest.map(|t| t.max(0) as u64),
                    newest_unix_ns: newest.map(|t| t.max(0) as u64),
                    live_bytes: retention::live_bytes(&tx)?,
                    file_bytes: retention::file_bytes(&self.db),
                })
            })
            .map_err(|e| e.in_store(&self.db))
    }

    /// The writer, or [`Error::ReadOnly`].
    fn writer(&self) -> Result<MutexGuard<'_, Writer>, Error> {
        let writer = self.writer.as_ref().ok_or_else(|| Error::ReadOnly {
            path: self.db.clone(),
        })?;
        Ok(writer.lock().unwrap_or_else(|poisoned| {
            // A panic mid-write rolled its transaction back on unwinding;
            // the cached ids of that transaction must go too.
            let mut writer = poisoned.into_inner();
            writer.forget();
            writer
        }))
    }
}
