//! Corrupt database files: found at open, moved aside, salvaged.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::*;
use scorch_formats::Profile;
use scorch_store::{CheckOutcome, Error, OnCorruption, Query, Store, StoreOptions};

const WINDOWS: u64 = 300;

fn profile_of(i: u64) -> Profile {
    // Fresh stacks every few windows, so that the dictionaries spread over
    // the whole file like the windows do.
    profile(i / 3, 25)
}

/// A closed store of [`WINDOWS`] windows; returns the database path.
fn build(dir: &Path) -> std::path::PathBuf {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    for i in 0..WINDOWS {
        store
            .write_window(&window(i, labels(&[("host", "h")]), profile_of(i)))
            .unwrap();
    }
    let db = store.path().to_path_buf();
    drop(store);
    // Closing checkpointed everything into the main file.
    assert!(!Path::new(&format!("{}-wal", db.display())).exists());
    db
}

fn fail_policy() -> StoreOptions {
    let mut options = StoreOptions::default();
    options.on_corruption = OnCorruption::Fail;
    options
}

/// Opens a damaged store both ways and checks what each does.
fn check_recovery(dir: &Path, db: &Path) -> u64 {
    let damaged = std::fs::read(db).unwrap();
    let e = Store::open(dir, fail_policy()).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    let message = e.to_string();
    assert!(message.contains(&db.display().to_string()), "{message}");
    assert!(message.contains("move"), "{message}");
    assert_eq!(
        std::fs::read(db).unwrap(),
        damaged,
        "the Fail policy touched the file"
    );

    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let recovery = store.open_report().recovery.clone().expect("a recovery");
    println!(
        "problem: {}\nsalvage: {:?}",
        recovery.problem, recovery.salvage
    );
    assert_eq!(store.open_report().check, CheckOutcome::NewDatabase);
    assert!(!recovery.problem.is_empty());
    assert!(recovery
        .moved_to
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("store.db.corrupt-"));
    assert_eq!(
        std::fs::read(&recovery.moved_to).unwrap(),
        damaged,
        "the bad file is kept as it was"
    );

    // Every salvaged window is whole: it is exactly what was written.
    let mut found = 0;
    for i in 0..WINDOWS {
        let start = T0 + i * TEN_S;
        let got = store.query(&Query::range(start, start + 1)).unwrap();
        if !got.samples.is_empty() {
            assert_eq!(canonical(&got), canonical(&profile_of(i)), "window {i}");
            found += 1;
        }
    }
    assert_eq!(found, recovery.salvage.windows);
    assert!(recovery.salvage.windows + recovery.salvage.lost_windows <= WINDOWS);

    // The store works: writes, queries, retention, and a clean reopen.
    store
        .write_window(&window(WINDOWS, labels(&[("host", "h")]), profile_of(0)))
        .unwrap();
    store.enforce_retention(T0).unwrap();
    drop(store);
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    assert_eq!(store.open_report().check, CheckOutcome::Passed);
    assert!(store.open_report().recovery.is_none());
    assert_eq!(store.stats().unwrap().windows, found + 1);
    found
}

#[test]
fn a_truncated_file_is_moved_aside_and_its_readable_windows_kept() {
    let dir = TempDir::new("truncated");
    let db = build(dir.path());
    let len = std::fs::metadata(&db).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len * 6 / 10)
        .unwrap();
    let salvaged = check_recovery(dir.path(), &db);
    assert!(salvaged > 0, "the first 60% of the file hold whole windows");
}

#[test]
fn garbage_pages_are_found_and_the_rest_is_salvaged() {
    let dir = TempDir::new("garbage");
    let db = build(dir.path());
    let len = std::fs::metadata(&db).unwrap().len();
    let page = 4096;
    let pages = len / page;
    let mut file = OpenOptions::new().write(true).open(&db).unwrap();
    let mut rng = Rng::new(7);
    // Eight pages in the middle of the file.
    let first = pages / 2;
    file.seek(SeekFrom::Start(first * page)).unwrap();
    let garbage: Vec<u8> = (0..8 * page).map(|_| rng.next() as u8).collect();
    file.write_all(&garbage).unwrap();
    drop(file);
    let salvaged = check_recovery(dir.path(), &db);
    assert!(salvaged > 0);
}

#[test]
fn a_destroyed_header_is_moved_aside_and_the_store_starts_empty() {
    let dir = TempDir::new("header");
    let db = build(dir.path());
    let mut file = OpenOptions::new().write(true).open(&db).unwrap();
    file.write_all(&[0xa5; 100]).unwrap();
    drop(file);
    let salvaged = check_recovery(dir.path(), &db);
    assert_eq!(salvaged, 0);
}

#[test]
fn read_only_opening_reports_corruption_without_touching_the_file() {
    let dir = TempDir::new("readonly-corrupt");
    let db = build(dir.path());
    let len = std::fs::metadata(&db).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), len / 2);
}

/// A dictionary row gone missing (which no structural check sees) makes
/// queries fail with a clear error instead of returning wrong stacks.
#[test]
fn a_missing_dictionary_entry_is_reported_as_corruption() {
    let dir = TempDir::new("missing-entry");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .write_window(&window(0, labels(&[("host", "h")]), profile_of(0)))
        .unwrap();
    {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        conn.execute(
            "DELETE FROM dict_location WHERE id = (SELECT max(id) FROM dict_location)",
            [],
        )
        .unwrap();
    }
    let all = Query::range(0, u64::MAX);
    let errors = [
        store.query(&all).unwrap_err(),
        store.flame_tree_with_window_set(&all).unwrap_err(),
        store
            .pruned_flame_tree_with_window_set(&all, 0.01)
            .unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("dict_location entry"), "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}

/// The first paint's pruned tree reads only the names it shows: a name
/// gone missing from a frame it leaves out is reported by the whole tree,
/// which the page asks for right after, not by the pruned one.
#[test]
fn a_missing_name_is_reported_by_the_tree_that_shows_it() {
    let dir = TempDir::new("missing-name");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let profile = stacks(
        "app",
        &[(&["main", "wide"], 1000), (&["main", "narrow"], 1)],
    );
    store
        .write_window(&window(0, labels(&[("host", "h")]), profile))
        .unwrap();
    {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let deleted = conn
            .execute(
                "DELETE FROM dict_string WHERE data = CAST('narrow' AS BLOB)",
                [],
            )
            .unwrap();
        assert_eq!(deleted, 1);
    }
    let all = Query::range(0, u64::MAX);
    let (pruned, _) = store.pruned_flame_tree_with_window_set(&all, 0.01).unwrap();
    let names: Vec<&str> = pruned.names.iter().map(|n| &**n).collect();
    assert_eq!(names, ["all", "app", "main", "wide", "[smaller frames]"]);
    let e = store.flame_tree_with_window_set(&all).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("dict_string entry"), "{e}");
    // Shown, it is reported by the pruned tree too.
    let e = store
        .pruned_flame_tree_with_window_set(&all, 0.0)
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
}
