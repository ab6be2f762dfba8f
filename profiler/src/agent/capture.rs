//! Capturing new processes on a thread of their own.
//!
//! The sampling thread spends part of every window symbolizing; a process
//! that starts and exits meanwhile must still be captured while it lives.
//! So this thread reads the pids the sampler saw every [`CAPTURE_TICK`], reads the
//! labels of new ones, takes a symbolizer snapshot of each new run of a
//! process, and queues the snapshots for the sampling thread to adopt. It
//! hands the same pids to the unwind-table loader ([`super::unwind`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use scorch_bpf::SeenPids;
use scorch_symbolizer::{ProcessSnapshot, SnapshotTaker, Symbolizer};

use super::labels::ProcessLabels;
use super::unwind::PidSender;

/// How often new pids are read: a process is captured within about this
/// long of its first sample, so one that lives a few hundred milliseconds
/// is still there (an empty read costs one syscall).
const CAPTURE_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// Snapshots waiting for the sampling thread; when full, the capture
/// thread waits (the symbolizer captures on demand what it missed).
const QUEUE: usize = 4096;

/// The capture thread; stopped and joined when dropped.
pub struct Capture {
    snapshots: Receiver<ProcessSnapshot>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing the processes `seen` reports, their labels into
    /// `labels`; passes their pids on to `tables`.
    pub fn start(
        seen: SeenPids,
        labels: Arc<Mutex<ProcessLabels>>,
        tables: PidSender,
    ) -> std::io::Result<Capture> {
        let (sender, snapshots) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let mut taker = SnapshotTaker::default();
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(CAPTURE_TICK);
                    let pids = seen.take();
                    tables.send(&pids);
                    for pid in pids {
                        lock(&labels).capture(pid);
                        if let Some(snapshot) = taker.take_new(pid) {
                            if sender.send(snapshot).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(Capture {
            snapshots,
            stop,
            thread: Some(thread),
        })
    }

    /// Hands the snapshots taken so far to `symbolizer`.
    pub fn deliver(&self, symbolizer: &mut Symbolizer) {
        for snapshot in self.snapshots.try_iter() {
            symbolizer.adopt(snapshot);
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the queue ends a send waiting on a full one.
        drop(std::mem::replace(&mut self.snapshots, sync_channel(0).1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The labels, even if a thread panicked while holding them.
pub fn lock(labels: &Mutex<ProcessLabels>) -> std::sync::MutexGuard<'_, ProcessLabels> {
    labels
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
