//! Expressions: each leaves its value in a new virtual register — the
//! integer itself, or the scratch address of a string or tuple.

use scorch_bpf::insn::{Alu, Cond, Insn, Label, Size, R0, R1, R2, R3};

use super::emit::{VReg, FP_CTX};
use super::gen::{tag, CgResult, Gen};
use super::maps::Operand;
use crate::ast::{BinOp, Expr, ExprKind, IncDec, UnaryOp};
use crate::sema::tracepoint::FieldType;
use crate::sema::{Attach, Const, Type};
use scorch_bpf::insn::R10;

impl Gen<'_> {
    /// Evaluates `e` into a new virtual register.
    pub(super) fn expr(&mut self, e: &Expr) -> CgResult<VReg> {
        if let Some(c) = self.analysis.consts.get(&e.id).cloned() {
            return self.constant(e, &c);
        }
        match &e.kind {
            ExprKind::Int(v) => {
                let r = self.e.alloc()?;
                self.e.set_imm(r, *v as i64);
                Ok(r)
            }
            ExprKind::Bool(b) => {
                let r = self.e.alloc()?;
                self.e.set_imm(r, i64::from(*b));
                Ok(r)
            }
            ExprKind::Str(bytes) => self.constant(e, &Const::Str(bytes.clone())),
            ExprKind::Ident(_) => self.builtin(e),
            ExprKind::Var(_) => {
                let id = *self
                    .analysis
                    .var_refs
                    .get(&e.id)
                    .ok_or_else(|| self.internal("an unresolved variable"))?;
                self.load_var(id)
            }
            ExprKind::Map(name) => self.map_read(e, name, &[]),
            ExprKind::MapAccess { map, keys } => self.map_read(e, &map.name, keys),
            ExprKind::Call { args, .. } => self
                .call(e, args)?
                .ok_or_else(|| self.internal("a call without a value used as one")),
            ExprKind::Field { base, field, .. } => {
                if matches!(self.ty(base), Type::Args) {
                    if let Some(v) = self.fentry_param(e, &field.name) {
                        return v;
                    }
                    return self.args_field(e, &field.name);
                }
                let v = self.expr(base)?;
                self.read_member(e, v)?;
                Ok(v)
            }
            ExprKind::TupleIndex { base, index } => {
                let Type::Tuple(items) = self.ty(base) else {
                    return Err(self.internal("a tuple index of a non-tuple"));
                };
                let fields = super::layout::fields(&items);
                let (off, ty) = fields
                    .fields
                    .get(*index as usize)
                    .cloned()
                    .ok_or_else(|| self.internal("a tuple index out of range"))?;
                let v = self.expr(base)?;
                if ty.is_scalar() {
                    let r = self.e.get(v, R1);
                    self.e.asm.emit([Insn::load(Size::DW, R0, r, off as i16)]);
                    self.e.set(v, R0);
                } else {
                    self.e.alu_imm(v, Alu::Add, off as i32);
                }
                Ok(v)
            }
            ExprKind::Tuple(items) => {
                let ty = self.ty(e);
                let Type::Tuple(types) = &ty else {
                    return Err(self.internal("a tuple without a tuple type"));
                };
                let fields = super::layout::fields(types);
                let slot = self.e.slot(e.id.0, tag::VALUE, fields.size)?;
                self.e.zero_scratch(slot, fields.size);
                for (item, (off, to)) in items.iter().zip(&fields.fields) {
                    let v = self.expr(item)?;
                    let from = self.ty(item);
                    self.store_value(v, &from, slot + off, to);
                    self.e.free(v);
                }
                let r = self.e.alloc()?;
                self.e.set_scratch_ptr(r, slot);
                Ok(r)
            }
            ExprKind::Unary { op, operand } => {
                let v = self.expr(operand)?;
                match op {
                    UnaryOp::Neg => self.e.alu_imm(v, Alu::Mul, -1),
                    UnaryOp::BitNot => self.e.alu_imm(v, Alu::Xor, -1),
                    UnaryOp::Not => self.truth(v, true),
                    UnaryOp::Deref => self.read_member(e, v)?,
                    UnaryOp::AddrOf => return Err(self.internal("an unsupported unary operator")),
                }
                Ok(v)
            }
            ExprKind::IncDec { op, prefix, target } => self.inc_dec(*op, *prefix, target),
            ExprKind::Binary { op, lhs, rhs, .. } => self.binary(e, *op, lhs, rhs),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => self.ternary(e, cond, then, otherwise),
            ExprKind::Cast { expr, .. } => {
                let v = self.expr(expr)?;
                if let Type::Int(int) = self.ty(e) {
                    let r = self.e.get(v, R1);
                    self.e.truncate(r, int.size);
                    if int.signed {
                        self.e.sign_extend(r, int.size);
                    }
                    self.e.set(v, r);
                }
                Ok(v)
            }
            ExprKind::Block(block) => {
                for stmt in &block.stmts {
                    if self.stmt(stmt)? {
                        return Err(crate::diag::Diagnostic::error(
                            stmt.span,
                            "a block used as a value cannot end in `return`, `break`, `continue` or `exit()`",
                        ));
                    }
                }
                match &block.value {
                    Some(value) => self.expr(value),
                    None => {
                        let r = self.e.alloc()?;
                        self.e.set_imm(r, 0);
                        Ok(r)
                    }
                }
            }
            ExprKind::Param(_) | ExprKind::ParamCount | ExprKind::Sizeof(_) => {
                Err(self.internal("a constant without a value"))
            }
            ExprKind::Index { base, index } => self.index(e, base, index),
            ExprKind::Offsetof { .. } => Err(self.internal("a constant without a value")),
        }
    }

    /// A constant: an integer, or a string written into scratch.
    fn constant(&mut self, e: &Expr, c: &Const) -> CgResult<VReg> {
        match c {
            Const::Int(v) => {
                let r = self.e.alloc()?;
                self.e.set_imm(r, *v);
                Ok(r)
            }
            Const::Str(bytes) => {
                let size = match self.ty(e) {
                    Type::Str(n) => n,
                    _ => bytes.len() as u32 + 1,
                };
                self.string_literal(e.id.0, bytes, size)
            }
        }
    }

    /// `bytes`, NUL-padded to `size`, in the scratch slot of `owner`.
    pub(super) fn string_literal(&mut self, owner: u32, bytes: &[u8], size: u32) -> CgResult<VReg> {
        let slot = self.e.slot(owner, tag::VALUE, size)?;
        let mut padded = bytes.to_vec();
        padded.resize(super::layout::round8(size) as usize, 0);
        self.e.store_bytes(slot, &padded);
        let r = self.e.alloc()?;
        self.e.set_scratch_ptr(r, slot);
        Ok(r)
    }

    /// `v = (v != 0)`, or `v = (v == 0)` when `negate`.
    pub(super) fn truth(&mut self, v: VReg, negate: bool) {
        let r = self.e.get(v, R1);
        let done = self.e.asm.label();
        self.e.asm.emit([Insn::mov64_imm(R0, i32::from(!negate))]);
        self.e.asm.jump(Insn::jmp_imm(Cond::Ne, r, 0, 0), done);
        self.e.asm.emit([Insn::mov64_imm(R0, i32::from(negate))]);
        self.e.asm.place(done);
        self.e.set(v, R0);
    }

    /// `args.name` of the current attach point.
    fn args_field(&mut self, e: &Expr, name: &str) -> CgResult<VReg> {
        let Attach::Tracepoint { format, .. } = &self.instance.attach else {
            return Err(self.internal("args outside a tracepoint"));
        };
        let field = format
            .field(name)
            .cloned()
            .ok_or_else(|| self.internal("an unknown tracepoint field"))?;
        let off = field.offset as i16;
        let v = self.e.alloc()?;
        self.e.asm.emit([Insn::load(Size::DW, R1, R10, FP_CTX)]);
        match &field.ty {
            FieldType::Int(int) if field.offset % u32::from(int.size) == 0 => {
                self.e.load_int(R0, R1, off, int.size, int.signed);
                self.e.set(v, R0);
            }
            FieldType::Int(int) => {
                // Unaligned: read it onto the stack first.
                self.e.asm.emit([
                    Insn::mov64_reg(R3, R1),
                    Insn::alu64_imm(Alu::Add, R3, i32::from(off)),
                    Insn::store_imm(Size::DW, R10, super::emit::FP_TEMP, 0),
                ]);
                self.e.stack_ptr(R1, super::emit::FP_TEMP);
                self.e.asm.emit([Insn::mov64_imm(R2, i32::from(int.size))]);
                self.e.call(libbpf_sys::BPF_FUNC_probe_read_kernel);
                self.e
                    .load_int(R0, R10, super::emit::FP_TEMP, int.size, int.signed);
                self.e.set(v, R0);
            }
            FieldType::Ptr { .. } => {
                self.e.asm.emit([Insn::load(Size::DW, R0, R1, off)]);
                self.e.set(v, R0);
            }
            FieldType::CharArray(len) => {
                let slot = self.e.slot(e.id.0, tag::VALUE, *len)?;
                self.e.asm.emit([
                    Insn::mov64_reg(R3, R1),
                    Insn::alu64_imm(Alu::Add, R3, i32::from(off)),
                    Insn::mov64_imm(R2, *len as i32),
                ]);
                self.e.scratch_ptr(R1, slot);
                self.e.call(libbpf_sys::BPF_FUNC_probe_read_kernel);
                self.e.set_scratch_ptr(v, slot);
            }
            FieldType::DataLocStr => {
                self.e.asm.emit([
                    Insn::load(Size::W, R0, R1, off),
                    Insn::alu64_imm(Alu::And, R0, 0xffff),
                    Insn::alu64_reg(Alu::Add, R0, R1),
                ]);
                self.e.set(v, R0);
            }
            FieldType::Unsupported => return Err(self.internal("an unreadable field")),
        }
        Ok(v)
    }

    fn inc_dec(&mut self, op: IncDec, prefix: bool, target: &Expr) -> CgResult<VReg> {
        let delta = if op == IncDec::Increment { 1 } else { -1 };
        match &target.kind {
            ExprKind::Var(_) => {
                let id = *self
                    .analysis
                    .var_refs
                    .get(&target.id)
                    .ok_or_else(|| self.internal("an unresolved variable"))?;
                let super::gen::VarHome::Stack(off) = self.var_home(id)? else {
                    return Err(self.internal("`++` on a non-integer variable"));
                };
                let v = self.e.alloc()?;
                self.e.asm.emit([
                    Insn::load(Size::DW, R0, R10, off),
                    Insn::mov64_reg(R1, R0),
                    Insn::alu64_imm(Alu::Add, R1, delta),
                    Insn::store_reg(Size::DW, R10, off, R1),
                ]);
                self.e.set(v, if prefix { R1 } else { R0 });
                Ok(v)
            }
            ExprKind::Map(name) => {
                self.map_update_int(target, name, &[], Alu::Add, Operand::Imm(delta), prefix)
            }
            ExprKind::MapAccess { map, keys } => self.map_update_int(
                target,
                &map.name,
                keys,
                Alu::Add,
                Operand::Imm(delta),
                prefix,
            ),
            _ => Err(self.internal("`++` on something that is not a variable or map")),
        }
    }

    fn binary(&mut self, e: &Expr, op: BinOp, lhs: &Expr, rhs: &Expr) -> CgResult<VReg> {
        let (lt, rt) = (self.ty(lhs), self.ty(rhs));
        if let (Type::Str(_), Type::Str(_)) = (&lt, &rt) {
            return self.string_compare(op, lhs, rhs);
        }
        if matches!(op, BinOp::And | BinOp::Or) {
            return self.logical(op, lhs, rhs);
        }
        let signed = match (lt.as_int(), rt.as_int()) {
            (Some(a), Some(b)) => a.arith(b).signed,
            _ => false,
        };
        let a = self.expr(lhs)?;
        let b = self.expr(rhs)?;
        if let Some(&step) = self.analysis.pointer_steps.get(&e.id) {
            self.e.alu_imm(b, Alu::Mul, step as i32);
        }
        let alu = match op {
            BinOp::Add => Some(Alu::Add),
            BinOp::Sub => Some(Alu::Sub),
            BinOp::Mul => Some(Alu::Mul),
            BinOp::Div => Some(Alu::Div),
            BinOp::Mod => Some(Alu::Mod),
            BinOp::BitAnd => Some(Alu::And),
            BinOp::BitOr => Some(Alu::Or),
            BinOp::BitXor => Some(Alu::Xor),
            BinOp::Shl => Some(Alu::Lsh),
            BinOp::Shr => Some(if signed { Alu::Arsh } else { Alu::Rsh }),
            _ => None,
        };
        if let Some(alu) = alu {
            self.e.alu(a, alu, b);
        } else {
            let cond = compare(op, signed).ok_or_else(|| self.internal("an unknown operator"))?;
            let ra = self.e.get(a, R1);
            let rb = self.e.get(b, R2);
            let done = self.e.asm.label();
            self.e.asm.emit([Insn::mov64_imm(R3, 1)]);
            self.e.asm.jump(Insn::jmp_reg(cond, ra, rb, 0), done);
            self.e.asm.emit([Insn::mov64_imm(R3, 0)]);
            self.e.asm.place(done);
            self.e.set(a, R3);
        }
        self.e.free(b);
        Ok(a)
    }

    /// `&&` and `||`, evaluating the right side only when needed.
    fn logical(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr) -> CgResult<VReg> {
        let a = self.expr(lhs)?;
        let short = self.e.asm.label();
        let done = self.e.asm.label();
        // `&&` stops at the first false operand, `||` at the first true one.
        let stop = if op == BinOp::And { Cond::Eq } else { Cond::Ne };
        self.e.jump_imm(a, stop, 0, short);
        let b = self.expr(rhs)?;
        self.e.jump_imm(b, stop, 0, short);
        self.e.free(b);
        self.e.set_imm(a, i64::from(op == BinOp::And));
        self.e.asm.goto(done);
        self.e.asm.place(short);
        self.e.set_imm(a, i64::from(op == BinOp::Or));
        self.e.asm.place(done);
        Ok(a)
    }

    fn ternary(&mut self, e: &Expr, cond: &Expr, then: &Expr, otherwise: &Expr) -> CgResult<VReg> {
        let ty = self.ty(e);
        let result = self.e.alloc()?;
        let slot = if ty.is_scalar() {
            None
        } else {
            Some(self.e.slot(e.id.0, tag::VALUE, ty.size())?)
        };
        let c = self.expr(cond)?;
        let else_label: Label = self.e.asm.label();
        let done = self.e.asm.label();
        self.e.jump_imm(c, Cond::Eq, 0, else_label);
        self.e.free(c);
        for (branch, last) in [(then, false), (otherwise, true)] {
            let v = self.expr(branch)?;
            let from = self.ty(branch);
            match slot {
                None => {
                    let r = self.e.get(v, R1);
                    self.e.set(result, r);
                }
                Some(slot) => self.store_value(v, &from, slot, &ty),
            }
            self.e.free(v);
            if !last {
                self.e.asm.goto(done);
                self.e.asm.place(else_label);
            }
        }
        self.e.asm.place(done);
        if let Some(slot) = slot {
            self.e.set_scratch_ptr(result, slot);
        }
        Ok(result)
    }
}

/// The jump condition that is true when `a op b` holds.
fn compare(op: BinOp, signed: bool) -> Option<Cond> {
    Some(match (op, signed) {
        (BinOp::Eq, _) => Cond::Eq,
        (BinOp::Ne, _) => Cond::Ne,
        (BinOp::Lt, false) => Cond::Lt,
        (BinOp::Lt, true) => Cond::Slt,
        (BinOp::Le, false) => Cond::Le,
        (BinOp::Le, true) => Cond::Sle,
        (BinOp::Gt, false) => Cond::Gt,
        (BinOp::Gt, true) => Cond::Sgt,
        (BinOp::Ge, false) => Cond::Ge,
        (BinOp::Ge, true) => Cond::Sge,
        _ => return None,
    })
}
