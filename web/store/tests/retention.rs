//! Retention: by age, by size, dictionary collection, damaged windows.

mod common;

use std::time::Duration;

use common::*;
use scorch_store::{Query, Store, StoreOptions};

const HOUR: u64 = 3_600_000_000_000;

fn all() -> Query {
    Query::range(0, u64::MAX)
}

/// Windows `first..first + n`, each with its own profile seed.
fn write_range(store: &Store, first: u64, n: u64, seed: u64) {
    for i in first..first + n {
        store
            .write_window(&window(
                i,
                labels(&[("host", "h")]),
                profile(seed + i % 7, 20),
            ))
            .unwrap();
    }
}

#[test]
fn old_windows_expire_and_their_dictionary_entries_go_with_them() {
    let dir = TempDir::new("age");
    let options = StoreOptions::new(Duration::from_secs(3600), u64::MAX);
    let store = Store::open(dir.path(), options).unwrap();
    // Two hours of windows (720), the first hour with different processes.
    write_range(&store, 0, 360, 0);
    for i in 360..720 {
        store
            .write_window(&window(
                i,
                labels(&[("host", "h"), ("pid", "2")]),
                profile(1000 + i % 5, 20),
            ))
            .unwrap();
    }
    let before = store.stats().unwrap();
    assert_eq!(before.windows, 720);

    // Nothing is old yet.
    let now = T0 + 720 * TEN_S;
    let report = store.enforce_retention(now - HOUR).unwrap();
    assert_eq!(report.expired_windows, 0);
    assert_eq!(store.stats().unwrap().windows, 720);

    // One hour later than the last window: the first hour goes.
    let report = store.enforce_retention(now).unwrap();
    assert_eq!(report.expired_windows, 360);
    assert_eq!(report.evicted_windows, 0);
    assert_eq!(
        report.series, 1,
        "the first hour's series has no window left"
    );
    assert!(report.dictionary_entries > 0, "{report:?}");
    let after = store.stats().unwrap();
    assert_eq!(after.windows, 360);
    assert_eq!(after.series, 1);
    assert_eq!(after.oldest_unix_ns, Some(T0 + 360 * TEN_S));
    assert!(after.dictionary_entries < before.dictionary_entries);
    assert_eq!(store.label_keys().unwrap(), vec!["host", "pid"]);

    // What is left is whole.
    let expected: Vec<_> = (360..720).map(|i| profile(1000 + i % 5, 20)).collect();
    assert_eq!(canonical(&store.query(&all()).unwrap()), merged(&expected));

    // Running again does nothing.
    let again = store.enforce_retention(now).unwrap();
    assert_eq!((again.expired_windows, again.dictionary_entries), (0, 0));
}

/// After a collection the writer must not reuse ids it had cached for
/// entries that are gone: writing the old content again must re-create them.
#[test]
fn writing_after_a_collection_recreates_what_was_collected() {
    let dir = TempDir::new("recreate");
    let options = StoreOptions::new(Duration::from_secs(3600), u64::MAX);
    let store = Store::open(dir.path(), options).unwrap();
    let old = profile(42, 40);
    store
        .write_window(&window(0, labels(&[("host", "old")]), old.clone()))
        .unwrap();
    let report = store.enforce_retention(T0 + 3 * HOUR).unwrap();
    assert_eq!(report.expired_windows, 1);
    assert!(report.dictionary_entries > 0);
    assert_eq!(store.stats().unwrap().dictionary_entries, 0);
    // The same content, later.
    let at = 3 * HOUR / TEN_S;
    store
        .write_window(&window(at, labels(&[("host", "old")]), old.clone()))
        .unwrap();
    assert_eq!(canonical(&store.query(&all()).unwrap()), canonical(&old));
    // And after reopening (fresh caches everywhere).
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(canonical(&store.query(&all()).unwrap()), canonical(&old));
}

/// An entry used by an old window and again by a new one survives the
/// collection of the old window's hour.
#[test]
fn entries_still_in_use_survive_collection() {
    let dir = TempDir::new("inuse");
    let options = StoreOptions::new(Duration::from_secs(3600), u64::MAX);
    let store = Store::open(dir.path(), options).unwrap();
    let shared = profile(5, 30);
    store
        .write_window(&window(0, labels(&[("host", "h")]), shared.clone()))
        .unwrap();
    let later = 2 * HOUR / TEN_S;
    store
        .write_window(&window(later, labels(&[("host", "h")]), shared.clone()))
        .unwrap();
    let report = store.enforce_retention(T0 + 2 * HOUR + HOUR / 2).unwrap();
    assert_eq!(report.expired_windows, 1);
    assert_eq!(canonical(&store.query(&all()).unwrap()), canonical(&shared));
}

#[test]
fn the_size_limit_evicts_the_oldest_windows() {
    let dir = TempDir::new("size");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    // Three hours of windows with fresh stacks each hour.
    for hour in 0..3u64 {
        for i in 0..90u64 {
            let index = hour * 360 + i * 4;
            store
                .write_window(&window(
                    index,
                    labels(&[("host", "h")]),
                    profile(hour * 1000 + i, 60),
                ))
                .unwrap();
        }
    }
    let before = store.stats().unwrap();
    drop(store);
    let limit = before.live_bytes / 2;
    let options = StoreOptions::new(Duration::from_secs(365 * 24 * 3600), limit);
    let store = Store::open(dir.path(), options).unwrap();
    let report = store.enforce_retention(T0 + 3 * HOUR).unwrap();
    assert!(report.evicted_windows > 0, "{report:?}");
    assert_eq!(report.expired_windows, 0);
    assert!(report.live_bytes <= limit, "{report:?} over {limit}");
    let after = store.stats().unwrap();
    assert_eq!(after.windows, before.windows - report.evicted_windows);
    assert!(after.dictionary_entries < before.dictionary_entries);
    // The newest windows are the ones kept.
    assert_eq!(after.newest_unix_ns, before.newest_unix_ns);
    assert!(after.oldest_unix_ns > before.oldest_unix_ns);
    // What is left is whole and queryable.
    let expected_total: u64 = (0..3u64)
        .flat_map(|hour| (0..90u64).map(move |i| (hour, i)))
        .filter(|&(hour, i)| T0 + (hour * 360 + i * 4) * TEN_S >= after.oldest_unix_ns.unwrap())
        .map(|(hour, i)| profile(hour * 1000 + i, 60).total_count())
        .sum();
    assert_eq!(store.query(&all()).unwrap().total_count(), expected_total);
}

/// A blob damaged on disk (SQLite cannot tell; zstd's checksum can) is left
/// out of queries and deleted by the next retention run.
#[test]
fn a_damaged_window_is_skipped_then_deleted() {
    let dir = TempDir::new("damaged");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let profiles: Vec<_> = (0..4).map(|i| profile(i, 30)).collect();
    let mut ids = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        ids.push(
            store
                .write_window(&window(i as u64, labels(&[("host", "h")]), p.clone()))
                .unwrap(),
        );
    }
    {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        // Flip one byte in the middle of the zstd frame of window 2.
        let blob: Vec<u8> = conn
            .query_row(
                "SELECT data FROM window_blob WHERE window_id = ?1",
                [ids[2].0],
                |r| r.get(0),
            )
            .unwrap();
        let mut damaged = blob.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x10;
        conn.execute(
            "UPDATE window_blob SET data = ?2 WHERE window_id = ?1",
            (ids[2].0, damaged),
        )
        .unwrap();
    }
    let expected = merged([&profiles[0], &profiles[1], &profiles[3]]);
    assert_eq!(canonical(&store.query(&all()).unwrap()), expected);
    let report = store.enforce_retention(T0).unwrap();
    assert_eq!(report.damaged_windows, 1);
    assert_eq!(store.stats().unwrap().windows, 3);
    assert_eq!(canonical(&store.query(&all()).unwrap()), expected);
    assert_eq!(store.enforce_retention(T0).unwrap().damaged_windows, 0);
}
