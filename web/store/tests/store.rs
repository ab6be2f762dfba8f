//! Writing and querying: round trips, merging, labels, time, timelines,
//! validation, locking and format identity.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use scorch_formats::{FrameKind, Line, Location, Mapping, Measure, Meta, Profile, Sample, Stack};
use scorch_store::{CheckOutcome, Error, Query, Store, StoreOptions, Window};

fn all() -> Query {
    Query::range(0, u64::MAX)
}

/// Every corner of the model survives a round trip: inlined lines, lines
/// without file or line, locations without mapping, JIT frames, missed and
/// absent stacks, threads, and indices that point nowhere.
#[test]
fn a_window_round_trips_with_every_kind_of_frame() {
    let dir = TempDir::new("roundtrip");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.open_report().check, CheckOutcome::NewDatabase);
    let profile = Profile {
        meta: Meta {
            target: "ignored".into(),
            start_unix_ns: 1,
            duration_ns: 2,
            frequency_hz: None,
            sample_period: Some(10_000),
            measure: Measure::OnCpuSamples,
        },
        mappings: vec![Mapping {
            start: 0x1000,
            limit: 0x2000,
            offset: 0x30,
            file: "/lib/libc.so.6".into(),
            build_id: None,
        }],
        locations: vec![
            Location {
                address: 0x1234,
                mapping: Some(0),
                kind: FrameKind::User,
                lines: vec![
                    Line {
                        function: "inlined_callee".into(),
                        file: Some("a.c".into()),
                        line: Some(0),
                    },
                    Line {
                        function: "caller".into(),
                        file: None,
                        line: None,
                    },
                ],
            },
            Location {
                address: 0x7f00,
                mapping: None,
                kind: FrameKind::Jit,
                lines: vec![],
            },
            Location {
                address: 0x1500,
                mapping: Some(99), // points nowhere: stored without mapping
                kind: FrameKind::User,
                lines: vec![],
            },
        ],
        samples: vec![
            Sample {
                pid: 1,
                tid: Some(2),
                comm: "a".into(),
                user: Stack::Frames(vec![0, 1, 7]), // 7 points nowhere
                kernel: Stack::Missed,
                count: 3,
            },
            Sample {
                pid: 1,
                tid: None,
                comm: "".into(),
                user: Stack::Frames(vec![]),
                kernel: Stack::Absent,
                count: u64::MAX,
            },
            Sample {
                pid: u32::MAX,
                tid: Some(u32::MAX),
                comm: "ü".into(),
                user: Stack::Absent,
                kernel: Stack::Frames(vec![2, 2]),
                count: 1,
            },
            Sample {
                pid: 1,
                tid: Some(2),
                comm: "a".into(),
                user: Stack::Frames(vec![0, 1, 7]),
                kernel: Stack::Missed,
                count: 4, // same trace as the first: merged
            },
            Sample {
                pid: 5,
                tid: None,
                comm: "zero".into(),
                user: Stack::Absent,
                kernel: Stack::Absent,
                count: 0, // dropped
            },
        ],
    };
    let w = window(0, labels(&[("host", "h")]), profile.clone());
    store.write_window(&w).unwrap();
    let got = store.query(&all()).unwrap();
    // (The location whose mapping index pointed nowhere is kept without a
    // mapping, which is how `canonical` shows it too.)
    assert_eq!(canonical(&got), canonical(&profile));
    assert_eq!(got.meta.sample_period, Some(10_000));
    assert_eq!(got.meta.frequency_hz, None);
    assert_eq!(got.meta.start_unix_ns, w.start_unix_ns);
    assert_eq!(got.meta.duration_ns, TEN_S);
    // Every index of the result points somewhere.
    for s in &got.samples {
        for stack in [&s.user, &s.kernel] {
            if let Stack::Frames(f) = stack {
                assert!(f.iter().all(|&i| i < got.locations.len()));
            }
        }
    }
    for l in &got.locations {
        assert!(l.mapping.is_none_or(|m| m < got.mappings.len()));
    }
}

#[test]
fn queries_merge_windows_and_series_and_respect_time_and_labels() {
    let dir = TempDir::new("merge");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut written = Vec::new();
    for i in 0..30u64 {
        let series = labels(&[("host", "h1"), ("comm", ["app", "db"][i as usize % 2])]);
        let p = profile(i % 5, 40);
        store.write_window(&window(i, series, p.clone())).unwrap();
        written.push((i, i % 2, p));
    }
    // Another host, in one batch.
    let other: Vec<Window> = (0..5)
        .map(|i| window(i, labels(&[("host", "h2")]), profile(100 + i, 10)))
        .collect();
    store.write_windows(&other).unwrap();

    let everything = store.query(&all()).unwrap();
    let expected = merged(
        written
            .iter()
            .map(|(_, _, p)| p)
            .chain(other.iter().map(|w| &w.profile)),
    );
    assert_eq!(canonical(&everything), expected);
    assert_eq!(everything.meta.frequency_hz, Some(49));
    assert_eq!(everything.meta.target, "all series");

    let db = store
        .query(&all().label("host", "h1").label("comm", "db"))
        .unwrap();
    assert_eq!(
        canonical(&db),
        merged(written.iter().filter(|w| w.1 == 1).map(|w| &w.2))
    );
    assert_eq!(db.meta.target, "host=h1,comm=db");

    // [from, until) on window start: windows 10..20.
    let range = Query::range(T0 + 10 * TEN_S, T0 + 20 * TEN_S).label("host", "h1");
    let got = store.query(&range).unwrap();
    assert_eq!(
        canonical(&got),
        merged(
            written
                .iter()
                .filter(|w| (10..20).contains(&w.0))
                .map(|w| &w.2)
        )
    );
    assert_eq!(got.meta.start_unix_ns, T0 + 10 * TEN_S);
    assert_eq!(got.meta.duration_ns, 10 * TEN_S);

    let none = store.query(&all().label("host", "nope")).unwrap();
    assert!(none.samples.is_empty() && none.locations.is_empty());
    let contradictory = store
        .query(&all().label("comm", "app").label("comm", "db"))
        .unwrap();
    assert!(contradictory.samples.is_empty());

    assert_eq!(store.label_keys().unwrap(), vec!["comm", "host"]);
    assert_eq!(
        store.label_values("host", 0, u64::MAX).unwrap(),
        vec!["h1", "h2"]
    );
    // h2 only has windows 0..5.
    assert_eq!(
        store
            .label_values("host", T0 + 10 * TEN_S, T0 + 11 * TEN_S)
            .unwrap(),
        vec!["h1"]
    );
    assert!(store.label_values("nope", 0, u64::MAX).unwrap().is_empty());
}

#[test]
fn the_timeline_sums_window_totals_per_bucket() {
    let dir = TempDir::new("timeline");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut totals = Vec::new();
    for i in 0..12u64 {
        let p = profile(i, 20);
        totals.push(p.total_count());
        let series = labels(&[("host", if i < 6 { "a" } else { "b" })]);
        store.write_window(&window(i, series, p)).unwrap();
    }
    // One-minute buckets over two minutes, starting at T0.
    let q = Query::range(T0, T0 + 12 * TEN_S);
    let buckets = store.timeline(&q, Duration::from_secs(60)).unwrap();
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0].start_unix_ns, T0);
    assert_eq!(buckets[1].start_unix_ns, T0 + 6 * TEN_S);
    assert_eq!(buckets[0].samples, totals[..6].iter().sum::<u64>());
    assert_eq!(buckets[1].samples, totals[6..].iter().sum::<u64>());
    let b = store
        .timeline(&q.clone().label("host", "b"), Duration::from_secs(60))
        .unwrap();
    assert_eq!(b[0].samples, 0);
    assert_eq!(b[1].samples, totals[6..].iter().sum::<u64>());
    // A ragged last bucket is still listed.
    let ragged = store
        .timeline(&Query::range(T0, T0 + 25 * TEN_S), Duration::from_secs(60))
        .unwrap();
    assert_eq!(ragged.len(), 5);
    // The total of a merged query equals the timeline's.
    let merged = store.query(&q).unwrap();
    assert_eq!(merged.total_count(), totals.iter().sum::<u64>());
}

#[test]
fn invalid_windows_and_queries_are_refused_with_reasons() {
    let dir = TempDir::new("invalid");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut w = window(0, labels(&[("host", "h")]), profile(1, 3));
    w.end_unix_ns = w.start_unix_ns - 1;
    let e = store.write_window(&w).unwrap_err();
    assert!(matches!(e, Error::InvalidWindow(_)), "{e}");
    assert!(e.to_string().contains("before it starts"), "{e}");

    let mut w = window(0, labels(&[("", "x")]), profile(1, 3));
    assert!(matches!(
        store.write_window(&w),
        Err(Error::InvalidWindow(_))
    ));
    w.labels = labels(&[("k", &"v".repeat(5000))]);
    assert!(matches!(
        store.write_window(&w),
        Err(Error::InvalidWindow(_))
    ));
    w.labels = labels(&[("k", "v")]);
    w.start_unix_ns = u64::MAX - 1;
    w.end_unix_ns = u64::MAX;
    assert!(matches!(
        store.write_window(&w),
        Err(Error::InvalidWindow(_))
    ));
    // A batch with one bad window writes none.
    let good = window(1, labels(&[("k", "v")]), profile(2, 3));
    assert!(store.write_windows(&[good.clone(), w]).is_err());
    assert_eq!(store.stats().unwrap().windows, 0);
    store.write_window(&good).unwrap();

    assert!(matches!(
        store.query(&Query::range(5, 5)),
        Err(Error::InvalidQuery(_))
    ));
    assert!(matches!(
        store.timeline(&all(), Duration::ZERO),
        Err(Error::InvalidQuery(_))
    ));
    let e = store.timeline(&all(), Duration::from_secs(1)).unwrap_err();
    assert!(e.to_string().contains("larger step"), "{e}");
    assert!(matches!(
        store.label_values("k", 9, 1),
        Err(Error::InvalidQuery(_))
    ));

    let mut options = StoreOptions::default();
    options.compression_level = 99;
    let fresh = TempDir::new("invalid-options");
    let e = Store::open(&fresh.path().join("store"), options).unwrap_err();
    assert!(matches!(e, Error::InvalidOptions(_)), "{e}");
    assert!(!fresh.path().join("store").exists(), "nothing created");
}

#[test]
fn data_and_dictionaries_persist_across_reopening() {
    let dir = TempDir::new("reopen");
    let p = profile(7, 50);
    let entries = {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .write_window(&window(0, labels(&[("host", "h")]), p.clone()))
            .unwrap();
        store.stats().unwrap().dictionary_entries
    };
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.open_report().check, CheckOutcome::Passed);
    assert!(store.open_report().recovery.is_none());
    // The same content again adds no dictionary entry and no series.
    store
        .write_window(&window(1, labels(&[("host", "h")]), p.clone()))
        .unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.dictionary_entries, entries);
    assert_eq!(stats.series, 1);
    assert_eq!(stats.windows, 2);
    assert_eq!(stats.oldest_unix_ns, Some(T0));
    assert_eq!(stats.newest_unix_ns, Some(T0 + TEN_S));
    assert!(stats.live_bytes > 0 && stats.file_bytes > 0);
    assert_eq!(canonical(&store.query(&all()).unwrap()), merged([&p, &p]));
}

#[test]
fn one_writer_per_directory_and_read_only_readers() {
    let dir = TempDir::new("lock");
    assert!(matches!(
        Store::open_read_only(dir.path(), StoreOptions::default()),
        Err(Error::NoStore { .. })
    ));
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let e = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(e.to_string().contains("another scorch process"), "{e}");

    let p = profile(3, 10);
    store
        .write_window(&window(0, labels(&[("host", "h")]), p.clone()))
        .unwrap();
    let reader = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(canonical(&reader.query(&all()).unwrap()), canonical(&p));
    let e = reader
        .write_window(&window(1, labels(&[]), p.clone()))
        .unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e}");
    assert!(matches!(
        reader.enforce_retention(0),
        Err(Error::ReadOnly { .. })
    ));
    // The reader sees later writes.
    store
        .write_window(&window(1, labels(&[("host", "h")]), p.clone()))
        .unwrap();
    assert_eq!(
        reader.query(&all()).unwrap().total_count(),
        2 * p.total_count()
    );
    drop(store);
    // The lock goes with the store.
    Store::open(dir.path(), StoreOptions::default()).unwrap();
}

#[test]
fn a_newer_format_or_a_foreign_database_is_refused_and_left_alone() {
    let dir = TempDir::new("version");
    drop(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let db = dir.path().join(scorch_store::DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", scorch_store::FORMAT_VERSION + 1)
            .unwrap();
    }
    let e = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NewerFormat {
                found,
                supported,
                ..
            } if found == scorch_store::FORMAT_VERSION + 1 && supported == scorch_store::FORMAT_VERSION
        ),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade scorch"), "{e}");
    assert!(db.exists());

    let foreign = TempDir::new("foreign");
    let db = foreign.path().join(scorch_store::DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let e = Store::open(foreign.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NotAStore { .. }), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// A writer thread and readers at once: queries always see whole windows.
#[test]
fn readers_and_the_writer_run_concurrently() {
    let dir = TempDir::new("concurrent");
    let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let p = profile(11, 30);
    let per_window = p.total_count();
    let writer = {
        let store = Arc::clone(&store);
        let p = p.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                store
                    .write_window(&window(i, labels(&[("host", "h")]), p.clone()))
                    .unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let total = store
                        .query(&all().label("host", "h"))
                        .unwrap()
                        .total_count();
                    assert_eq!(total % per_window, 0);
                    store
                        .timeline(&Query::range(T0, T0 + 200 * TEN_S), Duration::from_secs(60))
                        .unwrap();
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(store.query(&all()).unwrap().total_count(), 200 * per_window);
}

#[test]
fn the_check_at_open_keeps_to_its_time_budget() {
    let dir = TempDir::new("budget");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    for i in 0..200 {
        store
            .write_window(&window(i, labels(&[("host", "h")]), profile(i, 30)))
            .unwrap();
    }
    drop(store);
    let mut options = StoreOptions::default();
    options.check_budget = Duration::from_nanos(1);
    let store = Store::open(dir.path(), options.clone()).unwrap();
    assert_eq!(store.open_report().check, CheckOutcome::OutOfTime);
    drop(store);
    options.check_budget = Duration::ZERO;
    let store = Store::open(dir.path(), options).unwrap();
    assert_eq!(store.open_report().check, CheckOutcome::Skipped);
    assert_eq!(store.stats().unwrap().windows, 200);
}

/// Merging works the same when the trace ids in use span a huge range (the
/// hash-map path) as when they are compact (the array path).
#[test]
fn merging_does_not_depend_on_how_trace_ids_are_spread() {
    let dir = TempDir::new("spread");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let first: Vec<_> = (0..5).map(|i| profile(i, 30)).collect();
    for (i, p) in first.iter().enumerate() {
        store
            .write_window(&window(i as u64, labels(&[("host", "h")]), p.clone()))
            .unwrap();
    }
    let compact = canonical(&store.query(&all()).unwrap());
    assert_eq!(compact, merged(&first));
    {
        // An unused trace far away: later ids continue after it.
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        conn.execute(
            "INSERT INTO dict_trace (id, hash, gen, data) VALUES (50000000, 0, 0, x'01')",
            [],
        )
        .unwrap();
    }
    assert_eq!(canonical(&store.query(&all()).unwrap()), compact);
    let second: Vec<_> = (5..10).map(|i| profile(i, 30)).collect();
    for (i, p) in second.iter().enumerate() {
        store
            .write_window(&window(5 + i as u64, labels(&[("host", "h")]), p.clone()))
            .unwrap();
    }
    assert_eq!(
        canonical(&store.query(&all()).unwrap()),
        merged(first.iter().chain(&second))
    );
}
