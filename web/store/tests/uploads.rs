//! Windows sent by clients: stored once per upload id, ids forgotten with
//! their windows, and stores of format version 1 upgraded to hold them.

mod common;

use std::time::Duration;

use common::*;
use scorch_store::{Query, Store, StoreOptions, Upload};

fn all() -> Query {
    Query::range(0, u64::MAX)
}

fn upload(id: Option<&str>, index: u64) -> Upload {
    Upload {
        id: id.map(str::to_string),
        window: window(index, labels(&[("service_name", "app")]), profile(3, 20)),
    }
}

#[test]
fn a_second_upload_with_the_same_id_is_skipped() {
    let dir = TempDir::new("upload-dedup");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let per_window = profile(3, 20).total_count();

    let ids = store
        .write_uploads(&[upload(Some("a"), 0), upload(Some("b"), 1)])
        .unwrap();
    assert!(ids.iter().all(Option::is_some), "{ids:?}");
    // A retry of "a" and a new "c" in one batch; "c" twice in the batch.
    let ids = store
        .write_uploads(&[
            upload(Some("a"), 0),
            upload(Some("c"), 2),
            upload(Some("c"), 2),
            upload(None, 3),
            upload(None, 3),
        ])
        .unwrap();
    let stored: Vec<bool> = ids.iter().map(Option::is_some).collect();
    assert_eq!(stored, [false, true, false, true, true]);
    assert_eq!(store.stats().unwrap().windows, 5);
    assert_eq!(store.query(&all()).unwrap().total_count(), 5 * per_window);

    // Ids survive a restart.
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        store.write_uploads(&[upload(Some("b"), 1)]).unwrap(),
        [None]
    );
}

#[test]
fn an_id_is_forgotten_with_its_window() {
    let dir = TempDir::new("upload-retention");
    let options = StoreOptions::new(Duration::from_secs(3600), 1 << 30);
    let store = Store::open(dir.path(), options).unwrap();
    store.write_uploads(&[upload(Some("old"), 0)]).unwrap();
    // An hour and a bit after the window: retention deletes it.
    let report = store.enforce_retention(T0 + 3700 * 1_000_000_000).unwrap();
    assert_eq!(report.expired_windows, 1);
    let ids = store.write_uploads(&[upload(Some("old"), 400)]).unwrap();
    assert!(ids[0].is_some(), "the id went with its window");
}

#[test]
fn invalid_upload_ids_are_refused() {
    let dir = TempDir::new("upload-invalid");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let long = "x".repeat(5000);
    for id in ["", long.as_str()] {
        let e = store.write_uploads(&[upload(Some(id), 0)]).unwrap_err();
        assert!(e.to_string().contains("upload id"), "{e}");
    }
    assert_eq!(store.stats().unwrap().windows, 0);
}

#[test]
fn a_version_1_store_is_read_and_upgraded() {
    let dir = TempDir::new("upload-migrate");
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.write_uploads(&[upload(None, 0)]).unwrap();
    }
    let db = dir.path().join(scorch_store::DB_FILE);
    {
        // Make it what version 1 wrote.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("DROP TABLE upload_id; PRAGMA user_version = 1;")
            .unwrap();
    }
    let reader = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert!(reader.query(&all()).unwrap().total_count() > 0);
    drop(reader);

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.write_uploads(&[upload(Some("x"), 1)]).unwrap();
    assert_eq!(
        store.write_uploads(&[upload(Some("x"), 1)]).unwrap(),
        [None]
    );
    assert_eq!(store.stats().unwrap().windows, 2);
    drop(store);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, scorch_store::FORMAT_VERSION);
}
