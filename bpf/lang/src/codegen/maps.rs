//! Map operations: keys, lookups, updates and aggregations.
//!
//! Plain maps (`@m[k] = v`) are hashes updated with `map_update_elem`.
//! Aggregations (`count()`, `hist()`, …) are per-CPU hashes: the program
//! finds or creates this CPU's entry and changes it in place, without
//! atomics; user space adds the CPUs up.

use scorch_bpf::insn::{Alu, Cond, Insn, Label, Reg, Size, R0, R1, R10, R2, R3, R4};

use super::emit::{VReg, FP_TEMP, SCRATCH};
use super::gen::{tag, CgResult, Gen, ZERO_OWNER};
use super::layout;
use crate::ast::{BinOp, Expr, ExprKind};
use crate::sema::{AggKind, Function, MapInfo, Type};

/// The right-hand side of an update of an integer map.
pub(super) enum Operand {
    /// A computed value.
    Reg(VReg),
    /// A constant (`++` and `--`).
    Imm(i32),
}

impl Gen<'_> {
    /// The index and description of `@name`.
    pub(super) fn map_info(&self, name: &str) -> CgResult<(usize, MapInfo)> {
        self.analysis
            .map(name)
            .map(|(i, m)| (i, m.clone()))
            .ok_or_else(|| self.internal("an unknown map"))
    }

    /// Writes the key of `@map[keys]` (and `bucket`) into the key slot of
    /// `owner`, zeroed first; returns the slot.
    pub(super) fn build_key(
        &mut self,
        owner: &Expr,
        info: &MapInfo,
        keys: &[Expr],
        bucket: Option<VReg>,
    ) -> CgResult<u32> {
        let fields = layout::key(info);
        let size = layout::key_size(info);
        let slot = self.e.slot(owner.id.0, tag::KEY, size)?;
        self.e.zero_scratch(slot, size);
        let key_tuple = Type::Tuple(info.keys.clone());
        match keys {
            [] => {}
            [one]
                if matches!(self.ty(one), Type::Tuple(_))
                    && !matches!(info.keys.as_slice(), [Type::Tuple(_)]) =>
            {
                // `@m[(a, b)]`: the tuple is the whole key.
                let v = self.expr(one)?;
                let from = self.ty(one);
                self.e.copy_to(R1, v);
                self.convert(R1, 0, &from, SCRATCH, slot as i16, &key_tuple);
                self.e.free(v);
            }
            _ => {
                for (key, (off, to)) in keys.iter().zip(&fields.fields) {
                    let v = self.expr(key)?;
                    let from = self.ty(key);
                    self.store_value(v, &from, slot + off, to);
                    self.e.free(v);
                }
            }
        }
        if let Some(bucket) = bucket {
            let r = self.e.get(bucket, R1);
            self.e.asm.emit([Insn::store_reg(
                Size::DW,
                SCRATCH,
                (slot + fields.size) as i16,
                r,
            )]);
        }
        Ok(slot)
    }

    /// `r0 = lookup(map, scratch + key)`.
    fn lookup(&mut self, map: usize, key: u32) {
        self.e.map(R1, map);
        self.e.scratch_ptr(R2, key);
        self.e.call(libbpf_sys::BPF_FUNC_map_lookup_elem);
    }

    /// `@name[keys]` read as a value: 0 (or zeroes) when absent.
    pub(super) fn map_read(&mut self, e: &Expr, name: &str, keys: &[Expr]) -> CgResult<VReg> {
        let (map, info) = self.map_info(name)?;
        let key = self.build_key(e, &info, keys, None)?;
        let ty = info.value.clone();
        let v = self.e.alloc()?;
        self.lookup(map, key);
        let absent = self.e.asm.label();
        let done = self.e.asm.label();
        self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), absent);
        if ty.is_scalar() {
            self.e.asm.emit([Insn::load(Size::DW, R1, R0, 0)]);
            self.e.set(v, R1);
            self.e.asm.goto(done);
            self.e.asm.place(absent);
            self.e.set_imm(v, 0);
        } else {
            let size = layout::value_size(&ty);
            let slot = self.e.slot(e.id.0, tag::MAP_VALUE, size)?;
            self.e.asm.emit([Insn::mov64_reg(R1, R0)]);
            self.e.copy_mem(SCRATCH, slot as i16, R1, 0, size);
            self.e.asm.goto(done);
            self.e.asm.place(absent);
            self.e.zero_scratch(slot, size);
        }
        self.e.asm.place(done);
        if !ty.is_scalar() {
            let slot = self
                .e
                .slot(e.id.0, tag::MAP_VALUE, layout::value_size(&ty))?;
            self.e.set_scratch_ptr(v, slot);
        }
        Ok(v)
    }

    /// `target = value` / `target op= value` for maps and variables.
    pub(super) fn assign(
        &mut self,
        target: &Expr,
        op: Option<BinOp>,
        value: &Expr,
    ) -> CgResult<()> {
        let (name, keys): (&str, &[Expr]) = match &target.kind {
            ExprKind::Var(_) => {
                let id = *self
                    .analysis
                    .var_refs
                    .get(&target.id)
                    .ok_or_else(|| self.internal("an unresolved variable"))?;
                let v = self.expr(value)?;
                let from = self.ty(value);
                if let Some(op) = op {
                    let signed = self.var_type(id).as_int().is_some_and(|i| i.signed);
                    let old = self.load_var(id)?;
                    self.e.alu(old, alu(op, signed), v);
                    self.store_var(id, old, &from)?;
                    self.e.free(old);
                } else {
                    self.store_var(id, v, &from)?;
                }
                self.e.free(v);
                return Ok(());
            }
            ExprKind::Map(name) => (name, &[]),
            ExprKind::MapAccess { map, keys } => (&map.name, keys),
            _ => {
                return Err(
                    self.internal("an assignment to something that is not a variable or map")
                )
            }
        };
        if let Some(op) = op {
            let v = self.expr(value)?;
            let signed = self
                .map_info(name)?
                .1
                .value
                .as_int()
                .is_some_and(|i| i.signed);
            let r =
                self.map_update_int(target, name, keys, alu(op, signed), Operand::Reg(v), true)?;
            self.e.free(r);
            self.e.free(v);
            return Ok(());
        }
        if let ExprKind::Call { args, .. } = &value.kind {
            if let Some(f) = self.analysis.calls.get(&value.id).copied() {
                if f.is_aggregation() {
                    return self.aggregate(target, name, keys, f, args);
                }
            }
        }
        let (map, info) = self.map_info(name)?;
        let v = self.expr(value)?;
        let from = self.ty(value);
        let key = self.build_key(target, &info, keys, None)?;
        let size = layout::value_size(&info.value);
        let slot = self.e.slot(target.id.0, tag::VALUE, size)?;
        if !from.is_scalar() {
            self.e.zero_scratch(slot, size);
        }
        self.store_value(v, &from, slot, &info.value);
        self.e.free(v);
        self.e.map(R1, map);
        self.e.scratch_ptr(R2, key);
        self.e.scratch_ptr(R3, slot);
        self.e
            .asm
            .emit([Insn::mov64_imm(R4, libbpf_sys::BPF_ANY as i32)]);
        self.e.call(libbpf_sys::BPF_FUNC_map_update_elem);
        self.count_full();
        Ok(())
    }

    /// Counts a failed update because the map was full (`r0` = -E2BIG).
    /// Errors are compared on their low 32 bits: before Linux 6.4 the
    /// verifier inlines map updates as calls returning a 32-bit `int`.
    fn count_full(&mut self) {
        let ok = self.e.asm.label();
        self.e
            .asm
            .jump(Insn::jmp32_imm(Cond::Ne, R0, -libc::E2BIG, 0), ok);
        self.bump(super::COUNTER_MAP_FULL);
        self.e.asm.place(ok);
    }

    /// Adds one to a counter of this CPU.
    pub(super) fn bump(&mut self, counter: u32) {
        let done = self.e.asm.label();
        self.e
            .asm
            .emit([Insn::store_imm(Size::W, R10, FP_TEMP, counter as i32)]);
        self.e.map(R1, self.compiled.counters);
        self.e.stack_ptr(R2, FP_TEMP);
        self.e.call(libbpf_sys::BPF_FUNC_map_lookup_elem);
        self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), done);
        self.e.asm.emit([
            Insn::load(Size::DW, R1, R0, 0),
            Insn::alu64_imm(Alu::Add, R1, 1),
            Insn::store_reg(Size::DW, R0, 0, R1),
        ]);
        self.e.asm.place(done);
    }

    /// `r0` = this CPU's entry for `key`, created zeroed when missing;
    /// jumps to `skip` when the map is full.
    fn entry(&mut self, map: usize, key: u32, value_size: u32, skip: Label) -> CgResult<()> {
        let found = self.e.asm.label();
        self.lookup(map, key);
        self.e.asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), found);
        // 16 zero bytes for most aggregations, 24 for tseries() slots.
        let (tag, size) = if value_size > 16 {
            (tag::KEY, 24)
        } else {
            (tag::VALUE, 16)
        };
        debug_assert!(value_size <= size);
        let zero = self.e.slot(ZERO_OWNER, tag, size)?;
        self.e.zero_scratch(zero, size);
        self.e.map(R1, map);
        self.e.scratch_ptr(R2, key);
        self.e.scratch_ptr(R3, zero);
        self.e
            .asm
            .emit([Insn::mov64_imm(R4, libbpf_sys::BPF_NOEXIST as i32)]);
        self.e.call(libbpf_sys::BPF_FUNC_map_update_elem);
        let created = self.e.asm.label();
        self.e
            .asm
            .jump(Insn::jmp32_imm(Cond::Ne, R0, -libc::E2BIG, 0), created);
        self.bump(super::COUNTER_MAP_FULL);
        self.e.asm.goto(skip);
        self.e.asm.place(created);
        self.lookup(map, key);
        self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), skip);
        self.e.asm.place(found);
        Ok(())
    }

    /// `@name[keys] op= operand` on an integer map; the result is the new
    /// value, or the old one when `!new_value`.
    pub(super) fn map_update_int(
        &mut self,
        target: &Expr,
        name: &str,
        keys: &[Expr],
        op: Alu,
        operand: Operand,
        new_value: bool,
    ) -> CgResult<VReg> {
        let (map, info) = self.map_info(name)?;
        let key = self.build_key(target, &info, keys, None)?;
        let result = self.e.alloc()?;
        self.e.set_imm(result, 0);
        let skip = self.e.asm.label();
        self.entry(map, key, 8, skip)?;
        self.e
            .asm
            .emit([Insn::load(Size::DW, R1, R0, 0), Insn::mov64_reg(R3, R1)]);
        match operand {
            Operand::Reg(v) => {
                let r = self.e.get(v, R2);
                self.e.asm.emit([Insn::alu64_reg(op, R1, r)]);
            }
            Operand::Imm(imm) => {
                self.e.asm.emit([Insn::alu64_imm(op, R1, imm)]);
            }
        }
        self.e.asm.emit([Insn::store_reg(Size::DW, R0, 0, R1)]);
        self.e.set(result, if new_value { R1 } else { R3 });
        self.e.asm.place(skip);
        Ok(result)
    }

    /// `@name[keys] = f(args)` for an aggregating function.
    fn aggregate(
        &mut self,
        target: &Expr,
        name: &str,
        keys: &[Expr],
        f: Function,
        args: &[Expr],
    ) -> CgResult<()> {
        let (map, info) = self.map_info(name)?;
        let Type::Agg(kind) = info.value else {
            return Err(self.internal("an aggregation into a plain map"));
        };
        let value = match args.first() {
            Some(arg) if f != Function::Count => Some(self.expr(arg)?),
            _ => None,
        };
        let mut tseries = None;
        let bucket = match (kind, value) {
            (
                AggKind::Tseries {
                    interval_ns,
                    intervals,
                    ..
                },
                Some(_),
            ) => {
                let slot = self.tseries_slot(interval_ns, intervals)?;
                let bucket = slot.bucket;
                tseries = Some(slot);
                Some(bucket)
            }
            (AggKind::Hist { bits: 0 }, Some(v)) => Some(self.log2_bucket(v)?),
            (AggKind::Hist { bits }, Some(v)) => Some(self.log2_sub_bucket(v, bits)?),
            (AggKind::Lhist { min, max, step }, Some(v)) => {
                Some(self.linear_bucket(v, min, max, step)?)
            }
            _ => None,
        };
        let key = self.build_key(target, &info, keys, bucket)?;
        if let Some(b) = bucket {
            self.e.free(b);
        }
        let skip = self.e.asm.label();
        self.entry(map, key, layout::value_size(&info.value), skip)?;
        match (kind, value) {
            (AggKind::Count | AggKind::Hist { .. } | AggKind::Lhist { .. }, _) => {
                self.e.asm.emit([
                    Insn::load(Size::DW, R1, R0, 0),
                    Insn::alu64_imm(Alu::Add, R1, 1),
                    Insn::store_reg(Size::DW, R0, 0, R1),
                ]);
            }
            (AggKind::Sum { .. }, Some(v)) => {
                let r = self.e.get(v, R2);
                self.e.asm.emit([
                    Insn::load(Size::DW, R1, R0, 0),
                    Insn::alu64_reg(Alu::Add, R1, r),
                    Insn::store_reg(Size::DW, R0, 0, R1),
                ]);
            }
            (AggKind::Avg | AggKind::Stats, Some(v)) => {
                let r = self.e.get(v, R2);
                self.e.asm.emit([
                    Insn::load(Size::DW, R1, R0, 0),
                    Insn::alu64_imm(Alu::Add, R1, 1),
                    Insn::store_reg(Size::DW, R0, 0, R1),
                    Insn::load(Size::DW, R1, R0, 8),
                    Insn::alu64_reg(Alu::Add, R1, r),
                    Insn::store_reg(Size::DW, R0, 8, R1),
                ]);
            }
            (AggKind::Min | AggKind::Max, Some(v)) => {
                // value at +0, "has a value" flag at +8.
                let r = self.e.get(v, R2);
                let store = self.e.asm.label();
                let better = if kind == AggKind::Min {
                    Cond::Slt
                } else {
                    Cond::Sgt
                };
                self.e.asm.emit([Insn::load(Size::DW, R1, R0, 8)]);
                self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), store);
                self.e.asm.emit([Insn::load(Size::DW, R1, R0, 0)]);
                self.e.asm.jump(Insn::jmp_reg(better, r, R1, 0), store);
                self.e.asm.goto(skip);
                self.e.asm.place(store);
                self.e.asm.emit([
                    Insn::store_reg(Size::DW, R0, 0, r),
                    Insn::store_imm(Size::DW, R0, 8, 1),
                ]);
            }
            (AggKind::Tseries { agg, signed, .. }, Some(v)) => {
                let slot = tseries
                    .take()
                    .ok_or_else(|| self.internal("a tseries() without its interval"))?;
                self.tseries_update(v, &slot, agg, signed, skip);
                self.e.free(slot.epoch);
                self.e.free(slot.now);
            }
            _ => return Err(self.internal("an aggregation without its argument")),
        }
        self.e.asm.place(skip);
        if let Some(v) = value {
            self.e.free(v);
        }
        Ok(())
    }

    /// The `hist()` bucket of `v`: 0 for negatives, 1 for 0, then
    /// `floor(log2(v)) + 2`.
    fn log2_bucket(&mut self, v: VReg) -> CgResult<VReg> {
        let b = self.e.alloc()?;
        let done = self.e.asm.label();
        let r = self.e.get(v, R1);
        self.e
            .asm
            .emit([Insn::mov64_reg(R1, r), Insn::mov64_imm(R0, 0)]);
        self.e.asm.jump(Insn::jmp_imm(Cond::Slt, R1, 0, 0), done);
        self.e.asm.emit([Insn::mov64_imm(R0, 1)]);
        self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R1, 0, 0), done);
        self.e.asm.emit([Insn::mov64_imm(R0, 2)]);
        self.add_floor_log2(R1, R0);
        self.e.asm.place(done);
        self.e.set(b, R0);
        Ok(b)
    }

    /// `result += floor(log2(value))` for `value > 0` by binary search over
    /// shifts; `value` is consumed and `r2` clobbered.
    fn add_floor_log2(&mut self, value: Reg, result: Reg) {
        for shift in [32, 16, 8, 4, 2, 1] {
            let next = self.e.asm.label();
            self.e.asm.emit([
                Insn::mov64_reg(R2, value),
                Insn::alu64_imm(Alu::Rsh, R2, shift),
            ]);
            self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R2, 0, 0), next);
            self.e.asm.emit([
                Insn::mov64_reg(value, R2),
                Insn::alu64_imm(Alu::Add, result, shift),
            ]);
            self.e.asm.place(next);
        }
    }

    /// The `hist(v, k)` bucket of `v` for `k > 0`, as bpftrace 0.21+:
    /// 0 for negatives, `v + 1` below `2^k`, else with `p = log2(v)`,
    /// `((p - k) << k) + (v >> (p - k)) + 1`.
    fn log2_sub_bucket(&mut self, v: VReg, bits: u8) -> CgResult<VReg> {
        let k = i32::from(bits);
        let b = self.e.alloc()?;
        let done = self.e.asm.label();
        let r = self.e.get(v, R1);
        self.e
            .asm
            .emit([Insn::mov64_reg(R1, r), Insn::mov64_imm(R0, 0)]);
        self.e.asm.jump(Insn::jmp_imm(Cond::Slt, R1, 0, 0), done);
        self.e
            .asm
            .emit([Insn::mov64_reg(R0, R1), Insn::alu64_imm(Alu::Add, R0, 1)]);
        self.e
            .asm
            .jump(Insn::jmp_imm(Cond::Lt, R1, 1 << k, 0), done);
        // r3 = floor(log2(v)), from a copy in r4.
        self.e
            .asm
            .emit([Insn::mov64_reg(R4, R1), Insn::mov64_imm(R3, 0)]);
        self.add_floor_log2(R4, R3);
        self.e.asm.emit([
            Insn::alu64_imm(Alu::Sub, R3, k),
            Insn::mov64_reg(R0, R3),
            Insn::alu64_imm(Alu::Lsh, R0, k),
            Insn::alu64_reg(Alu::Rsh, R1, R3),
            Insn::alu64_reg(Alu::Add, R0, R1),
            Insn::alu64_imm(Alu::Add, R0, 1),
        ]);
        self.e.asm.place(done);
        self.e.set(b, R0);
        Ok(b)
    }

    /// The `lhist()` bucket of `v`: 0 below `min`, `(v - min) / step + 1`
    /// up to `max`, one past the last bucket above it.
    fn linear_bucket(&mut self, v: VReg, min: i64, max: i64, step: i64) -> CgResult<VReg> {
        let b = self.e.alloc()?;
        let done = self.e.asm.label();
        let buckets = (max - min) / step;
        let r = self.e.get(v, R1);
        self.e
            .asm
            .emit([Insn::mov64_reg(R1, r), Insn::mov64_imm(R0, 0)]);
        self.e.load_imm(R2, min);
        self.e.asm.jump(Insn::jmp_reg(Cond::Slt, R1, R2, 0), done);
        self.e.load_imm(R0, buckets + 1);
        self.e.load_imm(R3, max);
        self.e.asm.jump(Insn::jmp_reg(Cond::Sgt, R1, R3, 0), done);
        self.e
            .asm
            .emit([Insn::mov64_reg(R0, R1), Insn::alu64_reg(Alu::Sub, R0, R2)]);
        self.e.load_imm(R3, step);
        self.e.asm.emit([
            Insn::alu64_reg(Alu::Div, R0, R3),
            Insn::alu64_imm(Alu::Add, R0, 1),
        ]);
        self.e.asm.place(done);
        self.e.set(b, R0);
        Ok(b)
    }

    /// `delete(@m[k])`, `delete(@m, k)`, `delete(@m)`.
    pub(super) fn delete(&mut self, call: &Expr, args: &[Expr]) -> CgResult<()> {
        let (target, keys): (&Expr, &[Expr]) = match args {
            [t @ Expr {
                kind: ExprKind::MapAccess { keys, .. },
                ..
            }] => (t, keys),
            [t, rest @ ..] => (t, rest),
            [] => return Err(self.internal("delete() without arguments")),
        };
        let name = match &target.kind {
            ExprKind::Map(name) => name,
            ExprKind::MapAccess { map, .. } => &map.name,
            _ => return Err(self.internal("delete() of a non-map")),
        };
        let (map, info) = self.map_info(name)?;
        let key = self.build_key(call, &info, keys, None)?;
        self.e.map(R1, map);
        self.e.scratch_ptr(R2, key);
        self.e.call(libbpf_sys::BPF_FUNC_map_delete_elem);
        Ok(())
    }

    /// `has_key(@m, k)`: 1 when the key is present.
    pub(super) fn has_key(&mut self, call: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let Some(ExprKind::Map(name)) = args.first().map(|a| &a.kind) else {
            return Err(self.internal("has_key() without a map"));
        };
        let (map, info) = self.map_info(name)?;
        let key = self.build_key(call, &info, &args[1..], None)?;
        let v = self.e.alloc()?;
        self.lookup(map, key);
        self.e.asm.emit([Insn::mov64_reg(R1, R0)]);
        self.e.set(v, R1);
        self.truth(v, false);
        Ok(v)
    }
}

/// The ALU operation of a compound assignment.
fn alu(op: BinOp, signed: bool) -> Alu {
    match op {
        BinOp::Sub => Alu::Sub,
        BinOp::Mul => Alu::Mul,
        BinOp::Div => Alu::Div,
        BinOp::Mod => Alu::Mod,
        BinOp::BitAnd => Alu::And,
        BinOp::BitOr => Alu::Or,
        BinOp::BitXor => Alu::Xor,
        BinOp::Shl => Alu::Lsh,
        BinOp::Shr if signed => Alu::Arsh,
        BinOp::Shr => Alu::Rsh,
        _ => Alu::Add,
    }
}
