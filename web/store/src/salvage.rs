//! Salvage: copying what is still readable out of a corrupt database.
//!
//! After a corrupt file was moved aside, its rows are copied into the fresh
//! database with their ids, table by table in dependency order, keeping a
//! row only when everything it refers to was kept: a location whose mapping
//! was lost is dropped, and so is every stack through it, every trace using
//! those stacks, and every window whose blob names such a trace (or fails
//! its zstd checksum). What is copied is therefore complete and consistent;
//! what is not is counted.
//!
//! A damaged b-tree page makes SQLite fail part-way through a scan; the scan
//! then resumes at the first rowid past the failure from which reading
//! works again (found with growing steps, then a binary search back), so
//! one bad page costs the rows on it, not the rest of the table.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, Row};

use crate::cache::{stable_hash, FastBuild};
use crate::codec::{self, BlobDecoder, LocationEntry, MappingEntry, StackRef, TraceEntry};
use crate::error::{Error, SqlContext};
use crate::schema::{self, DICT_TABLES};

/// Damaged places after which a table is given up.
const MAX_FAILURES: u32 = 4096;

/// What was copied out of a corrupt database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SalvageReport {
    /// Windows copied, complete with everything they refer to.
    pub windows: u64,
    /// Windows found but not copied (damaged data, or lost references).
    pub lost_windows: u64,
    /// Dictionary entries copied.
    pub dictionary_entries: u64,
    /// Dictionary entries found but not copied.
    pub lost_dictionary_entries: u64,
    /// Places where reading failed and rows were skipped.
    pub unreadable_spots: u64,
    /// Why salvage stopped before the end, if it did.
    pub stopped: Option<String>,
}

type IdSet = HashSet<i64, FastBuild>;

/// Copies what is readable in `from` into `into`, the empty store at `db`.
pub(crate) fn salvage(from: &Path, into: &mut Connection, db: &Path) -> SalvageReport {
    let mut report = SalvageReport::default();
    let src = match Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(src) => src,
        Err(e) => {
            report.stopped = Some(format!("cannot open it: {e}"));
            return report;
        }
    };
    // Lets SQLite load a schema whose tables point past the end of a
    // truncated file, so the tables that are still there can be read.
    let _ = src.pragma_update(None, "writable_schema", true);
    if let Err(e) = copy(&src, into, &mut report) {
        report.stopped = Some(e.in_store(db).to_string());
    }
    report
}

fn copy(src: &Connection, into: &mut Connection, report: &mut SalvageReport) -> Result<(), Error> {
    let action = "copying salvaged rows";
    let tx = into.transaction().ctx(action)?;
    let mut kept: [IdSet; 5] = Default::default();
    for (k, table) in DICT_TABLES.iter().enumerate() {
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO {table} (id, hash, gen, data) VALUES (?1, ?2, ?3, ?4)"
            ))
            .ctx(action)?;
        let mut ids = IdSet::default();
        scan(
            src,
            &format!("SELECT id, gen, data FROM {table} WHERE id > ?1 ORDER BY id"),
            &mut report.unreadable_spots,
            |id, row| {
                let (Ok(gen), Ok(data)) = (row.get::<_, i64>(1), row.get::<_, Vec<u8>>(2)) else {
                    report.lost_dictionary_entries += 1;
                    return Ok(());
                };
                if !entry_is_whole(k, &data, &kept) {
                    report.lost_dictionary_entries += 1;
                    return Ok(());
                }
                insert
                    .execute((id, stable_hash(&data), gen, &data))
                    .ctx(action)?;
                ids.insert(id);
                report.dictionary_entries += 1;
                Ok(())
            },
        )?;
        kept[k] = ids;
    }

    let mut series = IdSet::default();
    {
        // Files before version 3 hold on-CPU series only.
        let measure = match schema::has_measures(src) {
            Ok(true) => "measure",
            _ => "0",
        };
        let mut insert = tx
            .prepare("INSERT INTO series (id, labels, measure) VALUES (?1, ?2, ?3)")
            .ctx(action)?;
        let mut insert_label = tx
            .prepare("INSERT INTO series_label (key, value, series_id) VALUES (?1, ?2, ?3)")
            .ctx(action)?;
        scan(
            src,
            &format!("SELECT id, labels, {measure} FROM series WHERE id > ?1 ORDER BY id"),
            &mut report.unreadable_spots,
            |id, row| {
                let (Ok(data), Ok(code)) = (row.get::<_, Vec<u8>>(1), row.get::<_, i64>(2)) else {
                    return Ok(());
                };
                let Ok(labels) = codec::decode_labels(&data) else {
                    return Ok(());
                };
                insert.execute((id, &data, code)).ctx(action)?;
                for (key, value) in &labels {
                    insert_label.execute((key, value, id)).ctx(action)?;
                }
                series.insert(id);
                Ok(())
            },
        )?;
    }

    {
        let mut insert = tx
            .prepare(
                "INSERT INTO window_meta (id, series_id, start_ns, end_ns, total, bytes, \
                 frequency_hz, sample_period) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .ctx(action)?;
        let mut insert_blob = tx
            .prepare("INSERT INTO window_blob (window_id, data) VALUES (?1, ?2)")
            .ctx(action)?;
        let mut decoder = BlobDecoder::new().map_err(|source| Error::Zstd { source })?;
        let traces = &kept[4];
        scan(
            src,
            "SELECT w.id, w.series_id, w.start_ns, w.end_ns, w.frequency_hz, w.sample_period, \
             b.data FROM window_meta w JOIN window_blob b ON b.window_id = w.id \
             WHERE w.id > ?1 ORDER BY w.id",
            &mut report.unreadable_spots,
            |id, row| {
                let columns = (|| {
                    Ok::<_, rusqlite::Error>((
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Vec<u8>>(6)?,
                    ))
                })();
                let Ok((series_id, start, end, frequency, period, blob)) = columns else {
                    report.lost_windows += 1;
                    return Ok(());
                };
                let sane = series.contains(&series_id) && 0 <= start && start <= end;
                let decoded = if sane {
                    decoder.decode(&blob).ok()
                } else {
                    None
                };
                let Some(decoded) = decoded.filter(|ts| ts.iter().all(|(t, _)| traces.contains(t)))
                else {
                    report.lost_windows += 1;
                    return Ok(());
                };
                let total = decoded
                    .iter()
                    .fold(0u64, |t, &(_, c)| t.saturating_add(c))
                    .min(i64::MAX as u64) as i64;
                insert
                    .execute((
                        id,
                        series_id,
                        start,
                        end,
                        total,
                        blob.len() as i64,
                        frequency,
                        period,
                    ))
                    .ctx(action)?;
                insert_blob.execute((id, &blob)).ctx(action)?;
                report.windows += 1;
                Ok(())
            },
        )?;
    }
    tx.commit().ctx(action)
}

/// Whether a dictionary entry of table `k` decodes and refers only to kept
/// entries.
fn entry_is_whole(k: usize, data: &[u8], kept: &[IdSet; 5]) -> bool {
    let [strings, mappings, locations, stacks, _] = kept;
    match k {
        0 => std::str::from_utf8(data).is_ok(),
        1 => MappingEntry::decode(data).is_ok_and(|m| {
            strings.contains(&m.file) && m.build_id.is_none_or(|b| strings.contains(&b))
        }),
        2 => LocationEntry::decode(data).is_ok_and(|l| {
            l.mapping.is_none_or(|m| mappings.contains(&m))
                && l.lines.iter().all(|line| {
                    strings.contains(&line.function)
                        && line.file.is_none_or(|f| strings.contains(&f))
                })
        }),
        3 => codec::decode_stack(data).is_ok_and(|s| s.iter().all(|l| locations.contains(l))),
        4 => TraceEntry::decode(data).is_ok_and(|t| {
            let stack_kept = |s: StackRef| match s {
                StackRef::Frames(id) => stacks.contains(&id),
                StackRef::Absent | StackRef::Missed => true,
            };
            strings.contains(&t.comm) && stack_kept(t.user) && stack_kept(t.kernel)
        }),
        _ => false,
    }
}

/// Runs `sql` (which selects rowid first and takes the last rowid seen as
/// `?1`) to the end, skipping past places that fail to read. `each` gets
/// every readable row; its error aborts the scan.
fn scan(
    src: &Connection,
    sql: &str,
    unreadable: &mut u64,
    mut each: impl FnMut(i64, &Row<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut after = 0i64;
    for _ in 0..MAX_FAILURES {
        match read_from(src, sql, after, unreadable, &mut each)? {
            None => return Ok(()),
            Some(last) => {
                *unreadable += 1;
                match next_readable(src, sql, last) {
                    Some(next) => after = next,
                    None => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

/// Reads rows after rowid `after` until the end (`None`) or a failure
/// (`Some(last rowid read)`).
fn read_from(
    src: &Connection,
    sql: &str,
    mut after: i64,
    unreadable: &mut u64,
    each: &mut impl FnMut(i64, &Row<'_>) -> Result<(), Error>,
) -> Result<Option<i64>, Error> {
    let Ok(mut stmt) = src.prepare(sql) else {
        // The schema itself is unreadable: nothing of this table.
        *unreadable += 1;
        return Ok(None);
    };
    let Ok(mut rows) = stmt.query([after]) else {
        return Ok(Some(after));
    };
    loop {
        match rows.next() {
            Ok(Some(row)) => match row.get::<_, i64>(0) {
                Ok(id) => {
                    after = id;
                    each(id, row)?;
                }
                Err(_) => *unreadable += 1,
            },
            Ok(None) => return Ok(None),
            Err(_) => return Ok(Some(after)),
        }
    }
}

/// Whether reading can start after rowid `after` (the first row, if any,
/// reads without error).
fn readable_from(src: &Connection, sql: &str, after: i64) -> bool {
    let Ok(mut stmt) = src.prepare(sql) else {
        return false;
    };
    stmt.query([after])
        .is_ok_and(|mut rows| rows.next().is_ok())
}

/// The smallest rowid after `bad` from which reading works again: steps of
/// growing size find one, then a binary search moves back to the first, so
/// readable rows right after a damaged page are not skipped.
fn next_readable(src: &Connection, sql: &str, bad: i64) -> Option<i64> {
    let mut failing = bad;
    let mut step = 1i64;
    let mut working = loop {
        let probe = bad.checked_add(step)?;
        if readable_from(src, sql, probe) {
            break probe;
        }
        failing = probe;
        step = step.checked_mul(2)?;
    };
    while working - failing > 1 {
        let middle = failing + (working - failing) / 2;
        if readable_from(src, sql, middle) {
            working = middle;
        } else {
            failing = middle;
        }
    }
    Some(working)
}
