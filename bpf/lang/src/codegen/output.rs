//! Output: events sent to user space through the ring buffer.
//!
//! An event is built in scratch — header, then payload as laid out by
//! [`layout`] — and copied into the ring buffer with `ringbuf_output`.
//! When the buffer is full the event is counted as lost, so user space
//! can say how many it missed.

use scorch_bpf::insn::{Alu, Cond, Insn, Size, R0, R1, R10, R2, R3, R4};

use super::emit::{FP_TEMP, SCRATCH};
use super::gen::{tag, CgResult, Gen};
use super::layout::{self, EventKind};
use crate::ast::{Expr, ExprKind};
use crate::sema::{AddrSpace, Const, Type};

impl Gen<'_> {
    /// Writes the header of an event at `scratch + slot`.
    fn header(&mut self, slot: u32, kind: EventKind, id: u32) {
        self.e.asm.emit([
            Insn::store_imm(Size::W, SCRATCH, slot as i16, kind as i32),
            Insn::store_imm(Size::W, SCRATCH, slot as i16 + 4, id as i32),
        ]);
    }

    /// Sends the `size` bytes at `scratch + slot`.
    fn send(&mut self, slot: u32, size: u32) {
        self.e.map(R1, self.compiled.events);
        self.e.scratch_ptr(R2, slot);
        self.e
            .asm
            .emit([Insn::mov64_imm(R3, size as i32), Insn::mov64_imm(R4, 0)]);
        self.e.call(libbpf_sys::BPF_FUNC_ringbuf_output);
        let sent = self.e.asm.label();
        self.e.asm.jump(Insn::jmp_imm(Cond::Sge, R0, 0, 0), sent);
        self.bump(super::COUNTER_LOST);
        self.e.asm.place(sent);
    }

    /// An event with only a header.
    fn simple_event(&mut self, call: &Expr, kind: EventKind, id: u32) -> CgResult<()> {
        let slot = self.e.slot(call.id.0, tag::RECORD, layout::HEADER)?;
        self.header(slot, kind, id);
        self.send(slot, layout::HEADER);
        Ok(())
    }

    /// `printf(fmt, args…)`, and `system` and `cat`, which format the same
    /// way (`kind` says which).
    pub(super) fn printf(&mut self, call: &Expr, args: &[Expr], kind: EventKind) -> CgResult<()> {
        let id = *self
            .analysis
            .formats
            .get(&call.id)
            .ok_or_else(|| self.internal("a printf without a format"))?;
        let types = self
            .analysis
            .printfs
            .get(id)
            .ok_or_else(|| self.internal("a printf format out of range"))?
            .args
            .clone();
        let (offsets, size) = layout::record(&types);
        let slot = self.e.slot(call.id.0, tag::RECORD, size)?;
        for ((arg, ty), off) in args.iter().skip(1).zip(&types).zip(offsets) {
            let v = self.expr(arg)?;
            self.store_value(v, ty, slot + off, &ty.widened());
            self.e.free(v);
        }
        self.header(slot, kind, id as u32);
        self.send(slot, size);
        Ok(())
    }

    /// `exit([code])`: stop every probe, tell user space, then stop this
    /// one.
    pub(super) fn exit_call(&mut self, call: &Expr, args: &[Expr]) -> CgResult<()> {
        // Set the "exited" flag first: other CPUs must not send anything
        // after the exit event.
        let globals = self.compiled.globals;
        self.e.map_value(R1, globals, super::GLOBAL_EXITED);
        self.e.asm.emit([Insn::store_imm(Size::DW, R1, 0, 1)]);
        let slot = self.e.slot(call.id.0, tag::RECORD, 16)?;
        match args.first() {
            Some(code) => {
                let v = self.expr(code)?;
                let r = self.e.get(v, R1);
                self.e
                    .asm
                    .emit([Insn::store_reg(Size::DW, SCRATCH, slot as i16 + 8, r)]);
                self.e.free(v);
            }
            None => {
                self.e
                    .asm
                    .emit([Insn::store_imm(Size::DW, SCRATCH, slot as i16 + 8, 0)]);
            }
        }
        self.header(slot, EventKind::Exit, 0);
        self.send(slot, 16);
        let exit = self.exit;
        self.e.asm.goto(exit);
        Ok(())
    }

    /// `print(@m[, top[, div]])` or `print(value)`.
    pub(super) fn print(&mut self, call: &Expr, args: &[Expr]) -> CgResult<()> {
        let Some(first) = args.first() else {
            return Err(self.internal("print() without arguments"));
        };
        if let ExprKind::Map(name) = &first.kind {
            let (map, _) = self.map_info(name)?;
            let number = |this: &Self, i: usize| match args.get(i) {
                Some(arg) => match (&arg.kind, this.analysis.consts.get(&arg.id)) {
                    (_, Some(Const::Int(v))) => *v,
                    (ExprKind::Int(v), _) => *v as i64,
                    _ => 0,
                },
                None => 0,
            };
            let (top, div) = (number(self, 1), number(self, 2));
            let slot = self.e.slot(call.id.0, tag::RECORD, 16)?;
            self.header(slot, EventKind::PrintMap, map as u32);
            self.e.asm.emit([
                Insn::store_imm(Size::W, SCRATCH, slot as i16 + 8, top as i32),
                Insn::store_imm(Size::W, SCRATCH, slot as i16 + 12, div as i32),
            ]);
            self.send(slot, 16);
            return Ok(());
        }
        let ty = self.ty(first);
        let id = self.compiled.value_prints.len() as u32;
        self.compiled.value_prints.push(ty.widened());
        let (offsets, size) = layout::record(std::slice::from_ref(&ty));
        let slot = self.e.slot(call.id.0, tag::RECORD, size)?;
        let v = self.expr(first)?;
        self.store_value(v, &ty, slot + offsets[0], &ty.widened());
        self.e.free(v);
        self.header(slot, EventKind::PrintValue, id);
        self.send(slot, size);
        Ok(())
    }

    /// `clear(@m)` and `zero(@m)`: done by user space, in order with the
    /// other events.
    pub(super) fn map_event(
        &mut self,
        call: &Expr,
        args: &[Expr],
        kind: EventKind,
    ) -> CgResult<()> {
        let Some(ExprKind::Map(name)) = args.first().map(|a| &a.kind) else {
            return Err(self.internal("a map event without a map"));
        };
        let (map, _) = self.map_info(name)?;
        self.simple_event(call, kind, map as u32)
    }

    /// `time([fmt])`.
    pub(super) fn time(&mut self, call: &Expr) -> CgResult<()> {
        let id = *self
            .analysis
            .formats
            .get(&call.id)
            .ok_or_else(|| self.internal("a time() without a format"))?;
        self.simple_event(call, EventKind::Time, id as u32)
    }
}

impl Gen<'_> {
    /// `join(argv[, delim])`: reads up to [`layout::JOIN_ARGS`] strings
    /// through the array of pointers, stopping at a NULL one, and sends
    /// them; user space joins them with the delimiter.
    pub(super) fn join(&mut self, call: &Expr, args: &[Expr]) -> CgResult<()> {
        let id = *self
            .analysis
            .formats
            .get(&call.id)
            .ok_or_else(|| self.internal("a join() without a delimiter"))?;
        let array = args
            .first()
            .ok_or_else(|| self.internal("join() without an argument"))?;
        let (read, read_str) = match self.ty(array) {
            Type::Ptr {
                space: AddrSpace::Kernel,
                ..
            } => (
                libbpf_sys::BPF_FUNC_probe_read_kernel,
                libbpf_sys::BPF_FUNC_probe_read_kernel_str,
            ),
            _ => (
                libbpf_sys::BPF_FUNC_probe_read_user,
                libbpf_sys::BPF_FUNC_probe_read_user_str,
            ),
        };
        let size = layout::HEADER + layout::JOIN_ARGS * layout::JOIN_ARG_SIZE;
        let slot = self.e.slot(super::gen::JOIN_OWNER, tag::RECORD, size)?;
        let string_at = |i: u32| (slot + layout::HEADER + i * layout::JOIN_ARG_SIZE) as i16;
        // Every string starts empty: the first empty one ends the list.
        for i in 0..layout::JOIN_ARGS {
            self.e
                .asm
                .emit([Insn::store_imm(Size::B, SCRATCH, string_at(i), 0)]);
        }
        let v = self.expr(array)?;
        let done = self.e.asm.label();
        for i in 0..layout::JOIN_ARGS {
            // The pointer `array[i]`, read into the temporary stack word
            // (zeroed by the helper when the read fails).
            self.e.stack_ptr(R1, FP_TEMP);
            self.e.asm.emit([Insn::mov64_imm(R2, 8)]);
            self.e.copy_to(R3, v);
            if i > 0 {
                self.e
                    .asm
                    .emit([Insn::alu64_imm(Alu::Add, R3, 8 * i as i32)]);
            }
            self.e.call(read);
            self.e.asm.emit([Insn::load(Size::DW, R3, R10, FP_TEMP)]);
            self.e.asm.jump(Insn::jmp_imm(Cond::Eq, R3, 0, 0), done);
            self.e.scratch_ptr(R1, string_at(i) as u32);
            self.e
                .asm
                .emit([Insn::mov64_imm(R2, layout::JOIN_ARG_SIZE as i32)]);
            self.e.call(read_str);
        }
        self.e.asm.place(done);
        self.e.free(v);
        self.header(slot, EventKind::Join, id as u32);
        self.send(slot, size);
        Ok(())
    }
}
