//! The database schema, its version, and the checks made when opening.
//!
//! ```text
//! dict_string   (id, hash, gen, data)   UTF-8 text: functions, files, comms, build ids
//! dict_mapping  (id, hash, gen, data)   start, limit, offset, file, build id
//! dict_location (id, hash, gen, data)   address, mapping, kind, lines (function, file, line)
//! dict_stack    (id, hash, gen, data)   location ids, leaf first
//! dict_trace    (id, hash, gen, data)   pid, tid, comm, user stack, kernel stack
//! series        (id, labels, measure)   one row per distinct label set and measure
//! series_label  (key, value, series_id) the labels again, indexed for filters
//! window_meta   (id, series_id, start_ns, end_ns, total, bytes,
//!                frequency_hz, sample_period)
//! window_blob   (window_id, data)       zstd (trace id, count) columns
//! upload_id     (id, window_id)         ids clients gave windows (version 2)
//! ```
//!
//! Dictionary rows are immutable: `data` is the entry (see `codec`), `hash`
//! its [`stable_hash`](crate::cache::stable_hash) for lookup by content, and
//! `gen` the newest hour (of window start time) in which a window used it,
//! which is what garbage collection goes by. Ids are `AUTOINCREMENT`, so an
//! id is never reused after deletion and caches keyed by id never go stale.
//!
//! `upload_id` remembers the id a client sent with a window (Pyroscope's
//! `RawSample.id`), so that a client that retries after a lost answer does
//! not store the window twice; its rows go when their windows do.
//!
//! The format version is `PRAGMA user_version`; `PRAGMA application_id`
//! marks the file as ours so we never touch another program's database.
//! Version 1 lacked `upload_id`: the writer adds it when it opens such a
//! file ([`migrate`]); readers need nothing of it and read both.
//! Versions 1 and 2 lacked `series.measure` (what a series' counts are: 0
//! on-CPU samples, 1 off-CPU nanoseconds): [`migrate`] rebuilds `series`
//! with it, every old series on-CPU; readers of an unmigrated file take
//! every series as on-CPU ([`has_measures`]).

use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, SqlContext};

/// The format version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// The oldest format version this build still opens (and migrates).
const OLDEST_VERSION: i64 = 1;

/// `PRAGMA application_id` of a scorch store: "SCRS".
pub(crate) const APPLICATION_ID: i64 = 0x5343_5253;

/// The dictionary tables, in dependency order (an entry refers only to
/// entries of tables before it).
pub(crate) const DICT_TABLES: [&str; 5] = [
    "dict_string",
    "dict_mapping",
    "dict_location",
    "dict_stack",
    "dict_trace",
];

const TABLES: &str = "
CREATE TABLE series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    labels BLOB NOT NULL,
    measure INTEGER NOT NULL DEFAULT 0,
    UNIQUE (labels, measure)
);
CREATE INDEX series_measure ON series(measure);
CREATE TABLE series_label (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    series_id INTEGER NOT NULL,
    PRIMARY KEY (key, value, series_id)
) WITHOUT ROWID;
CREATE INDEX series_label_series ON series_label(series_id);
CREATE TABLE window_meta (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series_id INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    total INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    frequency_hz INTEGER,
    sample_period INTEGER
);
CREATE INDEX window_time ON window_meta(start_ns);
CREATE INDEX window_series_time ON window_meta(series_id, start_ns, total);
CREATE TABLE window_blob (
    window_id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
";

/// What version 2 added.
const UPLOAD_IDS: &str = "
CREATE TABLE upload_id (
    id TEXT PRIMARY KEY,
    window_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX upload_id_window ON upload_id(window_id);
";

/// What version 3 changed: `series` gains `measure` (old series are all
/// on-CPU) and is unique by labels and measure together. Ids and the
/// `AUTOINCREMENT` counter carry over, so no id is ever reused.
const SERIES_MEASURE: &str = "
CREATE TABLE series_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    labels BLOB NOT NULL,
    measure INTEGER NOT NULL DEFAULT 0,
    UNIQUE (labels, measure)
);
INSERT INTO series_v3 (id, labels, measure) SELECT id, labels, 0 FROM series;
DELETE FROM sqlite_sequence WHERE name = 'series_v3';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'series_v3', seq FROM sqlite_sequence WHERE name = 'series';
DROP TABLE series;
ALTER TABLE series_v3 RENAME TO series;
CREATE INDEX series_measure ON series(measure);
";

/// `series.measure` of a series of on-CPU samples.
pub(crate) const MEASURE_ON_CPU: i64 = 0;
/// `series.measure` of a series of off-CPU nanoseconds.
pub(crate) const MEASURE_OFF_CPU: i64 = 1;

/// The `series.measure` value of `measure`.
pub(crate) fn measure_code(measure: scorch_formats::Measure) -> i64 {
    match measure {
        scorch_formats::Measure::OnCpuSamples => MEASURE_ON_CPU,
        scorch_formats::Measure::OffCpuNanoseconds => MEASURE_OFF_CPU,
    }
}

/// Whether `series` has the `measure` column (version 3 on); a reader may
/// see an older file that no writer has migrated yet.
pub(crate) fn has_measures(conn: &Connection) -> Result<bool, Error> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info('series') WHERE name = 'measure'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .ctx("reading the schema")
}

/// Per-connection settings, for readers and the writer alike.
pub(crate) fn configure(conn: &Connection) -> Result<(), Error> {
    conn.busy_timeout(Duration::from_secs(5))
        .ctx("configuring the connection")?;
    conn.set_prepared_statement_cache_capacity(64);
    // 8 MiB of page cache per connection (the OS caches the file too);
    // temporary b-trees in memory.
    conn.pragma_update(None, "cache_size", -8_192)
        .ctx("configuring the connection")?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .ctx("configuring the connection")?;
    Ok(())
}

/// Writer settings: WAL, durable against a crash of the process (not of the
/// machine: `synchronous=NORMAL`), and a WAL file truncated back to 16 MiB
/// after a checkpoint that reset it (a big transaction can grow it past the
/// 4 MiB at which SQLite checkpoints).
pub(crate) fn configure_writer(conn: &Connection) -> Result<(), Error> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .ctx("switching to WAL mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NoWal {
            path: Default::default(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .ctx("setting synchronous mode")?;
    conn.pragma_update(None, "journal_size_limit", 16i64 << 20)
        .ctx("setting the WAL size limit")?;
    Ok(())
}

/// What was found in the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// An empty database (new, or created by a run that died before the
    /// schema was committed).
    Empty,
    /// A scorch store of our version.
    Store,
    /// A scorch store of an older version that [`migrate`] brings up to
    /// date; readable as it is.
    Older(i64),
}

/// Reads the file's identity and version; fails for another program's
/// database or a newer format.
pub(crate) fn identify(conn: &Connection) -> Result<Found, Error> {
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .ctx("reading the database header")?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .ctx("reading the database header")?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .ctx("reading the schema")?;
    if app == 0 && version == 0 && objects == 0 {
        return Ok(Found::Empty);
    }
    if app != APPLICATION_ID {
        return Err(Error::NotAStore {
            path: Default::default(),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(Error::NewerFormat {
            path: Default::default(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < OLDEST_VERSION {
        // Version 1 is the first; ours are always stamped with one.
        return Err(Error::corrupt(format!(
            "a scorch store header with format version {version}, which never existed"
        )));
    }
    if version < SCHEMA_VERSION {
        return Ok(Found::Older(version));
    }
    Ok(Found::Store)
}

/// Creates the schema in an empty database, in one transaction.
pub(crate) fn create(conn: &Connection) -> Result<(), Error> {
    // Must precede the first table; lets retention give pages back to the OS.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .ctx("enabling incremental vacuum")?;
    configure_writer(conn)?;
    let tx = conn.unchecked_transaction().ctx("creating the schema")?;
    for table in DICT_TABLES {
        tx.execute_batch(&format!(
            "CREATE TABLE {table} (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 hash INTEGER NOT NULL,
                 gen INTEGER NOT NULL,
                 data BLOB NOT NULL
             );
             CREATE INDEX {table}_hash ON {table}(hash);
             CREATE INDEX {table}_gen ON {table}(gen);"
        ))
        .ctx("creating the schema")?;
    }
    tx.execute_batch(TABLES).ctx("creating the schema")?;
    tx.execute_batch(UPLOAD_IDS).ctx("creating the schema")?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .ctx("stamping the application id")?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .ctx("stamping the format version")?;
    tx.commit().ctx("creating the schema")
}

/// Brings a store of an older version up to [`SCHEMA_VERSION`], in one
/// transaction.
pub(crate) fn migrate(conn: &Connection, from: i64) -> Result<(), Error> {
    let tx = conn
        .unchecked_transaction()
        .ctx("upgrading the store format")?;
    if from < 2 {
        tx.execute_batch(UPLOAD_IDS)
            .ctx("upgrading the store format to version 2")?;
    }
    if from < 3 {
        tx.execute_batch(SERIES_MEASURE)
            .ctx("upgrading the store format to version 3")?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .ctx("stamping the format version")?;
    tx.commit().ctx("upgrading the store format")
}

/// How the check at open went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOutcome {
    /// The database was new: nothing to check.
    NewDatabase,
    /// `PRAGMA quick_check` found no problem.
    Passed,
    /// The time budget ran out before the check finished; nothing was found
    /// in the part that was checked.
    OutOfTime,
    /// The check was skipped (a zero time budget).
    Skipped,
}

/// Runs `PRAGMA quick_check` for at most `budget`; a problem is
/// [`Error::Corrupt`].
pub(crate) fn quick_check(conn: &Connection, budget: Duration) -> Result<CheckOutcome, Error> {
    if budget.is_zero() {
        return Ok(CheckOutcome::Skipped);
    }
    let deadline = Instant::now() + budget;
    conn.progress_handler(10_000, Some(move || Instant::now() > deadline));
    let result = (|| {
        let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })();
    conn.progress_handler(0, None::<fn() -> bool>);
    match result {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(CheckOutcome::Passed),
        Ok(rows) => Err(Error::corrupt(format!(
            "integrity check: {}",
            rows.join("; ")
        ))),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
            Ok(CheckOutcome::OutOfTime)
        }
        Err(e) => Err(crate::error::classify(e, "checking the integrity")),
    }
}
