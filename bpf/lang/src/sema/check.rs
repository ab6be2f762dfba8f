//! The checker's walk over probes and statements.
//!
//! One [`Checker`] walks the whole program once. Expressions are in
//! `expr.rs`, function calls in `calls.rs`; this file holds the walk
//! itself, the statements, and the bookkeeping shared by all three.

use super::maps::MapTable;
use super::probes::Instance;
use super::scope::{VarId, Vars};
use super::types::Type;
use super::{Analysis, Config, ProbeInfo};
use crate::ast::{Block, Else, Expr, ExprKind, ForIterable, If, Item, Program, Stmt, StmtKind};
use crate::diag::Diagnostic;
use crate::provider::ProbeKind;

/// One walk over a program.
pub(super) struct Checker<'a> {
    pub(super) params: &'a [String],
    /// The kernel, for `kaddr()`.
    pub(super) kernel: &'a dyn super::Kernel,
    /// Kernel and script C types.
    pub(super) types: &'a super::CTypes<'a>,
    pub(super) config: &'a Config,
    pub(super) maps: &'a mut MapTable,
    pub(super) vars: &'a mut Vars,
    /// Whether this walk reports problems (the last one does).
    report: bool,
    /// What this walk found.
    pub(super) out: Analysis,
    /// Kinds of the current probe's attach points.
    pub(super) kinds: Vec<ProbeKind>,
    /// The current probe's attach points.
    pub(super) instances: Vec<Instance>,
    /// Whether the current probe reads per-attach-point builtins.
    pub(super) per_instance: bool,
    /// How many `while` loops enclose the current statement.
    loops: u32,
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        kernel: &'a dyn super::Kernel,
        types: &'a super::CTypes<'a>,
        params: &'a [String],
        config: &'a Config,
        maps: &'a mut MapTable,
        vars: &'a mut Vars,
        report: bool,
    ) -> Self {
        Checker {
            kernel,
            types,
            params,
            config,
            maps,
            vars,
            report,
            out: Analysis::default(),
            kinds: Vec::new(),
            instances: Vec::new(),
            per_instance: false,
            loops: 0,
        }
    }

    /// Reports `d` if this walk reports.
    pub(super) fn error(&mut self, d: Diagnostic) {
        if self.report && self.out.warnings.len() < 4 * super::MAX_DIAGNOSTICS {
            self.out.warnings.push(d);
        }
    }

    /// Records the type of `e`.
    pub(super) fn set_type(&mut self, e: &Expr, ty: &Type) {
        let index = e.id.index();
        if self.out.types.len() <= index {
            self.out.types.resize(index + 1, Type::Void);
        }
        self.out.types[index] = ty.clone();
    }

    /// Walks every probe.
    pub(super) fn program(&mut self, program: &Program, infos: &mut [ProbeInfo]) {
        let probes = program.items.iter().filter_map(|item| match item {
            Item::Probe(p) => Some(p),
            _ => None,
        });
        for (probe, info) in probes.zip(infos.iter_mut()) {
            self.kinds = info.kinds();
            self.instances = info.instances.clone();
            self.per_instance = false;
            self.loops = 0;
            self.vars.enter_probe();
            if let Some(predicate) = &probe.predicate {
                self.condition(predicate, "a filter");
            }
            self.block(&probe.body);
            info.per_instance = self.per_instance;
        }
    }

    /// The analysis of this walk.
    pub(super) fn finish(self) -> Analysis {
        self.out
    }

    /// Checks that `e` can be tested for truth.
    pub(super) fn condition(&mut self, e: &Expr, what: &str) {
        if let Some(ty) = self.expr(e) {
            if !ty.is_scalar() {
                self.error(Diagnostic::error(
                    e.span,
                    format!("{what} must be an integer or a pointer, not {ty}"),
                ));
            }
        }
    }

    /// A block in its own scope.
    pub(super) fn block(&mut self, block: &Block) -> Option<Type> {
        self.vars.push_block();
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
        let value = match &block.value {
            Some(value) => self.statement_expr(value),
            None => Some(Type::Void),
        };
        self.vars.pop_block();
        value
    }

    /// An expression whose value may be discarded.
    fn statement_expr(&mut self, e: &Expr) -> Option<Type> {
        match &e.kind {
            ExprKind::Call { func, args } => {
                let ty = self.call(e, func, args, super::calls::Use::Statement);
                if let Some(ty) = &ty {
                    self.set_type(e, ty);
                }
                ty
            }
            _ => self.expr(e),
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match &stmt.kind {
            StmtKind::Expr(e) | StmtKind::Discard(e) => {
                self.statement_expr(e);
            }
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value),
            StmtKind::Let { var, ty, init } => {
                if self.vars.in_innermost(&var.name) {
                    self.error(Diagnostic::error(
                        var.span,
                        format!("variable `${}` is already declared in this block", var.name),
                    ));
                }
                let declared = ty.as_ref().and_then(|t| self.type_expr(t));
                let init_ty = init.as_ref().and_then(|i| self.stored_expr(i));
                let id = self.vars.declare(&var.name, var.span, true);
                self.out.let_vars.insert(var.span, id);
                if ty.is_none() && init.is_none() {
                    self.error(
                        Diagnostic::error(
                            var.span,
                            format!("cannot tell the type of `${}`", var.name),
                        )
                        .with_help("give it a type (`let $x: uint64;`) or a value (`let $x = 0;`)"),
                    );
                }
                for ty in [declared, init_ty].into_iter().flatten() {
                    let span = init.as_ref().map_or(var.span, |i| i.span);
                    self.assign_var(id, &ty, span);
                }
            }
            StmtKind::If(i) => self.if_stmt(i),
            StmtKind::Unroll { count, body } => {
                match self.const_int(count) {
                    Some(n) if (1..=100).contains(&n) => {}
                    Some(_) => self.error(Diagnostic::error(
                        count.span,
                        "unroll count must be between 1 and 100",
                    )),
                    None => self.error(Diagnostic::error(
                        count.span,
                        "unroll count must be an integer constant",
                    )),
                }
                self.block(body);
            }
            StmtKind::While { cond, body } => {
                self.condition(cond, "a loop condition");
                self.loops += 1;
                self.block(body);
                self.loops -= 1;
            }
            StmtKind::For {
                var,
                iterable,
                body,
            } => self.for_stmt(var, iterable, body),
            StmtKind::Return(value) => {
                if let Some(value) = value {
                    self.error(Diagnostic::error(
                        value.span,
                        "a probe cannot return a value",
                    ));
                }
            }
            StmtKind::Break | StmtKind::Continue => {
                if self.loops == 0 {
                    let what = if matches!(stmt.kind, StmtKind::Break) {
                        "break"
                    } else {
                        "continue"
                    };
                    self.error(Diagnostic::error(
                        stmt.span,
                        format!("`{what}` outside of a loop"),
                    ));
                }
            }
            StmtKind::Block(b) => {
                self.block(b);
            }
        }
    }

    /// `for ($kv : @map) { … }` and `for ($i : a..b) { … }`.
    fn for_stmt(&mut self, var: &crate::ast::Name, iterable: &ForIterable, body: &Block) {
        let ty = match iterable {
            ForIterable::Map(map) => self.for_map(map),
            ForIterable::Range { start, end } => {
                // `bpf_loop` refuses more iterations than this.
                const MAX_LOOPS: i64 = 1 << 23;
                if let (ExprKind::Int(a), ExprKind::Int(b)) = (&start.kind, &end.kind) {
                    if b.saturating_sub(*a) > MAX_LOOPS as u64 {
                        self.error(Diagnostic::error(
                            end.span,
                            format!("a range loop runs at most {MAX_LOOPS} times"),
                        ));
                    }
                }
                for bound in [start, end] {
                    if let Some(ty) = self.expr(bound) {
                        if !ty.is_int() {
                            self.error(Diagnostic::error(
                                bound.span,
                                format!("a range bound must be an integer, not {ty}"),
                            ));
                        }
                    }
                }
                Some(Type::I64)
            }
        };
        self.vars.push_block();
        let id = self.vars.declare(&var.name, var.span, true);
        self.out.let_vars.insert(var.span, id);
        if let Some(ty) = ty {
            self.assign_var(id, &ty, var.span);
        }
        self.loops += 1;
        self.block(body);
        self.loops -= 1;
        self.vars.pop_block();
    }

    /// The type of `$kv` in `for ($kv : @map)`: `(key, value)`.
    fn for_map(&mut self, map: &Expr) -> Option<Type> {
        let ExprKind::Map(name) = &map.kind else {
            self.error(
                Diagnostic::error(map.span, "a `for` loop walks a whole map or a range")
                    .with_help("write `for ($kv : @map)` or `for ($i : 0..10)`"),
            );
            return None;
        };
        let Some(value) = self.maps.value(name).cloned() else {
            self.error(Diagnostic::error(
                map.span,
                format!("undefined map {}", super::maps::display(name)),
            ));
            return None;
        };
        if let Type::Agg(kind) = value {
            self.error(Diagnostic::error(
                map.span,
                format!(
                    "cannot loop over {}: a {}() map keeps one value per CPU",
                    super::maps::display(name),
                    kind.function()
                ),
            ));
            return None;
        }
        let key = match self.maps.keys(name) {
            Some([]) | None => {
                self.error(Diagnostic::error(
                    map.span,
                    format!(
                        "cannot loop over {}: it has no keys",
                        super::maps::display(name)
                    ),
                ));
                return None;
            }
            Some([one]) => one.clone(),
            Some(many) => Type::Tuple(many.to_vec()),
        };
        Some(Type::Tuple(vec![key, value.widened()]))
    }

    fn if_stmt(&mut self, mut i: &If) {
        loop {
            self.condition(&i.cond, "an `if` condition");
            self.block(&i.then);
            match &i.otherwise {
                None => return,
                Some(Else::Block(b)) => {
                    self.block(b);
                    return;
                }
                Some(Else::If(next)) => i = next,
            }
        }
    }

    /// Unifies `ty` into variable `id`, reporting a mismatch at `span`.
    pub(super) fn assign_var(&mut self, id: VarId, ty: &Type, span: crate::span::Span) {
        if !ty.is_storable() {
            self.error(Diagnostic::error(
                span,
                format!("a value of type {ty} cannot be stored in a variable"),
            ));
            return;
        }
        if let Err(known) = self.vars.assign(id, ty) {
            let info = self.vars.info(id);
            let d = Diagnostic::error(
                span,
                format!(
                    "type mismatch for `${}`: assigning {ty} to a variable of type {known}",
                    info.name
                ),
            )
            .with_note(info.span, format!("`${}` is declared here", info.name));
            self.error(d);
        }
    }

    fn assign(&mut self, target: &Expr, op: Option<crate::ast::BinOp>, value: &Expr) {
        match &target.kind {
            ExprKind::Var(name) => {
                let value_ty = self.stored_expr(value);
                let id = match self.vars.lookup(name) {
                    Some(id) => id,
                    None if op.is_none() => self.vars.declare(name, target.span, false),
                    None => {
                        self.undefined_var(target, name);
                        return;
                    }
                };
                self.out.var_refs.insert(target.id, id);
                let Some(value_ty) = value_ty else {
                    self.vars.mark_failed(id);
                    return;
                };
                if op.is_some() {
                    self.compound(target, self.vars.info(id).ty.clone(), &value_ty, value);
                } else {
                    self.assign_var(id, &value_ty, value.span);
                }
                if let Some(ty) = self.vars.info(id).ty.clone() {
                    self.set_type(target, &ty);
                }
            }
            ExprKind::Map(name) => self.assign_map(target, name, &[], op, value),
            ExprKind::MapAccess { map, keys } => {
                self.assign_map(target, &map.name, keys, op, value)
            }
            _ => self.error(Diagnostic::error(
                target.span,
                "cannot assign to this expression",
            )),
        }
    }

    fn assign_map(
        &mut self,
        target: &Expr,
        name: &str,
        keys: &[Expr],
        op: Option<crate::ast::BinOp>,
        value: &Expr,
    ) {
        self.map_keys(target, name, keys);
        let value_ty = match (&value.kind, op) {
            (ExprKind::Call { func, args }, None) => {
                let ty = self.call(value, func, args, super::calls::Use::MapValue);
                if let Some(ty) = &ty {
                    self.set_type(value, ty);
                }
                ty
            }
            _ => self.stored_expr(value),
        };
        let Some(value_ty) = value_ty else { return };
        if op.is_some() {
            let known = self.maps.value(name).cloned();
            self.compound(target, known.clone(), &value_ty, value);
            if known.is_none() {
                self.map_value(name, &Type::I64, value.span);
            }
        } else if matches!(value_ty, Type::Agg(_)) || value_ty.is_storable() {
            self.map_value(name, &value_ty.widened(), value.span);
        } else {
            self.error(Diagnostic::error(
                value.span,
                format!("a value of type {value_ty} cannot be stored in a map"),
            ));
        }
        if let Some(ty) = self.maps.value(name).cloned() {
            self.set_type(target, &ty);
        }
    }

    /// Checks `target op= value` where the target holds `known`.
    fn compound(&mut self, target: &Expr, known: Option<Type>, value_ty: &Type, value: &Expr) {
        if let Some(known) = known {
            if !known.is_int() {
                self.error(Diagnostic::error(
                    target.span,
                    format!("compound assignment needs an integer, not {known}"),
                ));
            }
        }
        if !value_ty.is_int() {
            self.error(Diagnostic::error(
                value.span,
                format!("compound assignment needs an integer, not {value_ty}"),
            ));
        }
    }

    /// Records that `@name` holds `ty`, reporting conflicts.
    pub(super) fn map_value(&mut self, name: &str, ty: &Type, span: crate::span::Span) {
        if let Err(d) = self.maps.assign(name, ty.clone(), span) {
            self.error(d);
        }
    }

    /// Checks the keys of `@name[keys]` and records their types.
    pub(super) fn map_keys(&mut self, at: &Expr, name: &str, keys: &[Expr]) {
        let mut types = Vec::new();
        let mut known = true;
        for key in keys {
            match self.stored_expr(key) {
                Some(ty) if ty.is_storable() => types.push(ty.widened()),
                Some(ty) => {
                    known = false;
                    self.error(Diagnostic::error(
                        key.span,
                        format!("a value of type {ty} cannot be a map key"),
                    ));
                }
                None => known = false,
            }
        }
        if !known {
            return;
        }
        // `@m[(a, b)]` is the same map as `@m[a, b]`.
        if let [Type::Tuple(items)] = types.as_slice() {
            types = items.clone();
        }
        if let Err(d) = self.maps.use_keys(name, types, at.span) {
            self.error(d);
        }
    }

    pub(super) fn undefined_var(&mut self, at: &Expr, name: &str) {
        let mut d = Diagnostic::error(at.span, format!("undefined variable `${name}`"));
        let visible = self.vars.visible();
        if let Some(near) = crate::suggest::closest(name, visible) {
            d = d.with_help(format!("did you mean `${near}`?"));
        }
        self.error(d);
    }
}
