//! Code generation: from the analyzed AST to BPF programs and maps.
//!
//! Each probe becomes one program per kind of attach point — or one per
//! attach point when its body reads `args` or `probe`, whose meaning
//! changes with the tracepoint. Programs are built directly from the tree
//! by [`Gen`](gen::Gen), statement by statement, with values in virtual
//! registers ([`emit`]); every choice aims at code the verifier accepts on
//! the first try:
//!
//! - map lookups are null-checked before use; keys are zeroed whole before
//!   their fields are written, so padding never differs;
//! - strings, tuples, keys and event records live in a per-CPU scratch
//!   array (one per program), never on the 512-byte stack;
//! - integer variables live on the stack, where the verifier can follow
//!   them through bounded `while` loops;
//! - kernel and user memory is only read through `probe_read_*` helpers.
//!
//! Maps are referred to by index in [`Compiled::maps`]: the generated
//! `ld_imm64` carries the index, and the runtime patches in the real file
//! descriptor when it loads the program. Programs are therefore pure
//! data, and [`dump`] prints them for golden tests and `--dry-run`.

mod builtins;
mod disasm;
mod emit;
mod expr;
mod function_args;
mod gen;
pub mod layout;
mod loops;
mod maps;
mod memory;
mod output;
mod strings;
mod tseries;

use scorch_bpf::insn::Insn;

use crate::ast::Program;
use crate::diag::Diagnostic;
use crate::sema::{Analysis, Attach, Instance, MapInfo, PrintfInfo, Type};
pub use disasm::disassemble;

/// Index of the "events lost" counter in the counters map.
pub const COUNTER_LOST: u32 = 0;
/// Index of the "map full" counter in the counters map.
pub const COUNTER_MAP_FULL: u32 = 1;
/// Number of counters.
pub const COUNTERS: u32 = 2;
/// Offset in the globals map of the start time (`u64` nanoseconds).
pub const GLOBAL_START: u32 = 0;
/// Offset in the globals map of the "exited" flag (`u64`, 0 or 1): set by
/// `exit()`, checked first by every probe but `begin` and `end`, so no
/// probe runs between `exit()` and user space stopping.
pub const GLOBAL_EXITED: u32 = 8;
/// Size of the globals map's one value.
pub const GLOBALS_SIZE: u32 = 16;
/// Size of the ring buffer that carries events to user space.
pub const EVENTS_SIZE: u32 = 1 << 20;
/// Entries of each stack-trace map (bpftrace's default map size).
pub const STACK_ENTRIES: u32 = 4096;

/// The kind of a BPF map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// `BPF_MAP_TYPE_HASH`
    Hash,
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    PercpuHash,
    /// `BPF_MAP_TYPE_ARRAY`
    Array,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    PercpuArray,
    /// `BPF_MAP_TYPE_RINGBUF`
    RingBuf,
    /// Stack traces by id, for `kstack`/`ustack`.
    StackTrace,
}

/// What a map is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRole {
    /// A map of the program, by index into [`Compiled::user_maps`].
    User(usize),
    /// The ring buffer of events.
    Events,
    /// Per-CPU counters of lost events and full maps.
    Counters,
    /// Values shared by every program: the start time, set by user space
    /// before attaching, then the "exited" flag that `exit()` sets.
    Globals,
    /// Scratch memory of program `n`.
    Scratch(usize),
    /// Stack traces of up to this many frames.
    Stacks(u32),
}

/// A map the programs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// A readable name (`@name`, `.events`).
    pub name: String,
    /// What it is for.
    pub role: MapRole,
    /// Its kind.
    pub kind: MapKind,
    /// Key size in bytes (0 for the ring buffer).
    pub key_size: u32,
    /// Value size in bytes (0 for the ring buffer).
    pub value_size: u32,
    /// Maximum entries (the byte size for the ring buffer).
    pub max_entries: u32,
}

/// How a program is loaded and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgKind {
    /// Run once from user space (`BPF_PROG_TEST_RUN`): `begin`, `end`.
    RunOnce,
    /// Attached to tracepoints.
    Tracepoint,
    /// Attached to raw tracepoints.
    RawTracepoint,
    /// Attached to perf events: `interval`, `profile`, `software`,
    /// `hardware`, `watchpoint`.
    PerfEvent,
    /// Attached to uprobes, uretprobes, USDT probes, kprobes and
    /// kretprobes (`pt_regs` as context).
    Kprobe,
    /// Attached through a BPF trampoline to one kernel function: fentry,
    /// fexit (one program per function: each loads with its BTF id).
    Trampoline,
}

/// One generated program.
#[derive(Debug, Clone)]
pub struct ProgramDef {
    /// The probe it came from, by index in source order.
    pub probe: usize,
    /// How it runs.
    pub kind: ProgKind,
    /// The attach points it serves.
    pub instances: Vec<Instance>,
    /// Its instructions; map references carry indexes into
    /// [`Compiled::maps`].
    pub insns: Vec<Insn>,
    /// The callbacks of its `for` loops, after its own code: first
    /// instruction and number of arguments of each.
    pub callbacks: Vec<(usize, u32)>,
}

impl ProgramDef {
    /// A name for messages: the first attach point, and how many more.
    pub fn name(&self) -> String {
        match self.instances.as_slice() {
            [] => format!("probe {}", self.probe),
            [one] => one.name.clone(),
            [first, rest @ ..] => format!("{} (+{} more)", first.name, rest.len()),
        }
    }
}

/// Everything needed to run a program: maps, programs and the tables
/// user space uses to decode what they send.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The maps, user maps first (same index as in `user_maps`).
    pub maps: Vec<MapDef>,
    /// The programs, in probe order.
    pub programs: Vec<ProgramDef>,
    /// The program's maps and their types.
    pub user_maps: Vec<MapInfo>,
    /// `printf`, `system` and `cat` formats and argument types, by event
    /// id.
    pub printfs: Vec<PrintfInfo>,
    /// `time()` formats, by event id.
    pub time_formats: Vec<String>,
    /// `strftime()` formats, by the id in [`Type::Strftime`].
    pub strftime_formats: Vec<String>,
    /// `join()` delimiters, by event id.
    pub join_delims: Vec<Vec<u8>>,
    /// Types of values printed with `print(value)`, by event id.
    pub value_prints: Vec<Type>,
    /// Index of the events ring buffer in `maps`.
    pub events: usize,
    /// Index of the counters map in `maps`.
    pub counters: usize,
    /// Index of the globals map in `maps`.
    pub globals: usize,
    /// Stack-trace maps: frame limit and index in `maps`.
    pub stack_maps: Vec<(u32, usize)>,
}

impl Compiled {
    /// The stack-trace map for stacks of `limit` frames.
    pub fn stack_map(&self, limit: u32) -> Option<usize> {
        self.stack_maps
            .iter()
            .find(|(l, _)| *l == limit)
            .map(|(_, i)| *i)
    }
}

/// Every stack frame limit used in the program, in increasing order.
fn stack_limits(analysis: &Analysis) -> Vec<u32> {
    fn walk(ty: &Type, out: &mut Vec<u32>) {
        match ty {
            Type::Stack(st) if !out.contains(&st.limit) => out.push(st.limit),
            Type::Tuple(items) => items.iter().for_each(|t| walk(t, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    analysis.types.iter().for_each(|t| walk(t, &mut out));
    for m in &analysis.maps {
        m.keys.iter().for_each(|t| walk(t, &mut out));
        walk(&m.value, &mut out);
    }
    out.sort_unstable();
    out
}

/// Generates the programs and maps of an analyzed program.
pub fn compile(program: &Program, analysis: &Analysis) -> Result<Compiled, Vec<Diagnostic>> {
    let mut maps: Vec<MapDef> = analysis
        .maps
        .iter()
        .enumerate()
        .map(|(i, info)| MapDef {
            name: format!("@{}", info.name),
            role: MapRole::User(i),
            kind: if layout::per_cpu(info) {
                MapKind::PercpuHash
            } else {
                MapKind::Hash
            },
            key_size: layout::key_size(info),
            value_size: layout::value_size(&info.value),
            max_entries: info.max_entries.map_or(analysis.config.max_map_keys, |n| {
                n.clamp(1, u64::from(u32::MAX)) as u32
            }),
        })
        .collect();
    let internal = |name: &str, role, kind, key_size, value_size, max_entries| MapDef {
        name: name.to_string(),
        role,
        kind,
        key_size,
        value_size,
        max_entries,
    };
    let events = maps.len();
    maps.push(internal(
        ".events",
        MapRole::Events,
        MapKind::RingBuf,
        0,
        0,
        EVENTS_SIZE,
    ));
    let counters = maps.len();
    maps.push(internal(
        ".counters",
        MapRole::Counters,
        MapKind::PercpuArray,
        4,
        8,
        COUNTERS,
    ));
    let globals = maps.len();
    maps.push(internal(
        ".globals",
        MapRole::Globals,
        MapKind::Array,
        4,
        GLOBALS_SIZE,
        1,
    ));

    let mut stack_maps = Vec::new();
    for limit in stack_limits(analysis) {
        stack_maps.push((limit, maps.len()));
        maps.push(internal(
            &format!(".stacks{limit}"),
            MapRole::Stacks(limit),
            MapKind::StackTrace,
            4,
            8 * limit,
            STACK_ENTRIES,
        ));
    }

    let mut compiled = Compiled {
        maps,
        programs: Vec::new(),
        user_maps: analysis.maps.clone(),
        printfs: analysis.printfs.clone(),
        time_formats: analysis.time_formats.clone(),
        join_delims: analysis.join_delims.clone(),
        strftime_formats: analysis.strftime_formats.clone(),
        value_prints: Vec::new(),
        events,
        counters,
        globals,
        stack_maps,
    };
    let mut errors = Vec::new();
    for (index, (probe, info)) in program.probes().zip(&analysis.probes).enumerate() {
        for (kind, instances) in groups(&info.instances, info.per_instance) {
            let program_index = compiled.programs.len();
            let scratch = compiled.maps.len();
            compiled.maps.push(internal(
                &format!(".scratch{program_index}"),
                MapRole::Scratch(program_index),
                MapKind::PercpuArray,
                4,
                8,
                1,
            ));
            let gen = gen::Gen::new(analysis, &instances[0], &mut compiled, scratch);
            match gen.probe(probe) {
                Ok(generated) => {
                    compiled.maps[scratch].value_size = generated.scratch;
                    compiled.programs.push(ProgramDef {
                        probe: index,
                        kind,
                        instances,
                        insns: generated.insns,
                        callbacks: generated.callbacks,
                    });
                }
                Err(d) => {
                    compiled.maps.pop();
                    errors.push(d);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(compiled)
    } else {
        Err(errors)
    }
}

/// Attach points that can share a program: same kind, and the same
/// attach point when the body depends on it.
fn groups(instances: &[Instance], per_instance: bool) -> Vec<(ProgKind, Vec<Instance>)> {
    let mut out: Vec<(ProgKind, Vec<Instance>)> = Vec::new();
    for instance in instances {
        let kind = match instance.attach {
            Attach::Begin | Attach::End => ProgKind::RunOnce,
            Attach::Tracepoint { .. } => ProgKind::Tracepoint,
            Attach::RawTracepoint { .. } => ProgKind::RawTracepoint,
            Attach::Interval(_)
            | Attach::Profile(_)
            | Attach::Counter { .. }
            | Attach::Watchpoint { .. } => ProgKind::PerfEvent,
            Attach::Uprobe(_) | Attach::Usdt(_) | Attach::Kprobe { .. } => ProgKind::Kprobe,
            Attach::Fentry(_) => ProgKind::Trampoline,
        };
        let shared = !per_instance && !matches!(kind, ProgKind::RunOnce | ProgKind::Trampoline);
        match out.iter_mut().find(|(k, _)| shared && *k == kind) {
            Some((_, group)) => group.push(instance.clone()),
            None => out.push((kind, vec![instance.clone()])),
        }
    }
    out
}

/// The maps and programs as text: one line per map, then each program's
/// instructions.
pub fn dump(compiled: &Compiled) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (i, m) in compiled.maps.iter().enumerate() {
        let _ = writeln!(
            out,
            "map {i} {}: {:?} key {} value {} entries {}",
            m.name, m.kind, m.key_size, m.value_size, m.max_entries
        );
    }
    for (i, p) in compiled.programs.iter().enumerate() {
        let _ = writeln!(out, "\nprogram {i}: {} ({:?})", p.name(), p.kind);
        for instance in p.instances.iter().skip(1) {
            let _ = writeln!(out, "  also {}", instance.name);
        }
        for (start, args) in &p.callbacks {
            let _ = writeln!(out, "  callback at {start} ({args} arguments)");
        }
        out.push_str(&disassemble(&p.insns, &compiled.maps));
    }
    out
}
