//! Capturing processes on a thread of their own.
//!
//! A busy symbolizer (a large window of a busy host) must not delay the
//! capture of processes that start and exit meanwhile. A [`SnapshotTaker`]
//! runs on another thread, takes one [`ProcessSnapshot`] per run of each
//! process it is told about, and hands it over (a channel will do); the
//! symbolizer [`adopt`](crate::Symbolizer::adopt)s it when it is free.

use std::collections::HashMap;

use crate::files::FileOpener;
use crate::process::{Incarnation, ProcessSnapshot};

/// Runs of processes remembered before the memory starts afresh (each
/// forgotten one costs at most one more snapshot).
const MAX_REMEMBERED: usize = 16_384;

/// Takes snapshots of processes, once per run of each, sharing one open
/// handle per file among the snapshots in flight.
#[derive(Debug, Default)]
pub struct SnapshotTaker {
    opener: FileOpener,
    taken: HashMap<u32, Incarnation>,
}

impl SnapshotTaker {
    /// A snapshot of `pid`, unless this run of it was taken already or it
    /// is gone.
    pub fn take_new(&mut self, pid: u32) -> Option<ProcessSnapshot> {
        let incarnation = Incarnation::read(pid).ok()?;
        if self.taken.get(&pid) == Some(&incarnation) {
            return None;
        }
        let snapshot = ProcessSnapshot::take(pid, incarnation, &mut self.opener).ok()?;
        if self.taken.len() >= MAX_REMEMBERED {
            self.taken.clear();
        }
        self.taken.insert(pid, incarnation);
        Some(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Symbolizer;

    #[test]
    fn a_snapshot_taken_on_another_thread_resolves_after_the_process_exits() {
        let (mut program, address) = crate::test_binary::start();
        let pid = program.id();
        let taker = std::thread::spawn(move || {
            let mut taker = SnapshotTaker::default();
            let first = taker.take_new(pid);
            let again = taker.take_new(pid);
            (first, again.is_none())
        });
        let (snapshot, once) = taker.join().unwrap();
        assert!(once, "one snapshot per run of a process");
        drop(program.stdin.take());
        program.wait().unwrap();

        let mut symbolizer = Symbolizer::new();
        symbolizer.adopt(snapshot.expect("a snapshot of the running program"));
        let frame = symbolizer.user(pid, &[address]).remove(0);
        let name = frame.lines.last().map(|l| l.function.as_str());
        assert!(
            name.is_some_and(|n| n.contains("a_function_to_find")),
            "{frame:?}"
        );
    }

    #[test]
    fn a_process_that_is_gone_gives_no_snapshot() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(SnapshotTaker::default().take_new(pid).is_none());
    }
}
