//! The sampler's BPF program, generated for one configuration.
//!
//! Layout of the program:
//! 1. `r6 = ctx`, `r7 = tid`, `r8 = tgid`; drop idle and filtered tasks.
//! 2. Note the tgid in the seen-pids map (when tracked).
//! 3. Build the count key on the stack: pid, tid, comm.
//! 4. Pick the active buffer (when double-buffered) and, in that buffer,
//!    record the stacks, then `counts[key] += 1`.
//!
//! Every failure is counted in the per-CPU loss array; samples that were
//! recorded are counted there too, so a status line reads one entry.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::MapHandle;
use libbpf_sys as sys;

use super::maps::{Buffer, Buffers, Maps};
use super::stack_store::{self, StackKind};
use super::unwinder::{self, UserRegs};
use super::{Counter, SamplerConfig, Target};
use crate::error::Result;
use crate::insn::{Alu, Asm, Cond, Insn, Label, Size, R0, R1, R10, R2, R3, R4, R6, R7, R8};

// Layout of the count key, shared by the program and the reader.
pub(super) const KEY_SIZE: usize = 32;
pub(super) const KEY_PID: usize = 0;
pub(super) const KEY_TID: usize = 4;
pub(super) const KEY_USTACK: usize = 8;
pub(super) const KEY_KSTACK: usize = 12;
pub(super) const KEY_COMM: usize = 16;
const COMM_LEN: i32 = 16;
// Stack frame of the program: key at fp-32, a u64 value at fp-40, a u32
// scratch (map keys of one word) at fp-48; the unwinder keeps the context
// at fp-56.
pub(super) const FP_KEY: i16 = -32;
pub(super) const FP_VALUE: i16 = -40;
pub(super) const FP_SCRATCH: i16 = -48;

pub(super) fn fd(map: &MapHandle) -> i32 {
    map.as_fd().as_raw_fd()
}

/// A generated program: its instructions and where its subprograms start.
#[derive(Debug)]
pub(super) struct Generated {
    pub(super) insns: Vec<Insn>,
    /// First instruction of the unwinder's frame callback, if any.
    pub(super) callback: Option<usize>,
}

/// The label of the unwinder's frame callback, placed after the program.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unwinding {
    pub(super) callback: Label,
}

impl Unwinding {
    /// The callback's label in `asm`.
    pub(super) fn new(asm: &mut Asm) -> Self {
        Self {
            callback: asm.label(),
        }
    }

    /// Ends the program: appends the frame callback when the unwinder
    /// calls it, then assembles.
    pub(super) fn finish(self, mut asm: Asm, maps: &Maps) -> Result<Generated> {
        let mut callback = None;
        if let Some(unwind) = &maps.unwind {
            if asm.is_used(self.callback) {
                callback = Some(asm.len());
                unwinder::emit_callback(&mut asm, &unwind.rows, self.callback);
            }
        }
        Ok(Generated {
            insns: asm.finish()?,
            callback,
        })
    }
}

/// Generates the sampler program for `config` over `maps`.
pub(super) fn program(config: &SamplerConfig, maps: &Maps) -> Result<Generated> {
    let mut asm = Asm::new();
    let exit = asm.label();
    let unwinding = Unwinding::new(&mut asm);

    current_task(&mut asm);
    if !config.include_idle {
        asm.jump(Insn::jmp_imm(Cond::Eq, R7, 0, 0), exit);
    }
    drop_filtered(&mut asm, config, maps, exit);
    note_seen(&mut asm, maps);
    build_key(&mut asm, config);

    match &maps.buffers {
        Buffers::Single(only) => record(&mut asm, config, maps, only, exit, unwinding),
        Buffers::Double { pair, active } => {
            asm.emit([Insn::store_imm(Size::W, R10, FP_SCRATCH, 0)]);
            lookup_scratch(&mut asm, active);
            asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), exit);
            asm.emit([Insn::load(Size::W, R0, R0, 0)]);
            let use_second = asm.label();
            asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), use_second);
            record(&mut asm, config, maps, &pair[0], exit, unwinding);
            asm.place(use_second);
            record(&mut asm, config, maps, &pair[1], exit, unwinding);
        }
    }
    asm.place(exit);
    asm.emit([Insn::mov64_imm(R0, 0), Insn::exit()]);
    unwinding.finish(asm, maps)
}

/// `r6 = ctx`, `r7 = tid`, `r8 = tgid` of the current task.
pub(super) fn current_task(asm: &mut Asm) {
    asm.emit([
        Insn::mov64_reg(R6, R1),
        Insn::call(sys::BPF_FUNC_get_current_pid_tgid),
        Insn::alu32_reg(Alu::Mov, R7, R0),
        Insn::mov64_reg(R8, R0),
        Insn::alu64_imm(Alu::Rsh, R8, 32),
    ]);
}

/// `goto skip` unless the task in r7 (tid) / r8 (tgid) is a target.
pub(super) fn drop_filtered(asm: &mut Asm, config: &SamplerConfig, maps: &Maps, skip: Label) {
    if let Some(filter) = &maps.filter {
        let id = if matches!(config.target, Target::Tids(_)) {
            R7
        } else {
            R8
        };
        asm.emit([Insn::store_reg(Size::W, R10, FP_SCRATCH, id)]);
        lookup_scratch(asm, filter);
        asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), skip);
    }
}

/// Notes the tgid in r8 in the seen-pids map, when tracked.
pub(super) fn note_seen(asm: &mut Asm, maps: &Maps) {
    if let Some(seen) = &maps.seen_pids {
        // seen[tgid] = 1 unless present; failures (map full) only delay a capture.
        asm.emit([
            Insn::store_reg(Size::W, R10, FP_SCRATCH, R8),
            Insn::store_imm(Size::DW, R10, FP_VALUE, 1),
        ]);
        update(asm, seen, FP_SCRATCH, sys::BPF_NOEXIST as i32);
    }
}

/// Builds the count key of the current task (tgid r8, tid r7) at `fp-32`,
/// without its stacks.
pub(super) fn build_key(asm: &mut Asm, config: &SamplerConfig) {
    // The key, zeroed whole so padding never differs.
    for off in (FP_KEY..0).step_by(8) {
        asm.emit([Insn::store_imm(Size::DW, R10, off, 0)]);
    }
    asm.emit([Insn::store_reg(Size::W, R10, key_field(KEY_PID), R8)]);
    if config.per_thread {
        asm.emit([Insn::store_reg(Size::W, R10, key_field(KEY_TID), R7)]);
    }
    asm.emit([
        Insn::mov64_reg(R1, R10),
        Insn::alu64_imm(Alu::Add, R1, key_field(KEY_COMM) as i32),
        Insn::mov64_imm(R2, COMM_LEN),
        Insn::call(sys::BPF_FUNC_get_current_comm),
    ]);
}

/// Records the stacks and bumps the count in `buffer`, then `goto exit`.
fn record(
    asm: &mut Asm,
    config: &SamplerConfig,
    maps: &Maps,
    buffer: &Buffer,
    exit: Label,
    unwinding: Unwinding,
) {
    record_stacks(asm, config, maps, buffer, unwinding);
    asm.emit([Insn::store_imm(Size::DW, R10, FP_VALUE, 1)]);
    add_count(asm, maps, &buffer.counts, exit);
}

/// Records the current task's stacks (context in r6) into `buffer`'s stack
/// maps and their ids into the key at `fp-32`; counts failures.
pub(super) fn record_stacks(
    asm: &mut Asm,
    config: &SamplerConfig,
    maps: &Maps,
    buffer: &Buffer,
    unwinding: Unwinding,
) {
    let stacks = [
        (
            config.user_stacks,
            StackKind::USER,
            &buffer.user_stacks,
            sys::BPF_F_USER_STACK,
        ),
        (
            config.kernel_stacks,
            StackKind::KERNEL,
            &buffer.kernel_stacks,
            0,
        ),
    ];
    for (wanted, kind, map, flags) in stacks {
        if !wanted {
            asm.emit([Insn::store_imm(
                Size::W,
                R10,
                key_field(kind.slot),
                -libc::EFAULT,
            )]);
        } else if let (KEY_USTACK, Some(unwind)) = (kind.slot, &maps.unwind) {
            let regs = match config.off_cpu {
                Some(_) => UserRegs::SavedAtKernelEntry,
                None => UserRegs::Sample,
            };
            unwinder::emit(asm, maps, &unwind.maps(buffer), unwinding.callback, regs);
        } else {
            let scratch = &maps.stack_scratch;
            stack_store::emit_get_stack(asm, &maps.counters, scratch, map, flags.into(), kind);
        }
    }
}

/// `counts[key at fp-32] += u64 at fp-40`, inserting the key when it is
/// new, counted as recorded (or as a full map); then `goto exit`.
pub(super) fn add_count(asm: &mut Asm, maps: &Maps, counts: &MapHandle, exit: Label) {
    let add = asm.label();
    let recorded = asm.label();
    lookup_key(asm, counts);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), add);
    update(asm, counts, FP_KEY, sys::BPF_NOEXIST as i32);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), recorded);
    // Another CPU inserted the same key first: add to its entry instead.
    // (32-bit test: before 6.4 the inlined update's error is zero-extended.)
    let full = asm.label();
    asm.jump(Insn::jmp32_imm(Cond::Ne, R0, -libc::EEXIST, 0), full);
    lookup_key(asm, counts);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), add);
    asm.place(full);
    bump(asm, &maps.counters, Counter::CountMapFull, exit);
    asm.place(add);
    asm.emit([
        Insn::load(Size::DW, R1, R10, FP_VALUE),
        Insn::atomic_add(Size::DW, R0, 0, R1),
    ]);
    asm.place(recorded);
    bump(asm, &maps.counters, Counter::Recorded, exit);
}

/// Offset of a key field in the program's stack frame.
pub(super) fn key_field(offset: usize) -> i16 {
    FP_KEY + offset as i16
}

/// `r0 = map[key]` for the key at `fp-32`.
fn lookup_key(asm: &mut Asm, map: &MapHandle) {
    asm.emit(Insn::ld_map_fd(R1, fd(map)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_KEY as i32),
        Insn::call(sys::BPF_FUNC_map_lookup_elem),
    ]);
}

/// `r0 = map[scratch word]`.
pub(super) fn lookup_scratch(asm: &mut Asm, map: &MapHandle) {
    asm.emit(Insn::ld_map_fd(R1, fd(map)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_SCRATCH as i32),
        Insn::call(sys::BPF_FUNC_map_lookup_elem),
    ]);
}

/// `r0 = update(map, fp+key_at, fp-40, flags)`.
pub(super) fn update(asm: &mut Asm, map: &MapHandle, key_at: i16, flags: i32) {
    asm.emit(Insn::ld_map_fd(R1, fd(map)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, key_at as i32),
        Insn::mov64_reg(R3, R10),
        Insn::alu64_imm(Alu::Add, R3, FP_VALUE as i32),
        Insn::mov64_imm(R4, flags),
        Insn::call(sys::BPF_FUNC_map_update_elem),
    ]);
}

/// `counters[counter] += 1` (per CPU, no atomics needed), then `goto next`.
pub(super) fn bump(asm: &mut Asm, counters: &MapHandle, counter: Counter, next: Label) {
    asm.emit([Insn::store_imm(Size::W, R10, FP_SCRATCH, counter as i32)]);
    lookup_scratch(asm, counters);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), next);
    asm.emit([
        Insn::load(Size::DW, R1, R0, 0),
        Insn::alu64_imm(Alu::Add, R1, 1),
        Insn::store_reg(Size::DW, R0, 0, R1),
    ]);
    asm.goto(next);
}
