//! Strings compared in BPF: `==` and `!=`, `strncmp()` and
//! `strcontains()`, unrolled over the strings' fixed sizes.

use scorch_bpf::insn::{Cond, Insn, Reg, Size, R0, R1, R2, R3};

use super::emit::VReg;
use super::gen::{CgResult, Gen};
use crate::ast::{BinOp, Expr};
use crate::sema::{Const, Type};

impl Gen<'_> {
    /// `==` and `!=` on strings: equal up to and including the first NUL,
    /// a buffer's end counting as a NUL.
    pub(super) fn string_compare(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr) -> CgResult<VReg> {
        let equal = i64::from(op == BinOp::Eq);
        self.strings_equal(lhs, rhs, None, equal, 1 - equal)
    }

    /// `strncmp(s1, s2, n)`: 0 when the first `n` bytes are equal (or
    /// equal up to a NUL in both), else 1.
    pub(super) fn strncmp(&mut self, args: &[Expr]) -> CgResult<VReg> {
        let [a, b, n] = args else {
            return Err(self.internal("strncmp() without three arguments"));
        };
        let Some(Const::Int(limit)) = self.analysis.consts.get(&n.id).cloned() else {
            return Err(self.internal("strncmp() without a constant length"));
        };
        self.strings_equal(a, b, Some(limit.clamp(0, i64::from(u32::MAX)) as u32), 0, 1)
    }

    /// Leaves `on_equal` when the strings `lhs` and `rhs` are equal in
    /// their first `limit` bytes (all of them when `None`), else `on_differ`.
    fn strings_equal(
        &mut self,
        lhs: &Expr,
        rhs: &Expr,
        limit: Option<u32>,
        on_equal: i64,
        on_differ: i64,
    ) -> CgResult<VReg> {
        let (Type::Str(sa), Type::Str(sb)) = (self.ty(lhs), self.ty(rhs)) else {
            return Err(self.internal("a string comparison of non-strings"));
        };
        let a = self.expr(lhs)?;
        let b = self.expr(rhs)?;
        let equal = self.e.asm.label();
        let differ = self.e.asm.label();
        let done = self.e.asm.label();
        self.e.copy_to(R1, a);
        self.e.copy_to(R2, b);
        let common = sa.min(sb);
        let compared = limit.map_or(common, |n| n.min(common));
        for i in 0..compared {
            self.e.asm.emit([
                Insn::load(Size::B, R3, R1, i as i16),
                Insn::load(Size::B, R0, R2, i as i16),
            ]);
            self.e.asm.jump(Insn::jmp_reg(Cond::Ne, R3, R0, 0), differ);
            self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R3, 0, 0), equal);
        }
        // No NUL in the common part: the longer one must end right there.
        let (longer, size): (Reg, u32) = if sa > sb { (R1, sa) } else { (R2, sb) };
        let checks_end = size > common && compared == common && limit.is_none_or(|n| n > common);
        if checks_end {
            self.e
                .asm
                .emit([Insn::load(Size::B, R3, longer, common as i16)]);
            self.e.asm.jump(Insn::jmp_imm(Cond::Ne, R3, 0, 0), differ);
        }
        self.e.asm.place(equal);
        self.e.free(b);
        self.e.set_imm(a, on_equal);
        if compared == 0 && !checks_end {
            // Nothing compared (`strncmp(a, b, 0)`): always equal, and a
            // `differ` branch would be unreachable, which the verifier refuses.
            return Ok(a);
        }
        self.e.asm.goto(done);
        self.e.asm.place(differ);
        self.e.set_imm(a, on_differ);
        self.e.asm.place(done);
        Ok(a)
    }

    /// `strcontains(haystack, needle)`: 1 when `needle` occurs in
    /// `haystack` (an empty needle always does), else 0. Every start in
    /// the haystack is tried against every byte of the needle.
    pub(super) fn strcontains(&mut self, args: &[Expr]) -> CgResult<VReg> {
        let [hay, needle] = args else {
            return Err(self.internal("strcontains() without two arguments"));
        };
        let (Type::Str(sh), Type::Str(sn)) = (self.ty(hay), self.ty(needle)) else {
            return Err(self.internal("strcontains() of non-strings"));
        };
        let h = self.expr(hay)?;
        let n = self.expr(needle)?;
        let found = self.e.asm.label();
        let missing = self.e.asm.label();
        let done = self.e.asm.label();
        self.e.copy_to(R1, h);
        self.e.copy_to(R2, n);
        self.e.asm.emit([Insn::load(Size::B, R0, R2, 0)]);
        self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), found);
        for start in 0..sh {
            let next = self.e.asm.label();
            self.e.asm.emit([Insn::load(Size::B, R3, R1, start as i16)]);
            self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R3, 0, 0), missing);
            let mut whole = true;
            for j in 0..sn {
                self.e.asm.emit([Insn::load(Size::B, R0, R2, j as i16)]);
                if j > 0 {
                    self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), found);
                }
                let at = start + j;
                if at >= sh {
                    // The haystack ends before the needle does.
                    self.e.asm.goto(missing);
                    whole = false;
                    break;
                }
                if j > 0 {
                    self.e.asm.emit([Insn::load(Size::B, R3, R1, at as i16)]);
                }
                self.e.asm.jump(Insn::jmp_reg(Cond::Ne, R3, R0, 0), next);
            }
            if whole {
                // The needle fills its buffer and matched all of it.
                self.e.asm.goto(found);
            }
            self.e.asm.place(next);
        }
        self.e.asm.goto(missing);
        self.e.asm.place(found);
        self.e.free(n);
        self.e.set_imm(h, 1);
        self.e.asm.goto(done);
        self.e.asm.place(missing);
        self.e.set_imm(h, 0);
        self.e.asm.place(done);
        Ok(h)
    }
}
