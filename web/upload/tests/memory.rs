//! Memory under a backlog: a slow server makes the spool grow on disk, not
//! the uploader's memory. Alone in its test binary, so no other test's
//! allocations move the process's resident size while it is measured.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scorch_upload::{Endpoint, UploadOptions, Uploader};
use support::*;

/// Start (seconds) of window `n`, recent enough to be sent.
fn start_of(n: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now.as_secs() - 3000) / 10 * 10 + n * 10
}

fn spool_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".window"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn a_slow_server_grows_the_spool_on_disk_not_the_memory() {
    // Far slower than the windows come: one answer every two minutes.
    let server = Server::start_forgetful(|_, _| Reply {
        delay: Duration::from_secs(120),
        ..Reply::ok()
    });
    let dir = temp_dir("slow");
    let mut options = UploadOptions::new(server.url());
    options.timeout = Duration::from_secs(300);
    let uploader = Uploader::start(Endpoint::new(&options).unwrap(), &dir, 1 << 30).unwrap();
    // One process with long distinct frames: about 170 KB of pprof a window.
    let mut seed = 0x9e3779b97f4a7c15u64;
    // Names of random printable characters: gzip cannot shrink them.
    let names: Vec<String> = (0..200)
        .map(|_| {
            (0..1000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(b'!' + (seed % 94) as u8)
                })
                .collect()
        })
        .collect();
    let stacks: Vec<Vec<&str>> = names
        .chunks(2)
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let stacks: Vec<(&[&str], u64)> = stacks.iter().map(|s| (s.as_slice(), 1)).collect();
    let big = vec![(labels(300, "big"), profile(300, "big", &stacks))];

    let rss_before = rss_bytes();
    for n in 0..150 {
        assert_eq!(uploader.submit(&window(start_of(n), &big)), 1);
        wait_until(Duration::from_secs(30), "spooling", || {
            uploader.stats().queued == 0
        });
    }
    let on_disk = spool_bytes(&dir);
    let rss_growth = rss_bytes().saturating_sub(rss_before);
    assert!(
        on_disk >= 20 << 20,
        "the spool holds the backlog: {on_disk} bytes"
    );
    assert!(
        rss_growth < on_disk / 2,
        "memory grew by {rss_growth} bytes while {on_disk} bytes wait on disk"
    );
    let stats = uploader.shutdown(Duration::ZERO);
    assert_eq!(stats.delivered, 0, "the server never answered: {stats:?}");
    let requests = server.stop();
    assert_eq!(requests.len(), 1, "one request at a time");
    let largest = requests.iter().map(|r| r.body_len).max().unwrap_or(0);
    assert!(
        largest <= (1 << 20) + (64 << 10),
        "one request of {largest} bytes"
    );
}

/// This process's resident memory.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}
