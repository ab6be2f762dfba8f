//! Labels of a process's series: what the page filters by.
//!
//! A process's executable and cgroup are read once, at its first sample,
//! while it still runs; later windows reuse them even after it exits. A
//! process not seen for a whole window is forgotten (read again if it comes
//! back), so the table holds the processes of about two windows.

use std::collections::{BTreeMap, HashMap};

/// Most processes remembered; beyond it the table starts afresh.
const MAX_PROCESSES: usize = 16_384;

/// Per-process labels, read from /proc while processes live.
#[derive(Debug, Default)]
pub struct ProcessLabels {
    known: HashMap<u32, Known>,
    /// Number of the current window.
    window: u64,
}

/// What is known of one process.
#[derive(Debug)]
struct Known {
    exe: String,
    cgroup: String,
    /// The last window it was seen in.
    seen: u64,
}

impl ProcessLabels {
    /// Reads `pid`'s executable and cgroup unless already known.
    pub fn capture(&mut self, pid: u32) {
        if let Some(known) = self.known.get_mut(&pid) {
            known.seen = self.window;
            return;
        }
        if self.known.len() >= MAX_PROCESSES {
            self.known.clear();
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|text| cgroup_path(&text))
            .unwrap_or_default();
        let seen = self.window;
        self.known.insert(pid, Known { exe, cgroup, seen });
    }

    /// Ends a window: forgets the processes seen in neither it nor the one before.
    pub fn end_window(&mut self) {
        let window = self.window;
        self.known.retain(|_, k| k.seen + 1 >= window);
        self.window += 1;
    }

    /// The labels of one process's series.
    pub fn labels(
        &self,
        pid: u32,
        comm: &str,
        host: &str,
        extra: &[(String, String)],
    ) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = extra.iter().cloned().collect();
        labels.insert("host".into(), host.into());
        labels.insert("pid".into(), pid.to_string());
        labels.insert("comm".into(), comm.into());
        if let Some(known) = self.known.get(&pid) {
            if !known.exe.is_empty() {
                labels.insert("exe".into(), known.exe.clone());
            }
            if !known.cgroup.is_empty() {
                labels.insert("cgroup".into(), known.cgroup.clone());
            }
        }
        labels
    }
}

/// The unified (cgroup v2) path from `/proc/PID/cgroup`, e.g. `/system.slice/nginx.service`.
fn cgroup_path(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default()
        .to_string()
}

/// This host's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v2_path() {
        assert_eq!(
            cgroup_path("0::/system.slice/nginx.service\n"),
            "/system.slice/nginx.service"
        );
        assert_eq!(cgroup_path("12:cpu:/x\n"), "");
    }

    #[test]
    fn labels_of_this_process() {
        let mut procs = ProcessLabels::default();
        let me = std::process::id();
        procs.capture(me);
        let labels = procs.labels(me, "tester", "h1", &[("env".into(), "ci".into())]);
        assert_eq!(labels["pid"], me.to_string());
        assert_eq!(labels["host"], "h1");
        assert_eq!(labels["env"], "ci");
        assert!(labels["exe"].ends_with(
            &*std::env::current_exe()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
    }

    #[test]
    fn processes_unseen_for_a_window_are_forgotten() {
        let mut procs = ProcessLabels::default();
        let me = std::process::id();
        procs.capture(me);
        procs.end_window();
        assert!(
            procs.known.contains_key(&me),
            "seen in the window just ended"
        );
        procs.end_window();
        assert!(procs.known.contains_key(&me), "seen in the window before");
        procs.end_window();
        assert!(!procs.known.contains_key(&me), "unseen for a whole window");
    }
}
