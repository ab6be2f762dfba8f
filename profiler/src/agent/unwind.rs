//! Loading unwind tables for the whole host, on a thread of its own.
//!
//! The capture thread hands over the pids sampled each tick; this thread
//! loads the tables of each process not loaded yet (a new one, or a pid
//! reused or exec'd), per executable file, shared by every process that
//! maps the same file. Building a large library's table takes a while: a
//! thread of its own keeps that off both the sampling and the capture
//! thread. Until a process's tables are in, its stacks walk frame pointers
//! (counted: see [`UnwindShare`]). Every [`ROUND`] it frees the entries of
//! processes that exited and starts a new round of use, which decides what
//! the row map evicts when full.

use std::collections::BTreeSet;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scorch_bpf::{Counters, TableStats, UnwindTables};
use tracing::{debug, info};

/// How often exited processes are freed and a new round of use starts.
const ROUND: Duration = Duration::from_secs(1);
/// Batches of pids waiting; when full, a batch is dropped (its processes
/// are handed over again at their next sample).
const QUEUE: usize = 64;

/// The table-loading thread; stopped and joined when dropped.
pub struct Loader {
    sender: Option<SyncSender<Vec<u32>>>,
    thread: Option<JoinHandle<()>>,
}

impl Loader {
    /// Starts loading the tables of the pids handed to [`Self::sender`].
    pub fn start(tables: UnwindTables) -> std::io::Result<Loader> {
        let (sender, receiver) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("unwind-tables".into())
            .spawn(move || load_all(&tables, &receiver))?;
        Ok(Loader {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Where the capture thread sends the pids it sees.
    pub fn sender(&self) -> PidSender {
        PidSender(self.sender.clone())
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // The thread ends when every sender is gone; the capture thread's
        // is dropped with it, before this.
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Hands pids to the loader, if there is one; never waits.
#[derive(Clone, Default)]
pub struct PidSender(Option<SyncSender<Vec<u32>>>);

impl PidSender {
    /// Queues `pids` unless the loader is [`QUEUE`] batches behind.
    pub fn send(&self, pids: &[u32]) {
        if pids.is_empty() {
            return;
        }
        if let Some(sender) = &self.0 {
            // Full or stopped: they come again at their next sample.
            let _ = sender.try_send(pids.to_vec());
        }
    }
}

/// Loads tables as pids come, and frees exited processes every round.
fn load_all(tables: &UnwindTables, pids: &Receiver<Vec<u32>>) {
    let mut round = Instant::now();
    loop {
        match pids.recv_timeout(ROUND) {
            Ok(batch) => {
                // Batches that queued while a table was built name pids again.
                let mut pending: BTreeSet<u32> = batch.into_iter().collect();
                pending.extend(pids.try_iter().flatten());
                for pid in pending.into_iter().filter(|&pid| pid != 0) {
                    load(tables, pid);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if round.elapsed() >= ROUND {
            round = Instant::now();
            tables.forget_exited();
            tables.next_round();
        }
    }
}

/// Loads process `pid`'s tables unless they are current.
fn load(tables: &UnwindTables, pid: u32) {
    match tables.refresh(pid) {
        Ok(Some(loaded)) if !loaded.skipped.is_empty() => {
            let skipped: Vec<String> = loaded
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.path, s.why))
                .collect();
            debug!(pid, ?skipped, "unwind tables loaded in part");
        }
        Ok(_) => {}
        // Exited meanwhile, most likely: it walks frame pointers.
        Err(err) => debug!(pid, %err, "unwind tables not loaded"),
    }
}

/// The share of user stacks that walked frame pointers because their
/// process had no tables yet, window by window.
#[derive(Debug, Default)]
pub struct UnwindShare {
    before: Counters,
}

impl UnwindShare {
    /// Logs what the tables hold and the fallback share since the last call.
    pub fn log(&mut self, counters: Counters, stats: TableStats) {
        let recorded = counters.recorded.saturating_sub(self.before.recorded);
        let without = counters
            .user_without_tables
            .saturating_sub(self.before.user_without_tables);
        self.before = counters;
        let percent = if recorded == 0 {
            0.0
        } else {
            (without as f64 * 100.0 / recorded as f64).min(100.0)
        };
        info!(
            processes = stats.processes,
            files = stats.files,
            rows_used = stats.rows_used,
            rows_capacity = stats.rows_capacity,
            map_bytes = stats.map_bytes(),
            files_evicted = stats.files_evicted,
            processes_exited = stats.processes_exited,
            samples_without_tables = without,
            samples_without_tables_percent = format!("{percent:.1}"),
            "unwind tables"
        );
    }
}
