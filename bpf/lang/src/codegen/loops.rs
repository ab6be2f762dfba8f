//! `for` loops: the body as a callback of a looping helper.
//!
//! `for ($kv : @m) { … }` becomes a call of `bpf_for_each_map_elem` and
//! `for ($i : a..b) { … }` a call of `bpf_loop`; the body is a BPF
//! subprogram the helper calls once per element (per index), placed after
//! the probe's code and referenced by an `ld_imm64` with
//! `BPF_PSEUDO_FUNC`. The verifier accepts such a reference only from a
//! program loaded with BTF func info (one `FUNC` per subprogram, "missing
//! btf func_info" otherwise): [`ProgramDef::callbacks`](super::ProgramDef)
//! says where each callback starts, and the loader describes them with
//! `scorch_bpf::func_info`.
//!
//! A callback has its own registers and stack frame, but the body reads
//! and writes the probe's variables. The probe passes a pointer to its
//! own frame as the callback's context; the callback copies the
//! probe's variable slots (same offsets) into its frame on entry and back
//! on exit, so the body's code is generated exactly as the probe's is.
//! Three variable slots of the probe make this work:
//!
//! - `scratch`: the scratch base (`r9`), which the callback reloads;
//! - `stop`: set by the callback when the body ran `return` or `exit()`,
//!   so the probe leaves too once the helper returns;
//! - `link`: in a callback's frame, the pointer to its caller's frame.
//!
//! The 512-byte stack is shared by the probe's frame and every nested
//! callback's frame, so a probe with loops gets an equal part per level.
//! The callback returns 0 to go on and 1 to stop (`break`). `bpf_loop`
//! runs at most 2^23 iterations: a longer constant range is a compile
//! error, a longer computed one runs no iteration at all.

use scorch_bpf::insn::{Alu, Cond, Insn, Reg, Size, R0, R1, R10, R2, R3, R4, R6};

use super::emit::{FP_CTX, SCRATCH};
use super::gen::{CgResult, Gen, VarHome};
use crate::ast::{Block, ExprKind, ForIterable, Name, Stmt, StmtKind};
use crate::sema::Type;
use crate::visit::{self, Visitor};

/// Size of the whole BPF stack.
const STACK: i16 = 512;

/// A callback subprogram: its code and the subprograms it references.
pub(super) struct Subprog {
    pub(super) insns: Vec<Insn>,
    pub(super) func_refs: Vec<(usize, usize)>,
    /// How many arguments the helper passes it.
    pub(super) arity: u32,
}

/// The probe's variable slots that loops use (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(super) struct LoopSlots {
    scratch: i16,
    stop: i16,
    link: i16,
}

impl LoopSlots {
    fn contains(&self, off: i16) -> bool {
        [self.scratch, self.stop, self.link].contains(&off)
    }
}

/// How deeply `for` loops nest in `block` (0 without loops).
pub(super) fn nesting(block: &Block) -> u32 {
    struct Depth {
        now: u32,
        max: u32,
    }
    impl Visitor for Depth {
        fn visit_stmt(&mut self, s: &Stmt) {
            let is_for = matches!(s.kind, StmtKind::For { .. });
            self.now += u32::from(is_for);
            self.max = self.max.max(self.now);
            visit::walk_stmt(self, s);
            self.now -= u32::from(is_for);
        }
    }
    let mut d = Depth { now: 0, max: 0 };
    d.visit_block(block);
    d.max
}

/// The frame size of each level when loops nest `depth` deep: an equal
/// share of the stack, a multiple of 32 as the verifier counts frames.
pub(super) fn frame_size(depth: u32) -> i16 {
    let share = STACK / (depth.min(7) as i16 + 1);
    share / 32 * 32
}

/// `off` in the caller's frame, relative to the context pointer a
/// callback receives (the caller's `fp + FP_CTX`).
fn in_caller(off: i16) -> i16 {
    off - FP_CTX
}

impl Gen<'_> {
    /// Allocates the loop slots; called once, where variables are zeroed.
    pub(super) fn alloc_loop_slots(&mut self) -> CgResult<LoopSlots> {
        let mut slot = || -> CgResult<i16> {
            let off = self.e.var_slot()?;
            self.e.asm.emit([Insn::store_imm(Size::DW, R10, off, 0)]);
            Ok(off)
        };
        Ok(LoopSlots {
            scratch: slot()?,
            stop: slot()?,
            link: slot()?,
        })
    }

    /// A `for` statement.
    pub(super) fn for_stmt(
        &mut self,
        var: &Name,
        iterable: &ForIterable,
        body: &Block,
    ) -> CgResult<bool> {
        let slots = self
            .loop_slots
            .ok_or_else(|| self.internal("a loop without its slots"))?;
        let var_id = *self
            .analysis
            .let_vars
            .get(&var.span)
            .ok_or_else(|| self.internal("an undeclared loop variable"))?;
        // What the helper walks: a map, or a number of iterations.
        let count = match iterable {
            ForIterable::Map(_) => None,
            ForIterable::Range { start, end } => {
                let VarHome::Stack(home) = self.var_home(var_id)? else {
                    return Err(self.internal("a range variable outside the stack"));
                };
                let first = self.expr(start)?;
                let r = self.e.get(first, R1);
                self.e.asm.emit([Insn::store_reg(Size::DW, R10, home, r)]);
                let last = self.expr(end)?;
                self.e.alu(last, Alu::Sub, first);
                let positive = self.e.asm.label();
                let r = self.e.get(last, R0);
                self.e.asm.jump(Insn::jmp_imm(Cond::Sgt, r, 0, 0), positive);
                self.e.asm.emit([Insn::mov64_imm(r, 0)]);
                self.e.asm.place(positive);
                self.e.set(last, r);
                Some((first, last))
            }
        };
        let id = self.subprogs.len();
        self.subprogs.push(None);
        let sub = self.callback(var_id, iterable, body, slots)?;
        self.subprogs[id] = Some(sub);

        self.e.asm.emit([
            Insn::store_imm(Size::DW, R10, slots.stop, 0),
            Insn::store_reg(Size::DW, R10, slots.scratch, SCRATCH),
        ]);
        let helper = match (iterable, count) {
            (ForIterable::Map(map), _) => {
                let ExprKind::Map(name) = &map.kind else {
                    return Err(self.internal("a loop over something other than a map"));
                };
                let (map, _) = self.map_info(name)?;
                self.e.map(R1, map);
                libbpf_sys::BPF_FUNC_for_each_map_elem
            }
            (_, Some((first, last))) => {
                self.e.copy_to(R1, last);
                self.e.free(last);
                self.e.free(first);
                libbpf_sys::BPF_FUNC_loop
            }
            _ => return Err(self.internal("a range without its count")),
        };
        self.e.func_addr(R2, id);
        self.e.stack_ptr(R3, FP_CTX);
        self.e.asm.emit([Insn::mov64_imm(R4, 0)]);
        self.e.call(helper);
        // Leave the probe too if the body ran `return` or `exit()`.
        let exit = self.exit;
        self.e.asm.emit([Insn::load(Size::DW, R1, R10, slots.stop)]);
        self.e.asm.jump(Insn::jmp_imm(Cond::Ne, R1, 0, 0), exit);
        Ok(false)
    }

    /// The body of a loop as a callback subprogram.
    fn callback(
        &mut self,
        var_id: crate::sema::VarId,
        iterable: &ForIterable,
        body: &Block,
        slots: LoopSlots,
    ) -> CgResult<Subprog> {
        let mut other = self.e.callback();
        std::mem::swap(&mut self.e, &mut other);
        let exit = std::mem::replace(&mut self.exit, self.e.asm.label());
        let loops = std::mem::take(&mut self.loops);
        let result = self.callback_body(var_id, iterable, body, slots);
        std::mem::swap(&mut self.e, &mut other);
        self.exit = exit;
        self.loops = loops;
        self.e.rejoin(&mut other);
        result?;
        let func_refs = std::mem::take(&mut other.func_refs);
        Ok(Subprog {
            insns: other.finish()?,
            func_refs,
            arity: match iterable {
                ForIterable::Map(_) => 4,
                ForIterable::Range { .. } => 2,
            },
        })
    }

    fn callback_body(
        &mut self,
        var_id: crate::sema::VarId,
        iterable: &ForIterable,
        body: &Block,
        slots: LoopSlots,
    ) -> CgResult<()> {
        // Map callbacks get (map, key, value, ctx); `bpf_loop` callbacks
        // get (index, ctx).
        let caller = match iterable {
            ForIterable::Map(_) => R4,
            ForIterable::Range { .. } => R2,
        };
        let slot_list: Vec<i16> = self.e.var_slots().collect();
        for &off in std::iter::once(&FP_CTX).chain(&slot_list) {
            self.e.asm.emit([
                Insn::load(Size::DW, R0, caller, in_caller(off)),
                Insn::store_reg(Size::DW, R10, off, R0),
            ]);
        }
        self.e.asm.emit([
            Insn::store_reg(Size::DW, R10, slots.link, caller),
            Insn::load(Size::DW, SCRATCH, R10, slots.scratch),
        ]);
        let var_home = self.var_home(var_id)?;
        match (iterable, var_home) {
            (ForIterable::Map(_), VarHome::Scratch(home)) => {
                let Type::Tuple(kv) = self.var_type(var_id) else {
                    return Err(self.internal("a map loop variable that is not a pair"));
                };
                let fields = super::layout::fields(&kv);
                self.e.zero_scratch(home, fields.size);
                for ((off, ty), src) in fields.fields.iter().zip([R2, R3]) {
                    self.load_stored(src, ty, home + off);
                }
            }
            (ForIterable::Range { .. }, VarHome::Stack(home)) => {
                // $i = first + index.
                self.e.asm.emit([
                    Insn::load(Size::DW, R0, R10, home),
                    Insn::alu64_reg(Alu::Add, R0, R1),
                    Insn::store_reg(Size::DW, R10, home, R0),
                ]);
            }
            _ => return Err(self.internal("a loop variable in the wrong place")),
        }
        let skip_back = match var_home {
            VarHome::Stack(home) => Some(home),
            VarHome::Scratch(_) => None,
        };

        let next = self.e.asm.label();
        let brk = self.e.asm.label();
        let done = self.e.asm.label();
        self.loops.push((next, brk));
        let ends = self.block(body)?;
        let stop = self.exit;
        // Only the exits something reaches: the verifier rejects dead code.
        let mut status: Vec<(scorch_bpf::insn::Label, i32)> = Vec::new();
        if !ends || self.e.asm.is_used(next) {
            status.push((next, 0));
        }
        if self.e.asm.is_used(brk) {
            status.push((brk, 1));
        }
        for (label, code) in status {
            self.e.asm.place(label);
            self.e.asm.emit([Insn::mov64_imm(R6, code)]);
            self.e.asm.goto(done);
        }
        if self.e.asm.is_used(stop) {
            self.e.asm.place(stop);
            self.e.asm.emit([
                Insn::load(Size::DW, R1, R10, slots.link),
                Insn::store_imm(Size::DW, R1, in_caller(slots.stop), 1),
                Insn::mov64_imm(R6, 1),
            ]);
        }
        self.e.asm.place(done);
        self.e.asm.emit([Insn::load(Size::DW, R1, R10, slots.link)]);
        for &off in &slot_list {
            if slots.contains(off) || Some(off) == skip_back {
                continue;
            }
            self.e.asm.emit([
                Insn::load(Size::DW, R0, R10, off),
                Insn::store_reg(Size::DW, R1, in_caller(off), R0),
            ]);
        }
        self.e.asm.emit([Insn::mov64_reg(R0, R6), Insn::exit()]);
        Ok(())
    }

    /// Copies a value of type `ty` stored at `src` (a map's key or value)
    /// to scratch at `dst`.
    fn load_stored(&mut self, src: Reg, ty: &Type, dst: u32) {
        self.convert(src, 0, ty, SCRATCH, dst as i16, ty);
    }
}

/// Lays out a program and its callbacks one after the other and points
/// every subprogram reference at its callback; returns the code and the
/// callbacks' first instructions and arities.
pub(super) fn link(
    mut insns: Vec<Insn>,
    refs: &[(usize, usize)],
    subprogs: Vec<Subprog>,
) -> (Vec<Insn>, Vec<(usize, u32)>) {
    let mut starts = Vec::with_capacity(subprogs.len());
    let mut at = insns.len();
    for sub in &subprogs {
        starts.push(at);
        at += sub.insns.len();
    }
    let patch = |insns: &mut Vec<Insn>, base: usize, refs: &[(usize, usize)]| {
        for &(index, sub) in refs {
            let at = base + index;
            insns[at].imm = (starts[sub] as i64 - at as i64 - 1) as i32;
        }
    };
    patch(&mut insns, 0, refs);
    let mut funcs = Vec::with_capacity(subprogs.len());
    for sub in subprogs {
        let base = insns.len();
        funcs.push((base, sub.arity));
        insns.extend(sub.insns);
        patch(&mut insns, base, &sub.func_refs);
    }
    (insns, funcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_share_the_stack() {
        assert_eq!(frame_size(0), 512);
        assert_eq!(frame_size(1), 256);
        assert_eq!(frame_size(2), 160);
    }

    #[test]
    fn callbacks_follow_the_program() {
        let main = vec![Insn::mov64_imm(R0, 0); 4];
        let sub = Subprog {
            insns: vec![Insn::exit(); 2],
            func_refs: vec![(0, 1)],
            arity: 4,
        };
        let last = Subprog {
            insns: vec![Insn::exit()],
            func_refs: vec![],
            arity: 2,
        };
        let (out, funcs) = link(main, &[(1, 0)], vec![sub, last]);
        assert_eq!(out.len(), 7);
        assert_eq!(funcs, [(4, 4), (6, 2)]);
        // Instruction 1 refers to instruction 4; instruction 4 to 6.
        assert_eq!(out[1].imm, 2);
        assert_eq!(out[4].imm, 1);
    }
}
