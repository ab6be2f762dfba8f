//! `kill -9` in the middle of writing: every committed window survives,
//! whole, and the store opens and takes writes again.
//!
//! The test re-runs its own binary as the writer (the `crash_writer` test,
//! which does nothing unless `SCORCH_STORE_CRASH_DIR` is set). The writer
//! prints `committed <index>` after each write returns; the parent kills it
//! at a random moment, several times over, and checks the store.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use scorch_formats::Profile;
use scorch_store::{CheckOutcome, Query, Store, StoreOptions};

const DIR_VAR: &str = "SCORCH_STORE_CRASH_DIR";
const FIRST_VAR: &str = "SCORCH_STORE_CRASH_FIRST";

/// The profile of window `i`: new stacks every few windows, so that
/// dictionary inserts are part of what gets interrupted.
fn profile_of(i: u64) -> Profile {
    profile(i / 2, 60)
}

/// Batches of 1 to 3 windows, so multi-window transactions get cut too.
fn batch_len(i: u64) -> u64 {
    1 + i % 3
}

/// The writer: runs only in the child process.
#[test]
fn crash_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let mut i: u64 = std::env::var(FIRST_VAR).unwrap().parse().unwrap();
    let store = Store::open(dir.as_ref(), StoreOptions::default()).unwrap();
    loop {
        let n = batch_len(i);
        let batch: Vec<_> = (i..i + n)
            .map(|j| window(j, labels(&[("host", "h")]), profile_of(j)))
            .collect();
        store.write_windows(&batch).unwrap();
        println!("committed {}", i + n - 1);
        i += n;
        // Every 50 windows or so, retention gets interrupted too.
        if i / 50 != (i - n) / 50 {
            store.enforce_retention(T0).unwrap();
        }
    }
}

/// Runs the writer from `first` and kills it once it has committed
/// `at_least` windows plus a random bit; returns the last index it said
/// was committed.
fn write_and_kill(dir: &std::path::Path, first: u64, at_least: u64, rng: &mut Rng) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env(FIRST_VAR, first.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let target = first + at_least + rng.below(20);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("committed ") {
            let n: u64 = n.parse().unwrap();
            last = Some(n);
            if n >= target {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the writer is too slow");
    }
    // Let it get into its next transaction, then SIGKILL.
    std::thread::sleep(Duration::from_micros(rng.below(3000)));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer ended by itself: {status}");
    last
}

#[test]
fn kill_9_during_writes_loses_nothing_committed() {
    if std::env::var(DIR_VAR).is_ok() {
        return; // inside the writer
    }
    let dir = TempDir::new("crash");
    let mut rng = Rng::new(99);
    let mut next = 0u64;
    for round in 0..4 {
        let committed = write_and_kill(dir.path(), next, 30, &mut rng)
            .unwrap_or_else(|| panic!("round {round}: nothing committed"));
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.open_report().check, CheckOutcome::Passed);
        assert!(store.open_report().recovery.is_none());
        // Every window the writer reported is there and whole; a batch in
        // flight is there entirely or not at all.
        let stats = store.stats().unwrap();
        let stored = stats.windows;
        let newest = (stats.newest_unix_ns.unwrap() - T0) / TEN_S;
        assert!(newest >= committed, "round {round}: lost committed windows");
        assert_eq!(
            stored,
            newest + 1,
            "round {round}: a gap or a partial batch"
        );
        for i in (0..=newest).step_by(7).chain([committed, newest]) {
            let start = T0 + i * TEN_S;
            let got = store.query(&Query::range(start, start + 1)).unwrap();
            assert_eq!(
                canonical(&got),
                canonical(&profile_of(i)),
                "round {round}, window {i}"
            );
        }
        let all = store.query(&Query::range(0, u64::MAX)).unwrap();
        let expected: u64 = (0..=newest).map(|i| profile_of(i).total_count()).sum();
        assert_eq!(all.total_count(), expected);
        next = newest + 1;
        // Make the next round's batches start where the writer left off.
        drop(store);
    }
}
