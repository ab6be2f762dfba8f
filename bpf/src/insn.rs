//! BPF instructions and a small assembler.
//!
//! An [`Insn`] is the kernel's 8-byte instruction (`opcode, dst:4, src:4,
//! off:16, imm:32`); `ld_imm64` takes two. [`Asm`] builds a program with
//! named forward labels so generated code never computes jump offsets by
//! hand. Opcode numbers follow `include/uapi/linux/bpf_common.h` and
//! `bpf.h`.

use std::collections::HashMap;

/// A BPF register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

/// Return value and helper results.
pub const R0: Reg = Reg(0);
/// First helper argument; the program context on entry.
pub const R1: Reg = Reg(1);
/// Second helper argument.
pub const R2: Reg = Reg(2);
/// Third helper argument.
pub const R3: Reg = Reg(3);
/// Fourth helper argument.
pub const R4: Reg = Reg(4);
/// Fifth helper argument.
pub const R5: Reg = Reg(5);
/// Callee-saved.
pub const R6: Reg = Reg(6);
/// Callee-saved.
pub const R7: Reg = Reg(7);
/// Callee-saved.
pub const R8: Reg = Reg(8);
/// Callee-saved.
pub const R9: Reg = Reg(9);
/// Read-only frame pointer.
pub const R10: Reg = Reg(10);

// Instruction classes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
// Operand source.
const K: u8 = 0x00;
const X: u8 = 0x08;
// Byte-order operation, and its to-big-endian flag.
const END: u8 = 0xd0;
const TO_BE: u8 = 0x08;
// Memory modes.
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
// Pseudo source registers of `ld_imm64`: imm is a map fd, or the offset
// of a subprogram (from the next instruction).
const PSEUDO_MAP_FD: u8 = 1;
const PSEUDO_FUNC: u8 = 4;

/// Width of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 1 byte.
    B = 0x10,
    /// 2 bytes.
    H = 0x08,
    /// 4 bytes.
    W = 0x00,
    /// 8 bytes.
    DW = 0x18,
}

/// Arithmetic operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    /// `+`
    Add = 0x00,
    /// `-`
    Sub = 0x10,
    /// `*`
    Mul = 0x20,
    /// unsigned `/`
    Div = 0x30,
    /// `|`
    Or = 0x40,
    /// `&`
    And = 0x50,
    /// `<<`
    Lsh = 0x60,
    /// logical `>>`
    Rsh = 0x70,
    /// unsigned `%`
    Mod = 0x90,
    /// `^`
    Xor = 0xa0,
    /// `=`
    Mov = 0xb0,
    /// arithmetic `>>`
    Arsh = 0xc0,
}

/// Conditional jump comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `==`
    Eq = 0x10,
    /// unsigned `>`
    Gt = 0x20,
    /// unsigned `>=`
    Ge = 0x30,
    /// `& != 0`
    Set = 0x40,
    /// `!=`
    Ne = 0x50,
    /// signed `>`
    Sgt = 0x60,
    /// signed `>=`
    Sge = 0x70,
    /// unsigned `<`
    Lt = 0xa0,
    /// unsigned `<=`
    Le = 0xb0,
    /// signed `<`
    Slt = 0xc0,
    /// signed `<=`
    Sle = 0xd0,
}

/// One 8-byte BPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode byte.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Signed offset (memory or jump).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        Self {
            code,
            dst: dst.0,
            src: src.0,
            off,
            imm,
        }
    }

    /// The kernel's encoding of this instruction.
    pub fn to_raw(self) -> libbpf_sys::bpf_insn {
        let mut raw = libbpf_sys::bpf_insn {
            code: self.code,
            off: self.off,
            imm: self.imm,
            ..Default::default()
        };
        raw.set_dst_reg(self.dst);
        raw.set_src_reg(self.src);
        raw
    }

    /// `dst op= imm` on 64 bits.
    pub const fn alu64_imm(op: Alu, dst: Reg, imm: i32) -> Self {
        Self::new(ALU64 | K | op as u8, dst, R0, 0, imm)
    }

    /// `dst op= src` on 64 bits.
    pub const fn alu64_reg(op: Alu, dst: Reg, src: Reg) -> Self {
        Self::new(ALU64 | X | op as u8, dst, src, 0, 0)
    }

    /// `dst op= src` on the low 32 bits (the upper half is zeroed).
    pub const fn alu32_reg(op: Alu, dst: Reg, src: Reg) -> Self {
        Self::new(ALU | X | op as u8, dst, src, 0, 0)
    }

    /// `dst = htobe{bits}(dst)`: on a little-endian machine, reverses the
    /// low `bits` (16, 32 or 64) bits' bytes and zeroes the rest.
    pub const fn to_be(dst: Reg, bits: i32) -> Self {
        Self::new(ALU | END | TO_BE, dst, R0, 0, bits)
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub const fn mov64_imm(dst: Reg, imm: i32) -> Self {
        Self::alu64_imm(Alu::Mov, dst, imm)
    }

    /// `dst = src`.
    pub const fn mov64_reg(dst: Reg, src: Reg) -> Self {
        Self::alu64_reg(Alu::Mov, dst, src)
    }

    /// `dst = *(size *)(src + off)`.
    pub const fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(LDX | MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    pub const fn store_reg(size: Size, dst: Reg, off: i16, src: Reg) -> Self {
        Self::new(STX | MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`.
    pub const fn store_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Self {
        Self::new(ST | MEM | size as u8, dst, R0, off, imm)
    }

    /// `lock *(size *)(dst + off) += src` (size is W or DW).
    pub const fn atomic_add(size: Size, dst: Reg, off: i16, src: Reg) -> Self {
        Self::new(STX | ATOMIC | size as u8, dst, src, off, Alu::Add as i32)
    }

    /// Call helper number `id`.
    pub const fn call(id: u32) -> Self {
        Self::new(JMP | 0x80, R0, R0, 0, id as i32)
    }

    /// Return r0.
    pub const fn exit() -> Self {
        Self::new(JMP | 0x90, R0, R0, 0, 0)
    }

    /// Unconditional jump of `off` instructions.
    pub const fn ja(off: i16) -> Self {
        Self::new(JMP, R0, R0, off, 0)
    }

    /// `if dst cond imm goto +off`.
    pub const fn jmp_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(JMP | K | cond as u8, dst, R0, off, imm)
    }

    /// `if (u32)dst cond imm goto +off`: compares the low 32 bits. Map
    /// helpers the verifier inlines returned an `int` before Linux 6.4, so
    /// their negative errors arrive zero-extended: test them with this.
    pub const fn jmp32_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(JMP32 | K | cond as u8, dst, R0, off, imm)
    }

    /// `if dst cond src goto +off`.
    pub const fn jmp_reg(cond: Cond, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(JMP | X | cond as u8, dst, src, off, 0)
    }

    /// `dst = map` (two instructions: `ld_imm64` with a map fd).
    pub const fn ld_map_fd(dst: Reg, fd: i32) -> [Self; 2] {
        [
            Self::new(LD | IMM | Size::DW as u8, dst, Reg(PSEUDO_MAP_FD), 0, fd),
            Self::new(0, R0, R0, 0, 0),
        ]
    }

    /// `dst = imm64` (two instructions).
    pub const fn ld_imm64(dst: Reg, imm: u64) -> [Self; 2] {
        [
            Self::new(LD | IMM | Size::DW as u8, dst, R0, 0, imm as u32 as i32),
            Self::new(0, R0, R0, 0, (imm >> 32) as u32 as i32),
        ]
    }

    fn is_jump_with_offset(self) -> bool {
        let class = self.code & 0x07;
        let op = self.code & 0xf0;
        (class == JMP || class == JMP32) && op != 0x80 && op != 0x90
    }
}

/// A forward or backward jump target inside an [`Asm`] program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label(usize);

/// Error building a program.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AsmError {
    /// A jump names a label that was never placed.
    #[error("jump to a label that was never placed")]
    UnplacedLabel,
    /// A jump is further than a 16-bit offset reaches.
    #[error("jump of {0} instructions does not fit in 16 bits")]
    JumpTooFar(i64),
}

/// Builds a program, resolving labels into jump offsets.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: HashMap<usize, Label>,
    func_fixups: HashMap<usize, Label>,
}

impl Asm {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends instructions.
    pub fn emit(&mut self, insns: impl IntoIterator<Item = Insn>) -> &mut Self {
        self.insns.extend(insns);
        self
    }

    /// Number of instruction slots emitted so far.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether nothing was emitted yet.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// A new, not yet placed label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub fn place(&mut self, label: Label) -> &mut Self {
        self.labels[label.0] = Some(self.insns.len());
        self
    }

    /// Appends a jump instruction whose offset is resolved to `target`.
    pub fn jump(&mut self, insn: Insn, target: Label) -> &mut Self {
        debug_assert!(insn.is_jump_with_offset());
        self.fixups.insert(self.insns.len(), target);
        self.insns.push(insn);
        self
    }

    /// Whether any jump or [`func_addr`](Self::func_addr) emitted so far
    /// refers to `label`.
    pub fn is_used(&self, label: Label) -> bool {
        self.fixups
            .values()
            .chain(self.func_fixups.values())
            .any(|&l| l == label)
    }

    /// `goto target`.
    pub fn goto(&mut self, target: Label) -> &mut Self {
        self.jump(Insn::ja(0), target)
    }

    /// `dst = &subprogram` for the subprogram starting at `target`, as a
    /// callback argument of helpers such as `bpf_loop` (two instructions).
    pub fn func_addr(&mut self, dst: Reg, target: Label) -> &mut Self {
        self.func_fixups.insert(self.insns.len(), target);
        let [lo, hi] = Insn::ld_imm64(dst, 0);
        self.insns.push(Insn {
            src: PSEUDO_FUNC,
            ..lo
        });
        self.insns.push(hi);
        self
    }

    /// The finished instructions.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        for (&at, &label) in &self.fixups {
            let target = self.labels[label.0].ok_or(AsmError::UnplacedLabel)?;
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| AsmError::JumpTooFar(off))?;
        }
        for (&at, &label) in &self.func_fixups {
            let target = self.labels[label.0].ok_or(AsmError::UnplacedLabel)?;
            self.insns[at].imm = (target as i64 - at as i64 - 1) as i32;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel() {
        // Checked against `bpftool prog dump xlated opcodes` output.
        let mov = Insn::mov64_imm(R0, 0).to_raw();
        assert_eq!((mov.code, mov.imm), (0xb7, 0));
        let exit = Insn::exit();
        assert_eq!(exit.code, 0x95);
        let call = Insn::call(27);
        assert_eq!((call.code, call.imm), (0x85, 27));
        let st = Insn::store_reg(Size::W, R10, -4, R1).to_raw();
        assert_eq!(
            (st.code, st.dst_reg(), st.src_reg(), st.off),
            (0x63, 10, 1, -4)
        );
        let xadd = Insn::atomic_add(Size::DW, R0, 0, R1);
        assert_eq!((xadd.code, xadd.imm), (0xdb, 0));
        let [lo, hi] = Insn::ld_map_fd(R1, 7);
        assert_eq!((lo.code, lo.src, lo.imm, hi.code), (0x18, 1, 7, 0));
        let [lo, hi] = Insn::ld_imm64(R2, 0x1_0000_0002);
        assert_eq!((lo.imm, hi.imm), (2, 1));
        let jeq32 = Insn::jmp32_imm(Cond::Eq, R0, -17, 3);
        assert_eq!((jeq32.code, jeq32.imm, jeq32.off), (0x16, -17, 3));
    }

    #[test]
    fn resolves_forward_and_backward_labels() {
        let mut asm = Asm::new();
        let top = asm.label();
        let out = asm.label();
        asm.place(top);
        asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), out);
        asm.emit([Insn::mov64_imm(R0, 1)]);
        asm.goto(top);
        asm.place(out);
        asm.emit([Insn::exit()]);
        let insns = asm.finish().unwrap();
        assert_eq!(insns[0].off, 2);
        assert_eq!(insns[2].off, -3);
    }

    #[test]
    fn func_addr_points_at_the_subprogram() {
        let mut asm = Asm::new();
        let callback = asm.label();
        asm.func_addr(R2, callback);
        asm.emit([Insn::exit()]);
        asm.place(callback);
        asm.emit([Insn::exit()]);
        let insns = asm.finish().unwrap();
        assert_eq!((insns[0].src, insns[0].imm), (PSEUDO_FUNC, 2));
        assert_eq!(PSEUDO_FUNC as u32, libbpf_sys::BPF_PSEUDO_FUNC);
    }

    #[test]
    fn unplaced_label_is_an_error() {
        let mut asm = Asm::new();
        let nowhere = asm.label();
        asm.goto(nowhere);
        assert_eq!(asm.finish(), Err(AsmError::UnplacedLabel));
    }
}
