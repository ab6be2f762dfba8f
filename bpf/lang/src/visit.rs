//! Read-only traversal of the AST.
//!
//! Implement [`Visitor`] and override the methods for the nodes you care
//! about; call the matching `walk_*` function from an override to keep
//! descending into children. The default methods just walk, visiting
//! children in source order.

use crate::ast::{
    Block, Else, Expr, ExprKind, ForIterable, If, Item, Program, Stmt, StmtKind, TypeExpr,
    TypeKind, TypeOrExpr,
};

/// A pass over the tree; every method defaults to visiting the children.
pub trait Visitor {
    /// A top-level item.
    fn visit_item(&mut self, item: &Item) {
        walk_item(self, item);
    }

    /// A block, including probe bodies and block expressions.
    fn visit_block(&mut self, block: &Block) {
        walk_block(self, block);
    }

    /// A statement.
    fn visit_stmt(&mut self, stmt: &Stmt) {
        walk_stmt(self, stmt);
    }

    /// An expression.
    fn visit_expr(&mut self, expr: &Expr) {
        walk_expr(self, expr);
    }

    /// A written type.
    fn visit_type(&mut self, ty: &TypeExpr) {
        walk_type(self, ty);
    }
}

/// Visits every item of `program`.
pub fn walk_program<V: Visitor + ?Sized>(v: &mut V, program: &Program) {
    for item in &program.items {
        v.visit_item(item);
    }
}

/// Visits the blocks, expressions and types inside `item`.
pub fn walk_item<V: Visitor + ?Sized>(v: &mut V, item: &Item) {
    match item {
        Item::Preproc(_)
        | Item::CDecl(_)
        | Item::Config(_)
        | Item::Import(_)
        | Item::MapDecl(_) => {}
        Item::Macro(m) => v.visit_block(&m.body),
        Item::Subprog(s) => {
            for param in &s.params {
                v.visit_type(&param.ty);
            }
            v.visit_type(&s.ret);
            v.visit_block(&s.body);
        }
        Item::Probe(p) => {
            if let Some(predicate) = &p.predicate {
                v.visit_expr(predicate);
            }
            v.visit_block(&p.body);
        }
    }
}

/// Visits the statements, then the value, of `block`.
pub fn walk_block<V: Visitor + ?Sized>(v: &mut V, block: &Block) {
    for stmt in &block.stmts {
        v.visit_stmt(stmt);
    }
    if let Some(value) = &block.value {
        v.visit_expr(value);
    }
}

/// Visits the parts of `stmt`.
pub fn walk_stmt<V: Visitor + ?Sized>(v: &mut V, stmt: &Stmt) {
    match &stmt.kind {
        StmtKind::Expr(e) | StmtKind::Discard(e) => v.visit_expr(e),
        StmtKind::Assign { target, value, .. } => {
            v.visit_expr(target);
            v.visit_expr(value);
        }
        StmtKind::Let { ty, init, .. } => {
            if let Some(ty) = ty {
                v.visit_type(ty);
            }
            if let Some(init) = init {
                v.visit_expr(init);
            }
        }
        StmtKind::If(i) => walk_if(v, i),
        StmtKind::Unroll { count: e, body } | StmtKind::While { cond: e, body } => {
            v.visit_expr(e);
            v.visit_block(body);
        }
        StmtKind::For { iterable, body, .. } => {
            match iterable {
                ForIterable::Map(e) => v.visit_expr(e),
                ForIterable::Range { start, end } => {
                    v.visit_expr(start);
                    v.visit_expr(end);
                }
            }
            v.visit_block(body);
        }
        StmtKind::Return(e) => {
            if let Some(e) = e {
                v.visit_expr(e);
            }
        }
        StmtKind::Break | StmtKind::Continue => {}
        StmtKind::Block(b) => v.visit_block(b),
    }
}

/// Visits the condition and branches of an `if`, following `else if` chains.
pub fn walk_if<V: Visitor + ?Sized>(v: &mut V, mut i: &If) {
    loop {
        v.visit_expr(&i.cond);
        v.visit_block(&i.then);
        match &i.otherwise {
            None => return,
            Some(Else::Block(b)) => {
                v.visit_block(b);
                return;
            }
            Some(Else::If(next)) => i = next,
        }
    }
}

/// Visits the operands of `expr`.
pub fn walk_expr<V: Visitor + ?Sized>(v: &mut V, expr: &Expr) {
    match &expr.kind {
        ExprKind::Int(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Ident(_)
        | ExprKind::Var(_)
        | ExprKind::Param(_)
        | ExprKind::ParamCount
        | ExprKind::Map(_) => {}
        ExprKind::MapAccess { keys: list, .. }
        | ExprKind::Call { args: list, .. }
        | ExprKind::Tuple(list) => {
            for e in list {
                v.visit_expr(e);
            }
        }
        ExprKind::Field { base: e, .. }
        | ExprKind::TupleIndex { base: e, .. }
        | ExprKind::Unary { operand: e, .. }
        | ExprKind::IncDec { target: e, .. } => v.visit_expr(e),
        ExprKind::Index { base: a, index: b } | ExprKind::Binary { lhs: a, rhs: b, .. } => {
            v.visit_expr(a);
            v.visit_expr(b);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            v.visit_expr(cond);
            v.visit_expr(then);
            v.visit_expr(otherwise);
        }
        ExprKind::Cast { ty, expr } => {
            v.visit_type(ty);
            v.visit_expr(expr);
        }
        ExprKind::Sizeof(of) | ExprKind::Offsetof { of, .. } => match of {
            TypeOrExpr::Type(ty) => v.visit_type(ty),
            TypeOrExpr::Expr(e) => v.visit_expr(e),
        },
        ExprKind::Block(b) => v.visit_block(b),
    }
}

/// Visits the inner types of `ty`.
pub fn walk_type<V: Visitor + ?Sized>(v: &mut V, ty: &TypeExpr) {
    match &ty.kind {
        TypeKind::Named(_) | TypeKind::Record { .. } => {}
        TypeKind::Pointer(inner) | TypeKind::Array { elem: inner, .. } => v.visit_type(inner),
    }
}
