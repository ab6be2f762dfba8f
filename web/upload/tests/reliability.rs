//! Delivery when the server is down, failing, slow or refusing, and across
//! restarts: nothing lost that the spool could keep, nothing sent twice
//! that the server confirmed, waits as the server asked.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use scorch_formats::push::pyroscope::PushRequest;
use scorch_formats::Profile;
use scorch_upload::entry::entry_id;
use scorch_upload::sender::MAX_SERVER_ERRORS;
use scorch_upload::{Endpoint, Protocol, UploadOptions, Uploader, QUEUE_WINDOWS};
use support::*;

type Series = Vec<(BTreeMap<String, String>, Profile)>;

fn endpoint(url: &str) -> Endpoint {
    let mut options = UploadOptions::new(url);
    options.protocol = Protocol::Push;
    options.retry.initial = Duration::from_millis(20);
    options.retry.max = Duration::from_millis(200);
    options.timeout = Duration::from_secs(5);
    Endpoint::new(&options).unwrap()
}

/// The series of window `n`: two processes.
fn series(n: u64) -> Series {
    vec![
        (
            labels(100, "burn"),
            profile(100, "burn", &[(&["main", "spin"], 10 + n)]),
        ),
        (
            labels(200, "idle"),
            profile(200, "idle", &[(&["main", "nap"], 1)]),
        ),
    ]
}

/// Start (seconds) of window `n`: recent, as the server accepts only
/// windows younger than the endpoint's `max_age`.
fn start_of(n: u64) -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        (now.as_secs() - 600) / 10 * 10
    });
    base + n * 10
}

/// Every sample id the server received, with how often.
fn received_ids(requests: &[Recorded]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for request in requests {
        if let Ok(push) = PushRequest::decode(request.body.as_ref()) {
            for series in push.series {
                for sample in series.samples {
                    *ids.entry(sample.id).or_default() += 1;
                }
            }
        }
    }
    ids
}

/// The ids windows `range` must carry for `agent`.
fn expected_ids(agent: &str, range: std::ops::Range<u64>) -> BTreeSet<String> {
    range
        .flat_map(|n| {
            let start = window(start_of(n), &[]).start_unix_ns;
            series(n)
                .into_iter()
                .map(move |(labels, _)| entry_id(agent, start, &labels))
        })
        .collect()
}

/// Submits windows `range`, each spooled before the next is submitted.
fn submit(uploader: &Uploader, range: std::ops::Range<u64>) {
    for n in range {
        let series = series(n);
        assert_eq!(uploader.submit(&window(start_of(n), &series)), 2);
        wait_until(Duration::from_secs(10), "spooling", || {
            uploader.stats().queued == 0
        });
    }
}

/// The address of a port nobody listens on (a server that stopped).
fn stopped_server() -> std::net::SocketAddr {
    let server = Server::start(|_, _| Reply::ok());
    let addr = server.addr;
    server.stop();
    addr
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
fn server_down_for_a_while_then_back_loses_and_duplicates_nothing() {
    let addr = stopped_server();
    let dir = temp_dir("down-then-back");
    let uploader = Uploader::start(endpoint(&format!("http://{addr}")), &dir, 16 << 20).unwrap();
    submit(&uploader, 0..5);
    wait_until(Duration::from_secs(10), "failed attempts", || {
        uploader.stats().failed_attempts >= 3
    });
    submit(&uploader, 5..8);
    assert_eq!(uploader.pending(), 16, "everything waits on disk");
    assert_eq!(uploader.stats().delivered, 0);

    let server = Server::start_at(addr, |_, _| Reply::ok());
    wait_until(Duration::from_secs(20), "delivery", || {
        uploader.stats().delivered == 16
    });
    let stats = uploader.shutdown(Duration::from_secs(1));
    let ids = received_ids(&server.stop());
    assert!(
        ids.values().all(|&n| n == 1),
        "an id arrived twice: {ids:?}"
    );
    let agent = std::fs::read_to_string(dir.join("agent-id")).unwrap();
    assert_eq!(
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        expected_ids(agent.trim(), 0..8)
    );
    assert_eq!((stats.rejected, stats.evicted), (0, 0));
    assert_eq!(spool_bytes(&dir), 0, "delivered entries are deleted");
}

#[test]
fn retries_a_500_and_waits_as_a_429_retry_after_asks() {
    let server = Server::start(|n, _| match n {
        0 => Reply::status(500),
        1 => Reply {
            headers: vec![("retry-after", "1".into())],
            ..Reply::status(429)
        },
        _ => Reply::ok(),
    });
    let dir = temp_dir("retry-after");
    let uploader = Uploader::start(endpoint(&server.url()), &dir, 16 << 20).unwrap();
    submit(&uploader, 0..1);
    wait_until(Duration::from_secs(10), "delivery", || {
        uploader.stats().delivered == 2
    });
    assert_eq!(uploader.stats().failed_attempts, 2);
    let requests = server.stop();
    assert_eq!(requests.len(), 3);
    // Every attempt carries the same window with the same ids.
    assert_eq!(
        received_ids(&requests).values().collect::<Vec<_>>(),
        [&3, &3]
    );
    // The backoff alone (at most 200 ms here) cannot explain a wait of a second.
    let waited = requests[2].at - requests[1].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After ignored: {waited:?}"
    );
    assert!(requests[1].at > requests[0].at);
}

#[test]
fn a_4xx_is_dropped_and_counted_not_retried() {
    let server = Server::start(|_, _| Reply::status(400));
    let dir = temp_dir("rejected");
    let uploader = Uploader::start(endpoint(&server.url()), &dir, 16 << 20).unwrap();
    submit(&uploader, 0..1);
    wait_until(Duration::from_secs(10), "rejection", || {
        uploader.stats().rejected == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.stop().len(), 1, "a 400 is not retried");
    assert_eq!(uploader.stats().failed_attempts, 0);
    assert_eq!(uploader.pending(), 0);
    assert_eq!(uploader.stats().delivered, 0);
}

#[test]
fn a_lost_answer_is_resent_with_the_same_ids() {
    // The first answer comes after the client gave up waiting: the server
    // stored the window, the client cannot know, and sends it again.
    let server = Server::start(|n, _| Reply {
        delay: if n == 0 {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        },
        ..Reply::ok()
    });
    let dir = temp_dir("lost-answer");
    let mut options = UploadOptions::new(server.url());
    options.timeout = Duration::from_secs(2);
    options.retry.initial = Duration::from_millis(20);
    let uploader = Uploader::start(Endpoint::new(&options).unwrap(), &dir, 16 << 20).unwrap();
    submit(&uploader, 0..1);
    wait_until(Duration::from_secs(10), "delivery", || {
        uploader.stats().delivered == 2
    });
    let requests = server.stop();
    assert!(requests.len() >= 2, "{} requests", requests.len());
    let first = received_ids(&requests[..1]);
    assert_eq!(first.len(), 2);
    for request in &requests[1..] {
        assert_eq!(received_ids(std::slice::from_ref(request)), first);
    }
}

#[test]
fn a_full_spool_drops_the_oldest_and_counts_them() {
    let addr = stopped_server();
    let dir = temp_dir("full");
    // The size of one window on disk, spooled while nobody listens.
    let one = {
        let probe = temp_dir("full-probe");
        let uploader =
            Uploader::start(endpoint(&format!("http://{addr}")), &probe, 1 << 20).unwrap();
        submit(&uploader, 0..1);
        uploader.shutdown(Duration::ZERO);
        spool_bytes(&probe)
    };
    // Room for three windows, not for a fourth.
    let limit = 3 * one + one / 2;
    let uploader = Uploader::start(endpoint(&format!("http://{addr}")), &dir, limit).unwrap();
    submit(&uploader, 0..5);
    assert_eq!(
        uploader.stats().evicted,
        4,
        "two windows of two series dropped"
    );
    assert!(spool_bytes(&dir) <= limit);

    let server = Server::start_at(addr, |_, _| Reply::ok());
    wait_until(Duration::from_secs(20), "delivery", || {
        uploader.pending() == 0
    });
    let stats = uploader.shutdown(Duration::from_secs(1));
    assert_eq!(stats.delivered, 6);
    let ids = received_ids(&server.stop());
    let agent = std::fs::read_to_string(dir.join("agent-id")).unwrap();
    assert_eq!(
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        expected_ids(agent.trim(), 2..5),
        "the newest windows are kept"
    );
}

#[test]
fn a_restart_resends_the_spool_first_with_the_same_ids() {
    let addr = stopped_server();
    let dir = temp_dir("restart");
    let url = format!("http://{addr}");
    let first = Uploader::start(endpoint(&url), &dir, 16 << 20).unwrap();
    submit(&first, 0..3);
    let agent = first.agent_id().to_string();
    let stats = first.shutdown(Duration::ZERO);
    assert_eq!(stats.delivered, 0);
    assert!(spool_bytes(&dir) > 0);

    let server = Server::start_at(addr, |_, _| Reply::ok());
    let second = Uploader::start(endpoint(&url), &dir, 16 << 20).unwrap();
    assert_eq!(second.agent_id(), agent, "the agent id survives restarts");
    submit(&second, 3..4);
    wait_until(Duration::from_secs(20), "delivery", || {
        second.stats().delivered == 8
    });
    second.shutdown(Duration::from_secs(1));
    let requests = server.stop();
    let ids = received_ids(&requests);
    assert!(ids.values().all(|&n| n == 1), "{ids:?}");
    assert_eq!(
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        expected_ids(&agent, 0..4)
    );
    // The spooled windows went first.
    let first_request = received_ids(&requests[..1]);
    assert!(first_request
        .keys()
        .all(|id| expected_ids(&agent, 0..3).contains(id)));
}

#[test]
fn a_413_makes_requests_smaller_and_nothing_is_dropped() {
    // One window of eight processes, spooled while nobody listens.
    let addr = stopped_server();
    let dir = temp_dir("too-large");
    let url = format!("http://{addr}");
    let eight: Series = (0..8)
        .map(|i| {
            let comm = format!("p{i}");
            (
                labels(100 + i, &comm),
                profile(100 + i, &comm, &[(&["main", "work"], 5)]),
            )
        })
        .collect();
    let first = Uploader::start(endpoint(&url), &dir, 16 << 20).unwrap();
    assert_eq!(first.submit(&window(start_of(0), &eight)), 8);
    let agent = first.agent_id().to_string();
    first.shutdown(Duration::ZERO);

    // A proxy that takes bodies of up to about two processes' profiles.
    let limit = spool_bytes(&dir) as usize / 4;
    let server = Server::start_at(addr, move |_, request| {
        if request.body_len > limit {
            Reply::status(413)
        } else {
            Reply::ok()
        }
    });
    let second = Uploader::start(endpoint(&url), &dir, 16 << 20).unwrap();
    wait_until(Duration::from_secs(20), "delivery", || {
        second.pending() == 0
    });
    let stats = second.shutdown(Duration::ZERO);
    assert_eq!((stats.delivered, stats.rejected), (8, 0), "{stats:?}");
    let requests = server.stop();
    assert!(
        requests[0].body_len > limit,
        "the first request was the whole window"
    );
    let accepted: Vec<Recorded> = requests
        .into_iter()
        .filter(|r| r.body_len <= limit)
        .collect();
    let ids = received_ids(&accepted);
    assert!(ids.values().all(|&n| n == 1), "{ids:?}");
    let start = window(start_of(0), &[]).start_unix_ns;
    let expected: BTreeSet<String> = eight
        .iter()
        .map(|(labels, _)| entry_id(&agent, start, labels))
        .collect();
    assert_eq!(ids.keys().cloned().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn submit_returns_while_the_spool_disk_is_blocked() {
    let server = Server::start(|_, _| Reply::ok());
    let dir = temp_dir("blocked-disk");
    std::fs::create_dir_all(&*dir).unwrap();
    std::fs::write(dir.join("agent-id"), "blocked-agent\n").unwrap();
    let uploader = Arc::new(Uploader::start(endpoint(&server.url()), &dir, 16 << 20).unwrap());
    // The first window's temporary file is a FIFO: opening it to write
    // blocks until someone reads, as a hung disk would.
    let start = window(start_of(0), &[]).start_unix_ns;
    let first_id = entry_id("blocked-agent", start, &series(0)[0].0);
    let fifo = dir.join(format!("{start:020}-{first_id}.window.tmp"));
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");

    let windows = QUEUE_WINDOWS as u64 + 4;
    let (done, returned) = mpsc::channel();
    let submitter = Arc::clone(&uploader);
    std::thread::spawn(move || {
        let taken: Vec<usize> = (0..windows)
            .map(|n| submitter.submit(&window(start_of(n), &series(n))))
            .collect();
        let _ = done.send(taken);
    });
    let taken = returned
        .recv_timeout(Duration::from_secs(30))
        .expect("submit waited for the spool's disk");
    let stats = uploader.stats();
    // One window blocks the spooler, the queue holds QUEUE_WINDOWS; the
    // rest are dropped, counted, and `submit` says so with 0.
    assert!((3..=4).contains(&stats.queue_full), "{stats:?}");
    let accepted = taken.iter().filter(|&&n| n == 2).count() as u64;
    assert_eq!(accepted + stats.queue_full, windows, "{taken:?}");
    assert_eq!(spool_bytes(&dir), 0, "nothing reached the spool yet");
    assert!(server.requests().is_empty());

    // The disk comes back: the queued windows are spooled and sent.
    let _ = std::fs::read(&fifo).unwrap();
    wait_until(Duration::from_secs(20), "delivery", || {
        let stats = uploader.stats();
        stats.queued == 0 && stats.delivered + stats.evicted == 2 * accepted
    });
    let stats = Arc::try_unwrap(uploader)
        .unwrap()
        .shutdown(Duration::from_secs(1));
    assert!(stats.delivered >= 2 * (accepted - 1), "{stats:?}");
    server.stop();
}

#[test]
fn refused_credentials_keep_the_profiles_until_fixed() {
    let server = Server::start(|n, _| {
        if n < 2 {
            Reply::status(if n == 0 { 401 } else { 403 })
        } else {
            Reply::ok()
        }
    });
    let dir = temp_dir("unauthorized");
    let uploader = Uploader::start(endpoint(&server.url()), &dir, 16 << 20).unwrap();
    submit(&uploader, 0..1);
    wait_until(Duration::from_secs(20), "delivery", || {
        uploader.stats().delivered == 2
    });
    let stats = uploader.shutdown(Duration::ZERO);
    assert_eq!((stats.rejected, stats.failed_attempts), (0, 2), "{stats:?}");
    let requests = server.stop();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        received_ids(&requests).values().collect::<Vec<_>>(),
        [&3, &3]
    );
    // Each retry waits the longest backoff (200 ms here), not a random part of it.
    for pair in requests.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(waited >= Duration::from_millis(190), "{waited:?}");
    }
}

#[test]
fn windows_older_than_the_max_age_are_dropped_and_counted() {
    let server = Server::start(|_, _| Reply::ok());
    let dir = temp_dir("expired");
    let uploader = Uploader::start(endpoint(&server.url()), &dir, 16 << 20).unwrap();
    // Two hours old: Pyroscope would refuse it (reject-older-than, 1 h).
    let old = series(0);
    assert_eq!(uploader.submit(&window(start_of(0) - 7200, &old)), 2);
    submit(&uploader, 1..2);
    wait_until(Duration::from_secs(10), "delivery", || {
        let stats = uploader.stats();
        stats.delivered == 2 && stats.expired == 2
    });
    let agent = uploader.agent_id().to_string();
    let stats = uploader.shutdown(Duration::ZERO);
    assert_eq!((stats.rejected, stats.pending), (0, 0), "{stats:?}");
    let ids = received_ids(&server.stop());
    assert_eq!(
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        expected_ids(&agent, 1..2)
    );
}

#[test]
fn a_window_the_server_keeps_failing_on_is_given_up() {
    let dir = temp_dir("stuck");
    std::fs::create_dir_all(&*dir).unwrap();
    std::fs::write(dir.join("agent-id"), "stuck-agent\n").unwrap();
    let poisoned = expected_ids("stuck-agent", 0..1);
    let server = Server::start(move |_, request| {
        let ids = received_ids(std::slice::from_ref(request));
        if ids.keys().any(|id| poisoned.contains(id)) {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    });
    let uploader = Uploader::start(endpoint(&server.url()), &dir, 16 << 20).unwrap();
    submit(&uploader, 0..2);
    wait_until(
        Duration::from_secs(20),
        "the next window's delivery",
        || uploader.stats().delivered == 2,
    );
    let stats = uploader.shutdown(Duration::ZERO);
    assert_eq!((stats.rejected, stats.pending), (2, 0), "{stats:?}");
    let requests = server.stop();
    let failed = requests.len() - 1;
    assert_eq!(
        failed as u32, MAX_SERVER_ERRORS,
        "attempts on the stuck window"
    );
    assert_eq!(
        received_ids(&requests[failed..])
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>(),
        expected_ids("stuck-agent", 1..2)
    );
}

#[test]
fn the_window_in_flight_expires_too_during_an_outage() {
    let addr = stopped_server();
    let dir = temp_dir("expires-in-flight");
    let mut options = UploadOptions::new(format!("http://{addr}"));
    options.retry.initial = Duration::from_millis(20);
    options.retry.max = Duration::from_millis(200);
    options.max_age = Some(Duration::from_secs(2));
    let uploader = Uploader::start(Endpoint::new(&options).unwrap(), &dir, 16 << 20).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let fresh = series(0);
    assert_eq!(uploader.submit(&window(now.as_secs(), &fresh)), 2);
    wait_until(Duration::from_secs(20), "expiry", || {
        uploader.stats().expired == 2
    });
    let stats = uploader.shutdown(Duration::ZERO);
    assert!(stats.failed_attempts > 0, "it was tried first: {stats:?}");
    assert_eq!(stats.pending, 0);
    assert_eq!(spool_bytes(&dir), 0);
}
