//! Macro expansion: `macro name(params) { … }` calls replaced by blocks.
//!
//! bpftrace macros are expanded where they are called, before anything
//! else looks at the program. A call `name(args)` (or a bare `name` for a
//! macro without parameters) becomes the block expression `{ … }` of the
//! macro's body, whose last expression is the call's value. Parameters
//! bind by their sigil:
//!
//! - `$a` takes a variable of the caller, which the body may assign;
//! - `@a` takes a map of the caller, which the body may update;
//! - `a` takes any expression, substituted wherever `a` is written.
//!
//! Other variables of the body are the macro's own: they are renamed
//! (`$x` becomes `$x@name`) so they never meet the caller's. Expanded
//! expressions get fresh [`ExprId`]s above the parser's, so the side
//! tables of later passes stay one entry per expression. A macro that
//! calls itself, directly or not, is an error rather than a loop.

use std::collections::HashMap;

use crate::ast::{
    Block, Else, Expr, ExprId, ExprKind, ForIterable, If, Item, Macro, MacroParamKind, Program,
    Stmt, StmtKind, TypeOrExpr,
};
use crate::diag::Diagnostic;

/// Expands every macro call of `program` in place.
pub fn expand(program: &mut Program) -> Result<(), Vec<Diagnostic>> {
    let mut macros: HashMap<String, Macro> = HashMap::new();
    let mut errors = Vec::new();
    for item in &program.items {
        if let Item::Macro(m) = item {
            if let Some(first) = macros.get(&m.name.name) {
                errors.push(
                    Diagnostic::error(
                        m.name.span,
                        format!("macro `{}` is defined twice", m.name.name),
                    )
                    .with_note(first.name.span, "first defined here"),
                );
            } else {
                macros.insert(m.name.name.clone(), m.clone());
            }
        }
    }
    if macros.is_empty() {
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        };
    }
    let mut ex = Expander {
        macros,
        next_id: program.expr_count,
        active: Vec::new(),
        errors,
    };
    for item in &mut program.items {
        if let Item::Probe(probe) = item {
            if let Some(predicate) = &mut probe.predicate {
                ex.expr(predicate);
            }
            ex.block(&mut probe.body);
        }
    }
    program.expr_count = ex.next_id;
    if ex.errors.is_empty() {
        Ok(())
    } else {
        Err(ex.errors)
    }
}

/// What a macro's parameters stand for in one expansion.
#[derive(Default)]
struct Bindings {
    vars: HashMap<String, String>,
    maps: HashMap<String, String>,
    exprs: HashMap<String, Expr>,
    /// The macro's name, appended to its own variables.
    suffix: String,
}

struct Expander {
    macros: HashMap<String, Macro>,
    next_id: u32,
    /// Macros being expanded, innermost last.
    active: Vec<String>,
    errors: Vec<Diagnostic>,
}

impl Expander {
    fn fresh_id(&mut self) -> ExprId {
        let id = ExprId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        id
    }

    fn block(&mut self, block: &mut Block) {
        for stmt in &mut block.stmts {
            self.stmt(stmt);
        }
        if let Some(value) = &mut block.value {
            self.expr(value);
        }
    }

    fn stmt(&mut self, stmt: &mut Stmt) {
        each_in_stmt(stmt, &mut |n| match n {
            Node::Expr(e) => self.expr(e),
            Node::Block(b) => self.block(b),
        });
    }

    /// Expands the calls inside `e`, then `e` itself if it is one.
    fn expr(&mut self, e: &mut Expr) {
        each_child(&mut e.kind, &mut |n| match n {
            Node::Expr(c) => self.expr(c),
            Node::Block(b) => self.block(b),
        });
        let (name, args) = match &mut e.kind {
            ExprKind::Call { func, args } if self.macros.contains_key(&func.name) => {
                (func.name.clone(), std::mem::take(args))
            }
            ExprKind::Ident(name) if self.macros.get(name).is_some_and(|m| m.params.is_empty()) => {
                (name.clone(), Vec::new())
            }
            _ => return,
        };
        if let Some(block) = self.instantiate(&name, args, e) {
            e.kind = ExprKind::Block(block);
        }
    }

    /// The body of macro `name` for a call `at` with `args`.
    fn instantiate(&mut self, name: &str, args: Vec<Expr>, at: &Expr) -> Option<Block> {
        let m = self.macros.get(name)?.clone();
        if self.active.iter().any(|a| a == name) {
            self.errors.push(
                Diagnostic::error(at.span, format!("macro `{name}` calls itself"))
                    .with_note(m.name.span, "defined here"),
            );
            return None;
        }
        if args.len() != m.params.len() {
            self.errors.push(
                Diagnostic::error(
                    at.span,
                    format!(
                        "macro `{name}` takes {} argument{}, but {} {} given",
                        m.params.len(),
                        if m.params.len() == 1 { "" } else { "s" },
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" }
                    ),
                )
                .with_note(m.name.span, "defined here"),
            );
            return None;
        }
        let mut bindings = Bindings {
            suffix: name.to_string(),
            ..Bindings::default()
        };
        for (param, arg) in m.params.iter().zip(args) {
            let p = param.name.name.clone();
            match (param.kind, &arg.kind) {
                (MacroParamKind::Var, ExprKind::Var(v)) => {
                    bindings.vars.insert(p, v.clone());
                }
                (MacroParamKind::Map, ExprKind::Map(v)) => {
                    bindings.maps.insert(p, v.clone());
                }
                (MacroParamKind::Expr, _) => {
                    bindings.exprs.insert(p, arg);
                }
                (MacroParamKind::Var, _) => self.errors.push(
                    Diagnostic::error(
                        arg.span,
                        format!("macro `{name}` needs a variable for `${p}`"),
                    )
                    .with_help("pass a `$variable`"),
                ),
                (MacroParamKind::Map, _) => self.errors.push(
                    Diagnostic::error(arg.span, format!("macro `{name}` needs a map for `@{p}`"))
                        .with_help("pass a whole map such as `@counts`"),
                ),
            }
        }
        let mut body = m.body.clone();
        self.rewrite_block(&mut body, &bindings);
        self.active.push(name.to_string());
        self.block(&mut body);
        self.active.pop();
        Some(body)
    }

    /// Gives every expression of `block` a fresh id and applies `b`.
    fn rewrite_block(&mut self, block: &mut Block, b: &Bindings) {
        for stmt in &mut block.stmts {
            match &mut stmt.kind {
                StmtKind::Let { var, .. } | StmtKind::For { var, .. } => {
                    var.name = local(&var.name, b);
                }
                _ => {}
            }
            each_in_stmt(stmt, &mut |n| match n {
                Node::Expr(e) => self.rewrite(e, b),
                Node::Block(inner) => self.rewrite_block(inner, b),
            });
        }
        if let Some(value) = &mut block.value {
            self.rewrite(value, b);
        }
    }

    fn rewrite(&mut self, e: &mut Expr, b: &Bindings) {
        if let ExprKind::Ident(name) = &e.kind {
            if let Some(arg) = b.exprs.get(name) {
                let mut arg = arg.clone();
                self.renumber(&mut arg);
                *e = arg;
                return;
            }
        }
        e.id = self.fresh_id();
        match &mut e.kind {
            ExprKind::Var(name) => {
                *name = b.vars.get(name).cloned().unwrap_or_else(|| local(name, b));
            }
            ExprKind::Map(name) => {
                if let Some(to) = b.maps.get(name) {
                    *name = to.clone();
                }
            }
            ExprKind::MapAccess { map, .. } => {
                if let Some(to) = b.maps.get(&map.name) {
                    map.name = to.clone();
                }
            }
            _ => {}
        }
        each_child(&mut e.kind, &mut |n| match n {
            Node::Expr(c) => self.rewrite(c, b),
            Node::Block(inner) => self.rewrite_block(inner, b),
        });
    }

    /// Fresh ids for a copy of a caller's expression; nothing renamed.
    fn renumber(&mut self, e: &mut Expr) {
        e.id = self.fresh_id();
        each_child(&mut e.kind, &mut |n| match n {
            Node::Expr(c) => self.renumber(c),
            Node::Block(inner) => self.renumber_block(inner),
        });
    }

    fn renumber_block(&mut self, block: &mut Block) {
        for stmt in &mut block.stmts {
            each_in_stmt(stmt, &mut |n| match n {
                Node::Expr(e) => self.renumber(e),
                Node::Block(inner) => self.renumber_block(inner),
            });
        }
        if let Some(value) = &mut block.value {
            self.renumber(value);
        }
    }
}

/// The name a macro's own variable `name` gets in an expansion.
fn local(name: &str, b: &Bindings) -> String {
    format!("{name}@{}", b.suffix)
}

/// A child of a statement or expression.
enum Node<'a> {
    Expr(&'a mut Expr),
    Block(&'a mut Block),
}

/// Calls `visit` on each expression and block directly inside `stmt`.
fn each_in_stmt(stmt: &mut Stmt, visit: &mut dyn FnMut(Node)) {
    match &mut stmt.kind {
        StmtKind::Expr(e) | StmtKind::Discard(e) => visit(Node::Expr(e)),
        StmtKind::Assign { target, value, .. } => {
            visit(Node::Expr(target));
            visit(Node::Expr(value));
        }
        StmtKind::Let { init, .. } => {
            if let Some(init) = init {
                visit(Node::Expr(init));
            }
        }
        StmtKind::If(i) => each_in_if(i, visit),
        StmtKind::Unroll { count: e, body } | StmtKind::While { cond: e, body } => {
            visit(Node::Expr(e));
            visit(Node::Block(body));
        }
        StmtKind::For { iterable, body, .. } => {
            match iterable {
                ForIterable::Map(e) => visit(Node::Expr(e)),
                ForIterable::Range { start, end } => {
                    visit(Node::Expr(start));
                    visit(Node::Expr(end));
                }
            }
            visit(Node::Block(body));
        }
        StmtKind::Return(value) => {
            if let Some(value) = value {
                visit(Node::Expr(value));
            }
        }
        StmtKind::Break | StmtKind::Continue => {}
        StmtKind::Block(b) => visit(Node::Block(b)),
    }
}

fn each_in_if(i: &mut If, visit: &mut dyn FnMut(Node)) {
    visit(Node::Expr(&mut i.cond));
    visit(Node::Block(&mut i.then));
    match &mut i.otherwise {
        None => {}
        Some(Else::Block(b)) => visit(Node::Block(b)),
        Some(Else::If(next)) => each_in_if(next, visit),
    }
}

/// Calls `visit` on each direct sub-expression and block of an expression.
fn each_child(kind: &mut ExprKind, visit: &mut dyn FnMut(Node)) {
    match kind {
        ExprKind::Int(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Ident(_)
        | ExprKind::Var(_)
        | ExprKind::Param(_)
        | ExprKind::ParamCount
        | ExprKind::Map(_) => {}
        ExprKind::MapAccess { keys: items, .. }
        | ExprKind::Call { args: items, .. }
        | ExprKind::Tuple(items) => items.iter_mut().for_each(|e| visit(Node::Expr(e))),
        ExprKind::Field { base: e, .. }
        | ExprKind::TupleIndex { base: e, .. }
        | ExprKind::Unary { operand: e, .. }
        | ExprKind::IncDec { target: e, .. }
        | ExprKind::Cast { expr: e, .. } => visit(Node::Expr(e)),
        ExprKind::Index { base: a, index: b } | ExprKind::Binary { lhs: a, rhs: b, .. } => {
            visit(Node::Expr(a));
            visit(Node::Expr(b));
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            visit(Node::Expr(cond));
            visit(Node::Expr(then));
            visit(Node::Expr(otherwise));
        }
        ExprKind::Sizeof(of) | ExprKind::Offsetof { of, .. } => {
            if let TypeOrExpr::Expr(e) = of {
                visit(Node::Expr(e));
            }
        }
        ExprKind::Block(b) => visit(Node::Block(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SourceFile;

    fn expanded(src: &str) -> Result<String, String> {
        let file = SourceFile::inline(src);
        let mut program = crate::parse(&file).expect("parses");
        expand(&mut program).map_err(|d| crate::render_all(&d, &file))?;
        Ok(crate::dump::dump(&program))
    }

    #[test]
    fn parameters_bind_by_sigil() {
        let out = expanded(
            "macro bump($a, @m, x) { let $t = x; $a += $t; @m[$t] = 1; $a }
             BEGIN { $v = 1; print(bump($v, @seen, 2 + 3)); }",
        )
        .unwrap();
        let probe = out.split("(probe").nth(1).expect("a probe");
        assert_eq!(
            probe,
            "\n    (spec begin (as BEGIN))\n    (block\n      (= $v 1)\n      (call print\n        \
             (block\n          (let $t@bump (+ 2 3))\n          (+= $v $t@bump)\n          \
             (= (@seen $t@bump) 1)\n          (value $v))))))\n"
        );
    }

    #[test]
    fn misuse_is_reported() {
        let err = expanded("macro m($a) { $a } BEGIN { print(m(1)); print(m()); }").unwrap_err();
        assert!(err.contains("macro `m` needs a variable for `$a`"), "{err}");
        assert!(
            err.contains("macro `m` takes 1 argument, but 0 were given"),
            "{err}"
        );
        let err = expanded("macro a() { b() } macro b() { a() } BEGIN { a(); }").unwrap_err();
        assert!(err.contains("macro `a` calls itself"), "{err}");
    }
}
