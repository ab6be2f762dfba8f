//! Series of different measures (on-CPU samples, off-CPU nanoseconds) kept
//! apart: a query reads one measure only, and stores from before measures
//! read as on-CPU.

mod common;

use std::time::Duration;

use common::*;
use scorch_formats::{Measure, Profile};
use scorch_store::{Query, Store, StoreOptions};

fn all(measure: Measure) -> Query {
    Query::range(0, u64::MAX).measure(measure)
}

fn off_cpu(seed: u64, samples: usize) -> Profile {
    let mut p = profile(seed, samples);
    p.meta.measure = Measure::OffCpuNanoseconds;
    p.meta.frequency_hz = None;
    for sample in &mut p.samples {
        sample.count *= 1_000_000;
    }
    p
}

#[test]
fn queries_read_one_measure_and_never_sum_units() {
    let dir = TempDir::new("measures");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let web = labels(&[("comm", "web")]);
    let db = labels(&[("comm", "db")]);
    let (cpu_web, cpu_db) = (profile(1, 30), profile(2, 40));
    let (off_web, off_db) = (off_cpu(3, 20), off_cpu(4, 25));
    // The same label sets under both measures, interleaved in time.
    store
        .write_windows(&[
            window(0, web.clone(), cpu_web.clone()),
            window(0, web.clone(), off_web.clone()),
            window(1, db.clone(), cpu_db.clone()),
            window(1, db.clone(), off_db.clone()),
        ])
        .unwrap();

    let cpu = store.query(&all(Measure::OnCpuSamples)).unwrap();
    assert_eq!(cpu.meta.measure, Measure::OnCpuSamples);
    assert_eq!(canonical(&cpu), merged([&cpu_web, &cpu_db]));
    let off = store.query(&all(Measure::OffCpuNanoseconds)).unwrap();
    assert_eq!(off.meta.measure, Measure::OffCpuNanoseconds);
    assert_eq!(canonical(&off), merged([&off_web, &off_db]));

    let web_off = store
        .query(&all(Measure::OffCpuNanoseconds).label("comm", "web"))
        .unwrap();
    assert_eq!(canonical(&web_off), canonical(&off_web));
    let db_cpu = store
        .query(&all(Measure::OnCpuSamples).label("comm", "db"))
        .unwrap();
    assert_eq!(canonical(&db_cpu), canonical(&cpu_db));

    // The default is on-CPU.
    assert_eq!(Query::range(0, u64::MAX).measure, Measure::OnCpuSamples);

    // Timelines and window sets too.
    let step = Duration::from_secs(10);
    let range = |m| Query::range(T0, T0 + 2 * TEN_S).measure(m);
    let totals = |m| -> Vec<u64> {
        store
            .timeline(&range(m), step)
            .unwrap()
            .iter()
            .map(|b| b.samples)
            .collect()
    };
    assert_eq!(
        totals(Measure::OnCpuSamples),
        [cpu_web.total_count(), cpu_db.total_count()]
    );
    assert_eq!(
        totals(Measure::OffCpuNanoseconds),
        [off_web.total_count(), off_db.total_count()]
    );
    let cpu_set = store.window_set(&all(Measure::OnCpuSamples)).unwrap();
    let off_set = store.window_set(&all(Measure::OffCpuNanoseconds)).unwrap();
    assert_eq!((cpu_set.windows, off_set.windows), (2, 2));
    assert_ne!(cpu_set.newest_id, off_set.newest_id);
}

#[test]
fn a_store_from_before_measures_reads_as_on_cpu_and_is_upgraded() {
    let dir = TempDir::new("measures-migrate");
    let app = labels(&[("comm", "app")]);
    let cpu = profile(5, 30);
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .write_window(&window(0, app.clone(), cpu.clone()))
            .unwrap();
    }
    let db = dir.path().join(scorch_store::DB_FILE);
    {
        // Make it what version 2 wrote: `series` without `measure`.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE series_v2 (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 labels BLOB NOT NULL UNIQUE
             );
             INSERT INTO series_v2 (id, labels) SELECT id, labels FROM series;
             DROP TABLE series;
             ALTER TABLE series_v2 RENAME TO series;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    // A reader reads the old file as it is.
    let reader = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        canonical(&reader.query(&all(Measure::OnCpuSamples)).unwrap()),
        canonical(&cpu)
    );
    assert_eq!(
        reader
            .query(&all(Measure::OffCpuNanoseconds).label("comm", "app"))
            .unwrap()
            .total_count(),
        0
    );
    drop(reader);

    // The writer upgrades it; old series stay on-CPU, the same labels can
    // now hold off-CPU windows beside them, and ids are not reused.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let off = off_cpu(6, 20);
    store
        .write_window(&window(1, app.clone(), off.clone()))
        .unwrap();
    store
        .write_window(&window(2, app.clone(), cpu.clone()))
        .unwrap();
    let cpu_read = store.query(&all(Measure::OnCpuSamples)).unwrap();
    assert_eq!(canonical(&cpu_read), merged([&cpu, &cpu]));
    let off_read = store
        .query(&all(Measure::OffCpuNanoseconds).label("comm", "app"))
        .unwrap();
    assert_eq!(canonical(&off_read), canonical(&off));
    assert_eq!(store.stats().unwrap().windows, 3);
    drop(store);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, scorch_store::FORMAT_VERSION);
    let series: Vec<(i64, i64)> = conn
        .prepare("SELECT id, measure FROM series ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(series, [(1, 0), (2, 1)]);
}

#[test]
fn a_store_of_one_measure_answers_the_other_with_nothing() {
    let dir = TempDir::new("measures-one");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let off = off_cpu(7, 20);
    store
        .write_window(&window(0, labels(&[("comm", "app")]), off.clone()))
        .unwrap();
    for filtered in [false, true] {
        let query = |m| {
            let q = all(m);
            if filtered {
                q.label("comm", "app")
            } else {
                q
            }
        };
        let cpu = store.query(&query(Measure::OnCpuSamples)).unwrap();
        assert_eq!(cpu.total_count(), 0, "filtered: {filtered}");
        assert_eq!(
            store
                .window_set(&query(Measure::OnCpuSamples))
                .unwrap()
                .windows,
            0
        );
        let read = store.query(&query(Measure::OffCpuNanoseconds)).unwrap();
        assert_eq!(canonical(&read), canonical(&off), "filtered: {filtered}");
    }
}
