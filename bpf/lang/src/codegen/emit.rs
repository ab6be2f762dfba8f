//! The emitter: instructions, virtual registers, stack and scratch memory.
//!
//! Generated code computes expressions into **virtual registers**
//! ([`VReg`]), allocated and freed like a stack as the expression tree is
//! walked. The first three live in `r6`–`r8`, which survive helper calls;
//! deeper ones spill to 8-byte stack slots at the bottom of the 512-byte
//! frame. `r0`–`r5` are only used between two instructions of one
//! operation (and as helper arguments), so nothing long-lived is ever
//! clobbered by a call.
//!
//! Register and memory plan of every program:
//!
//! | where | what |
//! |---|---|
//! | `r9` | base of the program's per-CPU scratch area (a map value) |
//! | `r6`–`r8` | virtual registers 0–2 |
//! | `fp-8` | the context pointer, saved on entry |
//! | `fp-16` | a temporary word (map keys of one `u32`, small reads) |
//! | `fp-24` downwards | integer variables, where the verifier tracks them |
//! | `fp-512` upwards | spilled virtual registers |
//!
//! A probe with `for` loops splits the 512 bytes between its frame and
//! those of the loop bodies, which are callbacks with frames of their
//! own ([`Emitter::with_frame`]); see `loops.rs`.
//! | scratch | strings, tuples, map keys and values, event records |
//!
//! Integers always sit in registers as 64-bit values, sign- or
//! zero-extended when loaded; strings and tuples are never in registers,
//! only their address in scratch.

use std::collections::HashMap;

use scorch_bpf::insn::{Alu, Asm, Cond, Insn, Label, Reg, Size, R0, R1, R10, R2, R6, R7, R8, R9};

use crate::diag::Diagnostic;
use crate::span::Span;

/// A virtual register: a 64-bit value with a fixed home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VReg(u32);

/// The registers that hold the first virtual registers.
const POOL: [Reg; 3] = [R6, R7, R8];
/// Base of the scratch area.
pub(super) const SCRATCH: Reg = R9;
/// Where the context pointer is saved.
pub(super) const FP_CTX: i16 = -8;
/// A temporary stack word.
pub(super) const FP_TEMP: i16 = -16;
/// The first (highest) variable slot.
const FIRST_VAR: i16 = -24;
/// The lowest stack offset of a frame that has the whole stack.
const STACK_BOTTOM: i16 = -512;
/// Most scratch memory a program may use: the per-CPU value limit.
pub(super) const MAX_SCRATCH: u32 = 32 * 1024;

/// Where a virtual register lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    Reg(Reg),
    Stack(i16),
}

/// Instructions under construction, with their register and memory plan.
pub(super) struct Emitter {
    pub(super) asm: Asm,
    depth: u32,
    /// Lowest stack offset used by variables so far.
    vars_bottom: i16,
    /// Bytes of scratch allocated.
    scratch: u32,
    /// Scratch slots by owner, so re-emitted code reuses its slot.
    slots: HashMap<(u32, u8), u32>,
    /// The lowest stack offset this frame may use.
    bottom: i16,
    /// `ld_imm64` instructions that load the address of a subprogram:
    /// their index and the subprogram's number.
    pub(super) func_refs: Vec<(usize, usize)>,
    /// Where errors about limits point.
    pub(super) span: Span,
}

impl Emitter {
    pub(super) fn new() -> Self {
        Emitter {
            asm: Asm::new(),
            depth: 0,
            vars_bottom: FIRST_VAR + 8,
            scratch: 0,
            slots: HashMap::new(),
            bottom: STACK_BOTTOM,
            func_refs: Vec::new(),
            span: Span::default(),
        }
    }

    /// An emitter whose frame is only `size` bytes, leaving the rest of
    /// the 512-byte stack to the frames of callbacks.
    pub(super) fn with_frame(size: i16) -> Self {
        Emitter {
            bottom: -size,
            ..Emitter::new()
        }
    }

    /// An emitter for a callback called from this code: a frame of the
    /// same size and variable layout, and the same scratch area. Give it
    /// back with [`Emitter::rejoin`].
    pub(super) fn callback(&mut self) -> Self {
        Emitter {
            vars_bottom: self.vars_bottom,
            scratch: self.scratch,
            slots: std::mem::take(&mut self.slots),
            bottom: self.bottom,
            span: self.span,
            ..Emitter::new()
        }
    }

    /// Takes back the scratch allocations of a finished callback emitter.
    pub(super) fn rejoin(&mut self, callback: &mut Emitter) {
        self.scratch = callback.scratch;
        self.slots = std::mem::take(&mut callback.slots);
    }

    /// The variable slots in use, highest first.
    pub(super) fn var_slots(&self) -> impl Iterator<Item = i16> {
        (self.vars_bottom..=FIRST_VAR).rev().step_by(8)
    }

    /// `dst = &subprogram` (its number, resolved when programs are laid out).
    pub(super) fn func_addr(&mut self, dst: Reg, subprog: usize) {
        self.func_refs.push((self.asm.len(), subprog));
        let [lo, hi] = Insn::ld_imm64(dst, 0);
        self.asm.emit([
            Insn {
                src: libbpf_sys::BPF_PSEUDO_FUNC as u8,
                ..lo
            },
            hi,
        ]);
    }

    /// Bytes of scratch this program needs.
    pub(super) fn scratch_size(&self) -> u32 {
        self.scratch.max(8)
    }

    fn home(&self, v: VReg) -> Home {
        match POOL.get(v.0 as usize) {
            Some(&r) => Home::Reg(r),
            None => Home::Stack(self.bottom + 8 * (v.0 as i16 - POOL.len() as i16)),
        }
    }

    /// A new virtual register, on top of the stack of them.
    pub(super) fn alloc(&mut self) -> Result<VReg, Diagnostic> {
        let v = VReg(self.depth);
        if let Home::Stack(off) = self.home(v) {
            if off + 8 > self.vars_bottom {
                return Err(
                    self.too_big("the expression is nested too deeply for the 512-byte BPF stack")
                );
            }
        }
        self.depth += 1;
        Ok(v)
    }

    /// Frees `v`, which must be the newest virtual register.
    pub(super) fn free(&mut self, v: VReg) {
        debug_assert_eq!(v.0 + 1, self.depth, "virtual registers are freed in order");
        self.depth = self.depth.saturating_sub(1);
    }

    /// A register holding `v`: its own, or `tmp` loaded from its spill slot.
    pub(super) fn get(&mut self, v: VReg, tmp: Reg) -> Reg {
        match self.home(v) {
            Home::Reg(r) => r,
            Home::Stack(off) => {
                self.asm.emit([Insn::load(Size::DW, tmp, R10, off)]);
                tmp
            }
        }
    }

    /// `dst = v`.
    pub(super) fn copy_to(&mut self, dst: Reg, v: VReg) {
        let r = self.get(v, dst);
        if r != dst {
            self.asm.emit([Insn::mov64_reg(dst, r)]);
        }
    }

    /// `v = src`.
    pub(super) fn set(&mut self, v: VReg, src: Reg) {
        match self.home(v) {
            Home::Reg(r) if r == src => {}
            Home::Reg(r) => {
                self.asm.emit([Insn::mov64_reg(r, src)]);
            }
            Home::Stack(off) => {
                self.asm.emit([Insn::store_reg(Size::DW, R10, off, src)]);
            }
        }
    }

    /// `v = imm`.
    pub(super) fn set_imm(&mut self, v: VReg, imm: i64) {
        match self.home(v) {
            Home::Reg(r) => self.load_imm(r, imm),
            Home::Stack(_) => {
                self.load_imm(R0, imm);
                self.set(v, R0);
            }
        }
    }

    /// `dst = imm`, in one instruction when it fits.
    pub(super) fn load_imm(&mut self, dst: Reg, imm: i64) {
        match i32::try_from(imm) {
            Ok(small) => {
                self.asm.emit([Insn::mov64_imm(dst, small)]);
            }
            Err(_) => {
                self.asm.emit(Insn::ld_imm64(dst, imm as u64));
            }
        }
    }

    /// `v op= imm` (through `r0` when spilled).
    pub(super) fn alu_imm(&mut self, v: VReg, op: Alu, imm: i32) {
        let r = self.get(v, R0);
        self.asm.emit([Insn::alu64_imm(op, r, imm)]);
        self.set(v, r);
    }

    /// `a op= b`.
    pub(super) fn alu(&mut self, a: VReg, op: Alu, b: VReg) {
        let ra = self.get(a, R1);
        let rb = self.get(b, R2);
        self.asm.emit([Insn::alu64_reg(op, ra, rb)]);
        self.set(a, ra);
    }

    /// `if v cond imm goto target`.
    pub(super) fn jump_imm(&mut self, v: VReg, cond: Cond, imm: i32, target: Label) {
        let r = self.get(v, R0);
        self.asm.jump(Insn::jmp_imm(cond, r, imm, 0), target);
    }

    /// A new stack slot for an integer variable.
    pub(super) fn var_slot(&mut self) -> Result<i16, Diagnostic> {
        let off = self.vars_bottom - 8;
        let deepest_spill = self.bottom + 8 * (self.depth as i16 - POOL.len() as i16).max(0);
        if off < deepest_spill {
            return Err(self.too_big("too many variables for the 512-byte BPF stack"));
        }
        self.vars_bottom = off;
        Ok(off)
    }

    /// The scratch slot of `size` bytes owned by `(owner, tag)`,
    /// allocated on first use; 8-byte aligned.
    pub(super) fn slot(&mut self, owner: u32, tag: u8, size: u32) -> Result<u32, Diagnostic> {
        if let Some(&off) = self.slots.get(&(owner, tag)) {
            return Ok(off);
        }
        let off = self.fresh_slot(size)?;
        self.slots.insert((owner, tag), off);
        Ok(off)
    }

    /// A scratch slot nobody else will use.
    pub(super) fn fresh_slot(&mut self, size: u32) -> Result<u32, Diagnostic> {
        let off = self.scratch;
        let end = off.saturating_add(super::layout::round8(size.max(1)));
        if end > MAX_SCRATCH {
            return Err(self.too_big("the probe needs more than 32 KiB of scratch memory for its strings, keys and events"));
        }
        self.scratch = end;
        Ok(off)
    }

    fn too_big(&self, what: &str) -> Diagnostic {
        Diagnostic::error(self.span, what.to_string())
    }

    /// `dst = scratch + off`.
    pub(super) fn scratch_ptr(&mut self, dst: Reg, off: u32) {
        self.asm.emit([
            Insn::mov64_reg(dst, SCRATCH),
            Insn::alu64_imm(Alu::Add, dst, off as i32),
        ]);
    }

    /// `v = scratch + off`.
    pub(super) fn set_scratch_ptr(&mut self, v: VReg, off: u32) {
        self.scratch_ptr(R0, off);
        self.set(v, R0);
    }

    /// Zeroes `size` bytes (rounded up to 8) of scratch at `off`.
    pub(super) fn zero_scratch(&mut self, off: u32, size: u32) {
        for at in (0..super::layout::round8(size)).step_by(8) {
            self.asm
                .emit([Insn::store_imm(Size::DW, SCRATCH, (off + at) as i16, 0)]);
        }
    }

    /// Copies `n` bytes from `src + src_off` to `dst + dst_off`, through `r0`.
    pub(super) fn copy_mem(&mut self, dst: Reg, dst_off: i16, src: Reg, src_off: i16, n: u32) {
        let mut at: i16 = 0;
        let mut left = n;
        for (size, width) in [(Size::DW, 8u32), (Size::W, 4), (Size::H, 2), (Size::B, 1)] {
            while left >= width {
                self.asm.emit([
                    Insn::load(size, R0, src, src_off + at),
                    Insn::store_reg(size, dst, dst_off + at, R0),
                ]);
                at += width as i16;
                left -= width;
            }
        }
    }

    /// Stores `bytes` at `scratch + off`, four at a time.
    pub(super) fn store_bytes(&mut self, off: u32, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.asm.emit([Insn::store_imm(
                Size::W,
                SCRATCH,
                (off as usize + 4 * i) as i16,
                i32::from_le_bytes(word),
            )]);
        }
    }

    /// `dst = map` (a map reference resolved when the program loads).
    pub(super) fn map(&mut self, dst: Reg, map: usize) {
        self.asm.emit(Insn::ld_map_fd(dst, map as i32));
    }

    /// `dst = &map's value + off` for an array map of one entry.
    pub(super) fn map_value(&mut self, dst: Reg, map: usize, off: u32) {
        let [lo, hi] = Insn::ld_map_fd(dst, map as i32);
        self.asm.emit([
            Insn {
                src: scorch_bpf_pseudo_map_value(),
                ..lo
            },
            Insn {
                imm: off as i32,
                ..hi
            },
        ]);
    }

    /// Calls helper `id`.
    pub(super) fn call(&mut self, id: u32) {
        self.asm.emit([Insn::call(id)]);
    }

    /// `r2 = fp + off`: a pointer to a stack slot.
    pub(super) fn stack_ptr(&mut self, dst: Reg, off: i16) {
        self.asm.emit([
            Insn::mov64_reg(dst, R10),
            Insn::alu64_imm(Alu::Add, dst, i32::from(off)),
        ]);
    }

    /// Loads an integer of `size` bytes, sign-extending when `signed`.
    pub(super) fn load_int(&mut self, dst: Reg, base: Reg, off: i16, size: u8, signed: bool) {
        let width = match size {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            _ => Size::DW,
        };
        self.asm.emit([Insn::load(width, dst, base, off)]);
        if signed {
            self.sign_extend(dst, size);
        }
    }

    /// Sign-extends the low `size` bytes of `r` to 64 bits.
    pub(super) fn sign_extend(&mut self, r: Reg, size: u8) {
        if size < 8 {
            let shift = 64 - 8 * i32::from(size);
            self.asm.emit([
                Insn::alu64_imm(Alu::Lsh, r, shift),
                Insn::alu64_imm(Alu::Arsh, r, shift),
            ]);
        }
    }

    /// Keeps the low `size` bytes of `r`.
    pub(super) fn truncate(&mut self, r: Reg, size: u8) {
        match size {
            1 => {
                self.asm.emit([Insn::alu64_imm(Alu::And, r, 0xff)]);
            }
            2 => {
                self.asm.emit([Insn::alu64_imm(Alu::And, r, 0xffff)]);
            }
            4 => {
                self.asm.emit([Insn::alu32_reg(Alu::Mov, r, r)]);
            }
            _ => {}
        }
    }

    /// The finished instructions.
    pub(super) fn finish(self) -> Result<Vec<Insn>, Diagnostic> {
        self.asm.finish().map_err(|e| {
            Diagnostic::error(
                self.span,
                format!("the probe is too large for BPF jumps: {e}"),
            )
        })
    }
}

/// `BPF_PSEUDO_MAP_VALUE`: `ld_imm64` of a map value's address.
fn scorch_bpf_pseudo_map_value() -> u8 {
    libbpf_sys::BPF_PSEUDO_MAP_VALUE as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_start_at_the_bottom_of_the_frame() {
        let mut e = Emitter::new();
        let regs: Vec<VReg> = (0..5).map(|_| e.alloc().unwrap()).collect();
        assert_eq!(e.home(regs[0]), Home::Reg(R6));
        assert_eq!(e.home(regs[2]), Home::Reg(R8));
        assert_eq!(e.home(regs[3]), Home::Stack(-512));
        assert_eq!(e.home(regs[4]), Home::Stack(-504));
        for v in regs.into_iter().rev() {
            e.free(v);
        }
    }

    #[test]
    fn variables_and_spills_must_not_meet() {
        let mut e = Emitter::new();
        let mut vars = 0;
        while e.var_slot().is_ok() {
            vars += 1;
        }
        // 512 bytes minus ctx and temp, in 8-byte slots.
        assert_eq!(vars, 62);
        assert!(e.alloc().is_ok(), "registers do not need the stack");
    }

    #[test]
    fn scratch_slots_are_reused_by_owner() {
        let mut e = Emitter::new();
        let a = e.slot(1, 0, 5).unwrap();
        let b = e.slot(2, 0, 16).unwrap();
        assert_eq!((a, b), (0, 8));
        assert_eq!(e.slot(1, 0, 5).unwrap(), 0);
        assert_eq!(e.scratch_size(), 24);
        assert!(e.fresh_slot(MAX_SCRATCH).is_err());
    }
}
