//! The store writer: windows go to the store on a thread of their own.
//!
//! A write commits a transaction, and on a busy disk a commit can take
//! seconds. The sampling thread must not wait for it: it captures new
//! processes every tick, and a process that exits before it is captured
//! cannot be symbolized. So finished windows are handed over through a
//! queue of [`QUEUE`] windows; when the store falls that far behind, a
//! window is dropped (and logged) rather than letting memory grow. The
//! writer also enforces retention.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use scorch_store::{Store, Window};
use tracing::{error, info, warn};

use super::{unix_ns, RETENTION_EVERY};

/// Windows waiting for the store at most.
const QUEUE: usize = 4;

/// One window's series, and what to log with them.
struct Batch {
    windows: Vec<Window>,
    samples: u64,
    symbol_cache_bytes: u64,
}

/// The writer thread and the queue to it.
pub struct Writer {
    sender: SyncSender<Batch>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer thread for `store`.
    pub fn start(store: Arc<Store>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_all(&store, &receiver))?;
        Ok(Self { sender, thread })
    }

    /// Queues a window; drops it when the store is [`QUEUE`] windows behind.
    pub fn submit(&self, windows: Vec<Window>, samples: u64, symbol_cache_bytes: u64) {
        let batch = Batch {
            windows,
            samples,
            symbol_cache_bytes,
        };
        match self.sender.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => warn!(
                samples = batch.samples,
                "window dropped: the store is {QUEUE} windows behind (is the disk slow?)"
            ),
            Err(TrySendError::Disconnected(_)) => {
                error!("window dropped: the store writer stopped")
            }
        }
    }

    /// Writes the last window and everything queued, then stops the thread.
    pub fn finish(self, windows: Vec<Window>, samples: u64, symbol_cache_bytes: u64) {
        let batch = Batch {
            windows,
            samples,
            symbol_cache_bytes,
        };
        if self.sender.send(batch).is_err() {
            error!("the last window is lost: the store writer stopped");
        }
        drop(self.sender);
        if self.thread.join().is_err() {
            error!("the store writer failed");
        }
    }
}

/// Writes batches as they come, and enforces retention every minute.
fn write_all(store: &Store, receiver: &Receiver<Batch>) {
    let mut last_retention = Instant::now();
    for batch in receiver {
        match store.write_windows(&batch.windows) {
            Ok(_) => info!(
                series = batch.windows.len(),
                samples = batch.samples,
                symbol_cache_bytes = batch.symbol_cache_bytes,
                "window written"
            ),
            // A full disk or a failing write must not stop profiling: the
            // next window tries again, and retention may free space.
            Err(err) => error!(%err, "window not written"),
        }
        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = Instant::now();
            match store.enforce_retention(unix_ns(SystemTime::now())) {
                Ok(report) => info!(?report, "retention"),
                Err(err) => error!(%err, "retention failed"),
            }
        }
    }
}
