//! The in-kernel user-stack unwinder, emitted into the sampler program.
//!
//! It walks the user stack from the sampled registers with the rows of
//! [`super::tables`], as `scorch_unwind::unwind` does in user space, and
//! stores the return addresses into the buffer's user-stack map under a
//! hash of the addresses, so the count key refers to it like a stack id.
//!
//! Shape of the code: straight-line setup, then `bpf_loop` (Linux 5.17+)
//! calls a callback subprogram once per frame, at most [`MAX_DEPTH`] times
//! ([`emit_callback`]); in it, the search of the process's
//! mappings (7 unrolled halvings of at most 128) and of the file's rows
//! (21 unrolled halvings: tables up to 2M rows), then the rules. Every
//! value that must survive a helper call or the next frame lives in a
//! per-CPU scratch value (`S`, in r9); r7 counts frames, r8 points at the
//! process's mappings, r6 holds the current row. The callback gets S and
//! the mappings through its context, a pointer into the program's stack.
//! Branches are few (the searches are branch-free) because the verifier
//! keeps every untaken one pending while it walks the body.
//!
//! (`may_goto`, 6.9+, bounded the same body in-line no cheaper: about
//! 2 µs a sample either way on a 14-frame stack, in one noisy run.)
//!
//! Registers come from the perf event's context when the sample hit user
//! mode, else from `bpf_task_pt_regs` (the user registers saved at the last
//! entry into the kernel); off-CPU, always from the latter ([`UserRegs`]).

use libbpf_sys as sys;

use super::codegen::{bump, fd, key_field, FP_SCRATCH, KEY_PID, KEY_USTACK};
use super::maps::Maps;
use super::stack_store::{self, StackKind, FNV_OFFSET, FNV_PRIME, STACK_HASH, STORED_STACK_SIZE};
use super::tables::{
    cfa_kind, rbp_kind, MAP_END, MAP_FIRST_ROW, MAP_ROW_COUNT, MAP_START, MAP_VADDR, MAX_MAPPINGS,
    ROW_CFA_KIND, ROW_CFA_OFFSET, ROW_PC, ROW_RBP_KIND, ROW_RBP_OFFSET, ROW_STEPS,
};
use super::{Counter, MAX_DEPTH};
use crate::insn::{Alu, Asm, Cond, Insn, Label, Size, R0, R1, R10, R2, R3, R4, R5, R6, R7, R8, R9};
use libbpf_rs::MapHandle;
use scorch_unwind::{SIGNAL_RBP, SIGNAL_RIP, SIGNAL_RSP};

// Layout of the scratch value S.
const S_RIP: i16 = 0;
const S_RSP: i16 = 8;
const S_RBP: i16 = 16;
const S_HASH: i16 = 24;
const S_VADDR: i16 = 32;
const S_LO: i16 = 40;
const S_HI: i16 = 48;
const S_WORD: i16 = 56;
const S_RBP_OK: i16 = 64;
const S_EXACT: i16 = 72;
const S_FLAGS: i16 = 80;
const S_CFA: i16 = 88;
const S_COUNT: i16 = 96;
const S_REGS: i16 = 104;
/// Bytes of `struct pt_regs` on x86_64.
const PT_REGS_SIZE: i32 = 168;
const S_FRAMES: i16 = S_REGS + PT_REGS_SIZE as i16;
/// Bytes of the scratch value: state, then a stored user stack.
pub(super) const SCRATCH_SIZE: u32 = S_FRAMES as u32 + STORED_STACK_SIZE;

// Offsets in `struct pt_regs` (x86_64), which starts `bpf_perf_event_data`.
const PT_RBP: i16 = 32;
const PT_RIP: i16 = 128;
const PT_CS: i16 = 136;
const PT_RSP: i16 = 152;

/// Halvings of the mapping search: `MAX_MAPPINGS` is 2^7.
const MAPPING_STEPS: usize = 7;
/// Offset of the mappings in a `procs` value.
const PROC_MAPPINGS: i16 = 8;

/// S.flags bit: a frame was found by frame pointer.
const FLAG_FRAME_POINTER: i32 = 1;
/// S.flags bit: the process had no tables loaded.
const FLAG_NO_TABLES: i32 = 2;

/// Stack slot keeping the context (r6) while the unwinder uses r6.
const FP_CTX: i16 = -56;
/// Stack slots handed to the `bpf_loop` callback: S, then the mappings.
const FP_LOOP_SCRATCH: i16 = -72;
const FP_LOOP_MAPPINGS: i16 = -64;

/// Where the walk's first user registers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserRegs {
    /// The perf event's context (`pt_regs`) when the sample hit user mode,
    /// else those saved at the task's last entry into the kernel.
    Sample,
    /// Those saved at the task's last entry into the kernel
    /// (`bpf_task_pt_regs`): a program not on a perf event, such as the
    /// off-CPU one on `sched_switch`, always runs in kernel mode.
    SavedAtKernelEntry,
}

/// The maps the unwinder reads and writes.
#[derive(Debug)]
pub(super) struct UnwindMaps<'a> {
    pub(super) scratch: &'a MapHandle,
    pub(super) procs: &'a MapHandle,
    pub(super) empty_proc: &'a MapHandle,
    pub(super) stacks: &'a MapHandle,
}

fn ld(reg: crate::insn::Reg, off: i16) -> Insn {
    Insn::load(Size::DW, reg, R9, off)
}

fn st(off: i16, reg: crate::insn::Reg) -> Insn {
    Insn::store_reg(Size::DW, R9, off, reg)
}

fn st_fp(off: i16, reg: crate::insn::Reg) -> Insn {
    Insn::store_reg(Size::DW, R10, off, reg)
}

/// `r0 = map[u32 at fp+FP_SCRATCH]`.
fn lookup(asm: &mut Asm, map: &MapHandle) {
    asm.emit(Insn::ld_map_fd(R1, fd(map)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_SCRATCH as i32),
        Insn::call(sys::BPF_FUNC_map_lookup_elem),
    ]);
}

/// `S.word = user u64 at r3`, or `goto fail`.
fn read_user(asm: &mut Asm, fail: Label) {
    asm.emit([
        Insn::mov64_reg(R1, R9),
        Insn::alu64_imm(Alu::Add, R1, S_WORD as i32),
        Insn::mov64_imm(R2, 8),
        Insn::call(sys::BPF_FUNC_probe_read_user),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), fail);
}

/// Emits the unwinder: on exit the key's user-stack slot holds the stack's
/// id in `maps.stacks`, or `-EFAULT` when there is no user stack, and r6 is
/// the context again. The program must place `callback` with
/// [`emit_callback`] after its exit.
pub(super) fn emit(
    asm: &mut Asm,
    maps: &Maps,
    unwind: &UnwindMaps,
    callback: Label,
    regs: UserRegs,
) {
    let absent = asm.label();
    let end = asm.label();
    let done = asm.label();

    asm.emit([Insn::store_reg(Size::DW, R10, FP_CTX, R6)]);
    asm.emit([Insn::store_imm(Size::W, R10, FP_SCRATCH, 0)]);
    lookup(asm, unwind.scratch);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), absent);
    asm.emit([Insn::mov64_reg(R9, R0)]);

    // The user registers.
    let kernel_mode = asm.label();
    let have_regs = asm.label();
    if regs == UserRegs::Sample {
        asm.emit([
            Insn::load(Size::DW, R1, R6, PT_CS),
            Insn::alu64_imm(Alu::And, R1, 3),
        ]);
        asm.jump(Insn::jmp_imm(Cond::Ne, R1, 3, 0), kernel_mode);
        for (from, to) in [(PT_RIP, S_RIP), (PT_RSP, S_RSP), (PT_RBP, S_RBP)] {
            asm.emit([Insn::load(Size::DW, R1, R6, from), st(to, R1)]);
        }
        asm.goto(have_regs);
    }
    asm.place(kernel_mode);
    asm.emit([
        Insn::call(sys::BPF_FUNC_get_current_task_btf),
        Insn::mov64_reg(R1, R0),
        Insn::call(sys::BPF_FUNC_task_pt_regs),
        Insn::mov64_reg(R3, R0),
        Insn::mov64_reg(R1, R9),
        Insn::alu64_imm(Alu::Add, R1, S_REGS as i32),
        Insn::mov64_imm(R2, PT_REGS_SIZE),
        Insn::call(sys::BPF_FUNC_probe_read_kernel),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), absent);
    for (from, to) in [(PT_RIP, S_RIP), (PT_RSP, S_RSP), (PT_RBP, S_RBP)] {
        asm.emit([ld(R1, S_REGS + from), st(to, R1)]);
    }
    asm.place(have_regs);
    asm.emit(Insn::ld_imm64(R1, FNV_OFFSET));
    asm.emit([
        st(S_HASH, R1),
        Insn::mov64_imm(R1, 1),
        st(S_RBP_OK, R1),
        st(S_EXACT, R1),
        Insn::mov64_imm(R1, 0),
        st(S_FLAGS, R1),
    ]);

    // r8 = the process's mappings, or the empty value (frame pointers only).
    let have_proc = asm.label();
    asm.emit([
        Insn::load(Size::W, R1, R10, key_field(KEY_PID)),
        Insn::store_reg(Size::W, R10, FP_SCRATCH, R1),
    ]);
    lookup(asm, unwind.procs);
    asm.emit([Insn::mov64_reg(R8, R0)]);
    asm.jump(Insn::jmp_imm(Cond::Ne, R8, 0, 0), have_proc);
    asm.emit([
        Insn::mov64_imm(R1, FLAG_NO_TABLES),
        st(S_FLAGS, R1),
        Insn::store_imm(Size::W, R10, FP_SCRATCH, 0),
    ]);
    lookup(asm, unwind.empty_proc);
    asm.emit([Insn::mov64_reg(R8, R0)]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R8, 0, 0), absent);
    asm.place(have_proc);
    // Frames so far, in S so that no register differs from one frame to the next.
    asm.emit([Insn::mov64_imm(R7, 0), st(S_COUNT, R7)]);

    // bpf_loop(MAX_DEPTH, callback, &(S, mappings), 0)
    asm.emit([
        st_fp(FP_LOOP_SCRATCH, R9),
        st_fp(FP_LOOP_MAPPINGS, R8),
        Insn::mov64_imm(R1, MAX_DEPTH as i32),
    ]);
    asm.func_addr(R2, callback);
    asm.emit([
        Insn::mov64_reg(R3, R10),
        Insn::alu64_imm(Alu::Add, R3, FP_LOOP_SCRATCH as i32),
        Insn::mov64_imm(R4, 0),
        Insn::call(sys::BPF_FUNC_loop),
    ]);

    // S.count frames were stored: terminate, then store the stack under its hash.
    asm.place(done);
    asm.emit([ld(R7, S_COUNT)]);
    let terminated = asm.label();
    asm.jump(Insn::jmp_imm(Cond::Ge, R7, MAX_DEPTH as i32, 0), terminated);
    asm.emit([
        Insn::mov64_reg(R2, R7),
        Insn::alu64_imm(Alu::Lsh, R2, 3),
        Insn::mov64_reg(R3, R9),
        Insn::alu64_reg(Alu::Add, R3, R2),
        Insn::store_imm(Size::DW, R3, S_FRAMES, 0),
    ]);
    asm.place(terminated);
    asm.jump(Insn::jmp_imm(Cond::Eq, R7, 0, 0), absent);
    asm.emit([ld(R1, S_HASH), st(S_FRAMES + STACK_HASH, R1)]);
    let kind = StackKind::USER;
    stack_store::store(asm, &maps.counters, unwind.stacks, S_FRAMES, kind, end);
    for (flag, counter) in [
        (FLAG_FRAME_POINTER, Counter::UserFramePointer),
        (FLAG_NO_TABLES, Counter::UserWithoutTables),
    ] {
        let counted = asm.label();
        asm.emit([ld(R1, S_FLAGS), Insn::alu64_imm(Alu::And, R1, flag)]);
        asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), counted);
        bump(asm, &maps.counters, counter, counted);
        asm.place(counted);
    }
    asm.goto(end);

    asm.place(absent);
    asm.emit([Insn::store_imm(
        Size::W,
        R10,
        key_field(KEY_USTACK),
        -libc::EFAULT,
    )]);
    asm.place(end);
    asm.emit([Insn::load(Size::DW, R6, R10, FP_CTX)]);
}

/// Emits the callback `bpf_loop` calls once per frame, at `callback`:
/// its context is the caller's stack at `FP_LOOP_SCRATCH` (S, then the
/// process's mappings); it returns 0 after a frame, 1 when the walk is over.
pub(super) fn emit_callback(asm: &mut Asm, rows: &MapHandle, callback: Label) {
    let next = asm.label();
    let stop = asm.label();
    asm.place(callback);
    asm.emit([
        Insn::load(Size::DW, R9, R2, 0),
        Insn::load(Size::DW, R8, R2, FP_LOOP_MAPPINGS - FP_LOOP_SCRATCH),
    ]);
    frame(asm, rows, next, stop);
    asm.place(next);
    asm.emit([Insn::mov64_imm(R0, 0), Insn::exit()]);
    asm.place(stop);
    asm.emit([Insn::mov64_imm(R0, 1), Insn::exit()]);
}

/// One frame of the walk (S in r9, the process's mappings in r8): stores
/// S.rip as frame S.count and steps to the caller's registers, then
/// `goto next`; `goto stop` when the walk is over.
fn frame(asm: &mut Asm, rows: &MapHandle, next: Label, stop: Label) {
    let fp = asm.label();
    asm.emit([ld(R7, S_COUNT)]);
    asm.jump(Insn::jmp_imm(Cond::Ge, R7, MAX_DEPTH as i32, 0), stop);
    asm.emit([ld(R1, S_RIP)]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), stop);
    asm.emit([
        // frames[i] = rip; hash = (hash ^ rip) * prime; i += 1
        Insn::mov64_reg(R2, R7),
        Insn::alu64_imm(Alu::Lsh, R2, 3),
        Insn::mov64_reg(R3, R9),
        Insn::alu64_reg(Alu::Add, R3, R2),
        Insn::store_reg(Size::DW, R3, S_FRAMES, R1),
        ld(R2, S_HASH),
        Insn::alu64_reg(Alu::Xor, R2, R1),
    ]);
    asm.emit(Insn::ld_imm64(R3, FNV_PRIME));
    asm.emit([
        Insn::alu64_reg(Alu::Mul, R2, R3),
        st(S_HASH, R2),
        Insn::alu64_imm(Alu::Add, R7, 1),
        st(S_COUNT, R7),
        // r1 = lookup address: rip, or rip - 1 for a return address.
        ld(R2, S_EXACT),
        Insn::alu64_reg(Alu::Add, R1, R2),
        Insn::alu64_imm(Alu::Sub, R1, 1),
        // Search the mappings: r3 = lo, r4 = hi (exclusive).
        Insn::load(Size::W, R4, R8, 0),
        Insn::mov64_imm(R3, 0),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R4, 0, 0), fp);
    // Branch-free halvings: the verifier walks this loop once per frame
    // and keeps every untaken branch pending meanwhile, so branches are few.
    // `(a - b) >> 63` is 1 when b > a (addresses are below 2^63).
    for _ in 0..MAPPING_STEPS {
        asm.emit([
            Insn::mov64_reg(R5, R3),
            Insn::alu64_reg(Alu::Add, R5, R4),
            Insn::alu64_imm(Alu::Rsh, R5, 1),
            Insn::alu64_imm(Alu::And, R5, MAX_MAPPINGS as i32 - 1),
            Insn::mov64_reg(R0, R5),
            Insn::alu64_imm(Alu::Lsh, R0, 5),
            Insn::alu64_reg(Alu::Add, R0, R8),
            Insn::load(Size::DW, R0, R0, PROC_MAPPINGS + MAP_START),
            // r0 = 1 when the mapping starts above the address: hi = mid; else lo = mid.
            Insn::mov64_reg(R2, R1),
            Insn::alu64_reg(Alu::Sub, R2, R0),
            Insn::alu64_imm(Alu::Rsh, R2, 63),
            Insn::mov64_reg(R0, R5),
            Insn::alu64_reg(Alu::Sub, R0, R4),
            Insn::alu64_reg(Alu::Mul, R0, R2),
            Insn::alu64_reg(Alu::Add, R4, R0),
            Insn::alu64_imm(Alu::Xor, R2, 1),
            Insn::mov64_reg(R0, R5),
            Insn::alu64_reg(Alu::Sub, R0, R3),
            Insn::alu64_reg(Alu::Mul, R0, R2),
            Insn::alu64_reg(Alu::Add, R3, R0),
        ]);
    }
    asm.emit([
        Insn::alu64_imm(Alu::And, R3, MAX_MAPPINGS as i32 - 1),
        Insn::alu64_imm(Alu::Lsh, R3, 5),
        Insn::alu64_reg(Alu::Add, R3, R8),
        Insn::load(Size::DW, R0, R3, PROC_MAPPINGS + MAP_START),
    ]);
    asm.jump(Insn::jmp_reg(Cond::Gt, R0, R1, 0), fp);
    asm.emit([Insn::load(Size::DW, R0, R3, PROC_MAPPINGS + MAP_END)]);
    asm.jump(Insn::jmp_reg(Cond::Ge, R1, R0, 0), fp);
    asm.emit([Insn::load(Size::W, R4, R3, PROC_MAPPINGS + MAP_ROW_COUNT)]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R4, 0, 0), fp);
    asm.emit([
        Insn::load(Size::W, R5, R3, PROC_MAPPINGS + MAP_FIRST_ROW),
        // vaddr = address - start + ELF address of start
        Insn::load(Size::DW, R0, R3, PROC_MAPPINGS + MAP_START),
        Insn::alu64_reg(Alu::Sub, R1, R0),
        Insn::load(Size::DW, R0, R3, PROC_MAPPINGS + MAP_VADDR),
        Insn::alu64_reg(Alu::Add, R1, R0),
        st(S_VADDR, R1),
        st(S_LO, R5),
        Insn::alu64_reg(Alu::Add, R4, R5),
        st(S_HI, R4),
    ]);
    // Search the rows: the last with pc <= vaddr.
    for _ in 0..ROW_STEPS {
        asm.emit([
            ld(R1, S_LO),
            ld(R2, S_HI),
            Insn::alu64_reg(Alu::Add, R1, R2),
            Insn::alu64_imm(Alu::Rsh, R1, 1),
            Insn::mov64_reg(R6, R1),
            Insn::store_reg(Size::W, R10, FP_SCRATCH, R1),
        ]);
        lookup(asm, rows);
        asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), fp);
        asm.emit([
            // r2 = 1 when the row starts above vaddr: hi = mid; else lo = mid.
            Insn::load(Size::DW, R1, R0, ROW_PC),
            ld(R2, S_VADDR),
            Insn::alu64_reg(Alu::Sub, R2, R1),
            Insn::alu64_imm(Alu::Rsh, R2, 63),
            ld(R3, S_HI),
            Insn::mov64_reg(R4, R6),
            Insn::alu64_reg(Alu::Sub, R4, R3),
            Insn::alu64_reg(Alu::Mul, R4, R2),
            Insn::alu64_reg(Alu::Add, R3, R4),
            st(S_HI, R3),
            Insn::alu64_imm(Alu::Xor, R2, 1),
            ld(R3, S_LO),
            Insn::mov64_reg(R4, R6),
            Insn::alu64_reg(Alu::Sub, R4, R3),
            Insn::alu64_reg(Alu::Mul, R4, R2),
            Insn::alu64_reg(Alu::Add, R3, R4),
            st(S_LO, R3),
        ]);
    }
    asm.emit([ld(R1, S_LO), Insn::store_reg(Size::W, R10, FP_SCRATCH, R1)]);
    lookup(asm, rows);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), fp);
    asm.emit([
        Insn::mov64_reg(R6, R0),
        Insn::load(Size::DW, R1, R6, ROW_PC),
        ld(R2, S_VADDR),
    ]);
    asm.jump(Insn::jmp_reg(Cond::Gt, R1, R2, 0), fp);

    // The rules of the row.
    let signal = asm.label();
    let cfa_rsp = asm.label();
    let cfa_rbp = asm.label();
    let cfa_plt = asm.label();
    let have_cfa = asm.label();
    asm.emit([
        Insn::load(Size::B, R1, R6, ROW_CFA_KIND),
        // r2 = cfa offset, sign-extended
        Insn::load(Size::W, R2, R6, ROW_CFA_OFFSET),
        Insn::alu64_imm(Alu::Lsh, R2, 32),
        Insn::alu64_imm(Alu::Arsh, R2, 32),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, cfa_kind::MISSING, 0), fp);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, cfa_kind::SIGNAL, 0), signal);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, cfa_kind::RSP, 0), cfa_rsp);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, cfa_kind::RBP, 0), cfa_rbp);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, cfa_kind::PLT, 0), cfa_plt);
    // END, UNSUPPORTED: the walk is over.
    asm.goto(stop);
    asm.place(cfa_rsp);
    asm.emit([ld(R3, S_RSP), Insn::alu64_reg(Alu::Add, R3, R2)]);
    asm.goto(have_cfa);
    asm.place(cfa_rbp);
    asm.emit([ld(R3, S_RBP_OK)]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R3, 0, 0), stop);
    asm.emit([ld(R3, S_RBP), Insn::alu64_reg(Alu::Add, R3, R2)]);
    asm.goto(have_cfa);
    asm.place(cfa_plt);
    asm.emit([
        ld(R3, S_RSP),
        Insn::alu64_reg(Alu::Add, R3, R2),
        ld(R4, S_RIP),
        Insn::alu64_imm(Alu::And, R4, 15),
        Insn::load(Size::H, R5, R6, ROW_RBP_OFFSET),
    ]);
    asm.jump(Insn::jmp_reg(Cond::Lt, R4, R5, 0), have_cfa);
    asm.emit([Insn::alu64_imm(Alu::Add, R3, 8)]);
    asm.place(have_cfa);
    asm.emit([st(S_CFA, R3), ld(R4, S_RSP)]);
    asm.jump(Insn::jmp_reg(Cond::Le, R3, R4, 0), stop);
    // The caller's RBP.
    let rbp_done = asm.label();
    let rbp_read = asm.label();
    asm.emit([Insn::load(Size::B, R1, R6, ROW_RBP_KIND)]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, rbp_kind::SAME, 0), rbp_done);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, rbp_kind::AT_CFA, 0), rbp_read);
    asm.emit([Insn::mov64_imm(R1, 0), st(S_RBP_OK, R1)]);
    asm.goto(rbp_done);
    asm.place(rbp_read);
    asm.emit([
        Insn::load(Size::H, R3, R6, ROW_RBP_OFFSET),
        Insn::alu64_imm(Alu::Lsh, R3, 48),
        Insn::alu64_imm(Alu::Arsh, R3, 48),
        ld(R1, S_CFA),
        Insn::alu64_reg(Alu::Add, R3, R1),
    ]);
    read_user(asm, stop);
    // A saved RBP is known again, even after a frame that lost it.
    asm.emit([
        ld(R1, S_WORD),
        st(S_RBP, R1),
        Insn::mov64_imm(R1, 1),
        st(S_RBP_OK, R1),
    ]);
    asm.place(rbp_done);
    // The return address, at CFA - 8; the caller's RSP is the CFA.
    asm.emit([ld(R3, S_CFA), Insn::alu64_imm(Alu::Sub, R3, 8)]);
    read_user(asm, stop);
    asm.emit([
        ld(R1, S_WORD),
        st(S_RIP, R1),
        ld(R1, S_CFA),
        st(S_RSP, R1),
        Insn::mov64_imm(R1, 0),
        st(S_EXACT, R1),
    ]);
    asm.goto(next);

    // A signal frame: the interrupted registers are in the ucontext at RSP.
    asm.place(signal);
    asm.emit([
        ld(R3, S_RSP),
        Insn::alu64_imm(Alu::Add, R3, SIGNAL_RBP as i32),
    ]);
    read_user(asm, stop);
    asm.emit([ld(R1, S_WORD), st(S_RBP, R1)]);
    asm.emit([
        ld(R3, S_RSP),
        Insn::alu64_imm(Alu::Add, R3, SIGNAL_RIP as i32),
    ]);
    read_user(asm, stop);
    asm.emit([ld(R1, S_WORD), st(S_CFA, R1)]);
    asm.emit([
        ld(R3, S_RSP),
        Insn::alu64_imm(Alu::Add, R3, SIGNAL_RSP as i32),
    ]);
    read_user(asm, stop);
    asm.emit([
        ld(R1, S_WORD),
        st(S_RSP, R1),
        ld(R1, S_CFA),
        st(S_RIP, R1),
        Insn::mov64_imm(R1, 1),
        st(S_RBP_OK, R1),
        st(S_EXACT, R1),
    ]);
    asm.goto(next);

    // No row: follow the frame pointer, and say so.
    asm.place(fp);
    asm.emit([
        ld(R1, S_FLAGS),
        Insn::alu64_imm(Alu::Or, R1, FLAG_FRAME_POINTER),
        st(S_FLAGS, R1),
        ld(R1, S_RBP_OK),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), stop);
    asm.emit([ld(R3, S_RBP), ld(R4, S_RSP)]);
    asm.jump(Insn::jmp_reg(Cond::Lt, R3, R4, 0), stop);
    asm.emit([
        Insn::mov64_reg(R1, R3),
        Insn::alu64_imm(Alu::Add, R1, 16),
        st(S_CFA, R1),
        Insn::alu64_imm(Alu::Add, R3, 8),
    ]);
    read_user(asm, stop);
    asm.emit([ld(R1, S_WORD), st(S_VADDR, R1), ld(R3, S_RBP)]);
    read_user(asm, stop);
    asm.emit([
        ld(R1, S_WORD),
        st(S_RBP, R1),
        ld(R1, S_VADDR),
        st(S_RIP, R1),
        ld(R1, S_CFA),
        st(S_RSP, R1),
        Insn::mov64_imm(R1, 0),
        st(S_EXACT, R1),
    ]);
    asm.goto(next);
}
