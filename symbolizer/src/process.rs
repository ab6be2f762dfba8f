//! Snapshots of processes: what code each one maps, and where.
//!
//! Samples are symbolized after they are collected, often after the process
//! that produced them exited. So while a process lives we record its
//! executable mappings (address range, file offset, and a handle on the
//! mapped file from [`FileTable`]) and its perf map; resolving an address
//! then needs nothing from the process itself.
//!
//! A snapshot belongs to one *incarnation* of a pid: its start time (a reused
//! pid starts later) and the identity of its executable (an `exec` replaces
//! it). Capturing the same incarnation again does nothing, so callers may
//! capture on every sample.

use std::fs;
use std::io;
use std::mem::size_of;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;
use std::time::Instant;

use crate::error::{is_gone, Error};
use crate::files::{FileOpener, FileTable, MappedFile, OpenedFile};
use crate::maps;
use crate::perfmap::PerfMap;
use crate::vdso;

/// Which run of which program a pid is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incarnation {
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    start_time: u64,
    /// Device and inode of the executable; `None` for kernel threads.
    exe: Option<(u64, u64)>,
}

impl Incarnation {
    /// The current incarnation of `pid`.
    pub(crate) fn read(pid: u32) -> Result<Self, Error> {
        let path = format!("/proc/{pid}/stat");
        let stat = fs::read_to_string(&path).map_err(|e| proc_error(pid, path, e))?;
        let start_time = start_time(&stat).ok_or(Error::ProcessGone { pid })?;
        let exe = fs::metadata(format!("/proc/{pid}/exe"))
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(Self { start_time, exe })
    }
}

/// What backs an executable mapping.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A file we hold open and can symbolize.
    File(Rc<MappedFile>),
    /// A named mapping we cannot read (a pseudo-file, or a file that could not be opened).
    Opaque,
    /// Anonymous memory: JIT-compiled code, named by the perf map if at all.
    Anonymous,
}

/// One executable mapping.
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) offset: u64,
    /// The mapped path, without ` (deleted)`; empty when anonymous.
    pub(crate) path: String,
    pub(crate) backing: Backing,
}

/// What is known of one process.
#[derive(Debug, Default)]
pub(crate) struct Process {
    /// `None` when the process was gone before it could be captured.
    pub(crate) incarnation: Option<Incarnation>,
    /// Executable mappings, sorted by start.
    pub(crate) regions: Vec<Region>,
    pub(crate) perf_map: Option<PerfMap>,
    /// When the snapshot was last re-read because an address fell outside it.
    pub(crate) refreshed: Option<Instant>,
    /// Recency, for evicting the least recently used process.
    pub(crate) last_used: u64,
}

/// What backs a mapping in a [`ProcessSnapshot`].
#[derive(Debug)]
enum Opened {
    File(OpenedFile),
    /// The vDSO, of this many bytes.
    Vdso(u64),
    Opaque,
    Anonymous,
}

/// A process's executable mappings with their files held open, and its
/// perf map: what symbolizing it needs after it exits. Taken on any thread
/// (see [`crate::SnapshotTaker`]); the symbolizer adopts it with
/// [`crate::Symbolizer::adopt`].
#[derive(Debug)]
pub struct ProcessSnapshot {
    pub(crate) pid: u32,
    pub(crate) incarnation: Incarnation,
    /// Executable mappings: start, end, file offset, path without ` (deleted)`.
    regions: Vec<(u64, u64, u64, String, Opened)>,
    perf_map: Option<PerfMap>,
}

impl ProcessSnapshot {
    /// Reads the executable mappings and perf map of `pid`, run `incarnation`.
    pub(crate) fn take(
        pid: u32,
        incarnation: Incarnation,
        opener: &mut FileOpener,
    ) -> Result<Self, Error> {
        let path = format!("/proc/{pid}/maps");
        let text = fs::read_to_string(&path).map_err(|e| proc_error(pid, path, e))?;
        let regions = maps::parse(&text)
            .filter(|e| e.executable)
            .map(|e| {
                let opened = if e.path.is_empty() || e.path.starts_with("[anon") {
                    Opened::Anonymous
                } else if e.path == vdso::NAME {
                    Opened::Vdso(e.end - e.start)
                } else if e.path.starts_with('/') {
                    opener.open(pid, &e).map_or(Opened::Opaque, Opened::File)
                } else {
                    Opened::Opaque
                };
                let path = match opened {
                    Opened::Anonymous => String::new(),
                    _ => e
                        .path
                        .strip_suffix(" (deleted)")
                        .unwrap_or(e.path)
                        .to_owned(),
                };
                (e.start, e.end, e.offset, path, opened)
            })
            .collect();
        Ok(Self {
            pid,
            incarnation,
            regions,
            perf_map: PerfMap::load(pid),
        })
    }
}

impl Process {
    /// The process `snapshot` describes, its files shared through `files`.
    pub(crate) fn adopt(snapshot: ProcessSnapshot, files: &mut FileTable) -> Self {
        let mut regions: Vec<Region> = snapshot
            .regions
            .into_iter()
            .map(|(start, end, offset, path, opened)| Region {
                start,
                end,
                offset,
                path,
                backing: match opened {
                    Opened::File(file) => Backing::File(files.adopt(file)),
                    Opened::Vdso(len) => files.vdso(len).map_or(Backing::Opaque, Backing::File),
                    Opened::Opaque => Backing::Opaque,
                    Opened::Anonymous => Backing::Anonymous,
                },
            })
            .collect();
        regions.sort_by_key(|r| r.start);
        Self {
            incarnation: Some(snapshot.incarnation),
            regions,
            perf_map: snapshot.perf_map,
            ..Self::default()
        }
    }

    /// Whether `newer` should replace this snapshot. A process turning into
    /// a zombie shows no mappings; that must not erase what we know.
    pub(crate) fn superseded_by(&self, newer: &Process) -> bool {
        let same_start = match (self.incarnation, newer.incarnation) {
            (Some(old), Some(new)) => old.start_time == new.start_time,
            _ => false,
        };
        !(same_start && newer.regions.is_empty() && !self.regions.is_empty())
    }

    /// Estimated bytes held: the snapshot, its mappings and its perf map.
    pub(crate) fn bytes(&self) -> u64 {
        let regions: usize = self
            .regions
            .iter()
            .map(|r| size_of::<Region>() + r.path.len())
            .sum();
        (size_of::<Self>() + regions) as u64 + self.perf_map.as_ref().map_or(0, PerfMap::bytes)
    }

    /// Whether `pid` is still the process this snapshot was taken of.
    pub(crate) fn still_running(&self, pid: u32) -> bool {
        self.incarnation.is_some() && Incarnation::read(pid).ok() == self.incarnation
    }

    /// The executable mapping containing `address`.
    pub(crate) fn region(&self, address: u64) -> Option<&Region> {
        let after = self.regions.partition_point(|r| r.start <= address);
        let region = self.regions.get(after.checked_sub(1)?)?;
        (address < region.end).then_some(region)
    }
}

/// The error for a failed read of `/proc/PID/...`.
fn proc_error(pid: u32, path: String, error: io::Error) -> Error {
    if is_gone(&error) {
        Error::ProcessGone { pid }
    } else {
        Error::read(path, error)
    }
}

/// The start time (field 22) of a `/proc/PID/stat` line.
fn start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain anything,
    // spaces and parentheses included: count fields after its last `)`.
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "4242 (a) b) (c d) S 1 4242 4242 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 2351104 ...";
        assert_eq!(start_time(stat), Some(123456));
    }

    #[test]
    fn malformed_stat_has_no_start_time() {
        assert_eq!(start_time(""), None);
        assert_eq!(start_time("4242 (cmd S 1 2"), None);
        assert_eq!(start_time("4242 (cmd) S 1 2 3"), None);
        assert_eq!(
            start_time("4242 (cmd) S 1 4242 4242 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 x 2"),
            None
        );
    }

    #[test]
    fn regions_are_found_by_address() {
        let region = |start, end| Region {
            start,
            end,
            offset: 0,
            path: String::new(),
            backing: Backing::Opaque,
        };
        let process = Process {
            regions: vec![region(0x1000, 0x2000), region(0x3000, 0x4000)],
            ..Process::default()
        };
        assert_eq!(process.region(0x1000).map(|r| r.start), Some(0x1000));
        assert_eq!(process.region(0x1fff).map(|r| r.start), Some(0x1000));
        assert!(process.region(0x2000).is_none());
        assert!(process.region(0xfff).is_none());
        assert_eq!(process.region(0x3abc).map(|r| r.start), Some(0x3000));
        assert!(process.region(u64::MAX).is_none());
    }
}
