//! Reading: merged profiles, label lists and timelines.
//!
//! A query selects the series whose labels match every filter, then the
//! windows of those series that start in `[from, until)`. Merging them is
//! summing counts per trace id across the window blobs, which is a tight
//! loop over varints into an array indexed by id, spread over threads for
//! long ranges (see `merge`); only the distinct traces of the result are
//! then turned back into samples (see `materialise`).
//! Concurrent queries share the dictionary cache and take turns for that
//! last step. A query runs in
//! one read transaction, so it sees one consistent state of the store
//! however the writer and retention move on meanwhile.
//!
//! A window whose blob cannot be decoded (damage that SQLite's checks do not
//! see, caught by zstd's checksum) is left out of the result and reported to
//! the store, whose next retention run deletes it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rusqlite::{Connection, Transaction};
use scorch_formats::flame::FlameTree;
use scorch_formats::{Measure, Meta, Profile};

use crate::dict::DictCache;
use crate::error::{Error, SqlContext};
use crate::flame;
use crate::materialise;
use crate::merge::{self, TraceIds};
use crate::schema;

/// Most buckets a timeline may have.
const MAX_BUCKETS: u64 = 100_000;

/// Which windows to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Windows starting at or after this time (ns since the Unix epoch).
    pub from_unix_ns: u64,
    /// Windows starting before this time (ns since the Unix epoch).
    pub until_unix_ns: u64,
    /// `(key, value)` pairs a series must all have; none selects all.
    pub label_filters: Vec<(String, String)>,
    /// What the series' counts measure: a query reads series of this
    /// measure only, so it never sums counts of different units.
    pub measure: Measure,
}

impl Query {
    /// Windows in `[from, until)` of every series.
    pub fn range(from_unix_ns: u64, until_unix_ns: u64) -> Self {
        Self {
            from_unix_ns,
            until_unix_ns,
            label_filters: Vec::new(),
            measure: Measure::OnCpuSamples,
        }
    }

    /// Reads series of `measure` (on-CPU samples unless set).
    pub fn measure(mut self, measure: Measure) -> Self {
        self.measure = measure;
        self
    }

    /// Adds a `key = value` filter.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.label_filters.push((key.into(), value.into()));
        self
    }

    /// The time range as SQLite integers, checked.
    fn bounds(&self) -> Result<(i64, i64), Error> {
        if self.until_unix_ns <= self.from_unix_ns {
            return Err(Error::InvalidQuery(format!(
                "the range [{}, {}) is empty: `until` must be after `from`",
                self.from_unix_ns, self.until_unix_ns
            )));
        }
        let clamp = |t: u64| t.min(i64::MAX as u64) as i64;
        Ok((clamp(self.from_unix_ns), clamp(self.until_unix_ns)))
    }
}

/// Which windows a query reads, in a form that changes whenever they do: a
/// cache of query results is valid while this stays the same.
///
/// Window ids are `AUTOINCREMENT` (never reused) and windows are never
/// modified, so a change to the selected set either adds a window, which
/// raises `newest_id` above every id seen before, or only deletes windows,
/// which lowers `windows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowSet {
    /// How many windows the query selects.
    pub windows: u64,
    /// The largest id among them (0 when none).
    pub newest_id: i64,
}

/// Total samples of the windows starting in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Samples in windows that start in this bucket.
    pub samples: u64,
}

/// Which series a query reads.
enum Selection {
    /// Every series in the store.
    All,
    /// Every series of one measure (its `series.measure` code).
    Measure(i64),
    /// These series.
    Series(Vec<i64>),
}

/// The series of `measure` matching all filters.
fn matching_series(
    conn: &Connection,
    filters: &[(String, String)],
    measure: Measure,
) -> Result<Selection, Error> {
    let code = schema::measure_code(measure);
    let selection = |ids: Option<Vec<i64>>| ids.map_or(Selection::All, Selection::Series);
    if !schema::has_measures(conn)? {
        // A file from before measures: every series is on-CPU.
        return match code {
            schema::MEASURE_ON_CPU => labelled_series(conn, filters, None).map(selection),
            _ => Ok(Selection::Series(Vec::new())),
        };
    }
    // Both ends of the (indexed) measure column: a store of one measure
    // needs no filter by it.
    let (lowest, highest): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT min(measure), max(measure) FROM series")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .ctx("selecting series")?;
    match (lowest, highest) {
        (Some(low), Some(high)) if low == code && high == code => {
            labelled_series(conn, filters, None).map(selection)
        }
        (Some(low), Some(high)) if (low..=high).contains(&code) => {
            if filters.is_empty() {
                return Ok(Selection::Measure(code));
            }
            labelled_series(conn, filters, Some(code)).map(selection)
        }
        // No series of this measure at all.
        _ => Ok(Selection::Series(Vec::new())),
    }
}

/// The series matching all filters, of measure `code` when given; `None`
/// when there are no filters (every series).
fn labelled_series(
    conn: &Connection,
    filters: &[(String, String)],
    code: Option<i64>,
) -> Result<Option<Vec<i64>>, Error> {
    let mut result: Option<BTreeSet<i64>> = None;
    // Files from before measures lack the column: no mention of it then.
    let sql = match code {
        None => "SELECT series_id FROM series_label WHERE key = ?1 AND value = ?2",
        Some(_) => {
            "SELECT l.series_id FROM series_label l JOIN series s ON s.id = l.series_id \
             WHERE l.key = ?1 AND l.value = ?2 AND s.measure = ?3"
        }
    };
    let mut stmt = conn.prepare_cached(sql).ctx("selecting series")?;
    for (key, value) in filters {
        let first = |r: &rusqlite::Row<'_>| r.get::<_, i64>(0);
        let rows = match code {
            None => stmt.query_map((key, value), first),
            Some(code) => stmt.query_map((key, value, code), first),
        };
        let ids = rows
            .and_then(|rows| rows.collect::<rusqlite::Result<BTreeSet<i64>>>())
            .ctx("selecting series")?;
        result = Some(match result {
            None => ids,
            Some(previous) => previous.intersection(&ids).copied().collect(),
        });
    }
    Ok(result.map(|set| set.into_iter().collect()))
}

/// Calls `f` for the windows of `series` (all when `None`) starting in
/// `[from, until)`, with the columns of `columns` (which must select from
/// `window_meta w`, and may join `window_blob b`).
fn for_each_window(
    conn: &Connection,
    series: &Selection,
    (from, until): (i64, i64),
    columns: &str,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    let action = "reading windows";
    match series {
        Selection::All => {
            let sql = format!("{columns} WHERE w.start_ns >= ?1 AND w.start_ns < ?2");
            let mut stmt = conn.prepare_cached(&sql).ctx(action)?;
            let mut rows = stmt.query((from, until)).ctx(action)?;
            while let Some(row) = rows.next().ctx(action)? {
                f(row)?;
            }
        }
        Selection::Measure(code) => {
            let sql = format!(
                "{columns} JOIN series s ON s.id = w.series_id \
                 WHERE s.measure = ?3 AND w.start_ns >= ?1 AND w.start_ns < ?2"
            );
            let mut stmt = conn.prepare_cached(&sql).ctx(action)?;
            let mut rows = stmt.query((from, until, code)).ctx(action)?;
            while let Some(row) = rows.next().ctx(action)? {
                f(row)?;
            }
        }
        Selection::Series(series) => {
            let sql = format!(
                "{columns} WHERE w.series_id = ?3 AND w.start_ns >= ?1 AND w.start_ns < ?2"
            );
            let mut stmt = conn.prepare_cached(&sql).ctx(action)?;
            for &id in series {
                let mut rows = stmt.query((from, until, id)).ctx(action)?;
                while let Some(row) = rows.next().ctx(action)? {
                    f(row)?;
                }
            }
        }
    }
    Ok(())
}

/// A value all merged windows agree on, or not.
#[derive(Clone, Copy)]
enum Agreed<T> {
    Unset,
    Same(T),
    Mixed,
}

impl<T: PartialEq + Copy> Agreed<T> {
    fn add(&mut self, value: T) {
        *self = match *self {
            Agreed::Unset => Agreed::Same(value),
            Agreed::Same(v) if v == value => Agreed::Same(v),
            _ => Agreed::Mixed,
        };
    }

    fn get(self) -> Option<T> {
        match self {
            Agreed::Same(v) => Some(v),
            _ => None,
        }
    }
}

/// What a merge keeps of each window besides its blob.
struct WindowMeta {
    id: i64,
    start: u64,
    end: u64,
    frequency: Option<i64>,
    period: Option<i64>,
}

/// The [`WindowSet`] of a query, in its own read transaction.
pub(crate) fn window_set(conn: &mut Connection, query: &Query) -> Result<WindowSet, Error> {
    let bounds = query.bounds()?;
    let tx = conn.transaction().ctx("starting a read")?;
    let series = matching_series(&tx, &query.label_filters, query.measure)?;
    selected_windows(&tx, &series, bounds)
}

/// The [`WindowSet`] of the windows of `series` in `bounds`.
fn selected_windows(
    conn: &Connection,
    series: &Selection,
    bounds: (i64, i64),
) -> Result<WindowSet, Error> {
    let mut set = WindowSet {
        windows: 0,
        newest_id: 0,
    };
    for_each_window(
        conn,
        series,
        bounds,
        "SELECT count(*), coalesce(max(w.id), 0) FROM window_meta w",
        |row| {
            set.windows += row.get::<_, i64>(0).ctx("counting windows")?.max(0) as u64;
            set.newest_id = set
                .newest_id
                .max(row.get::<_, i64>(1).ctx("counting windows")?);
            Ok(())
        },
    )?;
    Ok(set)
}

/// Runs a query: merge, then materialise. Also returns the [`WindowSet`]
/// it read, from the same transaction.
pub(crate) fn merged_profile(
    conn: &mut Connection,
    cache: &Mutex<DictCache>,
    damaged: &Mutex<BTreeSet<i64>>,
    query: &Query,
) -> Result<(Profile, WindowSet), Error> {
    merged(conn, cache, damaged, query, |tx, cache, traces, meta| {
        materialise::profile(tx, cache, traces, meta)
    })
}

/// Runs a query: merge, then build the flame tree of the merged traces
/// straight from the dictionaries (see [`flame`]). Also returns the
/// [`WindowSet`] it read, from the same transaction.
pub(crate) fn merged_flame_tree(
    conn: &mut Connection,
    cache: &Mutex<DictCache>,
    damaged: &Mutex<BTreeSet<i64>>,
    query: &Query,
) -> Result<(FlameTree, WindowSet), Error> {
    let range = (query.from_unix_ns, query.until_unix_ns);
    merged(conn, cache, damaged, query, |tx, cache, traces, meta| {
        flame::tree(tx, cache, traces, &meta, range)
    })
}

/// Runs a query: merge, then build the flame tree of the merged traces
/// pruned to `min_share` of its samples, reading only the names of the
/// nodes that stay (see [`flame::pruned_tree`]). Also returns the
/// [`WindowSet`] it read, from the same transaction.
pub(crate) fn merged_pruned_flame_tree(
    conn: &mut Connection,
    cache: &Mutex<DictCache>,
    damaged: &Mutex<BTreeSet<i64>>,
    query: &Query,
    min_share: f64,
) -> Result<(FlameTree, WindowSet), Error> {
    let range = (query.from_unix_ns, query.until_unix_ns);
    merged(conn, cache, damaged, query, |tx, cache, traces, meta| {
        flame::pruned_tree(tx, cache, traces, &meta, range, min_share)
    })
}

/// Merges the query's windows into `(trace id, count)` pairs sorted by id,
/// and hands them with their [`Meta`] to `finish`, in the same read
/// transaction as the returned [`WindowSet`].
fn merged<T>(
    conn: &mut Connection,
    cache: &Mutex<DictCache>,
    damaged: &Mutex<BTreeSet<i64>>,
    query: &Query,
    finish: impl FnOnce(&Transaction<'_>, &mut DictCache, &[(i64, u64)], Meta) -> Result<T, Error>,
) -> Result<(T, WindowSet), Error> {
    let bounds = query.bounds()?;
    let tx = conn.transaction().ctx("starting a read")?;
    let series = matching_series(&tx, &query.label_filters, query.measure)?;
    let set = selected_windows(&tx, &series, bounds)?;
    // Each window's time and sampling rate, kept apart until the merge
    // says which windows are damaged (they are left out of these too).
    let mut windows: Vec<WindowMeta> = Vec::new();
    let merged = merge::merge(TraceIds::of(&tx)?, set.windows, |sink| {
        for_each_window(
            &tx,
            &series,
            bounds,
            "SELECT w.id, w.start_ns, w.end_ns, w.frequency_hz, w.sample_period, b.data \
             FROM window_meta w JOIN window_blob b ON b.window_id = w.id",
            |row| {
                let id: i64 = row.get(0).ctx("reading windows")?;
                sink(id, row.get_ref(5).ctx("reading windows")?.as_blob().ok());
                windows.push(WindowMeta {
                    id,
                    start: row.get::<_, i64>(1).ctx("reading windows")?.max(0) as u64,
                    end: row.get::<_, i64>(2).ctx("reading windows")?.max(0) as u64,
                    frequency: row.get(3).ctx("reading windows")?,
                    period: row.get(4).ctx("reading windows")?,
                });
                Ok(())
            },
        )
    })?;
    let bad: BTreeSet<i64> = merged.damaged.into_iter().collect();
    let mut span: Option<(u64, u64)> = None;
    let mut frequency = Agreed::Unset;
    let mut period = Agreed::Unset;
    for w in windows.iter().filter(|w| !bad.contains(&w.id)) {
        span = Some(span.map_or((w.start, w.end), |(s, e)| (s.min(w.start), e.max(w.end))));
        frequency.add(w.frequency);
        period.add(w.period);
    }
    if !bad.is_empty() {
        damaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(bad);
    }
    let (start, end) = span.unwrap_or((query.from_unix_ns, query.from_unix_ns));
    let meta = Meta {
        target: describe(&query.label_filters),
        start_unix_ns: start,
        duration_ns: end.saturating_sub(start),
        frequency_hz: frequency.get().flatten().map(|f| f as u64),
        sample_period: period.get().flatten().map(|p| p as u64),
        measure: query.measure,
    };
    let traces = merged.sums.into_sorted();
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    Ok((finish(&tx, &mut cache, &traces, meta)?, set))
}

/// What the profile's `target` says: the filters, or all series.
fn describe(filters: &[(String, String)]) -> String {
    if filters.is_empty() {
        return "all series".to_string();
    }
    filters
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Total samples per `step` from `from` to `until`, every bucket listed.
pub(crate) fn timeline(
    conn: &mut Connection,
    query: &Query,
    step_ns: u64,
) -> Result<Vec<Bucket>, Error> {
    let bounds = query.bounds()?;
    if step_ns == 0 {
        return Err(Error::InvalidQuery(
            "the timeline step must be positive".into(),
        ));
    }
    let span = query.until_unix_ns - query.from_unix_ns;
    let count = span.div_ceil(step_ns);
    if count > MAX_BUCKETS {
        return Err(Error::InvalidQuery(format!(
            "{count} timeline buckets are too many (at most {MAX_BUCKETS}): use a larger step or a shorter range"
        )));
    }
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start_unix_ns: query.from_unix_ns + i * step_ns,
            samples: 0,
        })
        .collect();
    let tx = conn.transaction().ctx("starting a read")?;
    let series = matching_series(&tx, &query.label_filters, query.measure)?;
    for_each_window(
        &tx,
        &series,
        bounds,
        "SELECT w.start_ns, w.total FROM window_meta w",
        |row| {
            let start = row.get::<_, i64>(0).ctx("reading windows")? as u64;
            let total = row.get::<_, i64>(1).ctx("reading windows")?.max(0) as u64;
            let i = (start.saturating_sub(query.from_unix_ns) / step_ns) as usize;
            if let Some(bucket) = buckets.get_mut(i) {
                bucket.samples = bucket.samples.saturating_add(total);
            }
            Ok(())
        },
    )?;
    Ok(buckets)
}

/// Label keys of series that have windows, sorted.
pub(crate) fn label_keys(conn: &Connection) -> Result<Vec<String>, Error> {
    conn.prepare_cached(
        "SELECT DISTINCT l.key FROM series_label l WHERE EXISTS \
         (SELECT 1 FROM window_meta w WHERE w.series_id = l.series_id) ORDER BY l.key",
    )
    .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
    .ctx("listing label keys")
}

/// Values of `key` in series with windows starting in `[from, until)`, sorted.
pub(crate) fn label_values(
    conn: &Connection,
    key: &str,
    from_unix_ns: u64,
    until_unix_ns: u64,
) -> Result<Vec<String>, Error> {
    let (from, until) = Query::range(from_unix_ns, until_unix_ns).bounds()?;
    conn.prepare_cached(
        "SELECT DISTINCT l.value FROM series_label l WHERE l.key = ?1 AND EXISTS \
         (SELECT 1 FROM window_meta w WHERE w.series_id = l.series_id \
          AND w.start_ns >= ?2 AND w.start_ns < ?3) ORDER BY l.value",
    )
    .and_then(|mut s| s.query_map((key, from, until), |r| r.get(0))?.collect())
    .ctx("listing label values")
}
