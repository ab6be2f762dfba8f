//! The sampling profiler's BPF side.
//!
//! One program runs on every cpu-clock sample on every CPU. It drops samples
//! outside the target (idle, other processes or threads) and stores the
//! kernel and user stacks of the rest in hash maps under a hash of their
//! addresses (`stack_store`), counting each distinct
//! `(pid, tid, user stack, kernel stack, comm)` in a hash. Failures (stack
//! map full, hash collisions, count map full) are counted per CPU so the
//! user hears about every lost stack.
//!
//! The filter is baked into the generated code ([`codegen`]): a run that
//! profiles one PID carries one lookup in a small hash, a whole-host run
//! none. A continuous profiler asks for two buffers ([`maps`]) and
//! [`Sampler::drain`]s one while the program writes the other; it also asks
//! for the pids seen since it last looked, to capture new processes while
//! they live.
//!
//! With [`SamplerConfig::off_cpu`] the program runs on the scheduler's
//! `sched_switch` instead (`offcpu`): it counts the nanoseconds target
//! threads spend off CPU, in the same buffers and keys, so everything that
//! reads a snapshot works unchanged.
//!
//! User stacks are walked either by the kernel's frame-pointer walk
//! (`bpf_get_stack`) or, with [`UserUnwind::Tables`], by an unwinder of
//! our own (`unwinder`) over `.eh_frame` tables that user space loads
//! into maps per file and per process (`tables`); both store the stack the
//! same way.

mod allocation;
mod codegen;
mod maps;
mod offcpu;
mod row_space;
mod stack_store;
mod tables;
mod unwinder;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::btf_link::{self, BtfLink};
use crate::error::{Error, Result};
use crate::func_info::FuncInfo;
use crate::perf_event::{Event, PerfEventLink, Rate};
use crate::program::{Program, ProgramType};
use crate::raw_tracepoint::RawTracepointLink;
use codegen::Generated;
use codegen::{KEY_COMM, KEY_KSTACK, KEY_PID, KEY_SIZE, KEY_TID, KEY_USTACK};
use maps::{Buffer, Buffers, Maps};
use offcpu::TaskOffsets;
pub use offcpu::{OffCpu, ThreadKind};
pub use tables::{LoadedProcess, NoTable, SkippedFile, TableStats, UnwindTables};

/// Stack depth kept per stack, as the kernel's default `perf_event_max_stack`.
pub const MAX_DEPTH: usize = 127;

/// How long a buffer is left alone after the switch, for programs still
/// running on other CPUs to finish writing it (a run takes microseconds).
const SWITCH_GRACE: Duration = Duration::from_millis(10);

/// The count keys to allow for `stack_storage_size` stacks of each kind:
/// two per stack, at least 10240.
pub fn count_keys_for(stack_storage_size: u32) -> u32 {
    stack_storage_size.saturating_mul(2).max(10240)
}

/// Which processes or threads to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every process on the host.
    All,
    /// These process ids (tgids).
    Pids(Vec<u32>),
    /// These thread ids.
    Tids(Vec<u32>),
}

/// What the sampler collects and how.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Whom to sample.
    pub target: Target,
    /// Sampling rate.
    pub rate: Rate,
    /// Event that drives sampling.
    pub event: Event,
    /// CPUs to sample on.
    pub cpus: Vec<u32>,
    /// Keep user stacks.
    pub user_stacks: bool,
    /// Keep kernel stacks.
    pub kernel_stacks: bool,
    /// Keep samples of the idle task (tid 0).
    pub include_idle: bool,
    /// Keep counts per thread rather than per process.
    pub per_thread: bool,
    /// Number of distinct stacks the stack map can hold.
    pub stack_storage_size: u32,
    /// Number of distinct (pid, tid, stacks, comm) the count map can hold.
    pub max_keys: u32,
    /// Two buffers, so [`Sampler::drain`] can run while sampling goes on.
    pub double_buffered: bool,
    /// Remember the pids sampled, for [`Sampler::take_seen_pids`].
    pub track_pids: bool,
    /// Count nanoseconds off CPU at context switches instead of sampling
    /// on CPU (`rate`, `event` and `cpus` are then unused).
    pub off_cpu: Option<OffCpu>,
}

/// What the program counts per CPU, by index in its counter array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// The stack map was full (`-ENOMEM`) for a user stack.
    UserStackMapFull = 0,
    /// A user stack collided with another in the stack map (`-EEXIST`).
    UserStackCollision = 1,
    /// The stack map was full for a kernel stack.
    KernelStackMapFull = 2,
    /// A kernel stack collided with another in the stack map.
    KernelStackCollision = 3,
    /// The count map was full: the whole sample was dropped.
    CountMapFull = 4,
    /// A sample was counted.
    Recorded = 5,
    /// A user stack walked with tables needed frame pointers for some frame.
    UserFramePointer = 6,
    /// A user stack was walked with frame pointers only: its process had no tables loaded.
    UserWithoutTables = 7,
    /// Off CPU: the start map was full, so a thread's wait was not timed.
    StartMapFull = 8,
}

/// Number of [`Counter`]s.
const COUNTERS: u32 = 9;

/// How user stacks are walked.
#[derive(Debug, Clone)]
pub enum UserUnwind {
    /// The kernel's frame-pointer walk (`bpf_get_stack`).
    FramePointers,
    /// The in-kernel unwinder over tables built from `.eh_frame`, falling
    /// back to frame pointers (counted) where a mapping has none.
    Tables {
        /// Rows the table map holds, for all files together (16 bytes each).
        rows: u32,
        /// Processes whose mappings can be loaded.
        processes: u32,
    },
    /// The in-kernel unwinder over another sampler's tables (the agent's
    /// off-CPU sampler walks with the CPU sampler's).
    SharedTables(UnwindTables),
}

/// The program's counters, summed over all CPUs since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Samples counted.
    pub recorded: u64,
    /// Stacks not recorded because the stack map was full.
    pub stack_map_full: u64,
    /// Stacks not recorded because of a hash collision.
    pub stack_collisions: u64,
    /// Samples dropped entirely because the count map was full.
    pub count_map_full: u64,
    /// User stacks walked with tables where some frame needed frame pointers.
    pub user_frame_pointer: u64,
    /// User stacks of processes without loaded tables (frame pointers only).
    pub user_without_tables: u64,
    /// Off-CPU waits not timed because the start map was full.
    pub start_map_full: u64,
}

impl Counters {
    /// Every stack, sample or wait lost, whatever the reason.
    pub fn lost(&self) -> u64 {
        self.stack_map_full + self.stack_collisions + self.count_map_full + self.start_map_full
    }
}

/// A stack id as the BPF program recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StackId {
    /// Key of [`Snapshot::stacks`] (numbered by each drain).
    Id(u32),
    /// No such stack (or not collected): `-EFAULT` from the helper.
    Absent,
    /// The stack was wanted but lost (map full or collision).
    Missed,
}

impl StackId {
    fn from_raw(raw: i32) -> Self {
        match raw {
            id if id >= 0 => StackId::Id(id as u32),
            e if e == -libc::EFAULT => StackId::Absent,
            _ => StackId::Missed,
        }
    }
}

/// One distinct sampled key and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// Process id.
    pub pid: u32,
    /// Thread id (0 unless per-thread counts were asked for).
    pub tid: u32,
    /// Thread name.
    pub comm: String,
    /// User stack.
    pub user: StackId,
    /// Kernel stack.
    pub kernel: StackId,
    /// Number of samples (nanoseconds off CPU, for an off-CPU profile).
    pub count: u64,
}

/// The counts of one buffer and the stacks they refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every distinct key with its count.
    pub counts: Vec<Count>,
    /// The addresses of every referenced stack, leaf first.
    pub stacks: HashMap<u32, Vec<u64>>,
}

impl Snapshot {
    /// The addresses of stack `id`, when it was recorded.
    pub fn stack(&self, id: u32) -> Option<&[u64]> {
        self.stacks.get(&id).map(Vec::as_slice)
    }

    /// Total samples in the snapshot.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.count).sum()
    }
}

/// A running sampler: its maps, program and attachments.
#[derive(Debug)]
pub struct Sampler {
    maps: Maps,
    /// Whom it samples, for [`Self::load_target_tables`].
    target: Target,
    /// Index of the buffer being written, when double-buffered.
    active: u32,
    // Dropping the links detaches the program; keep it after them.
    links: Vec<Link>,
    program: Program,
    /// How the program was loaded, which says how it attaches.
    program_type: ProgramType,
}

/// One attachment of the program, detached when dropped.
#[derive(Debug)]
enum Link {
    /// On-CPU: a perf event of one CPU.
    Perf { _link: PerfEventLink },
    /// Off-CPU, tp_btf: `sched_switch`.
    Btf { _link: BtfLink },
    /// Off-CPU, raw tracepoint: `sched_switch`.
    RawTracepoint { _link: RawTracepointLink },
}

/// What [`Sampler::load_target_tables`] did, per target process.
#[derive(Debug, Default)]
pub struct TargetTables {
    /// Processes whose tables were loaded, and how.
    pub loaded: Vec<(u32, LoadedProcess)>,
    /// Processes whose tables could not be loaded (exited meanwhile,
    /// mappings unreadable, map full): they walk frame pointers.
    pub failed: Vec<(u32, Error)>,
}

impl Sampler {
    /// Creates the maps, loads the program and attaches it to every CPU in `config.cpus`.
    pub fn start(config: &SamplerConfig) -> Result<Self> {
        Self::start_unwinding(config, UserUnwind::FramePointers)
    }

    /// [`Self::start`], walking user stacks as `unwind` says. With tables,
    /// sampling starts at once and walks frame pointers (counted) until
    /// [`Self::load_target_tables`] or [`Self::load_tables`] is called; use
    /// [`Self::prepare`] to load them before the first sample.
    pub fn start_unwinding(config: &SamplerConfig, unwind: UserUnwind) -> Result<Self> {
        let mut sampler = Self::prepare(config, unwind)?;
        sampler.attach(config)?;
        Ok(sampler)
    }

    /// Creates the maps and loads the program without attaching it, so
    /// tables can be loaded before [`Self::attach`] starts sampling.
    pub fn prepare(config: &SamplerConfig, unwind: UserUnwind) -> Result<Self> {
        let maps = Maps::create(config, unwind)?;
        let (program, program_type) = match &config.off_cpu {
            Some(off_cpu) => load_off_cpu_program(config, off_cpu, &maps)?,
            None => (load_program(config, &maps)?, ProgramType::PerfEvent),
        };
        Ok(Self {
            maps,
            target: config.target.clone(),
            active: 0,
            links: Vec::new(),
            program,
            program_type,
        })
    }

    /// Attaches the program to every CPU in `config.cpus` (the configuration
    /// it was prepared with), or off CPU to `sched_switch`: sampling starts.
    pub fn attach(&mut self, config: &SamplerConfig) -> Result<()> {
        self.links = match self.program_type {
            ProgramType::TpBtf(_) => vec![Link::Btf {
                _link: BtfLink::attach(&self.program)?,
            }],
            ProgramType::RawTracepoint => vec![Link::RawTracepoint {
                _link: RawTracepointLink::attach(&self.program, SCHED_SWITCH)?,
            }],
            _ => config
                .cpus
                .iter()
                .map(|&cpu| {
                    PerfEventLink::attach(&self.program, config.event, config.rate, cpu)
                        .map(|link| Link::Perf { _link: link })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(())
    }

    /// Loads the unwind tables of every target process (every process on
    /// the host for [`Target::All`]). One that exits meanwhile, or whose
    /// mappings cannot be read or stored, goes on with frame pointers, and
    /// its samples are counted as such. Nothing is loaded when user stacks
    /// use frame pointers.
    pub fn load_target_tables(&mut self) -> TargetTables {
        let mut report = TargetTables::default();
        for pid in target_pids(&self.target) {
            match self.load_tables(pid) {
                Ok(Some(loaded)) => report.loaded.push((pid, loaded)),
                Ok(None) => {}
                Err(err) => report.failed.push((pid, err)),
            }
        }
        report
    }

    /// Loads (again) the unwind tables of process `pid`, for one that started
    /// or mapped new code since; `None` when user stacks use frame pointers.
    pub fn load_tables(&mut self, pid: u32) -> Result<Option<LoadedProcess>> {
        match &self.maps.unwind {
            Some(unwind) => unwind.tables.load(pid).map(Some),
            None => Ok(None),
        }
    }

    /// Loads the tables of process `pid` unless they are loaded and it still
    /// runs the same program (not a new process under a reused pid, not
    /// replaced by an exec); `None` when nothing was loaded.
    pub fn refresh_tables(&mut self, pid: u32) -> Result<Option<LoadedProcess>> {
        match &self.maps.unwind {
            Some(unwind) => unwind.tables.refresh(pid),
            None => Ok(None),
        }
    }

    /// The unwind tables, for loading processes from another thread;
    /// `None` when user stacks use frame pointers.
    pub fn unwind_tables(&self) -> Option<UnwindTables> {
        self.maps.unwind.as_ref().map(|u| u.tables.clone())
    }

    /// Detaches the program from every CPU; the maps stay readable.
    pub fn stop(&mut self) {
        self.links.clear();
    }

    /// Takes everything recorded since the last drain and clears it.
    ///
    /// Double-buffered, the program switches to the other buffer first and
    /// keeps sampling; single-buffered, call it after [`Self::stop`] (or
    /// accept that samples counted while draining may be lost).
    pub fn drain(&mut self) -> Result<Snapshot> {
        let buffer = match &mut self.maps.buffers {
            Buffers::Single(only) => only,
            Buffers::Double { pair, active } => {
                let next = 1 - self.active;
                active
                    .update(&0u32.to_ne_bytes(), &next.to_ne_bytes(), MapFlags::ANY)
                    .map_err(|e| map_error("switching sampler buffers", e))?;
                let drained = self.active as usize;
                self.active = next;
                std::thread::sleep(SWITCH_GRACE);
                &mut pair[drained]
            }
        };
        drain_buffer(buffer, self.maps.starts.as_ref())
    }

    /// Stacks the maps hold now, of both kinds in every buffer: those the
    /// counts of the next drains refer to, and any no count refers to yet.
    pub fn held_stacks(&self) -> usize {
        let buffers: Vec<&Buffer> = match &self.maps.buffers {
            Buffers::Single(only) => vec![only],
            Buffers::Double { pair, .. } => pair.iter().collect(),
        };
        buffers
            .iter()
            .map(|b| b.user_stacks.keys().count() + b.kernel_stacks.keys().count())
            .sum()
    }

    /// Pids sampled since the last call (requires `track_pids`).
    pub fn take_seen_pids(&self) -> Result<Vec<u32>> {
        Ok(self
            .maps
            .seen_pids
            .as_ref()
            .map(take_pids)
            .unwrap_or_default())
    }

    /// A reader of the pids sampled (requires `track_pids`) that can move to
    /// another thread, so new processes are captured while this one is busy.
    pub fn seen_pids(&self) -> Result<Option<SeenPids>> {
        self.maps
            .seen_pids
            .as_ref()
            .map(|map| {
                MapHandle::try_from(map)
                    .map(SeenPids)
                    .map_err(|e| map_error("duplicating the seen-pids map", e))
            })
            .transpose()
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let read = |counter: Counter| -> Result<u64> {
            let per_cpu = self
                .maps
                .counters
                .lookup_percpu(&(counter as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| map_error("reading the sampler's counters", e))?
                .unwrap_or_default();
            Ok(per_cpu
                .iter()
                .filter_map(|v| v.get(..8))
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                .sum())
        };
        Ok(Counters {
            recorded: read(Counter::Recorded)?,
            stack_map_full: read(Counter::UserStackMapFull)? + read(Counter::KernelStackMapFull)?,
            stack_collisions: read(Counter::UserStackCollision)?
                + read(Counter::KernelStackCollision)?,
            count_map_full: read(Counter::CountMapFull)?,
            user_frame_pointer: read(Counter::UserFramePointer)?,
            user_without_tables: read(Counter::UserWithoutTables)?,
            start_map_full: read(Counter::StartMapFull)?,
        })
    }
}

/// Loads a generated program, with the func info its callback needs.
fn load_generated(ty: ProgramType, name: &str, generated: &Generated) -> Result<Program> {
    match generated.callback {
        None => Program::load(ty, name, &generated.insns),
        Some(start) => {
            // The program takes its context; the callback (index, context).
            let funcs = FuncInfo::load(&[0, start], &[1, 2])?;
            Program::load_with_funcs(ty, name, &generated.insns, &funcs)
        }
    }
}

/// Why the in-kernel unwinder did not load, for callers to fall back to
/// frame pointers; other errors unchanged.
fn unwinder_error(maps: &Maps, err: Error) -> Error {
    match maps.unwind {
        Some(_) => Error::Unsupported(format!(
            "the in-kernel unwinder did not load ({err}); it needs the bpf_loop helper of Linux 5.17 or later"
        )),
        None => err,
    }
}

/// Generates and loads the sampler program.
fn load_program(config: &SamplerConfig, maps: &Maps) -> Result<Program> {
    let generated = codegen::program(config, maps)?;
    load_generated(ProgramType::PerfEvent, "scorch_sample", &generated)
        .map_err(|err| unwinder_error(maps, err))
}

/// The scheduler's tracepoint an off-CPU profile runs on.
const SCHED_SWITCH: &str = "sched_switch";

/// Generates and loads the off-CPU program: tp_btf, else a raw tracepoint.
fn load_off_cpu_program(
    config: &SamplerConfig,
    off_cpu: &OffCpu,
    maps: &Maps,
) -> Result<(Program, ProgramType)> {
    let task = TaskOffsets::from_kernel()?;
    let generated = offcpu::program(config, off_cpu, maps, task)?;
    let typed = btf_link::tp_btf_type(SCHED_SWITCH)
        .and_then(|ty| Ok((load_generated(ty, "scorch_offcpu", &generated)?, ty)));
    match typed {
        Ok(loaded) => Ok(loaded),
        Err(typed_err) => {
            load_generated(ProgramType::RawTracepoint, "scorch_offcpu", &generated)
                .map(|program| (program, ProgramType::RawTracepoint))
                .map_err(|raw_err| match maps.unwind {
                    Some(_) => unwinder_error(maps, typed_err),
                    None => Error::Unsupported(format!(
                        "cannot load the off-CPU program on sched_switch: as tp_btf: {typed_err}; as a raw tracepoint: {raw_err}"
                    )),
                })
        }
    }
}

/// Reads a buffer's counts and the stacks they use, then empties it.
///
/// Off CPU, a thread that left the CPU holds its stack ids in the start
/// map until it comes back, and its wait is counted only then: those
/// stacks stay in the stack maps for the drain that will see that count.
fn drain_buffer(buffer: &mut Buffer, starts: Option<&MapHandle>) -> Result<Snapshot> {
    let keys: Vec<Vec<u8>> = buffer.counts.keys().collect();
    let mut snapshot = Snapshot::default();
    for key in &keys {
        let value = buffer
            .counts
            .lookup(key, MapFlags::ANY)
            .map_err(|e| map_error("reading the count map", e))?;
        if let Some(count) = value.and_then(|v| decode_count(key, &v)) {
            snapshot.counts.push(count);
        }
    }
    // User and kernel stacks have ids (hashes) of their own maps: the
    // snapshot numbers them afresh, in one id space.
    let mut read = [HashMap::new(), HashMap::new()];
    let [user_ids, kernel_ids] = &mut read;
    for count in &mut snapshot.counts {
        for (id, map, ids) in [
            (&mut count.user, &buffer.user_stacks, &mut *user_ids),
            (&mut count.kernel, &buffer.kernel_stacks, &mut *kernel_ids),
        ] {
            let StackId::Id(old) = *id else { continue };
            let new = match ids.entry(old) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(slot) => {
                    let new = read_stack(map, old)?.map(|stack| {
                        let new = snapshot.stacks.len() as u32;
                        snapshot.stacks.insert(new, stack);
                        new
                    });
                    *slot.insert(new)
                }
            };
            *id = new.map_or(StackId::Missed, StackId::Id);
        }
    }
    for key in &keys {
        let _ = buffer.counts.delete(key);
    }
    let (waiting_user, waiting_kernel) = starts.map(waiting_stacks).unwrap_or_default();
    let [user_left, kernel_left] = &mut buffer.unreferenced;
    for (ids, map, waiting, left) in [
        (user_ids, &buffer.user_stacks, waiting_user, user_left),
        (
            kernel_ids,
            &buffer.kernel_stacks,
            waiting_kernel,
            kernel_left,
        ),
    ] {
        for id in ids.keys().filter(|id| !waiting.contains(id)) {
            let _ = map.delete(&id.to_ne_bytes());
        }
        *left = sweep(map, ids, &waiting, left);
    }
    Ok(snapshot)
}

/// Deletes the stacks of `map` that no count has referred to since the
/// drain before (`before`) and no waiting thread holds: stored for a
/// sample whose count found its map full, or at the switch-out of a wait
/// shorter than the minimum. Returns those found unreferenced for the
/// first time, kept a drain longer (a count may be on its way).
fn sweep(
    map: &MapHandle,
    referenced: &HashMap<u32, Option<u32>>,
    waiting: &HashSet<u32>,
    before: &HashSet<u32>,
) -> HashSet<u32> {
    let unreferenced: Vec<u32> = map
        .keys()
        .filter_map(|key| Some(u32::from_ne_bytes(key.as_slice().try_into().ok()?)))
        .filter(|id| !referenced.contains_key(id) && !waiting.contains(id))
        .collect();
    let mut kept = HashSet::new();
    for id in unreferenced {
        if before.contains(&id) {
            let _ = map.delete(&id.to_ne_bytes());
        } else {
            kept.insert(id);
        }
    }
    kept
}

/// The user and kernel stack ids that threads off CPU hold in the start
/// map (whose values are the time of the switch-out, then the count key).
fn waiting_stacks(starts: &MapHandle) -> (HashSet<u32>, HashSet<u32>) {
    let (mut user, mut kernel) = (HashSet::new(), HashSet::new());
    for tid in starts.keys() {
        let Ok(Some(value)) = starts.lookup(&tid, MapFlags::ANY) else {
            continue;
        };
        let Some(key) = value.get(8..8 + KEY_SIZE) else {
            continue;
        };
        let id_at = |at: usize| key.get(at..at + 4).and_then(|b| b.try_into().ok());
        for (at, ids) in [(KEY_USTACK, &mut user), (KEY_KSTACK, &mut kernel)] {
            if let Some(StackId::Id(id)) =
                id_at(at).map(|b| StackId::from_raw(i32::from_ne_bytes(b)))
            {
                ids.insert(id);
            }
        }
    }
    (user, kernel)
}

/// The addresses of stack `id`, leaf first.
fn read_stack(stacks: &MapHandle, id: u32) -> Result<Option<Vec<u64>>> {
    let value = stacks
        .lookup(&id.to_ne_bytes(), MapFlags::ANY)
        .map_err(|e| map_error("reading the stack map", e))?;
    Ok(value.map(|v| {
        v.chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
            // The stack's full hash follows the frames.
            .take(MAX_DEPTH)
            .take_while(|&a| a != 0)
            .collect()
    }))
}

/// The processes whose tables to load for `target`.
fn target_pids(target: &Target) -> Vec<u32> {
    match target {
        Target::Pids(pids) => pids.clone(),
        Target::Tids(tids) => tids.iter().filter_map(|&tid| tgid_of(tid)).collect(),
        Target::All => std::fs::read_dir("/proc")
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The process of thread `tid`, from `/proc/TID/status`.
fn tgid_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// The pids the program has sampled, read from any thread.
#[derive(Debug)]
pub struct SeenPids(MapHandle);

impl SeenPids {
    /// Pids sampled since the last call.
    pub fn take(&self) -> Vec<u32> {
        take_pids(&self.0)
    }
}

/// Removes and returns the pids in the seen-pids map.
fn take_pids(seen: &MapHandle) -> Vec<u32> {
    let keys: Vec<Vec<u8>> = seen.keys().collect();
    let mut pids = Vec::with_capacity(keys.len());
    for key in keys {
        // Deleted, it is inserted again at the process's next sample.
        let _ = seen.delete(&key);
        if let Ok(bytes) = <[u8; 4]>::try_from(key.as_slice()) {
            pids.push(u32::from_ne_bytes(bytes));
        }
    }
    pids
}

fn map_error(what: &str, e: libbpf_rs::Error) -> Error {
    Error::sys(what, std::io::Error::other(e.to_string()))
}

fn decode_count(key: &[u8], value: &[u8]) -> Option<Count> {
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(key.get(off..off + 4)?.try_into().ok()?))
    };
    let comm_bytes = key.get(KEY_COMM..KEY_SIZE)?;
    let comm_end = comm_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(comm_bytes.len());
    Some(Count {
        pid: u32_at(KEY_PID)?,
        tid: u32_at(KEY_TID)?,
        comm: String::from_utf8_lossy(&comm_bytes[..comm_end]).into_owned(),
        user: StackId::from_raw(u32_at(KEY_USTACK)? as i32),
        kernel: StackId::from_raw(u32_at(KEY_KSTACK)? as i32),
        count: u64::from_ne_bytes(value.get(..8)?.try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A double-buffered CPU sampler of this process with small maps.
    fn small_config() -> SamplerConfig {
        SamplerConfig {
            target: Target::Pids(vec![std::process::id()]),
            rate: Rate::Frequency(99),
            event: Event::CpuClock,
            cpus: vec![0],
            user_stacks: true,
            kernel_stacks: true,
            include_idle: false,
            per_thread: false,
            stack_storage_size: 64,
            max_keys: 64,
            double_buffered: true,
            track_pids: true,
            off_cpu: None,
        }
    }

    /// The sampler with the unwinder and its `bpf_loop` callback loads on
    /// this kernel (root: it loads BPF).
    #[test]
    fn the_sampler_with_the_unwinder_loads() {
        let config = small_config();
        let unwind = UserUnwind::Tables {
            rows: 1024,
            processes: 4,
        };
        let maps = Maps::create(&config, unwind).expect("maps");
        let generated = codegen::program(&config, &maps).expect("program");
        assert!(generated.callback.is_some(), "no frame callback");
        if let Err(e) = load_generated(ProgramType::PerfEvent, "scorch_sample", &generated) {
            let summary = match &e {
                Error::Verifier { summary, .. } => summary.clone(),
                other => other.to_string(),
            };
            panic!("the sampler with the unwinder does not load: {summary}");
        }
    }

    /// The sampler loads over preallocated hash maps too, as kernels
    /// before 6.1 require them (root: it loads BPF).
    #[test]
    fn the_sampler_loads_over_preallocated_maps() {
        let config = small_config();
        for unwind in [
            UserUnwind::FramePointers,
            UserUnwind::Tables {
                rows: 1024,
                processes: 4,
            },
        ] {
            let maps = Maps::create_with(&config, unwind, 0).expect("maps");
            let generated = codegen::program(&config, &maps).expect("program");
            if let Err(e) = load_generated(ProgramType::PerfEvent, "scorch_sample", &generated) {
                panic!("the sampler does not load over preallocated maps: {e}");
            }
        }
    }

    /// The off-CPU program loads both ways (root): as tp_btf, and as the
    /// plain raw tracepoint used where tp_btf does not load.
    #[test]
    fn off_cpu_program_loads_as_tp_btf_and_raw_tracepoint() {
        let config = SamplerConfig {
            target: Target::Pids(vec![std::process::id()]),
            rate: Rate::Frequency(1),
            event: Event::CpuClock,
            cpus: Vec::new(),
            user_stacks: true,
            kernel_stacks: true,
            include_idle: false,
            per_thread: true,
            stack_storage_size: 64,
            max_keys: 64,
            double_buffered: false,
            track_pids: true,
            off_cpu: Some(OffCpu {
                min_block_ns: 1000,
                max_block_ns: u64::MAX,
                state: Some(2),
                max_threads: 64,
                threads: ThreadKind::User,
            }),
        };
        let maps = Maps::create(&config, UserUnwind::FramePointers).expect("maps");
        let task = TaskOffsets::from_kernel().expect("task_struct offsets");
        let off_cpu = config.off_cpu.as_ref().unwrap();
        let generated = offcpu::program(&config, off_cpu, &maps, task).expect("program");
        let typed = btf_link::tp_btf_type(SCHED_SWITCH).expect("sched_switch in BTF");
        for ty in [typed, ProgramType::RawTracepoint] {
            if let Err(e) = load_generated(ty, "scorch_offcpu", &generated) {
                panic!("the off-CPU program does not load as {ty:?}: {e}");
            }
        }
    }

    #[test]
    fn decodes_keys_written_by_the_program_layout() {
        let mut key = [0u8; KEY_SIZE];
        key[0..4].copy_from_slice(&42u32.to_ne_bytes());
        key[4..8].copy_from_slice(&43u32.to_ne_bytes());
        key[8..12].copy_from_slice(&7i32.to_ne_bytes());
        key[12..16].copy_from_slice(&(-libc::EFAULT).to_ne_bytes());
        key[16..20].copy_from_slice(b"bash");
        let count = decode_count(&key, &9u64.to_ne_bytes()).unwrap();
        assert_eq!(
            count,
            Count {
                pid: 42,
                tid: 43,
                comm: "bash".into(),
                user: StackId::Id(7),
                kernel: StackId::Absent,
                count: 9
            }
        );
        key[8..12].copy_from_slice(&(-libc::ENOMEM).to_ne_bytes());
        assert_eq!(decode_count(&key, &[1; 8]).unwrap().user, StackId::Missed);
        assert_eq!(decode_count(&key[..10], &[1; 8]), None);
    }
}
