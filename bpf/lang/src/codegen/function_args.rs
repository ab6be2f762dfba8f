//! Reading `arg0..`, `retval`, `func` and `args.NAME` in probes on
//! functions: from `pt_regs` (kprobes, uprobes), from where a USDT note
//! says, or from a trampoline's `u64` argument array (fentry/fexit).

use scorch_bpf::insn::{Alu, Insn, Size, R0, R1, R10, R2, R3};
use scorch_bpf::usdt::ArgLocation;

use super::emit::{VReg, FP_CTX, FP_TEMP};
use super::gen::{CgResult, Gen};
use crate::ast::Expr;
use crate::sema::{Attach, Type};

/// Offsets in x86_64 `struct pt_regs` of the argument registers, in
/// calling-convention order: rdi, rsi, rdx, rcx, r8, r9.
const ARG_REGS: [i16; 6] = [112, 104, 96, 88, 72, 64];
/// Offset in x86_64 `struct pt_regs` of rax, the return value.
const RAX: i16 = 80;

impl Gen<'_> {
    /// `argN` of a function or USDT probe.
    pub(super) fn function_arg(&mut self, n: u8) -> CgResult<VReg> {
        self.e.asm.emit([Insn::load(Size::DW, R1, R10, FP_CTX)]);
        match &self.instance.attach {
            Attach::Uprobe(_) | Attach::Kprobe { .. } => {
                let off = *ARG_REGS
                    .get(usize::from(n))
                    .ok_or_else(|| self.internal("an argument past the registers"))?;
                self.e.asm.emit([Insn::load(Size::DW, R0, R1, off)]);
            }
            Attach::Fentry(f) => {
                let slot = f.params.get(usize::from(n)).map(|p| p.slot);
                let off = self.slot_offset(slot)?;
                self.e.asm.emit([Insn::load(Size::DW, R0, R1, off)]);
            }
            Attach::RawTracepoint { .. } => {
                self.e
                    .asm
                    .emit([Insn::load(Size::DW, R0, R1, 8 * i16::from(n))]);
            }
            Attach::Usdt(u) => {
                let arg = u
                    .probe
                    .args
                    .get(usize::from(n))
                    .cloned()
                    .ok_or_else(|| self.internal("a USDT argument out of range"))?;
                match arg.location {
                    ArgLocation::Register(off) => {
                        self.e.asm.emit([Insn::load(Size::DW, R0, R1, off as i16)]);
                        self.extend(arg.size, arg.signed);
                    }
                    ArgLocation::Memory { base, displacement } => {
                        let displacement = i32::try_from(displacement)
                            .map_err(|_| self.internal("a USDT displacement past 32 bits"))?;
                        self.e.asm.emit([
                            Insn::load(Size::DW, R3, R1, base as i16),
                            Insn::alu64_imm(Alu::Add, R3, displacement),
                            Insn::store_imm(Size::DW, R10, FP_TEMP, 0),
                        ]);
                        self.e.stack_ptr(R1, FP_TEMP);
                        self.e.asm.emit([Insn::mov64_imm(R2, i32::from(arg.size))]);
                        self.e.call(libbpf_sys::BPF_FUNC_probe_read_user);
                        self.e.load_int(R0, R10, FP_TEMP, arg.size, arg.signed);
                    }
                    ArgLocation::Constant(c) => {
                        let v = self.e.alloc()?;
                        self.e.set_imm(v, c);
                        return Ok(v);
                    }
                    ArgLocation::Unsupported(_) => {
                        return Err(self.internal("an unreadable USDT argument"))
                    }
                }
            }
            _ => return Err(self.internal("an argument outside a function probe")),
        }
        let v = self.e.alloc()?;
        self.e.set(v, R0);
        Ok(v)
    }

    /// Keeps the low `size` bytes of R0, sign-extended when `signed`.
    fn extend(&mut self, size: u8, signed: bool) {
        if signed {
            self.e.sign_extend(R0, size);
        } else if size < 8 {
            self.e.truncate(R0, size);
        }
    }

    /// `retval` of a return probe.
    pub(super) fn retval(&mut self, e: &Expr) -> CgResult<VReg> {
        self.e.asm.emit([Insn::load(Size::DW, R1, R10, FP_CTX)]);
        match &self.instance.attach {
            Attach::Uprobe(_) | Attach::Kprobe { .. } => {
                self.e.asm.emit([Insn::load(Size::DW, R0, R1, RAX)]);
            }
            Attach::Fentry(f) => {
                // fexit's array holds the arguments, then the return value.
                let off = self.slot_offset(Some(f.return_slot))?;
                self.e.asm.emit([Insn::load(Size::DW, R0, R1, off)]);
                if let Type::Int(int) = self.ty(e) {
                    self.extend(int.size, int.signed);
                }
            }
            _ => return Err(self.internal("retval outside a return probe")),
        }
        let v = self.e.alloc()?;
        self.e.set(v, R0);
        Ok(v)
    }

    /// `func`: the probed function's name.
    pub(super) fn func(&mut self, e: &Expr) -> CgResult<VReg> {
        let size = match self.ty(e) {
            Type::Str(n) => n,
            _ => 64,
        };
        let name = self
            .instance
            .attach
            .function()
            .ok_or_else(|| self.internal("func outside a function probe"))?
            .as_bytes()
            .to_vec();
        self.string_literal(e.id.0, &name, size)
    }

    /// `args.NAME` of an fentry/fexit probe, if this is one.
    pub(super) fn fentry_param(&mut self, e: &Expr, name: &str) -> Option<CgResult<VReg>> {
        let Attach::Fentry(f) = &self.instance.attach else {
            return None;
        };
        let index = f.params.iter().position(|p| p.name == name)?;
        Some(self.fentry_param_at(e, index))
    }

    fn fentry_param_at(&mut self, e: &Expr, index: usize) -> CgResult<VReg> {
        let Attach::Fentry(f) = &self.instance.attach else {
            return Err(self.internal("a function argument outside fentry"));
        };
        let slot = f.params.get(index).map(|p| p.slot);
        let off = self.slot_offset(slot)?;
        self.e.asm.emit([
            Insn::load(Size::DW, R1, R10, FP_CTX),
            Insn::load(Size::DW, R0, R1, off),
        ]);
        if let Type::Int(int) = self.ty(e) {
            self.extend(int.size, int.signed);
        }
        let v = self.e.alloc()?;
        self.e.set(v, R0);
        Ok(v)
    }

    /// The byte offset of trampoline context slot `slot`.
    fn slot_offset(&self, slot: Option<usize>) -> CgResult<i16> {
        slot.and_then(|s| i16::try_from(8 * s).ok())
            .ok_or_else(|| self.internal("a function argument out of range"))
    }
}
