//! The uploader: windows go to the spool, a background task drains it.
//!
//! [`Uploader::submit`] runs on the caller's thread (the agent's sampling
//! loop): it copies the window into a bounded queue and returns, with no
//! encoding and no disk access. The spooler thread (module `spooler`)
//! encodes each series as pprof and writes the window to the spool. The
//! sender is one task on a single-threaded tokio runtime of its own thread:
//! it reads the oldest window, sends its entries in requests of at most
//! 1 MiB of profiles, and shortens or deletes the spooled window as the
//! server takes them; a failure keeps them on disk and waits per
//! [`Backoff`]. A slow or absent server makes the spool grow on disk up to
//! its limit, never the sender's memory (one window at a time). A window
//! older than the endpoint's `max_age` is dropped (the server would refuse
//! it), and one the server fails on [`MAX_SERVER_ERRORS`] times in a row is
//! given up, so it cannot hold back the windows behind it. Refused
//! credentials keep everything spooled and retry at the longest backoff.
//! [`send_now`] is the one-shot path of `scorch profile`: no spool, the
//! same retries.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

use crate::client::{Client, Outcome};
use crate::config::Endpoint;
use crate::entry::{Entry, Window};
use crate::retry::Backoff;
use crate::spool::{self, Spool};
use crate::spooler::{self, OwnedWindow, Queue};
use crate::Error;

/// Most entries in one push or WriteRaw request.
const MAX_BATCH_ENTRIES: usize = 64;
/// Most profile bytes in one request: below Pyroscope's default ingestion
/// burst (2 MB a tenant), which a larger request could never pass.
const MAX_BATCH_BYTES: u64 = 1 << 20;
/// Server errors (HTTP 500, gRPC INTERNAL/UNKNOWN) in a row on one window
/// before it is given up.
pub const MAX_SERVER_ERRORS: u32 = 8;
/// File in the spool directory holding this agent's id.
const AGENT_ID_FILE: &str = "agent-id";
/// What to check when the server refuses the credentials.
const CREDENTIALS_HINT: &str =
    "check --upload-token-file / credentials (--upload-basic-auth-file, the URL's user:password, --upload-header)";

/// Counters of an uploader since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Entries the server took.
    pub delivered: u64,
    /// Entries the server refused for good, or failed on too often (dropped).
    pub rejected: u64,
    /// Entries dropped undelivered: the spool was full, or could not be written.
    pub evicted: u64,
    /// Entries dropped because they grew older than the endpoint's `max_age`.
    pub expired: u64,
    /// Windows dropped at `submit` because the queue to the spool was full.
    pub queue_full: u64,
    /// Attempts that failed and were retried.
    pub failed_attempts: u64,
    /// Windows submitted but not yet in the spool.
    pub queued: u64,
    /// Entries waiting in the spool.
    pub pending: u64,
}

/// Counters shared by the uploader's threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) queued: AtomicU64,
}

/// State shared by the submitting thread, the spooler and the sender.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) spool: Spool,
    pub(crate) wake: Notify,
    pub(crate) counters: Counters,
}

/// Uploads windows through a spool, in the background.
#[derive(Debug)]
pub struct Uploader {
    shared: Arc<Shared>,
    agent_id: String,
    /// `None` once closed for shutdown.
    queue: Option<Queue>,
    spooler: Option<JoinHandle<()>>,
    stop: watch::Sender<Option<Instant>>,
    thread: Option<JoinHandle<()>>,
}

impl Uploader {
    /// Opens the spool in `spool_dir` (at most `spool_limit` bytes) and
    /// starts sending, oldest spooled entries first.
    pub fn start(
        endpoint: Endpoint,
        spool_dir: &Path,
        spool_limit: u64,
    ) -> Result<Uploader, Error> {
        let spool = Spool::open(spool_dir, spool_limit)?;
        let agent_id = agent_id(spool_dir)?;
        if !spool.is_empty() {
            info!(
                entries = spool.len(),
                bytes = spool.bytes(),
                dir = %spool_dir.display(),
                "resending profiles spooled by an earlier run"
            );
        }
        let app = endpoint.app.clone();
        let client = Client::new(endpoint)?;
        let shared = Arc::new(Shared {
            spool,
            wake: Notify::new(),
            counters: Counters::default(),
        });
        let (stop, stop_rx) = watch::channel(None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Client(format!("cannot start the upload runtime: {e}")))?;
        let (queue, windows) = Queue::new();
        let spooler_shared = Arc::clone(&shared);
        let spooler_agent = agent_id.clone();
        let spooler = std::thread::Builder::new()
            .name("scorch-spool".into())
            .spawn(move || spooler::run(windows, &spooler_shared, &app, &spooler_agent))
            .map_err(|e| Error::Client(format!("cannot start the spool thread: {e}")))?;
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("scorch-upload".into())
            .spawn(move || runtime.block_on(drain(client, task_shared, stop_rx)))
            .map_err(|e| Error::Client(format!("cannot start the upload thread: {e}")))?;
        Ok(Uploader {
            shared,
            agent_id,
            queue: Some(queue),
            spooler: Some(spooler),
            stop,
            thread: Some(thread),
        })
    }

    /// Queues every series of `window` for spooling and sending; returns
    /// how many, 0 when the window was dropped because the queue is full.
    ///
    /// Copies the window and returns: encoding and disk writes happen on
    /// the uploader's own threads, so a slow disk never stalls the caller.
    pub fn submit(&self, window: &Window<'_>) -> usize {
        match &self.queue {
            Some(queue) => queue.offer(OwnedWindow::copy(window), &self.shared),
            None => 0,
        }
    }

    /// Counters so far, and what waits.
    pub fn stats(&self) -> UploadStats {
        let c = &self.shared.counters;
        UploadStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            pending: self.shared.spool.len() as u64,
        }
    }

    /// Entries waiting in the spool.
    pub fn pending(&self) -> usize {
        self.shared.spool.len()
    }

    /// This uploader's id, part of every entry id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// Spools what is queued, keeps sending for at most `grace`, then
    /// stops; what is left stays spooled for the next start.
    pub fn shutdown(mut self, grace: Duration) -> UploadStats {
        self.stop_threads(grace);
        self.stats()
    }

    fn stop_threads(&mut self, grace: Duration) {
        // Closing the queue lets the spooler write what waits, then end.
        self.queue = None;
        if let Some(spooler) = self.spooler.take() {
            let _ = spooler.join();
        }
        let _ = self.stop.send(Some(Instant::now() + grace));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        self.stop_threads(Duration::ZERO);
    }
}

/// Sends spooled windows until stopped.
async fn drain(client: Client, shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let spool = &shared.spool;
    let counters = &shared.counters;
    let endpoint = client.endpoint().clone();
    let mut batch = if endpoint.protocol.batches() {
        MAX_BATCH_ENTRIES
    } else {
        1
    };
    let mut backoff = Backoff::new(endpoint.retry);
    loop {
        let deadline = *stop.borrow();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let Some(name) = spool.take() else {
            if deadline.is_some() {
                return;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        if drop_expired(&shared, &name, endpoint.max_age) {
            continue;
        }
        let Some(mut entries) = spool.read(&name) else {
            continue;
        };
        let mut server_errors = 0;
        // One request after another until the window is gone; a full spool
        // may evict it meanwhile (its entries are counted there).
        while !entries.is_empty() && spool.still_queued(&name) {
            // A long outage can age the window in flight too.
            if drop_expired(&shared, &name, endpoint.max_age) {
                entries.clear();
                break;
            }
            let n = batches(&entries, batch)[0].len();
            let outcome = tokio::select! {
                outcome = client.send(&entries[..n]) => outcome,
                _ = until_deadline(stop.clone()) => {
                    spool.release(&name);
                    return;
                }
            };
            let wait = match outcome {
                Outcome::Delivered => {
                    counters.delivered.fetch_add(n as u64, Ordering::Relaxed);
                    entries.drain(..n);
                    spool.keep_only(&name, &entries);
                    if backoff.failures() > 0 {
                        info!(failures = backoff.failures(), "upload works again");
                        backoff = Backoff::new(endpoint.retry);
                    }
                    server_errors = 0;
                    None
                }
                Outcome::TooLarge(reason) if n > 1 => {
                    // Smaller requests from now on: the server's limit stays.
                    batch = (n / 2).max(1);
                    warn!(%reason, entries_per_request = batch, "upload too large; sending smaller requests");
                    None
                }
                Outcome::Rejected(reason) | Outcome::TooLarge(reason) => {
                    let total = counters.rejected.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                    error!(
                        %reason,
                        entries = n,
                        rejected_total = total,
                        "the server rejected profiles; they are dropped (retrying cannot help)"
                    );
                    entries.drain(..n);
                    spool.keep_only(&name, &entries);
                    None
                }
                Outcome::Unauthorized(reason) => {
                    counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    backoff.next(None);
                    error!(
                        %reason,
                        retry_in = ?endpoint.retry.max,
                        pending = spool.len(),
                        "the server refused the credentials; profiles stay spooled: {CREDENTIALS_HINT}"
                    );
                    Some(endpoint.retry.max)
                }
                Outcome::ServerError(reason) if server_errors + 1 >= MAX_SERVER_ERRORS => {
                    let left = entries.len() as u64;
                    let total = counters.rejected.fetch_add(left, Ordering::Relaxed) + left;
                    error!(
                        %reason,
                        entries = left,
                        attempts = MAX_SERVER_ERRORS,
                        rejected_total = total,
                        "the server keeps failing on these profiles; they are dropped so later ones can go"
                    );
                    entries.clear();
                    spool.keep_only(&name, &entries);
                    None
                }
                Outcome::ServerError(reason) => {
                    server_errors += 1;
                    Some(failed(&mut backoff, counters, spool, &reason, None))
                }
                Outcome::Retry { reason, after } => {
                    Some(failed(&mut backoff, counters, spool, &reason, after))
                }
            };
            if let Some(wait) = wait {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = until_deadline(stop.clone()) => {
                        spool.release(&name);
                        return;
                    }
                }
            }
        }
        if entries.is_empty() {
            // An empty window (a damaged file) would be taken again and again.
            spool.finish(&name);
        } else {
            spool.release(&name);
        }
    }
}

/// Counts and logs a failed attempt; returns the wait before the next.
fn failed(
    backoff: &mut Backoff,
    counters: &Counters,
    spool: &Spool,
    reason: &str,
    after: Option<Duration>,
) -> Duration {
    counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
    let wait = backoff.next(after);
    warn!(
        %reason,
        attempt = backoff.failures(),
        retry_in = ?wait,
        pending = spool.len(),
        "upload failed; profiles stay spooled"
    );
    wait
}

/// Deletes the spooled window `name` if it is older than `max_age`,
/// counting and logging its entries; returns whether it did.
fn drop_expired(shared: &Shared, name: &str, max_age: Option<Duration>) -> bool {
    if !expired(name, max_age) {
        return false;
    }
    let n = shared.spool.finish(name) as u64;
    let total = shared.counters.expired.fetch_add(n, Ordering::Relaxed) + n;
    error!(
        entries = n,
        expired_total = total,
        max_age = ?max_age,
        "dropped spooled profiles older than the server accepts (Pyroscope's \
         validation.reject-older-than, 1h by default); the server was unreachable too long"
    );
    true
}

/// Whether the spooled window `name` started longer than `max_age` ago.
fn expired(name: &str, max_age: Option<Duration>) -> bool {
    let (Some(max_age), Some(start)) = (max_age, spool::start_unix_ns(name)) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let max_age = u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX);
    now.saturating_sub(start) > max_age
}

/// Resolves when a stop was requested and its grace has run out.
async fn until_deadline(mut stop: watch::Receiver<Option<Instant>>) {
    loop {
        let deadline = *stop.borrow_and_update();
        match deadline {
            Some(deadline) => {
                tokio::time::sleep_until(deadline.into()).await;
                return;
            }
            None => {
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// This agent's id, kept beside the spool so it survives restarts.
fn agent_id(dir: &Path) -> Result<String, Error> {
    let path = dir.join(AGENT_ID_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    spool::write_durably(dir, AGENT_ID_FILE, format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// Sends `window` now, without a spool, making at most `attempts` attempts
/// per request; returns how many entries were delivered.
pub fn send_now(endpoint: &Endpoint, window: &Window<'_>, attempts: u32) -> Result<usize, Error> {
    let agent_id = format!("{:016x}", fastrand::u64(..));
    let entries = Entry::from_window(window, &endpoint.app, &agent_id);
    let client = Client::new(endpoint.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Client(format!("cannot start the upload runtime: {e}")))?;
    let batch = if endpoint.protocol.batches() {
        MAX_BATCH_ENTRIES
    } else {
        1
    };
    runtime.block_on(async {
        // Requests still to send, the next on top; a 413 splits one in two.
        let mut todo = batches(&entries, batch);
        todo.reverse();
        while let Some(chunk) = todo.pop() {
            let mut backoff = Backoff::new(endpoint.retry);
            loop {
                match client.send(chunk).await {
                    Outcome::Delivered => break,
                    Outcome::TooLarge(_) if chunk.len() > 1 => {
                        let (first, second) = chunk.split_at(chunk.len() / 2);
                        todo.push(second);
                        todo.push(first);
                        break;
                    }
                    Outcome::Rejected(reason) | Outcome::TooLarge(reason) => {
                        return Err(Error::Rejected(reason))
                    }
                    Outcome::Unauthorized(reason) => {
                        return Err(Error::Rejected(format!("{reason}: {CREDENTIALS_HINT}")))
                    }
                    Outcome::Retry { reason, .. } | Outcome::ServerError(reason)
                        if backoff.failures() + 1 >= attempts.max(1) =>
                    {
                        return Err(Error::GaveUp {
                            attempts: attempts.max(1),
                            last: reason,
                        });
                    }
                    Outcome::Retry { reason, after } => {
                        let wait = backoff.next(after);
                        warn!(%reason, retry_in = ?wait, "upload failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    Outcome::ServerError(reason) => {
                        let wait = backoff.next(None);
                        warn!(%reason, retry_in = ?wait, "upload failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Ok(entries.len())
    })
}

/// `entries` cut into requests of at most `max_count` entries and
/// [`MAX_BATCH_BYTES`] of profiles (at least one entry each).
fn batches(entries: &[Entry], max_count: usize) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut rest = entries;
    while !rest.is_empty() {
        let mut bytes = 0u64;
        let mut n = 0;
        while n < rest.len() && n < max_count {
            let size = rest[n].pprof.len() as u64;
            if n > 0 && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        out.push(chunk);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: usize) -> Entry {
        Entry {
            pprof: vec![0; size],
            ..Entry::default()
        }
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let half = (MAX_BATCH_BYTES / 2) as usize;
        let entries = [
            entry(10),
            entry(10),
            entry(10),
            entry(half),
            entry(half),
            entry(3 * half),
        ];
        let sizes: Vec<usize> = batches(&entries, 2).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1, 1], "two at most; a large one alone");
        let sizes: Vec<usize> = batches(&entries, 64).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [4, 1, 1]);
        assert!(batches(&[], 64).is_empty());
    }
}
