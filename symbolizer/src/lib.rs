//! Address → frame resolution for scorch.
//!
//! A sampled stack is a list of bare instruction addresses. This crate turns
//! each into a [`Resolved`] frame: the mapping it falls in, and the functions
//! at that spot, innermost (inlined callee) first, with file and line when
//! debug information has them.
//!
//! # Design constraints
//!
//! - **Processes exit before their samples are symbolized.** Samples are
//!   resolved at the end of a run or of an agent window, when short-lived
//!   processes are long gone. So a process is *captured* while it lives
//!   ([`Symbolizer::capture`]): its executable mappings, an open handle on
//!   every mapped file, its perf map. Resolution then uses file offsets in
//!   those held files and needs nothing from the process. A symbolizer busy
//!   with a big window cannot capture, so a [`SnapshotTaker`] on another
//!   thread can take the snapshots and the symbolizer
//!   [`adopt`](Symbolizer::adopt)s them later.
//! - **Files change under us.** A binary may be deleted, rebuilt in place or
//!   live in another mount namespace. Handles come from
//!   `/proc/PID/map_files`, so we read the very file the process mapped.
//! - **Many processes, few binaries.** Files are keyed by identity (device,
//!   inode, size, mtime), so libc mapped by a hundred processes is opened
//!   and parsed once; results are cached per (file, offset).
//! - **Processes change while they run.** `dlopen`, fresh JIT code, `exec`.
//!   Capturing again is cheap (a no-op unless the pid's start time or
//!   executable changed), and an address outside the snapshot makes us
//!   re-read the process and its perf map, at most once a second.
//! - **Unknown is data, not an error.** An address that cannot be named
//!   comes back with no lines but with its mapping when it has one, so
//!   outputs can still say `libfoo.so+0x1a2b`. Only whole operations fail:
//!   reading the kernel symbols, capturing a process.
//! - **Bounded memory for an agent that runs for weeks.** Everything kept
//!   (process snapshots with their perf maps, files parsed by blazesym,
//!   resolved addresses, the kernel's symbol table) has an estimated size,
//!   and the total stays under a ceiling ([`Symbolizer::with_memory_limit`]):
//!   [`Symbolizer::end_window`] evicts the least recently used entries of
//!   every kind. Nothing is evicted while a window is collected and
//!   symbolized, and what the window used stays: its processes need their
//!   snapshots, exited or not, and files it used are likely used again by
//!   the next window. So a window whose own working set passes the
//!   ceiling passes it, and the caller hears of it. A
//!   file whose debug information alone would take a quarter of the ceiling
//!   is named from its symbol tables only. [`Symbolizer::end_window`] drops
//!   processes that exited, and at most 4096 snapshots are kept; a file is
//!   closed and forgotten when no kept snapshot maps it.
//!
//! # Where names come from
//!
//! | address in | resolved through | [`FrameKind`] |
//! |---|---|---|
//! | a file mapping (or the vDSO) | blazesym: DWARF, else ELF symbols | `User` |
//! | anonymous executable memory, or no mapping | `/tmp/perf-PID.map` | `Jit` |
//! | the kernel | `/proc/kallsyms` | `Kernel` |
//!
//! # Non-goals
//!
//! Unwinding (the BPF side delivers addresses), fetching debug information
//! from debuginfod, and symbolizing for another machine. The `address` of a
//! return address is taken as is: subtracting one to land inside the call
//! instruction is the caller's choice.
//!
//! A [`Symbolizer`] is not `Send` (blazesym's cache is not): create it on the
//! thread that symbolizes.

mod budget;
mod demangle;
mod elf;
mod error;
mod files;
mod footprint;
mod kallsyms;
mod maps;
mod perfmap;
mod process;
mod snapshots;
#[cfg(test)]
mod test_binary;
mod vdso;

use std::collections::HashMap;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scorch_formats::{FrameKind, Line, Mapping};

use crate::budget::Entry;
use crate::elf::{ElfEntry, ElfResolver};
pub use crate::error::Error;
use crate::files::{FileId, FileTable, MappedFile};
use crate::kallsyms::Kallsyms;
use crate::perfmap::PerfMap;
pub use crate::process::ProcessSnapshot;
use crate::process::{Backing, Incarnation, Process, Region};
pub use crate::snapshots::SnapshotTaker;

/// How many process snapshots are kept before the least recently used goes.
const MAX_PROCESSES: usize = 4096;

/// The memory ceiling of [`Symbolizer::new`] and [`Symbolizer::one_shot`].
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;

/// How often at most a process is re-read because an address fell outside
/// its snapshot (new libraries, new JIT code).
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How often at most kallsyms is re-read because an address was not in it
/// (modules loaded since).
const KALLSYMS_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// One address, with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The address that was asked about.
    pub address: u64,
    /// The address space it belongs to.
    pub kind: FrameKind,
    /// The file mapping containing it; `None` for kernel, JIT and unmapped addresses.
    pub mapping: Option<Mapping>,
    /// Functions at the address, innermost first; empty when unresolved.
    pub lines: Vec<Line>,
}

/// Resolves kernel and user addresses to frames; one per run, caching inside.
#[derive(Debug)]
pub struct Symbolizer {
    kallsyms: KernelSymbols,
    kallsyms_read: Instant,
    elf: ElfResolver,
    files: FileTable,
    processes: HashMap<u32, Process>,
    /// Estimated bytes of `processes`.
    processes_bytes: u64,
    /// Most bytes the caches may hold.
    limit: u64,
    /// Counter giving each use of a cached entry its recency.
    tick: u64,
    /// `tick` at the last [`Symbolizer::end_window`].
    window_tick: u64,
}

/// A cached entry of any kind, for eviction.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Process(u32),
    Elf(ElfEntry),
}

/// A user address located in a snapshot: its frame so far, and the file
/// offset still to symbolize when it is in a file.
type Placed = (Resolved, Option<(Rc<MappedFile>, u64)>);

/// The offsets of one file to symbolize in one call, and where the results go.
struct Batch {
    file: Rc<MappedFile>,
    indices: Vec<usize>,
    offsets: Vec<u64>,
}

/// How kernel addresses are named.
#[derive(Debug)]
enum KernelSymbols {
    /// A table of every kernel symbol, for symbolizers that run for long.
    Table(LoadingTable),
    /// One pass over kallsyms per [`Symbolizer::kernel`] call, keeping only
    /// the names asked for: for runs that symbolize once, at the end.
    OnDemand,
}

/// The kernel's symbol table, read on a thread of its own from the start:
/// reading and indexing kallsyms takes tens of milliseconds, which a
/// profile spends sampling instead of waiting.
#[derive(Debug, Default)]
struct LoadingTable {
    loading: Option<JoinHandle<Result<Kallsyms, Error>>>,
    table: Kallsyms,
}

impl LoadingTable {
    fn start_loading() -> Self {
        match std::thread::Builder::new()
            .name("kallsyms".into())
            .spawn(Kallsyms::load)
        {
            Ok(handle) => Self {
                loading: Some(handle),
                table: Kallsyms::default(),
            },
            // No thread to be had: read it here and now.
            Err(_) => Self::ready(Kallsyms::load().unwrap_or_default()),
        }
    }

    fn ready(table: Kallsyms) -> Self {
        Self {
            loading: None,
            table,
        }
    }

    /// The table, waiting for it if it is still being read. An unreadable
    /// kallsyms gives an empty table: kernel frames stay unresolved.
    /// Bytes held by the table once read; nothing while it is being read.
    fn bytes(&self) -> u64 {
        self.table.bytes()
    }

    fn get(&mut self) -> &Kallsyms {
        if let Some(handle) = self.loading.take() {
            if let Ok(Ok(table)) = handle.join() {
                self.table = table;
            }
        }
        &self.table
    }
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    /// Creates a symbolizer for long runs; a table of the kernel's symbols
    /// starts loading in the background.
    pub fn new() -> Self {
        Self::with_memory_limit(DEFAULT_MEMORY_LIMIT)
    }

    /// Creates a symbolizer for long runs whose caches stay under `limit`
    /// bytes (estimated); the kernel's symbol table counts toward it.
    pub fn with_memory_limit(limit: u64) -> Self {
        Self::with_kernel_symbols(KernelSymbols::Table(LoadingTable::start_loading()), limit)
    }

    /// Creates a symbolizer for a run that symbolizes once, at its end: no
    /// kernel symbol table is kept; each [`Self::kernel`] call reads
    /// kallsyms once for the addresses it is given, so pass them all at once.
    pub fn one_shot() -> Self {
        Self::with_kernel_symbols(KernelSymbols::OnDemand, DEFAULT_MEMORY_LIMIT)
    }

    fn with_kernel_symbols(kallsyms: KernelSymbols, limit: u64) -> Self {
        Self {
            kallsyms,
            kallsyms_read: Instant::now(),
            elf: ElfResolver::new(limit),
            files: FileTable::default(),
            processes: HashMap::new(),
            processes_bytes: 0,
            limit,
            tick: 0,
            window_tick: 0,
        }
    }

    /// Estimated bytes the caches hold now.
    pub fn memory_used(&self) -> u64 {
        let kernel = match &self.kallsyms {
            KernelSymbols::Table(table) => table.bytes(),
            KernelSymbols::OnDemand => 0,
        };
        kernel + self.processes_bytes + self.elf.bytes()
    }

    /// Ends a window: forgets the processes that exited and were not used
    /// in it, then evicts the least recently used entries down to the
    /// ceiling, keeping what the window used (it is likely needed again
    /// next window; evicting it would only mean parsing the same files
    /// again every window). An agent calls it after symbolizing each
    /// window: a process whose last samples are in the next window is used
    /// by it, so it is kept one window longer. Returns the bytes held at
    /// the end of the window, before eviction: above the ceiling, the
    /// window's own working set did not fit.
    pub fn end_window(&mut self) -> u64 {
        let peak = self.memory_used();
        let since = self.window_tick;
        let exited: Vec<u32> = self
            .processes
            .iter()
            .filter(|(&pid, p)| p.last_used <= since && !p.still_running(pid))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in exited {
            self.remove_process(pid);
        }
        self.sweep();
        self.enforce_limit();
        self.window_tick = self.tick;
        peak
    }

    /// Snapshots a live process so its addresses still resolve after it
    /// exits; does nothing if this run of the process is already captured.
    pub fn capture(&mut self, pid: u32) -> Result<(), Error> {
        let incarnation = Incarnation::read(pid)?;
        if !self.touch(pid, incarnation) {
            let snapshot = ProcessSnapshot::take(pid, incarnation, &mut self.files.opener)?;
            self.adopt(snapshot);
        }
        Ok(())
    }

    /// Keeps a snapshot taken on another thread (by a [`SnapshotTaker`]),
    /// as [`Symbolizer::capture`] would have taken it.
    pub fn adopt(&mut self, snapshot: ProcessSnapshot) {
        let pid = snapshot.pid;
        if self.touch(pid, snapshot.incarnation) {
            return;
        }
        let newer = Process::adopt(snapshot, &mut self.files);
        if self
            .processes
            .get(&pid)
            .is_none_or(|old| old.superseded_by(&newer))
        {
            self.insert(pid, newer);
        }
    }

    /// Marks the snapshot of `pid` used if it is of `incarnation`; whether it is.
    fn touch(&mut self, pid: u32, incarnation: Incarnation) -> bool {
        let Some(process) = self.processes.get_mut(&pid) else {
            return false;
        };
        if process.incarnation != Some(incarnation) {
            return false;
        }
        self.tick += 1;
        process.last_used = self.tick;
        true
    }

    /// Resolves user-space addresses of process `pid`, capturing it first
    /// if it was not captured and still runs.
    pub fn user(&mut self, pid: u32, addrs: &[u64]) -> Vec<Resolved> {
        if !self.processes.contains_key(&pid) && self.capture(pid).is_err() {
            // Gone before we saw it; a perf map it left behind still names JIT code.
            let perf_map = PerfMap::load(pid);
            self.insert(
                pid,
                Process {
                    perf_map,
                    refreshed: Some(Instant::now()),
                    ..Process::default()
                },
            );
        }
        self.tick += 1;
        if let Some(process) = self.processes.get_mut(&pid) {
            process.last_used = self.tick;
        }

        let mut placed: Vec<Placed> = addrs.iter().map(|&a| self.place(pid, a)).collect();
        let unexplained = |(r, _): &Placed| r.mapping.is_none() && r.lines.is_empty();
        if placed.iter().any(unexplained) && self.refresh(pid) {
            for entry in placed.iter_mut().filter(|p| unexplained(p)) {
                *entry = self.place(pid, entry.0.address);
            }
        }

        self.symbolize_files(placed)
    }

    /// Resolves kernel addresses through kallsyms.
    pub fn kernel(&mut self, addrs: &[u64]) -> Vec<Resolved> {
        let names = match &mut self.kallsyms {
            KernelSymbols::OnDemand => {
                kallsyms::resolve_once(addrs).unwrap_or_else(|_| vec![None; addrs.len()])
            }
            KernelSymbols::Table(table) => {
                if self.kallsyms_read.elapsed() >= KALLSYMS_RELOAD_INTERVAL
                    && addrs.iter().any(|&a| table.get().lookup(a).is_none())
                {
                    // Modules may have been loaded since; if re-reading
                    // fails, the table we have is still the best there is.
                    if let Ok(kallsyms) = Kallsyms::load() {
                        *table = LoadingTable::ready(kallsyms);
                    }
                    self.kallsyms_read = Instant::now();
                }
                let table = table.get();
                addrs
                    .iter()
                    .map(|&a| table.lookup(a).map(str::to_string))
                    .collect()
            }
        };
        addrs
            .iter()
            .zip(names)
            .map(|(&address, name)| Resolved {
                address,
                kind: FrameKind::Kernel,
                mapping: None,
                lines: name.map(|n| vec![name_only(&n)]).unwrap_or_default(),
            })
            .collect()
    }

    /// Locates `address` in the snapshot of `pid`, naming it if it is JIT code.
    fn place(&self, pid: u32, address: u64) -> Placed {
        let process = self.processes.get(&pid);
        let region = process.and_then(|p| p.region(address));
        let mut resolved = Resolved {
            address,
            kind: FrameKind::User,
            mapping: None,
            lines: Vec::new(),
        };
        match region {
            Some(
                r @ Region {
                    backing: Backing::File(file),
                    ..
                },
            ) => {
                resolved.mapping = Some(mapping(r, file.build_id()));
                let offset = (address - r.start).wrapping_add(r.offset);
                return (resolved, Some((Rc::clone(file), offset)));
            }
            Some(
                r @ Region {
                    backing: Backing::Opaque,
                    ..
                },
            ) => resolved.mapping = Some(mapping(r, None)),
            Some(Region {
                backing: Backing::Anonymous,
                ..
            })
            | None => {
                if region.is_some() {
                    resolved.kind = FrameKind::Jit;
                }
                let jit = process.and_then(|p| p.perf_map.as_ref()?.lookup(address));
                if let Some(name) = jit {
                    resolved.kind = FrameKind::Jit;
                    resolved.lines.push(name_only(name));
                }
            }
        }
        (resolved, None)
    }

    /// Completes located addresses by symbolizing their file offsets, one
    /// blazesym call per file.
    fn symbolize_files(&mut self, placed: Vec<Placed>) -> Vec<Resolved> {
        let (mut resolved, targets): (Vec<Resolved>, Vec<_>) = placed.into_iter().unzip();
        let mut batches: HashMap<FileId, Batch> = HashMap::new();
        for (i, target) in targets.into_iter().enumerate() {
            if let Some((file, offset)) = target {
                let batch = batches.entry(file.id).or_insert_with(|| Batch {
                    file,
                    indices: Vec::new(),
                    offsets: Vec::new(),
                });
                batch.indices.push(i);
                batch.offsets.push(offset);
            }
        }
        for batch in batches.into_values() {
            let lines = self.elf.resolve(&batch.file, &batch.offsets, self.tick);
            for (i, lines) in batch.indices.into_iter().zip(lines) {
                resolved[i].lines = lines;
            }
        }
        resolved
    }

    /// Re-reads a process whose snapshot missed an address, at most once per
    /// [`REFRESH_INTERVAL`]; returns whether it did.
    fn refresh(&mut self, pid: u32) -> bool {
        let Some(process) = self.processes.get_mut(&pid) else {
            return false;
        };
        let now = Instant::now();
        if process
            .refreshed
            .is_some_and(|t| now.duration_since(t) < REFRESH_INTERVAL)
        {
            return false;
        }
        process.refreshed = Some(now);
        let before = process.bytes();
        let newer = Incarnation::read(pid)
            .and_then(|i| ProcessSnapshot::take(pid, i, &mut self.files.opener))
            .map(|snapshot| Process::adopt(snapshot, &mut self.files));
        match newer {
            Ok(newer) if process.superseded_by(&newer) => {
                let perf_map = newer.perf_map.or(process.perf_map.take());
                *process = Process {
                    perf_map,
                    refreshed: process.refreshed,
                    last_used: process.last_used,
                    ..newer
                };
            }
            _ => {
                if process.perf_map.as_ref().is_none_or(PerfMap::changed) {
                    if let Some(perf_map) = PerfMap::load(pid) {
                        process.perf_map = Some(perf_map);
                    }
                }
            }
        }
        self.processes_bytes = self.processes_bytes - before + process.bytes();
        self.sweep();
        true
    }

    /// Keeps `process` as the snapshot of `pid`, evicting the least recently
    /// used one when full.
    fn insert(&mut self, pid: u32, mut process: Process) {
        self.tick += 1;
        process.last_used = self.tick;
        if !self.processes.contains_key(&pid) && self.processes.len() >= MAX_PROCESSES {
            let oldest = self
                .processes
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(&pid, _)| pid);
            if let Some(oldest) = oldest {
                self.remove_process(oldest);
            }
        }
        self.processes_bytes += process.bytes();
        if let Some(old) = self.processes.insert(pid, process) {
            self.processes_bytes -= old.bytes();
        }
        self.sweep();
    }

    fn remove_process(&mut self, pid: u32) {
        if let Some(process) = self.processes.remove(&pid) {
            self.processes_bytes -= process.bytes();
        }
    }

    /// Evicts the least recently used entries while over the ceiling,
    /// except those used since the last [`Self::end_window`].
    fn enforce_limit(&mut self) {
        let used = self.memory_used();
        if used <= self.limit {
            return;
        }
        let window_start = self.window_tick;
        let snapshots = self.processes.iter().map(|(&pid, p)| Entry {
            key: Victim::Process(pid),
            bytes: p.bytes(),
            last_used: p.last_used,
        });
        let files = self.elf.entries().map(|e| Entry {
            key: Victim::Elf(e.key),
            bytes: e.bytes,
            last_used: e.last_used,
        });
        let entries = snapshots
            .chain(files)
            .filter(|e| e.last_used <= window_start)
            .collect();
        for victim in budget::victims(entries, used, self.limit) {
            match victim {
                Victim::Process(pid) => self.remove_process(pid),
                Victim::Elf(entry) => self.elf.evict(entry),
            }
        }
        self.sweep();
    }

    /// Closes and forgets the files no kept snapshot maps any more.
    fn sweep(&mut self) {
        for file in self.files.sweep() {
            self.elf.forget(&file);
        }
    }
}

/// The mapping of region `r` as the profile model describes it.
fn mapping(r: &Region, build_id: Option<String>) -> Mapping {
    Mapping {
        start: r.start,
        limit: r.end,
        offset: r.offset,
        file: r.path.clone(),
        build_id,
    }
}

/// A frame known only by its function name.
fn name_only(name: &str) -> Line {
    Line {
        function: name.to_owned(),
        file: None,
        line: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_process_is_evicted_first() {
        let mut s = Symbolizer::new();
        for pid in 0..MAX_PROCESSES as u32 {
            s.insert(pid, Process::default());
        }
        s.user(0, &[]); // pid 0 is used again, so pid 1 is now the oldest
        s.insert(u32::MAX, Process::default());
        assert_eq!(s.processes.len(), MAX_PROCESSES);
        assert!(s.processes.contains_key(&0));
        assert!(!s.processes.contains_key(&1));
        assert!(s.processes.contains_key(&u32::MAX));
    }

    /// A symbolizer with no kernel table, so that only what a test puts in counts.
    fn bounded(limit: u64) -> Symbolizer {
        Symbolizer::with_kernel_symbols(KernelSymbols::OnDemand, limit)
    }

    /// A snapshot of about `bytes` bytes.
    fn snapshot(bytes: usize) -> Process {
        Process {
            regions: vec![Region {
                start: 0x1000,
                end: 0x2000,
                offset: 0,
                path: "x".repeat(bytes),
                backing: Backing::Opaque,
            }],
            ..Process::default()
        }
    }

    #[test]
    fn the_ceiling_evicts_the_least_recently_used_snapshots() {
        let mut s = bounded(100_000);
        let trim = |s: &mut Symbolizer| {
            s.window_tick = s.tick;
            s.enforce_limit();
        };
        for pid in 1..=30 {
            s.insert(pid, snapshot(10_000));
            trim(&mut s);
            assert!(
                s.memory_used() <= 100_000,
                "{} at pid {pid}",
                s.memory_used()
            );
        }
        assert!(s.processes.len() >= 8, "{}", s.processes.len());
        assert!(s.processes.contains_key(&30));
        assert!(!s.processes.contains_key(&1));
        // A use makes an old snapshot young again.
        let oldest = *s.processes.keys().min().unwrap();
        s.user(oldest, &[]);
        for pid in 31..=33 {
            s.insert(pid, snapshot(10_000));
            trim(&mut s);
        }
        assert!(s.processes.contains_key(&oldest));
        assert!(!s.processes.contains_key(&(oldest + 1)));
        let total: u64 = s.processes.values().map(Process::bytes).sum();
        assert_eq!(s.memory_used(), total, "the running total drifted");
    }

    #[test]
    fn snapshots_are_evicted_between_windows_not_while_symbolizing() {
        let mut s = bounded(100_000);
        let me = std::process::id();
        for pid in 1..=20 {
            s.insert(pid, snapshot(10_000));
        }
        s.user(me, &[]);
        s.capture(me).unwrap();
        assert_eq!(s.processes.len(), 21, "a window's snapshots must stay");
        let peak = s.end_window();
        assert!(peak > 100_000, "{peak}");
        assert_eq!(s.processes.len(), 21, "what the window used stays");
        // Unused in the next window: the exited (fake) ones go, then the oldest.
        s.capture(me).unwrap();
        s.end_window();
        assert!(s.memory_used() <= 100_000, "{}", s.memory_used());
        assert!(s.processes.contains_key(&me));
    }

    #[test]
    fn exited_processes_are_forgotten_one_window_after_their_last_use() {
        let mut s = bounded(DEFAULT_MEMORY_LIMIT);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let me = std::process::id();
        s.capture(pid).unwrap();
        s.capture(me).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        s.end_window();
        assert!(
            s.processes.contains_key(&pid),
            "used in this window: its samples may still come"
        );
        s.end_window();
        assert!(!s.processes.contains_key(&pid), "exited and unused");
        assert!(s.processes.contains_key(&me), "still running");
        assert_eq!(
            s.memory_used(),
            s.processes.values().map(Process::bytes).sum::<u64>() + s.elf.bytes()
        );
    }

    #[test]
    fn a_small_ceiling_keeps_names_and_drops_debug_information() {
        let (mut program, address) = crate::test_binary::start();
        let pid = program.id();
        let name_of = |r: &Resolved| r.lines.last().map(|l| l.function.clone());

        let mut roomy = bounded(1 << 40);
        roomy.capture(pid).expect("capture the test program");
        let frame = roomy.user(pid, &[address]).remove(0);
        assert!(
            name_of(&frame).unwrap().contains("a_function_to_find"),
            "{frame:?}"
        );
        assert!(
            frame.lines.last().unwrap().file.is_some(),
            "DWARF gives a file: {frame:?}"
        );
        assert!(roomy.elf.bytes() > 0);

        // Debug information above a quarter of the ceiling is not loaded;
        // a window needs more than this ceiling for the program's names.
        let limit = 1 << 10;
        let dwarf = crate::footprint::ElfCost::of(&crate::test_binary::build(), None).dwarf;
        assert!(dwarf > limit / 4, "{dwarf} bytes of DWARF");
        let mut tight = bounded(limit);
        tight.capture(pid).expect("capture the test program");
        let frame = tight.user(pid, &[address]).remove(0);
        assert!(
            name_of(&frame).unwrap().contains("a_function_to_find"),
            "{frame:?}"
        );
        assert!(
            frame.lines.last().unwrap().file.is_none(),
            "no DWARF: {frame:?}"
        );
        assert!(tight.end_window() > limit, "the window's peak is reported");
        tight.end_window();
        assert!(tight.memory_used() <= limit, "{}", tight.memory_used());
        program.kill().unwrap();
        program.wait().unwrap();
    }
}
