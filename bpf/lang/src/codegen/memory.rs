//! Reading kernel and user memory by C type: `curtask->pid`,
//! `p->comm`, `arr[i]`, `*p`.
//!
//! The base expression leaves an address in its register (a pointer's
//! value, or the address of a struct in memory); the [`Access`] semantic
//! analysis recorded says how far past it the member or element lies, and
//! the expression's type says what to read there:
//!
//! - an integer or pointer: its bytes through `probe_read_kernel` (or
//!   `_user`) into the temporary stack word, then loaded with sign or zero
//!   extension; a bitfield is shifted into place and masked by two shifts;
//! - a string (`char[N]`): all `N` bytes into a scratch slot;
//! - a struct or array ([`Type::Mem`]): nothing — its address is the value.

use scorch_bpf::insn::{Alu, Cond, Insn, Size, R0, R1, R10, R2, R3};

use super::emit::{VReg, FP_TEMP};
use super::gen::{tag, CgResult, Gen};
use crate::ast::Expr;
use crate::sema::{Access, AddrSpace, Type};

impl Gen<'_> {
    /// Replaces the address in `v` with the member (or pointee) `e` reads.
    pub(super) fn read_member(&mut self, e: &Expr, v: VReg) -> CgResult<()> {
        let access = self.access(e)?;
        if access.offset > 0 {
            let off =
                i32::try_from(access.offset).map_err(|_| self.internal("a huge member offset"))?;
            self.e.alu_imm(v, Alu::Add, off);
        }
        self.read_at(e, v, &access)
    }

    /// `base[index]`: a byte of a string, or an element in memory.
    pub(super) fn index(&mut self, e: &Expr, base: &Expr, index: &Expr) -> CgResult<VReg> {
        let v = self.expr(base)?;
        let i = self.expr(index)?;
        if let Type::Str(len) = self.ty(base) {
            // A byte of the string in scratch; 0 past its end.
            let ri = self.e.get(i, R2);
            let rv = self.e.get(v, R1);
            let outside = self.e.asm.label();
            let done = self.e.asm.label();
            self.e.asm.emit([Insn::mov64_reg(R3, ri)]);
            self.e
                .asm
                .jump(Insn::jmp_imm(Cond::Ge, R3, len as i32, 0), outside);
            self.e.asm.emit([
                Insn::mov64_reg(R0, rv),
                Insn::alu64_reg(Alu::Add, R0, R3),
                Insn::load(Size::B, R0, R0, 0),
            ]);
            self.e.sign_extend(R0, 1);
            self.e.asm.goto(done);
            self.e.asm.place(outside);
            self.e.asm.emit([Insn::mov64_imm(R0, 0)]);
            self.e.asm.place(done);
            self.e.free(i);
            self.e.set(v, R0);
            return Ok(v);
        }
        let access = self.access(e)?;
        if access.stride != 1 {
            self.e.alu_imm(i, Alu::Mul, access.stride as i32);
        }
        self.e.alu(v, Alu::Add, i);
        self.e.free(i);
        self.read_at(e, v, &access)?;
        Ok(v)
    }

    fn access(&self, e: &Expr) -> CgResult<Access> {
        self.analysis
            .accesses
            .get(&e.id)
            .copied()
            .ok_or_else(|| self.internal("a memory read without its layout"))
    }

    /// Reads the value of `e`'s type at the address in `v` into `v`.
    fn read_at(&mut self, e: &Expr, v: VReg, access: &Access) -> CgResult<()> {
        let helper = match access.space {
            AddrSpace::Kernel => libbpf_sys::BPF_FUNC_probe_read_kernel,
            AddrSpace::User => libbpf_sys::BPF_FUNC_probe_read_user,
        };
        let ty = self.ty(e);
        let (size, signed) = match ty {
            Type::Mem { .. } => return Ok(()),
            // A string, or a struct stored whole: its bytes into scratch.
            Type::Str(_) | Type::Record(_) => {
                let len = ty.size();
                let slot = self.e.slot(e.id.0, tag::VALUE, len)?;
                self.e.copy_to(R3, v);
                self.e.scratch_ptr(R1, slot);
                self.e.asm.emit([Insn::mov64_imm(R2, len as i32)]);
                self.e.call(helper);
                self.e.set_scratch_ptr(v, slot);
                return Ok(());
            }
            Type::Int(int) => (int.size, int.signed),
            Type::Ptr { .. } => (8, false),
            _ => return Err(self.internal("a memory read of an unreadable type")),
        };
        let bytes = match access.bitfield {
            Some((first, width)) => (u32::from(first) + u32::from(width)).div_ceil(8),
            None => u32::from(size),
        };
        self.e
            .asm
            .emit([Insn::store_imm(Size::DW, R10, FP_TEMP, 0)]);
        self.e.copy_to(R3, v);
        self.e.stack_ptr(R1, FP_TEMP);
        self.e.asm.emit([Insn::mov64_imm(R2, bytes as i32)]);
        self.e.call(helper);
        match access.bitfield {
            Some((first, width)) => {
                let (first, width) = (i32::from(first), i32::from(width));
                let right = if signed { Alu::Arsh } else { Alu::Rsh };
                self.e.asm.emit([
                    Insn::load(Size::DW, R0, R10, FP_TEMP),
                    Insn::alu64_imm(Alu::Lsh, R0, 64 - first - width),
                    Insn::alu64_imm(right, R0, 64 - width),
                ]);
            }
            None => self.e.load_int(R0, R10, FP_TEMP, size, signed),
        }
        self.e.set(v, R0);
        Ok(())
    }
}
