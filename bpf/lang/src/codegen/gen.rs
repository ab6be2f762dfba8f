//! A program for one probe: prologue, predicate, statements, epilogue.

use std::collections::HashMap;

use scorch_bpf::insn::{Insn, Label, Size, R0, R1, R10, R2};

use super::emit::{Emitter, VReg, FP_CTX, FP_TEMP, SCRATCH};
use super::Compiled;
use crate::ast::{Block, Else, Expr, ExprKind, If, Probe, Stmt, StmtKind};
use crate::diag::Diagnostic;
use crate::sema::{Analysis, Attach, Const, Instance, Type, VarId};
use crate::visit::{self, Visitor};

/// Result of code generation steps.
pub(super) type CgResult<T> = Result<T, Diagnostic>;

/// Where a variable lives.
#[derive(Debug, Clone, Copy)]
pub(super) enum VarHome {
    /// An integer or pointer in a stack slot.
    Stack(i16),
    /// A string or tuple in scratch.
    Scratch(u32),
}

/// Scratch slot tags, so one expression can own several slots.
pub(super) mod tag {
    pub(crate) const VALUE: u8 = 0;
    pub(crate) const KEY: u8 = 1;
    pub(crate) const RECORD: u8 = 2;
    pub(crate) const MAP_VALUE: u8 = 3;
}

/// A generated program.
pub(super) struct Generated {
    /// Its instructions, callbacks included.
    pub(super) insns: Vec<Insn>,
    /// Bytes of scratch it needs.
    pub(super) scratch: u32,
    /// First instruction and arity of each callback.
    pub(super) callbacks: Vec<(usize, u32)>,
}

/// Owner id of the shared zero slot used to create map entries.
pub(super) const ZERO_OWNER: u32 = u32::MAX;

/// Owner id of the record every `join()` of a program shares: each is
/// built and sent before the next starts, and one takes 16 KiB.
pub(super) const JOIN_OWNER: u32 = u32::MAX - 1;

/// Generates one program.
pub(super) struct Gen<'a> {
    pub(super) e: Emitter,
    pub(super) analysis: &'a Analysis,
    /// The attach point whose `args` and `probe` the code reads.
    pub(super) instance: &'a Instance,
    pub(super) compiled: &'a mut Compiled,
    scratch_map: usize,
    vars: HashMap<VarId, VarHome>,
    /// Where `return` and `exit()` go.
    pub(super) exit: Label,
    /// `(continue, break)` targets of the enclosing loops.
    pub(super) loops: Vec<(Label, Label)>,
    /// Callbacks of `for` loops, by number (`None` while being generated).
    pub(super) subprogs: Vec<Option<super::loops::Subprog>>,
    /// The variable slots `for` loops use, when the probe has any.
    pub(super) loop_slots: Option<super::loops::LoopSlots>,
}

impl<'a> Gen<'a> {
    pub(super) fn new(
        analysis: &'a Analysis,
        instance: &'a Instance,
        compiled: &'a mut Compiled,
        scratch_map: usize,
    ) -> Self {
        let mut e = Emitter::new();
        let exit = e.asm.label();
        Gen {
            e,
            analysis,
            instance,
            compiled,
            scratch_map,
            vars: HashMap::new(),
            exit,
            loops: Vec::new(),
            subprogs: Vec::new(),
            loop_slots: None,
        }
    }

    /// The type of `e`.
    pub(super) fn ty(&self, e: &Expr) -> Type {
        self.analysis.ty(e.id).clone()
    }

    /// Generates the program.
    pub(super) fn probe(mut self, probe: &Probe) -> CgResult<Generated> {
        let loop_depth = super::loops::nesting(&probe.body);
        if loop_depth > 0 {
            self.e = Emitter::with_frame(super::loops::frame_size(loop_depth));
            self.exit = self.e.asm.label();
        }
        self.e.span = probe.span;
        let exit = self.exit;
        // Save the context before `r1` is reused.
        self.e.asm.emit([
            Insn::store_reg(Size::DW, R10, FP_CTX, R1),
            Insn::store_imm(Size::W, R10, FP_TEMP, 0),
        ]);
        // Do nothing once `exit()` has run on any CPU: user space may not
        // have stopped the probes yet. `end` still runs after `exit()`.
        if !matches!(self.instance.attach, Attach::Begin | Attach::End) {
            let globals = self.compiled.globals;
            self.e.map_value(R1, globals, super::GLOBAL_EXITED);
            self.e.asm.emit([Insn::load(Size::DW, R1, R1, 0)]);
            self.e
                .asm
                .jump(Insn::jmp_imm(scorch_bpf::insn::Cond::Ne, R1, 0, 0), exit);
        }
        // Find this CPU's scratch area.
        self.e.map(R1, self.scratch_map);
        self.e.stack_ptr(R2, FP_TEMP);
        self.e.call(libbpf_sys::BPF_FUNC_map_lookup_elem);
        self.e
            .asm
            .jump(Insn::jmp_imm(scorch_bpf::insn::Cond::Eq, R0, 0, 0), exit);
        self.e.asm.emit([Insn::mov64_reg(SCRATCH, R0)]);
        self.allocate_vars(probe)?;
        if loop_depth > 0 {
            self.loop_slots = Some(self.alloc_loop_slots()?);
        }

        if let Some(predicate) = &probe.predicate {
            self.e.span = predicate.span;
            let v = self.expr(predicate)?;
            self.e.jump_imm(v, scorch_bpf::insn::Cond::Eq, 0, exit);
            self.e.free(v);
        }
        self.block(&probe.body)?;
        self.e.asm.place(exit);
        self.e.asm.emit([Insn::mov64_imm(R0, 0), Insn::exit()]);
        let scratch = self.e.scratch_size();
        let refs = std::mem::take(&mut self.e.func_refs);
        let subprogs = std::mem::take(&mut self.subprogs)
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.internal("an unfinished loop body"))?;
        let insns = self.e.finish()?;
        let (insns, callbacks) = super::loops::link(insns, &refs, subprogs);
        Ok(Generated {
            insns,
            scratch,
            callbacks,
        })
    }

    /// Gives every variable of the probe a home, zeroed.
    fn allocate_vars(&mut self, probe: &Probe) -> CgResult<()> {
        struct Collect<'x> {
            analysis: &'x Analysis,
            found: Vec<VarId>,
        }
        impl Visitor for Collect<'_> {
            fn visit_expr(&mut self, e: &Expr) {
                if let Some(&id) = self.analysis.var_refs.get(&e.id) {
                    if !self.found.contains(&id) {
                        self.found.push(id);
                    }
                }
                visit::walk_expr(self, e);
            }
            fn visit_stmt(&mut self, s: &Stmt) {
                if let StmtKind::Let { var, .. } | StmtKind::For { var, .. } = &s.kind {
                    if let Some(&id) = self.analysis.let_vars.get(&var.span) {
                        if !self.found.contains(&id) {
                            self.found.push(id);
                        }
                    }
                }
                visit::walk_stmt(self, s);
            }
        }
        let mut collect = Collect {
            analysis: self.analysis,
            found: Vec::new(),
        };
        if let Some(p) = &probe.predicate {
            collect.visit_expr(p);
        }
        collect.visit_block(&probe.body);
        for id in collect.found {
            let ty = self.var_type(id);
            let home = if ty.is_scalar() {
                let off = self.e.var_slot()?;
                self.e.asm.emit([Insn::store_imm(Size::DW, R10, off, 0)]);
                VarHome::Stack(off)
            } else {
                let off = self.e.fresh_slot(ty.size())?;
                self.e.zero_scratch(off, ty.size());
                VarHome::Scratch(off)
            };
            self.vars.insert(id, home);
        }
        Ok(())
    }

    pub(super) fn var_type(&self, id: VarId) -> Type {
        self.analysis
            .vars
            .get(id.0 as usize)
            .and_then(|v| v.ty.clone())
            .unwrap_or(Type::I64)
    }

    pub(super) fn var_home(&self, id: VarId) -> CgResult<VarHome> {
        self.vars
            .get(&id)
            .copied()
            .ok_or_else(|| self.internal("a variable has no home"))
    }

    /// An error for a case semantic analysis should have caught.
    pub(super) fn internal(&self, what: &str) -> Diagnostic {
        Diagnostic::error(self.e.span, format!("internal compiler error: {what}"))
    }

    /// Generates `block`; returns whether control never falls out of it
    /// (it ends in `return`, `break`, `continue` or `exit()`), in which
    /// case nothing after it is emitted: the verifier rejects dead code.
    pub(super) fn block(&mut self, block: &Block) -> CgResult<bool> {
        for stmt in &block.stmts {
            if self.stmt(stmt)? {
                return Ok(true);
            }
        }
        if let Some(value) = &block.value {
            return self.discard(value);
        }
        Ok(false)
    }

    /// Evaluates `e` for its effects; returns whether control never falls
    /// out of it (`exit()`).
    pub(super) fn discard(&mut self, e: &Expr) -> CgResult<bool> {
        // A block (an expanded macro, say) as a statement: its value is
        // discarded too, and may be a call without one.
        if let ExprKind::Block(block) = &e.kind {
            return self.block(block);
        }
        if let ExprKind::Call { args, .. } = &e.kind {
            if let Some(v) = self.call(e, args)? {
                self.e.free(v);
            }
            return Ok(self.analysis.calls.get(&e.id) == Some(&crate::sema::Function::Exit));
        }
        let v = self.expr(e)?;
        self.e.free(v);
        Ok(false)
    }

    /// Generates `stmt`; returns whether control never falls through it.
    pub(super) fn stmt(&mut self, stmt: &Stmt) -> CgResult<bool> {
        self.e.span = stmt.span;
        match &stmt.kind {
            StmtKind::Expr(e) | StmtKind::Discard(e) => self.discard(e),
            StmtKind::Assign { target, op, value } => {
                self.assign(target, *op, value).map(|()| false)
            }
            StmtKind::Let { var, init, .. } => {
                let id = *self
                    .analysis
                    .let_vars
                    .get(&var.span)
                    .ok_or_else(|| self.internal("an undeclared `let`"))?;
                match init {
                    Some(init) => {
                        let v = self.expr(init)?;
                        let from = self.ty(init);
                        self.store_var(id, v, &from)?;
                        self.e.free(v);
                    }
                    None => match self.var_home(id)? {
                        VarHome::Stack(off) => {
                            self.e.asm.emit([Insn::store_imm(Size::DW, R10, off, 0)]);
                        }
                        VarHome::Scratch(off) => {
                            let size = self.var_type(id).size();
                            self.e.zero_scratch(off, size);
                        }
                    },
                }
                Ok(false)
            }
            StmtKind::If(i) => self.if_stmt(i),
            StmtKind::Unroll { count, body } => {
                let n = match (&count.kind, self.analysis.consts.get(&count.id)) {
                    (_, Some(Const::Int(n))) => *n,
                    (ExprKind::Int(n), _) => *n as i64,
                    _ => return Err(self.internal("unroll without a constant count")),
                };
                for _ in 0..n.clamp(0, 100) {
                    if self.block(body)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            StmtKind::While { cond, body } => {
                let top = self.e.asm.label();
                let end = self.e.asm.label();
                self.e.asm.place(top);
                let v = self.expr(cond)?;
                self.e.jump_imm(v, scorch_bpf::insn::Cond::Eq, 0, end);
                self.e.free(v);
                self.loops.push((top, end));
                let body = self.block(body);
                self.loops.pop();
                if !body? {
                    self.e.asm.goto(top);
                }
                self.e.asm.place(end);
                Ok(false)
            }
            StmtKind::Return(_) => {
                let exit = self.exit;
                self.e.asm.goto(exit);
                Ok(true)
            }
            StmtKind::Break | StmtKind::Continue => {
                let &(cont, brk) = self
                    .loops
                    .last()
                    .ok_or_else(|| self.internal("a loop jump outside a loop"))?;
                let target = if matches!(stmt.kind, StmtKind::Break) {
                    brk
                } else {
                    cont
                };
                self.e.asm.goto(target);
                Ok(true)
            }
            StmtKind::Block(b) => self.block(b),
            StmtKind::For {
                var,
                iterable,
                body,
            } => self.for_stmt(var, iterable, body),
        }
    }

    /// An `if`/`else if`/`else` chain; it never falls through when every
    /// branch, including a final `else`, ends in a jump.
    fn if_stmt(&mut self, mut i: &If) -> CgResult<bool> {
        let end = self.e.asm.label();
        let mut all_jump = true;
        let mut reaches_end = false;
        loop {
            let otherwise = self.e.asm.label();
            let v = self.expr(&i.cond)?;
            self.e.jump_imm(v, scorch_bpf::insn::Cond::Eq, 0, otherwise);
            self.e.free(v);
            if !self.block(&i.then)? {
                all_jump = false;
                reaches_end = true;
                self.e.asm.goto(end);
            }
            self.e.asm.place(otherwise);
            match &i.otherwise {
                None => {
                    all_jump = false;
                    break;
                }
                Some(Else::Block(b)) => {
                    if !self.block(b)? {
                        all_jump = false;
                    }
                    break;
                }
                Some(Else::If(next)) => i = next,
            }
        }
        if all_jump && !reaches_end {
            // Nothing jumps to `end`: leave it unplaced and unused.
            return Ok(true);
        }
        self.e.asm.place(end);
        Ok(false)
    }

    /// Stores `v` (of type `from`) into variable `id`.
    pub(super) fn store_var(&mut self, id: VarId, v: VReg, from: &Type) -> CgResult<()> {
        let to = self.var_type(id);
        match self.var_home(id)? {
            VarHome::Stack(off) => {
                let r = self.e.get(v, R1);
                self.e.asm.emit([Insn::store_reg(Size::DW, R10, off, r)]);
            }
            VarHome::Scratch(off) => {
                self.e.copy_to(R1, v);
                self.convert(R1, 0, from, SCRATCH, off as i16, &to);
            }
        }
        Ok(())
    }

    /// Reads variable `id` into a new virtual register.
    pub(super) fn load_var(&mut self, id: VarId) -> CgResult<VReg> {
        let v = self.e.alloc()?;
        match self.var_home(id)? {
            VarHome::Stack(off) => {
                self.e.asm.emit([Insn::load(Size::DW, R0, R10, off)]);
                self.e.set(v, R0);
            }
            VarHome::Scratch(off) => self.e.set_scratch_ptr(v, off),
        }
        Ok(v)
    }

    /// Copies a stored value of type `from` at `src + src_off` into
    /// storage of type `to` at `dst + dst_off`, converting string sizes
    /// and tuple layouts. `src` and `dst` must not be `r0`.
    pub(super) fn convert(
        &mut self,
        src: scorch_bpf::insn::Reg,
        src_off: i16,
        from: &Type,
        dst: scorch_bpf::insn::Reg,
        dst_off: i16,
        to: &Type,
    ) {
        match (from, to) {
            (Type::Str(a), Type::Str(b)) => {
                let n = (*a).min(*b);
                self.e.copy_mem(dst, dst_off, src, src_off, n);
                if a > b {
                    // Truncated: keep it terminated.
                    self.e
                        .asm
                        .emit([Insn::store_imm(Size::B, dst, dst_off + *b as i16 - 1, 0)]);
                } else {
                    for at in n..*b {
                        self.e
                            .asm
                            .emit([Insn::store_imm(Size::B, dst, dst_off + at as i16, 0)]);
                    }
                }
            }
            (Type::Tuple(a), Type::Tuple(b)) if a.len() == b.len() => {
                let fa = super::layout::fields(a);
                let fb = super::layout::fields(b);
                for ((oa, ta), (ob, tb)) in fa.fields.iter().zip(&fb.fields) {
                    self.convert(src, src_off + *oa as i16, ta, dst, dst_off + *ob as i16, tb);
                }
            }
            (Type::Usym, _) => self.e.copy_mem(dst, dst_off, src, src_off, 16),
            (Type::Buf(n), _) => self.e.copy_mem(dst, dst_off, src, src_off, 8 + n),
            (Type::Inet, _) => self.e.copy_mem(dst, dst_off, src, src_off, 24),
            (Type::Record(r), _) => self.e.copy_mem(dst, dst_off, src, src_off, r.size),
            // Mac addresses are 8 bytes too, like integers: the `_` case.
            _ => {
                // Integers and pointers are stored as 8 bytes.
                self.e.copy_mem(dst, dst_off, src, src_off, 8);
            }
        }
    }

    /// Stores the value `v` of type `from` at `scratch + off` as `to`.
    pub(super) fn store_value(&mut self, v: VReg, from: &Type, off: u32, to: &Type) {
        if from.is_scalar() {
            let r = self.e.get(v, R1);
            self.e
                .asm
                .emit([Insn::store_reg(Size::DW, SCRATCH, off as i16, r)]);
        } else {
            self.e.copy_to(R1, v);
            self.convert(R1, 0, from, SCRATCH, off as i16, to);
        }
    }
}
