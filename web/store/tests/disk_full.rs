//! A full disk: writes fail with `Error::DiskFull`, nothing else breaks, and
//! once retention has made room, writes succeed again. Runs on a small
//! tmpfs, which needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use scorch_store::{Error, Query, Store, StoreOptions};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `4m`) at `dir`, or says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        if !is_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_writes_cleanly_and_retention_makes_room() {
    let dir = TempDir::new("diskfull");
    let mount = match Tmpfs::mount(&dir.path().join("mnt"), "3m") {
        Ok(mount) => mount,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let store_dir = mount.0.join("store");
    let mut options = StoreOptions::new(Duration::from_secs(3600), u64::MAX);
    options.reserve_bytes = 512 << 10;
    let store = Store::open(&store_dir, options.clone()).unwrap();

    // Every window brings new stacks, so the dictionaries grow too.
    let profile_of = |i: u64| profile(i, 150);
    let mut written = 0u64;
    let mut total = 0u64;
    let error = loop {
        assert!(written < 5000, "a 3 MiB tmpfs never filled up");
        let p = profile_of(written);
        match store.write_window(&window(written, labels(&[("host", "h")]), p.clone())) {
            Ok(_) => {
                written += 1;
                total += p.total_count();
            }
            Err(e) => break e,
        }
    };
    println!("disk full after {written} windows: {error}");
    assert!(matches!(error, Error::DiskFull { .. }), "{error}");
    assert!(store_dir.join("store.reserve").exists());
    let message = error.to_string();
    assert!(message.contains("no space left"), "{message}");
    assert!(
        message.contains(&store_dir.display().to_string()),
        "{message}"
    );
    assert!(written > 10);

    // Reads still work and see every committed window, nothing of the failed one.
    let all = Query::range(0, u64::MAX);
    assert_eq!(store.query(&all).unwrap().total_count(), total);
    // Another write fails the same way, not worse.
    let again = store
        .write_window(&window(
            written,
            labels(&[("host", "h")]),
            profile_of(written),
        ))
        .unwrap_err();
    assert!(matches!(again, Error::DiskFull { .. }), "{again}");

    // Retention: let the first half expire.
    let now = T0 + (written / 2) * TEN_S + 3_600_000_000_000;
    let report = store.enforce_retention(now).unwrap();
    println!("retention: {report:?}");
    assert!(report.expired_windows > 0);
    // The files shrank (the WAL was emptied), and the reserve is back.
    assert!(report.file_bytes < 1 << 20, "{report:?}");
    assert_eq!(
        std::fs::metadata(store_dir.join("store.reserve"))
            .unwrap()
            .len(),
        512 << 10
    );

    // Writes succeed again, and the data is whole.
    let mut kept: u64 = (written / 2..written)
        .map(|i| profile_of(i).total_count())
        .sum();
    for i in written..written + 3 {
        let p = profile_of(i);
        store
            .write_window(&window(i, labels(&[("host", "h")]), p.clone()))
            .unwrap();
        kept += p.total_count();
    }
    assert_eq!(store.query(&all).unwrap().total_count(), kept);
    drop(store);
    let store = Store::open(&store_dir, options).unwrap();
    assert_eq!(store.query(&all).unwrap().total_count(), kept);
    drop(store);
}
