//! `@m[k] = tseries(x, interval, intervals[, agg])`: the slot of the
//! current interval and its update.
//!
//! A slot's value is `{ value, meta, epoch }` (24 bytes, per CPU), as in
//! bpftrace: `meta` is the TAI time of the last write for the default
//! (last value) aggregation and the count of values for `avg`. A slot
//! still holding an older epoch is overwritten.

use scorch_bpf::insn::{Alu, Cond, Insn, Label, Size, R0, R1, R2, R3};

use super::emit::VReg;
use super::gen::{CgResult, Gen};
use crate::sema::TseriesAgg;

/// The current time and interval of a `tseries()` write.
pub(super) struct Slot {
    /// TAI nanoseconds now.
    pub now: VReg,
    /// The interval's number: now / interval.
    pub epoch: VReg,
    /// Where it is kept: epoch % intervals.
    pub bucket: VReg,
}

impl Gen<'_> {
    /// Reads the TAI clock and finds the current interval's slot.
    pub(super) fn tseries_slot(&mut self, interval_ns: u64, intervals: u64) -> CgResult<Slot> {
        self.e.call(libbpf_sys::BPF_FUNC_ktime_get_tai_ns);
        let now = self.e.alloc()?;
        self.e.set(now, R0);
        let epoch = self.e.alloc()?;
        self.e.set(epoch, R0);
        let bucket = self.e.alloc()?;
        // Freed first: registers are a stack.
        let divisor = self.e.alloc()?;
        self.e.set_imm(divisor, interval_ns as i64);
        self.e.alu(epoch, Alu::Div, divisor);
        let r = self.e.get(epoch, R1);
        self.e.set(bucket, r);
        self.e.set_imm(divisor, intervals as i64);
        self.e.alu(bucket, Alu::Mod, divisor);
        self.e.free(divisor);
        Ok(Slot { now, epoch, bucket })
    }

    /// Updates the slot `r0` points to with value `v`; jumps to `done`.
    pub(super) fn tseries_update(
        &mut self,
        v: VReg,
        slot: &Slot,
        agg: TseriesAgg,
        signed: bool,
        done: Label,
    ) {
        let reset = self.e.asm.label();
        let re = self.e.get(slot.epoch, R3);
        self.e.asm.emit([Insn::load(Size::DW, R1, R0, 16)]);
        self.e.asm.jump(Insn::jmp_reg(Cond::Ne, R1, re, 0), reset);
        let rv = self.e.get(v, R2);
        match agg {
            TseriesAgg::Last => {
                self.e.asm.emit([Insn::store_reg(Size::DW, R0, 0, rv)]);
                let rn = self.e.get(slot.now, R2);
                self.e.asm.emit([Insn::store_reg(Size::DW, R0, 8, rn)]);
            }
            TseriesAgg::Avg | TseriesAgg::Sum => {
                self.e.asm.emit([
                    Insn::load(Size::DW, R1, R0, 0),
                    Insn::alu64_reg(Alu::Add, R1, rv),
                    Insn::store_reg(Size::DW, R0, 0, R1),
                ]);
                if agg == TseriesAgg::Avg {
                    self.e.asm.emit([
                        Insn::load(Size::DW, R1, R0, 8),
                        Insn::alu64_imm(Alu::Add, R1, 1),
                        Insn::store_reg(Size::DW, R0, 8, R1),
                    ]);
                }
            }
            TseriesAgg::Max | TseriesAgg::Min => {
                let better = match (agg == TseriesAgg::Max, signed) {
                    (true, true) => Cond::Sgt,
                    (true, false) => Cond::Gt,
                    (false, true) => Cond::Slt,
                    (false, false) => Cond::Lt,
                };
                let store = self.e.asm.label();
                self.e.asm.emit([Insn::load(Size::DW, R1, R0, 0)]);
                self.e.asm.jump(Insn::jmp_reg(better, rv, R1, 0), store);
                self.e.asm.goto(done);
                self.e.asm.place(store);
                self.e.asm.emit([Insn::store_reg(Size::DW, R0, 0, rv)]);
            }
        }
        self.e.asm.goto(done);
        // A new interval in this slot: start over.
        self.e.asm.place(reset);
        let rv = self.e.get(v, R2);
        self.e.asm.emit([Insn::store_reg(Size::DW, R0, 0, rv)]);
        match agg {
            TseriesAgg::Last => {
                let rn = self.e.get(slot.now, R2);
                self.e.asm.emit([Insn::store_reg(Size::DW, R0, 8, rn)]);
            }
            TseriesAgg::Avg => {
                self.e.asm.emit([Insn::store_imm(Size::DW, R0, 8, 1)]);
            }
            _ => {
                self.e.asm.emit([Insn::store_imm(Size::DW, R0, 8, 0)]);
            }
        }
        let re = self.e.get(slot.epoch, R3);
        self.e.asm.emit([Insn::store_reg(Size::DW, R0, 16, re)]);
    }
}
