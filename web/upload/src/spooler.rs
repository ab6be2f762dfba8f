//! The hand-over from the caller's thread to the spool.
//!
//! [`Uploader::submit`](crate::Uploader::submit) runs on the agent's
//! sampling thread, which must never wait for a disk: it only copies the
//! window and puts it in a bounded queue. The spooler thread takes windows
//! from that queue, encodes each series as gzipped pprof, writes the window
//! to the spool durably and wakes the sender. When the queue is full (the
//! disk is that slow), the new window is dropped, counted, and a warning
//! logged at most once per [`WARN_INTERVAL`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scorch_formats::Profile;
use tracing::{error, warn};

use crate::entry::{Entry, Series, Window};
use crate::labels::AppName;
use crate::sender::Shared;

/// Windows that may wait between `submit` and the spool.
pub const QUEUE_WINDOWS: usize = 8;
/// Least time between two "queue full" warnings.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// A window the uploader owns, waiting to be encoded and spooled.
#[derive(Debug)]
pub(crate) struct OwnedWindow {
    start_unix_ns: u64,
    end_unix_ns: u64,
    sample_rate_hz: Option<u64>,
    series: Vec<(BTreeMap<String, String>, Profile)>,
}

impl OwnedWindow {
    /// A copy of `window` (memory only: no encoding, no I/O).
    pub(crate) fn copy(window: &Window<'_>) -> Self {
        OwnedWindow {
            start_unix_ns: window.start_unix_ns,
            end_unix_ns: window.end_unix_ns,
            sample_rate_hz: window.sample_rate_hz,
            series: window
                .series
                .iter()
                .map(|s| (s.labels.clone(), s.profile.clone()))
                .collect(),
        }
    }

    /// Number of series.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    fn entries(&self, app: &AppName, agent_id: &str) -> Vec<Entry> {
        let window = Window {
            start_unix_ns: self.start_unix_ns,
            end_unix_ns: self.end_unix_ns,
            sample_rate_hz: self.sample_rate_hz,
            series: self
                .series
                .iter()
                .map(|(labels, profile)| Series { labels, profile })
                .collect(),
        };
        Entry::from_window(&window, app, agent_id)
    }
}

/// The submitting side of the queue.
#[derive(Debug)]
pub(crate) struct Queue {
    sender: SyncSender<OwnedWindow>,
    /// Seconds since the epoch of the last "queue full" warning.
    last_warning: AtomicU64,
}

impl Queue {
    /// A queue of at most [`QUEUE_WINDOWS`] windows, and its receiving end.
    pub(crate) fn new() -> (Queue, Receiver<OwnedWindow>) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE_WINDOWS);
        let queue = Queue {
            sender,
            last_warning: AtomicU64::new(0),
        };
        (queue, receiver)
    }

    /// Queues `window` without blocking; returns its series count, or 0
    /// when it was dropped (queue full, or the spooler is gone).
    pub(crate) fn offer(&self, window: OwnedWindow, shared: &Shared) -> usize {
        let series = window.len();
        let counters = &shared.counters;
        counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(window) {
            Ok(()) => series,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                counters.queued.fetch_sub(1, Ordering::Relaxed);
                let total = counters.queue_full.fetch_add(1, Ordering::Relaxed) + 1;
                if self.may_warn() {
                    warn!(
                        dropped_windows_total = total,
                        "upload queue full: the spool's disk is too slow; dropped a window"
                    );
                }
                0
            }
        }
    }

    /// Whether a warning is due, recording it.
    fn may_warn(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        now >= last.saturating_add(WARN_INTERVAL.as_secs())
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Encodes and spools queued windows until the queue is closed and empty.
pub(crate) fn run(queue: Receiver<OwnedWindow>, shared: &Shared, app: &AppName, agent_id: &str) {
    let counters = &shared.counters;
    for window in queue {
        let entries = window.entries(app, agent_id);
        drop(window);
        match shared.spool.put(&entries) {
            Ok(evicted) => {
                if evicted.entries > 0 {
                    let n = evicted.entries as u64;
                    let total = counters.evicted.fetch_add(n, Ordering::Relaxed) + n;
                    warn!(
                        dropped = evicted.entries,
                        bytes = evicted.bytes,
                        dropped_total = total,
                        "upload spool full: dropped the oldest unsent profiles; raise --spool-size or check the server"
                    );
                }
            }
            Err(err) => {
                counters
                    .evicted
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                error!(%err, entries = entries.len(), "window not spooled for upload; dropped");
            }
        }
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        shared.wake.notify_one();
    }
}
