//! Writing windows: a profile becomes dictionary entries and one blob.
//!
//! A [`Window`] is one series (label set) over one time span. Its samples
//! are reduced to traces (pid, tid, comm, user stack, kernel stack), each
//! interned in the dictionaries with its stacks, locations, mappings and
//! strings; the blob is the sorted (trace id, count) list. A batch of
//! windows is one transaction: a crash or an error loses the batch, never
//! part of a window, and leaves nothing half-written.

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::{Connection, TransactionBehavior};
use scorch_formats::{FrameKind, Location, Profile, Stack};

use crate::cache::{IdMap, TwoGen};
use crate::codec::{
    encode_labels, encode_stack, put_uvarint, BlobEncoder, LineEntry, LocationEntry, MappingEntry,
    StackRef, TraceEntry,
};
use crate::dict::{DictWriter, Kind};
use crate::error::{Error, SqlContext};
use crate::options::StoreOptions;
use crate::reserve::Reserve;
use crate::schema;

/// Length of a dictionary generation: one hour of window start time.
pub(crate) const GEN_NS: u64 = 3_600_000_000_000;

/// Labels per window, at most.
const MAX_LABELS: usize = 64;
/// Bytes in a label key, at most.
const MAX_KEY: usize = 256;
/// Bytes in a label value, at most.
const MAX_VALUE: usize = 4096;

/// The dictionary generation of a window starting at `start_ns`.
pub(crate) fn gen_of(start_ns: u64) -> i64 {
    (start_ns / GEN_NS) as i64
}

/// One profile of one series over one time span, as the agent writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Start of the window, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// End of the window (exclusive), nanoseconds since the Unix epoch.
    pub end_unix_ns: u64,
    /// The series: `host`, `pid`, `comm`, `exe`, `cgroup`, user labels…
    pub labels: BTreeMap<String, String>,
    /// The samples. `meta.frequency_hz` and `meta.sample_period` are kept,
    /// and `meta.measure` makes the window part of a series of that measure
    /// (on-CPU and off-CPU windows of the same labels are two series);
    /// `meta.target`, `start_unix_ns` and `duration_ns` are not (the window
    /// and its labels say the same).
    pub profile: Profile,
}

/// A window sent by a client, with the id the client gave it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The client's id of the window, unique per window (e.g. a UUID).
    pub id: Option<String>,
    /// The window.
    pub window: Window,
}

/// The id of a stored window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowId(pub i64);

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "window {}", self.0)
    }
}

/// The single writer: its connection and caches.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    dict: DictWriter,
    series: TwoGen<Box<[u8]>, i64>,
    encoder: BlobEncoder,
    /// Generation below which the dictionaries were last collected.
    pub(crate) collected_below: Option<i64>,
    /// A write failed for lack of space since retention last ran.
    pub(crate) disk_full: bool,
    /// Space to give up when the disk is full.
    pub(crate) reserve: Reserve,
}

impl Writer {
    /// A writer on an open, checked database.
    pub(crate) fn new(
        conn: Connection,
        options: &StoreOptions,
        reserve: Reserve,
    ) -> Result<Self, Error> {
        let encoder =
            BlobEncoder::new(options.compression_level).map_err(|source| Error::Zstd { source })?;
        Ok(Self {
            conn,
            dict: DictWriter::new(options.cache_entries),
            series: TwoGen::new(options.cache_entries.min(1 << 16)),
            encoder,
            collected_below: None,
            disk_full: false,
            reserve,
        })
    }

    /// Forgets cached ids (after a rollback or a collection).
    pub(crate) fn forget(&mut self) {
        self.dict.clear();
        self.series.clear();
    }

    /// Writes windows in one transaction; a window with an upload id that
    /// is already stored is skipped (`None` in its place).
    pub(crate) fn write(
        &mut self,
        windows: &[(Option<&str>, &Window)],
    ) -> Result<Vec<Option<WindowId>>, Error> {
        for (id, window) in windows {
            validate(window)?;
            if let Some(id) = id {
                validate_upload_id(id)?;
            }
        }
        let result = self.write_all(windows);
        if let Err(e) = &result {
            // Ids handed out inside the rolled-back transaction are free
            // again: cached ones would point at other entries later.
            self.forget();
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            if e.is_disk_full() {
                self.disk_full = true;
            }
        }
        result
    }

    fn write_all(
        &mut self,
        windows: &[(Option<&str>, &Window)],
    ) -> Result<Vec<Option<WindowId>>, Error> {
        let Writer {
            conn,
            dict,
            series,
            encoder,
            ..
        } = self;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting a write")?;
        let mut ids = Vec::with_capacity(windows.len());
        for &(upload, window) in windows {
            if let Some(upload) = upload {
                if upload_seen(&tx, upload)? {
                    ids.push(None);
                    continue;
                }
            }
            let mut w = WindowWriter {
                conn: &tx,
                dict,
                gen: gen_of(window.start_unix_ns),
                profile: &window.profile,
                mappings: vec![None; window.profile.mappings.len()],
                locations: vec![None; window.profile.locations.len()],
                unknown: None,
                buf: Vec::new(),
                frames: Vec::new(),
            };
            let traces = w.traces()?;
            let measure = schema::measure_code(window.profile.meta.measure);
            let series_id = intern_series(&tx, series, &window.labels, measure)?;
            let blob = encoder.encode(&traces)?;
            let total = traces
                .iter()
                .fold(0u64, |t, &(_, c)| t.saturating_add(c))
                .min(i64::MAX as u64) as i64;
            let meta = &window.profile.meta;
            tx.prepare_cached(
                "INSERT INTO window_meta (series_id, start_ns, end_ns, total, bytes, \
                 frequency_hz, sample_period) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute((
                    series_id,
                    window.start_unix_ns as i64,
                    window.end_unix_ns as i64,
                    total,
                    blob.len() as i64,
                    meta.frequency_hz.map(|f| f.min(i64::MAX as u64) as i64),
                    meta.sample_period.map(|p| p.min(i64::MAX as u64) as i64),
                ))
            })
            .ctx("writing a window")?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO window_blob (window_id, data) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute((id, &blob)))
                .ctx("writing a window")?;
            if let Some(upload) = upload {
                tx.prepare_cached("INSERT INTO upload_id (id, window_id) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute((upload, id)))
                    .ctx("recording an upload id")?;
            }
            ids.push(Some(WindowId(id)));
        }
        tx.commit().ctx("committing windows")?;
        Ok(ids)
    }
}

/// Checks what the schema cannot hold or what makes no sense.
fn validate(window: &Window) -> Result<(), Error> {
    if window.end_unix_ns < window.start_unix_ns {
        return Err(Error::InvalidWindow(format!(
            "it ends ({}) before it starts ({})",
            window.end_unix_ns, window.start_unix_ns
        )));
    }
    if window.end_unix_ns > i64::MAX as u64 {
        return Err(Error::InvalidWindow(format!(
            "its end {} ns is after the year 2262",
            window.end_unix_ns
        )));
    }
    if window.labels.len() > MAX_LABELS {
        return Err(Error::InvalidWindow(format!(
            "{} labels, more than the {MAX_LABELS} a series may have",
            window.labels.len()
        )));
    }
    for (key, value) in &window.labels {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(Error::InvalidWindow(format!(
                "label key `{key}` must be 1 to {MAX_KEY} bytes long"
            )));
        }
        if value.len() > MAX_VALUE {
            return Err(Error::InvalidWindow(format!(
                "the value of label `{key}` is longer than {MAX_VALUE} bytes"
            )));
        }
    }
    Ok(())
}

/// Whether a window with upload id `id` is stored.
fn upload_seen(conn: &Connection, id: &str) -> Result<bool, Error> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT 1 FROM upload_id WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |_| Ok(())).optional())
        .map(|found| found.is_some())
        .ctx("looking up an upload id")
}

/// Checks an upload id: 1 to [`MAX_VALUE`] bytes.
fn validate_upload_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_VALUE {
        return Err(Error::InvalidWindow(format!(
            "its upload id must be 1 to {MAX_VALUE} bytes long, not {}",
            id.len()
        )));
    }
    Ok(())
}

/// The id of a label set of one measure, inserting it (with its index rows)
/// if new.
fn intern_series(
    conn: &Connection,
    cache: &mut TwoGen<Box<[u8]>, i64>,
    labels: &BTreeMap<String, String>,
    measure: i64,
) -> Result<i64, Error> {
    let mut labels_blob = Vec::new();
    encode_labels(
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut labels_blob,
    );
    // The cache key: the labels, then the measure.
    let mut key = labels_blob.clone();
    key.push(measure as u8);
    if let Some(id) = cache.get(&key[..]) {
        return Ok(id);
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM series WHERE labels = ?1 AND measure = ?2")
        .and_then(|mut s| {
            use rusqlite::OptionalExtension;
            s.query_row((&labels_blob, measure), |r| r.get(0))
                .optional()
        })
        .ctx("looking up a series")?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.prepare_cached("INSERT INTO series (labels, measure) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute((&labels_blob, measure)))
                .ctx("adding a series")?;
            let id = conn.last_insert_rowid();
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO series_label (key, value, series_id) VALUES (?1, ?2, ?3)",
                )
                .ctx("adding a series")?;
            for (k, v) in labels {
                stmt.execute((k, v, id)).ctx("adding a series")?;
            }
            id
        }
    };
    cache.insert(key.into(), id);
    Ok(id)
}

/// Interns one window's profile, memoizing its mappings and locations.
struct WindowWriter<'a> {
    conn: &'a Connection,
    dict: &'a mut DictWriter,
    gen: i64,
    profile: &'a Profile,
    mappings: Vec<Option<i64>>,
    locations: Vec<Option<i64>>,
    /// The location that stands for an index pointing at no location.
    unknown: Option<i64>,
    buf: Vec<u8>,
    frames: Vec<i64>,
}

impl WindowWriter<'_> {
    /// The window's `(trace id, count)` pairs, by ascending id.
    fn traces(&mut self) -> Result<Vec<(i64, u64)>, Error> {
        let mut counts: IdMap<u64> = IdMap::default();
        let profile = self.profile;
        for sample in &profile.samples {
            if sample.count == 0 {
                continue;
            }
            let trace = TraceEntry {
                pid: sample.pid,
                tid: sample.tid,
                comm: self.string(&sample.comm)?,
                user: self.stack(&sample.user)?,
                kernel: self.stack(&sample.kernel)?,
            };
            self.buf.clear();
            trace.encode(&mut self.buf);
            let id = self.intern(Kind::Trace)?;
            let count = counts.entry(id).or_default();
            *count = count.saturating_add(sample.count);
        }
        let mut traces: Vec<(i64, u64)> = counts.into_iter().collect();
        traces.sort_unstable();
        Ok(traces)
    }

    /// Interns the bytes in `self.buf`.
    fn intern(&mut self, kind: Kind) -> Result<i64, Error> {
        let fingerprint = self.dict.keys().of(&self.buf);
        self.dict
            .intern(self.conn, kind, fingerprint, &self.buf, self.gen)
    }

    fn string(&mut self, s: &str) -> Result<i64, Error> {
        let fingerprint = self.dict.keys().of(s.as_bytes());
        self.dict
            .intern(self.conn, Kind::String, fingerprint, s.as_bytes(), self.gen)
    }

    fn stack(&mut self, stack: &Stack) -> Result<StackRef, Error> {
        let indices = match stack {
            Stack::Absent => return Ok(StackRef::Absent),
            Stack::Missed => return Ok(StackRef::Missed),
            Stack::Frames(indices) => indices,
        };
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        for &index in indices {
            frames.push(self.location(index)?);
        }
        self.buf.clear();
        encode_stack(&frames, &mut self.buf);
        self.frames = frames;
        self.intern(Kind::Stack).map(StackRef::Frames)
    }

    fn location(&mut self, index: usize) -> Result<i64, Error> {
        if let Some(Some(id)) = self.locations.get(index) {
            return Ok(*id);
        }
        let profile = self.profile;
        let Some(location) = profile.locations.get(index) else {
            return self.unknown_location();
        };
        let id = self.intern_location(location)?;
        self.locations[index] = Some(id);
        Ok(id)
    }

    fn unknown_location(&mut self) -> Result<i64, Error> {
        if let Some(id) = self.unknown {
            return Ok(id);
        }
        let id = self.intern_location(&Location {
            address: 0,
            mapping: None,
            kind: FrameKind::User,
            lines: Vec::new(),
        })?;
        self.unknown = Some(id);
        Ok(id)
    }

    /// Interns a location. Locations are most of a window's dictionary
    /// work, so they are cached by a fingerprint of the profile's own
    /// content: a location seen before in this hour costs one probe, without
    /// interning its strings again.
    fn intern_location(&mut self, location: &Location) -> Result<i64, Error> {
        let mapping = match location.mapping {
            Some(m) if m < self.profile.mappings.len() => Some(self.mapping(m)?),
            _ => None,
        };
        let fingerprint = self.location_fingerprint(location, mapping);
        if let Some(id) = self.dict.current(Kind::Location, fingerprint, self.gen) {
            return Ok(id);
        }
        let mut lines = Vec::with_capacity(location.lines.len());
        for line in &location.lines {
            lines.push(LineEntry {
                function: self.string(&line.function)?,
                file: line.file.as_deref().map(|f| self.string(f)).transpose()?,
                line: line.line,
            });
        }
        self.buf.clear();
        LocationEntry {
            address: location.address,
            mapping,
            kind: location.kind,
            lines: lines.into(),
        }
        .encode(&mut self.buf);
        self.dict
            .intern(self.conn, Kind::Location, fingerprint, &self.buf, self.gen)
    }

    /// The fingerprint of a location as the profile has it (strings
    /// inline, each with its length), its mapping by id.
    fn location_fingerprint(&mut self, location: &Location, mapping: Option<i64>) -> u128 {
        let key = &mut self.buf;
        key.clear();
        put_uvarint(key, location.address);
        put_uvarint(key, mapping.map_or(0, |m| m as u64 + 1));
        key.push(location.kind as u8);
        for line in &location.lines {
            for text in [Some(line.function.as_str()), line.file.as_deref()] {
                match text {
                    Some(text) => {
                        put_uvarint(key, text.len() as u64 + 1);
                        key.extend_from_slice(text.as_bytes());
                    }
                    None => key.push(0),
                }
            }
            put_uvarint(key, line.line.map_or(0, |l| u64::from(l) + 1));
        }
        self.dict.keys().of(key)
    }

    fn mapping(&mut self, index: usize) -> Result<i64, Error> {
        if let Some(id) = self.mappings[index] {
            return Ok(id);
        }
        let profile = self.profile;
        let mapping = &profile.mappings[index];
        let entry = MappingEntry {
            start: mapping.start,
            limit: mapping.limit,
            offset: mapping.offset,
            file: self.string(&mapping.file)?,
            build_id: mapping
                .build_id
                .as_deref()
                .map(|b| self.string(b))
                .transpose()?,
        };
        self.buf.clear();
        entry.encode(&mut self.buf);
        let id = self.intern(Kind::Mapping)?;
        self.mappings[index] = Some(id);
        Ok(id)
    }
}
