//! Stacks stored by the program under a hash of their addresses.
//!
//! Every stack, kernel or user, from `bpf_get_stack` or the unwinder, goes
//! into a hash map keyed by 31 bits of its 64-bit FNV-1a hash; the value is
//! the addresses (zero after the last) and then the whole hash, which tells
//! two stacks whose keys collide apart (the second is then counted as a
//! collision, as rare as two equal 31-bit keys). Unlike the kernel's
//! stack-trace maps, these maps can allocate entries as they are used
//! ([`super::allocation`]), so memory follows the stacks seen, not the
//! capacity.

use libbpf_rs::MapHandle;
use libbpf_sys as sys;

use super::codegen::{bump, fd, key_field, lookup_scratch, FP_SCRATCH, KEY_KSTACK, KEY_USTACK};
use super::{Counter, MAX_DEPTH};
use crate::insn::R10;
use crate::insn::{Alu, Asm, Cond, Insn, Label, Size, R0, R1, R2, R3, R4, R6, R9};

/// Bytes of a stored stack: the frames, then the stack's 64-bit hash.
pub(super) const STORED_STACK_SIZE: u32 = 8 * (MAX_DEPTH as u32 + 1);
/// Offset of the hash in a stored stack.
pub(super) const STACK_HASH: i16 = 8 * MAX_DEPTH as i16;
/// FNV-1a 64-bit offset basis, the stack hash's seed.
pub(super) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub(super) const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// What a stored stack is and where its failures are counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct StackKind {
    /// Offset of its id in the count key.
    pub(super) slot: usize,
    pub(super) map_full: Counter,
    pub(super) collision: Counter,
}

impl StackKind {
    pub(super) const USER: StackKind = StackKind {
        slot: KEY_USTACK,
        map_full: Counter::UserStackMapFull,
        collision: Counter::UserStackCollision,
    };
    pub(super) const KERNEL: StackKind = StackKind {
        slot: KEY_KSTACK,
        map_full: Counter::KernelStackMapFull,
        collision: Counter::KernelStackCollision,
    };
}

/// Stores the stack at `r9 + frames` (its hash in r1, already also at
/// `r9 + frames + STACK_HASH`) into `stacks` and its id into the key's
/// slot; falls through once stored, else counts why and jumps to `end`.
pub(super) fn store(
    asm: &mut Asm,
    counters: &MapHandle,
    stacks: &MapHandle,
    frames: i16,
    kind: StackKind,
    end: Label,
) {
    asm.emit([
        Insn::mov64_reg(R2, R1),
        Insn::alu64_imm(Alu::Rsh, R2, 32),
        Insn::alu64_reg(Alu::Xor, R1, R2),
        Insn::alu64_imm(Alu::And, R1, 0x7fff_ffff),
        Insn::store_reg(Size::W, R10, key_field(kind.slot), R1),
    ]);
    asm.emit(Insn::ld_map_fd(R1, fd(stacks)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, key_field(kind.slot) as i32),
        Insn::mov64_reg(R3, R9),
        Insn::alu64_imm(Alu::Add, R3, frames as i32),
        Insn::mov64_imm(R4, sys::BPF_NOEXIST as i32),
        Insn::call(sys::BPF_FUNC_map_update_elem),
    ]);
    // An existing entry is this very stack when its full hash matches.
    let stored = asm.label();
    let exists = asm.label();
    let collided = asm.label();
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), stored);
    // The inlined update returned an `int` before Linux 6.4: its error is
    // zero-extended there, so only the low 32 bits are compared.
    asm.jump(Insn::jmp32_imm(Cond::Eq, R0, -libc::EEXIST, 0), exists);
    asm.emit([Insn::store_imm(
        Size::W,
        R10,
        key_field(kind.slot),
        -libc::ENOMEM,
    )]);
    bump(asm, counters, kind.map_full, end);
    asm.place(exists);
    asm.emit(Insn::ld_map_fd(R1, fd(stacks)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, key_field(kind.slot) as i32),
        Insn::call(sys::BPF_FUNC_map_lookup_elem),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), collided);
    asm.emit([
        Insn::load(Size::DW, R1, R0, STACK_HASH),
        Insn::load(Size::DW, R2, R9, frames + STACK_HASH),
    ]);
    asm.jump(Insn::jmp_reg(Cond::Eq, R1, R2, 0), stored);
    asm.place(collided);
    asm.emit([Insn::store_imm(
        Size::W,
        R10,
        key_field(kind.slot),
        -libc::EEXIST,
    )]);
    bump(asm, counters, kind.collision, end);
    asm.place(stored);
}

/// Stores the stack `bpf_get_stack(ctx in r6, flags)` gives (the kernel's,
/// or the user's by frame pointers with `BPF_F_USER_STACK`) into `stacks`,
/// through the per-CPU `scratch` value, and its id into the key's slot:
/// `-EFAULT` there when there is no such stack.
pub(super) fn emit_get_stack(
    asm: &mut Asm,
    counters: &MapHandle,
    scratch: &MapHandle,
    stacks: &MapHandle,
    flags: u64,
    kind: StackKind,
) {
    let absent = asm.label();
    let end = asm.label();
    asm.emit([Insn::store_imm(Size::W, R10, FP_SCRATCH, 0)]);
    lookup_scratch(asm, scratch);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), absent);
    asm.emit([
        Insn::mov64_reg(R9, R0),
        Insn::mov64_reg(R1, R6),
        Insn::mov64_reg(R2, R9),
        Insn::mov64_imm(R3, STACK_HASH as i32),
        Insn::mov64_imm(R4, flags as i32),
        Insn::call(sys::BPF_FUNC_get_stack),
    ]);
    // The helper zeroes what it did not fill; nothing filled is no stack.
    asm.jump(Insn::jmp_imm(Cond::Sle, R0, 0, 0), absent);
    // r1 = FNV-1a over the frames up to the first zero; r3 = the prime.
    let hashed = asm.label();
    asm.emit(Insn::ld_imm64(R1, FNV_OFFSET));
    asm.emit(Insn::ld_imm64(R3, FNV_PRIME));
    for frame in 0..MAX_DEPTH as i16 {
        asm.emit([Insn::load(Size::DW, R2, R9, 8 * frame)]);
        asm.jump(Insn::jmp_imm(Cond::Eq, R2, 0, 0), hashed);
        asm.emit([
            Insn::alu64_reg(Alu::Xor, R1, R2),
            Insn::alu64_reg(Alu::Mul, R1, R3),
        ]);
    }
    asm.place(hashed);
    asm.emit([Insn::store_reg(Size::DW, R9, STACK_HASH, R1)]);
    store(asm, counters, stacks, 0, kind, end);
    asm.goto(end);
    asm.place(absent);
    asm.emit([Insn::store_imm(
        Size::W,
        R10,
        key_field(kind.slot),
        -libc::EFAULT,
    )]);
    asm.place(end);
}
