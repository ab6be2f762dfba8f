//! Off-CPU time: where threads wait, from the scheduler's `sched_switch`.
//!
//! The program runs at every context switch, as bcc's `offcputime` does.
//! At the switch-out of a target task (`prev`, still the current task) it
//! records the task's stacks and the count key, as the CPU sampler builds
//! it, with the time, in a hash keyed by thread id. At the switch-in of
//! `next` it takes that entry back and adds the nanoseconds the thread was
//! off CPU to the key's count, when they are within the minimum and
//! maximum blocked time. Counts are therefore nanoseconds, in the same
//! buffer and key layout as the CPU sampler's, so draining and
//! symbolization are shared.
//!
//! The program is a tp_btf one (typed raw tracepoint), or a plain raw
//! tracepoint where tp_btf does not load; both receive the tracepoint's
//! arguments `(preempt, prev, next, …)` as `u64`s. `next->pid` and
//! `prev->__state` are read with `bpf_probe_read_kernel` at member offsets
//! taken from the kernel's BTF and baked in as immediates.
//!
//! User stacks are walked like the CPU sampler's, with frame pointers or
//! the in-kernel unwinder, from the user registers the task saved when it
//! entered the kernel.
//!
//! A thread that exits switches out one last time in `TASK_DEAD`; it is not
//! recorded, so exited threads leave no entry behind. A full start map
//! drops the wait and is counted.

use libbpf_sys as sys;

use super::codegen::{
    add_count, build_key, bump, current_task, drop_filtered, fd, lookup_scratch, note_seen,
    record_stacks, update, Generated, Unwinding, FP_KEY, FP_SCRATCH, FP_VALUE,
};
use super::maps::{Buffers, Maps};
use super::{Counter, SamplerConfig};
use crate::btf_types::KernelTypes;
use crate::error::{Error, Result};
use crate::insn::{Alu, Asm, Cond, Insn, Label, Size, R0, R1, R10, R2, R3, R6, R7, R9};

/// What an off-CPU profile keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffCpu {
    /// Shortest wait kept, nanoseconds (bcc's `--min-block-time`).
    pub min_block_ns: u64,
    /// Longest wait kept, nanoseconds (bcc's `--max-block-time`).
    pub max_block_ns: u64,
    /// Keep only switch-outs in these task states, as bcc's `--state`: 0
    /// is preempted while runnable, any other value a bit mask of states
    /// (1 interruptible sleep, 2 uninterruptible, …); `None` keeps all.
    pub state: Option<u32>,
    /// Threads that can be off CPU at once (entries of the start map).
    pub max_threads: u32,
    /// Which kind of thread to keep (bcc's `-u`, `-k`).
    pub threads: ThreadKind,
}

/// User threads, kernel threads or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadKind {
    /// Every thread.
    #[default]
    All,
    /// Threads of user processes only.
    User,
    /// Kernel threads only.
    Kernel,
}

/// Bytes of a start-map value: the time of the switch-out, then the count key.
pub(super) const START_SIZE: u32 = 40;

/// `TASK_DEAD` in `task_struct::__state` (include/linux/sched.h, since 4.14).
const TASK_DEAD: i32 = 0x80;
/// `PF_KTHREAD` in `task_struct::flags` (include/linux/sched.h).
const PF_KTHREAD: i32 = 0x0020_0000;

/// Where the program finds what it reads in a `task_struct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TaskOffsets {
    /// Byte offset of `pid` (the thread id).
    pub(super) pid: i32,
    /// Byte offset of `__state` (`state` before Linux 5.14).
    pub(super) state: i32,
    /// Byte offset of `flags`.
    pub(super) flags: i32,
}

impl TaskOffsets {
    /// The offsets in the running kernel, from its BTF.
    pub(super) fn from_kernel() -> Result<Self> {
        let types = KernelTypes::vmlinux()?;
        let missing = |what: &str| {
            Error::Unsupported(format!(
                "off-CPU profiling reads {what} of `struct task_struct`, which this kernel's BTF ({}) does not describe",
                crate::btf::VMLINUX
            ))
        };
        let task = types
            .struct_named("task_struct")
            .ok_or_else(|| missing("the type"))?;
        let offset = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| types.member(task, name))
                .map(|m| (m.offset_bits / 8) as i32)
                .ok_or_else(|| missing(&format!("the member `{}`", names[0])))
        };
        Ok(Self {
            pid: offset(&["pid"])?,
            state: offset(&["__state", "state"])?,
            flags: offset(&["flags"])?,
        })
    }
}

/// Generates the `sched_switch` program for `config` over `maps`.
pub(super) fn program(
    config: &SamplerConfig,
    off_cpu: &OffCpu,
    maps: &Maps,
    task: TaskOffsets,
) -> Result<Generated> {
    let (Buffers::Single(buffer), Some(starts)) = (&maps.buffers, &maps.starts) else {
        return Err(Error::Unsupported(
            "off-CPU profiling writes one buffer: it cannot be double-buffered".into(),
        ));
    };
    let mut asm = Asm::new();
    let switch_in = asm.label();
    let exit = asm.label();
    let unwinding = Unwinding::new(&mut asm);

    // Switch-out: the current task is `prev`.
    current_task(&mut asm);
    asm.jump(Insn::jmp_imm(Cond::Eq, R7, 0, 0), switch_in);
    drop_filtered(&mut asm, config, maps, switch_in);
    read_task_u32(&mut asm, 1, task.state, switch_in);
    asm.emit([Insn::load(Size::W, R1, R10, FP_SCRATCH)]);
    asm.jump(Insn::jmp_imm(Cond::Set, R1, TASK_DEAD, 0), switch_in);
    match off_cpu.state {
        None => {}
        Some(0) => {
            asm.jump(Insn::jmp_imm(Cond::Ne, R1, 0, 0), switch_in);
        }
        Some(mask) => {
            asm.emit([Insn::alu64_imm(Alu::And, R1, mask as i32)]);
            asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), switch_in);
        }
    }
    let kthread = match off_cpu.threads {
        ThreadKind::All => None,
        ThreadKind::User => Some(Cond::Ne),
        ThreadKind::Kernel => Some(Cond::Eq),
    };
    if let Some(skip_when) = kthread {
        read_task_u32(&mut asm, 1, task.flags, switch_in);
        asm.emit([
            Insn::load(Size::W, R1, R10, FP_SCRATCH),
            Insn::alu64_imm(Alu::And, R1, PF_KTHREAD),
        ]);
        asm.jump(Insn::jmp_imm(skip_when, R1, 0, 0), switch_in);
    }
    note_seen(&mut asm, maps);
    build_key(&mut asm, config);
    record_stacks(&mut asm, config, maps, buffer, unwinding);
    // starts[tid] = (now, key): the value is fp-40..0, the time then the key.
    // The unwinder used r7, so the tid is asked for again.
    asm.emit([
        Insn::call(sys::BPF_FUNC_get_current_pid_tgid),
        Insn::store_reg(Size::W, R10, FP_SCRATCH, R0),
        Insn::call(sys::BPF_FUNC_ktime_get_ns),
        Insn::store_reg(Size::DW, R10, FP_VALUE, R0),
    ]);
    update(&mut asm, starts, FP_SCRATCH, sys::BPF_ANY as i32);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), switch_in);
    bump(&mut asm, &maps.counters, Counter::StartMapFull, switch_in);

    // Switch-in: `next`, if a target thread recorded when it left.
    asm.place(switch_in);
    read_task_u32(&mut asm, 2, task.pid, exit);
    lookup_scratch(&mut asm, starts);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), exit);
    asm.emit([Insn::mov64_reg(R9, R0)]);
    for word in 0..4i16 {
        asm.emit([
            Insn::load(Size::DW, R1, R9, 8 + 8 * word),
            Insn::store_reg(Size::DW, R10, FP_KEY + 8 * word, R1),
        ]);
    }
    asm.emit([Insn::load(Size::DW, R7, R9, 0)]);
    asm.emit(Insn::ld_map_fd(R1, fd(starts)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_SCRATCH as i32),
        Insn::call(sys::BPF_FUNC_map_delete_elem),
        Insn::call(sys::BPF_FUNC_ktime_get_ns),
        Insn::alu64_reg(Alu::Sub, R0, R7),
    ]);
    asm.emit(Insn::ld_imm64(R1, off_cpu.min_block_ns));
    asm.jump(Insn::jmp_reg(Cond::Lt, R0, R1, 0), exit);
    asm.emit(Insn::ld_imm64(R1, off_cpu.max_block_ns));
    asm.jump(Insn::jmp_reg(Cond::Gt, R0, R1, 0), exit);
    asm.emit([Insn::store_reg(Size::DW, R10, FP_VALUE, R0)]);
    add_count(&mut asm, maps, &buffer.counts, exit);

    asm.place(exit);
    asm.emit([Insn::mov64_imm(R0, 0), Insn::exit()]);
    unwinding.finish(asm, maps)
}

/// The u32 at `offset` in the `task_struct` of tracepoint argument `arg`
/// (context in r6) into the scratch word at `fp-48`, or `goto fail`.
fn read_task_u32(asm: &mut Asm, arg: i16, offset: i32, fail: Label) {
    asm.emit([
        Insn::load(Size::DW, R3, R6, 8 * arg),
        Insn::alu64_imm(Alu::Add, R3, offset),
        Insn::mov64_reg(R1, R10),
        Insn::alu64_imm(Alu::Add, R1, FP_SCRATCH as i32),
        Insn::mov64_imm(R2, 4),
        Insn::call(sys::BPF_FUNC_probe_read_kernel),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), fail);
}
