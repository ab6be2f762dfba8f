//! Retention: deleting old windows, keeping under the size limit, and
//! collecting the dictionary entries nothing uses any more.
//!
//! Windows go first by age (start older than the retention), then oldest
//! first while the live size (pages in use: `page_count - freelist_count`)
//! exceeds the limit. Each step is its own short transaction, so the writer
//! is never held up for long and a crash in between loses nothing.
//!
//! Dictionary entries are collected by generation, not by scanning blobs:
//! every entry carries the newest hour in which a window used it, so once
//! the oldest remaining window starts in hour `g`, entries of hours before
//! `g` are garbage. Collection therefore runs at most once per hour of data
//! (or when size pressure deletes windows), and may keep up to an hour's
//! worth of unused entries. After it, the writer forgets its cached ids.
//!
//! Freed pages stay in the file and are reused by the next writes; when more
//! than a quarter of the file is free, or after a write failed for lack of
//! space, `PRAGMA incremental_vacuum` gives them back to the file system.
//! After a full disk, retention first gives up the reserve (see `reserve`)
//! so that it has the room it needs, and takes it back at the end.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, SqlContext};
use crate::options::StoreOptions;
use crate::schema::DICT_TABLES;
use crate::write::{gen_of, Writer};

/// Windows deleted per transaction.
const BATCH: i64 = 1000;

/// Rounds of "delete oldest, collect, measure" when over the size limit.
const MAX_SIZE_ROUNDS: usize = 64;

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Windows deleted for being older than the retention.
    pub expired_windows: u64,
    /// Windows deleted (oldest first) to get under the size limit.
    pub evicted_windows: u64,
    /// Windows deleted because their data was found damaged by a query.
    pub damaged_windows: u64,
    /// Dictionary entries collected.
    pub dictionary_entries: u64,
    /// Series (label sets) collected.
    pub series: u64,
    /// Live database size afterwards: pages in use × page size.
    pub live_bytes: u64,
    /// Size of the database and WAL files afterwards.
    pub file_bytes: u64,
}

/// Runs retention; `damaged` are windows queries could not decode.
pub(crate) fn enforce(
    writer: &mut Writer,
    options: &StoreOptions,
    db: &Path,
    now_unix_ns: u64,
    damaged: &[i64],
) -> Result<RetentionReport, Error> {
    let mut report = RetentionReport::default();
    if writer.disk_full {
        writer.reserve.release();
    }
    report.damaged_windows = delete_windows(&mut writer.conn, damaged)?;

    let retention = u64::try_from(options.retention.as_nanos()).unwrap_or(u64::MAX);
    let cutoff = now_unix_ns.saturating_sub(retention).min(i64::MAX as u64) as i64;
    loop {
        let ids = select_ids(
            &writer.conn,
            "SELECT id FROM window_meta WHERE start_ns < ?1 ORDER BY start_ns LIMIT ?2",
            (cutoff, BATCH),
        )?;
        if ids.is_empty() {
            break;
        }
        report.expired_windows += delete_windows(&mut writer.conn, &ids)?;
    }
    let (entries, series) = collect(writer)?;
    report.dictionary_entries += entries;
    report.series += series;

    for _ in 0..MAX_SIZE_ROUNDS {
        let live = live_bytes(&writer.conn)?;
        if live <= options.max_disk_bytes {
            break;
        }
        let windows: i64 = writer
            .conn
            .query_row("SELECT count(*) FROM window_meta", [], |r| r.get(0))
            .ctx("counting windows")?;
        if windows == 0 {
            break;
        }
        // Delete the windows' share of the excess, dictionary included.
        let excess = u128::from(live - options.max_disk_bytes);
        let share = (excess * windows as u128).div_ceil(u128::from(live.max(1)));
        let n = (share as i64).clamp(1, windows);
        let ids = select_ids(
            &writer.conn,
            "SELECT id FROM window_meta ORDER BY start_ns LIMIT ?1",
            [n],
        )?;
        report.evicted_windows += delete_windows(&mut writer.conn, &ids)?;
        let (entries, series) = collect(writer)?;
        report.dictionary_entries += entries;
        report.series += series;
    }

    reclaim(writer)?;
    report.live_bytes = live_bytes(&writer.conn)?;
    report.file_bytes = file_bytes(db);
    Ok(report)
}

fn select_ids(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<i64>, Error> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_map(params, |r| r.get(0))?.collect())
        .ctx("selecting windows to delete")
}

/// Deletes windows (with their blobs and upload ids) in batches; returns
/// how many existed.
fn delete_windows(conn: &mut Connection, ids: &[i64]) -> Result<u64, Error> {
    let mut deleted = 0;
    for chunk in ids.chunks(BATCH as usize) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("deleting windows")?;
        {
            let mut blob = tx
                .prepare_cached("DELETE FROM window_blob WHERE window_id = ?1")
                .ctx("deleting windows")?;
            let mut meta = tx
                .prepare_cached("DELETE FROM window_meta WHERE id = ?1")
                .ctx("deleting windows")?;
            let mut upload = tx
                .prepare_cached("DELETE FROM upload_id WHERE window_id = ?1")
                .ctx("deleting windows")?;
            for &id in chunk {
                blob.execute([id]).ctx("deleting windows")?;
                upload.execute([id]).ctx("deleting windows")?;
                deleted += meta.execute([id]).ctx("deleting windows")? as u64;
            }
        }
        tx.commit().ctx("deleting windows")?;
    }
    Ok(deleted)
}

/// Collects dictionary entries and series older than every window, when the
/// oldest window's generation moved since the last collection.
fn collect(writer: &mut Writer) -> Result<(u64, u64), Error> {
    let oldest: Option<i64> = writer
        .conn
        .query_row("SELECT min(start_ns) FROM window_meta", [], |r| r.get(0))
        .optional()
        .ctx("finding the oldest window")?
        .flatten();
    let below = oldest.map_or(i64::MAX, |start| gen_of(start.max(0) as u64));
    if writer.collected_below.is_some_and(|done| done >= below) {
        return Ok((0, 0));
    }
    let action = "collecting unused dictionary entries";
    let tx = writer
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx(action)?;
    let mut entries = 0;
    for table in DICT_TABLES {
        entries += tx
            .execute(&format!("DELETE FROM {table} WHERE gen < ?1"), [below])
            .ctx(action)? as u64;
    }
    let orphans = "SELECT id FROM series s WHERE NOT EXISTS \
                   (SELECT 1 FROM window_meta w WHERE w.series_id = s.id)";
    tx.execute(
        &format!("DELETE FROM series_label WHERE series_id IN ({orphans})"),
        [],
    )
    .ctx(action)?;
    let series = tx
        .execute(&format!("DELETE FROM series WHERE id IN ({orphans})"), [])
        .ctx(action)? as u64;
    tx.commit().ctx(action)?;
    writer.forget();
    writer.collected_below = Some(below);
    Ok((entries, series))
}

/// Gives free pages back when there are many, and checkpoints the WAL. After
/// a full disk, both shrink the files as far as possible (waiting for
/// readers if need be) and the reserve is written again.
fn reclaim(writer: &mut Writer) -> Result<(), Error> {
    let pages = pragma(&writer.conn, "page_count")?;
    let free = pragma(&writer.conn, "freelist_count")?;
    let recovering = writer.disk_full;
    let checkpoint = if recovering {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    } else {
        "PRAGMA wal_checkpoint(PASSIVE)"
    };
    let result = (|| {
        if recovering {
            // Empty the WAL first: room for the vacuum's own frames.
            writer
                .conn
                .query_row(checkpoint, [], |_| Ok(()))
                .ctx("checkpointing the WAL")?;
        }
        if recovering || free.saturating_mul(4) > pages {
            writer
                .conn
                .execute_batch("PRAGMA incremental_vacuum")
                .ctx("giving free pages back")?;
        }
        writer
            .conn
            .query_row(checkpoint, [], |_| Ok(()))
            .ctx("checkpointing the WAL")
    })();
    match result {
        // The deletions are committed; their pages get reused by the next
        // writes even if they could not be given back now.
        Err(e) if e.is_disk_full() => Ok(()),
        Err(e) => Err(e),
        Ok(()) => {
            if writer.reserve.fill() {
                writer.disk_full = false;
            }
            Ok(())
        }
    }
}

fn pragma(conn: &Connection, name: &str) -> Result<u64, Error> {
    conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
        .map(|v| v.max(0) as u64)
        .ctx("measuring the database")
}

/// Pages in use × page size.
pub(crate) fn live_bytes(conn: &Connection) -> Result<u64, Error> {
    let pages = pragma(conn, "page_count")?;
    let free = pragma(conn, "freelist_count")?;
    let size = pragma(conn, "page_size")?;
    Ok(pages.saturating_sub(free).saturating_mul(size))
}

/// Sizes of the database file and its WAL.
pub(crate) fn file_bytes(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db) + size(Path::new(&wal))
}
