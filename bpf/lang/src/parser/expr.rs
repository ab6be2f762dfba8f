//! Expressions, by precedence climbing.
//!
//! From loosest to tightest binding, as in C:
//!
//! | level | operators                 | associativity |
//! |-------|---------------------------|---------------|
//! | 0     | `?:`                      | right         |
//! | 1     | `\|\|`                    | left          |
//! | 2     | `&&`                      | left          |
//! | 3     | `\|`                      | left          |
//! | 4     | `^`                       | left          |
//! | 5     | `&`                       | left          |
//! | 6     | `==` `!=`                 | left          |
//! | 7     | `<` `<=` `>` `>=`         | left          |
//! | 8     | `<<` `>>`                 | left          |
//! | 9     | `+` `-`                   | left          |
//! | 10    | `*` `/` `%`               | left          |
//! | unary | `! ~ - * & ++ --`, casts  | right         |
//! | postfix | `. -> [] ++ --`         | left          |
//!
//! Assignment is a statement, not an operator. Inside a predicate a `/`
//! followed by `{` ends the predicate instead of dividing.

use std::ops::ControlFlow;

use super::{PResult, Parser, Reported};
use crate::ast::{BinOp, Expr, ExprKind, IncDec, Name, TypeOrExpr, UnaryOp};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::token::{Keyword, Punct, TokenKind};

/// What an expression starts with, decided before committing to a parse
/// function.
enum Start {
    Cast,
    Prefix(UnaryOp),
    PrefixIncDec(IncDec),
    Operand,
}

/// What a primary expression is, from its first token(s).
enum Primary {
    Paren,
    Block,
    Map,
    Call,
    Sizeof,
    Offsetof,
    Leaf,
}

// The functions on the recursive path (`expr` → … → `primary` → `expr`)
// only dispatch and hold a node or two; building nodes happens in helpers
// that return before recursing again. Debug builds give every temporary its
// own stack slot, so this keeps deep (but legal) nesting far from the end
// of a 2 MiB test-thread stack.
impl Parser<'_> {
    /// A full expression.
    pub(super) fn expr(&mut self) -> PResult<Expr> {
        self.nested(Self::ternary)
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary(1)?;
        if self.at(Punct::Question) {
            self.ternary_rest(cond)
        } else {
            Ok(cond)
        }
    }

    /// `? then : otherwise` after `cond`; the cursor is on `?`.
    fn ternary_rest(&mut self, cond: Expr) -> PResult<Expr> {
        self.bump();
        let then = self.expr()?;
        self.expect(Punct::Colon)?;
        let otherwise = self.expr()?;
        let span = cond.span.to(otherwise.span);
        self.expr_node(
            ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
            span,
        )
    }

    /// Binary operators binding at least as tightly as `min_level`.
    fn binary(&mut self, min_level: u8) -> PResult<Expr> {
        let lhs = self.unary()?;
        self.binary_rest(lhs, min_level)
    }

    fn binary_rest(&mut self, mut lhs: Expr, min_level: u8) -> PResult<Expr> {
        while let Some((op, level)) = self.binary_op_ahead(min_level) {
            let op_span = self.bump().span;
            let rhs = self.nested(|p| p.binary(level + 1))?;
            lhs = self.binary_node(op, op_span, lhs, rhs)?;
        }
        Ok(lhs)
    }

    /// The binary operator at the cursor if it binds at least as tightly as
    /// `min_level` (and is not the `/` ending a predicate).
    fn binary_op_ahead(&mut self, min_level: u8) -> Option<(BinOp, u8)> {
        let TokenKind::Punct(punct) = self.peek().kind else {
            return None;
        };
        let (op, level) = binary_op(punct)?;
        if level < min_level || (op == BinOp::Div && self.at_predicate_end()) {
            return None;
        }
        Some((op, level))
    }

    fn binary_node(&mut self, op: BinOp, op_span: Span, lhs: Expr, rhs: Expr) -> PResult<Expr> {
        let span = lhs.span.to(rhs.span);
        self.expr_node(
            ExprKind::Binary {
                op,
                op_span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        )
    }

    /// Prefix operators and casts, then a postfix expression.
    fn unary(&mut self) -> PResult<Expr> {
        match self.start() {
            Start::Operand => self.postfix(),
            Start::Cast => self.cast(),
            Start::Prefix(op) => self.prefix(op),
            Start::PrefixIncDec(op) => self.prefix_inc_dec(op),
        }
    }

    fn start(&mut self) -> Start {
        if self.at(Punct::LParen) {
            return if self.cast_ahead() {
                Start::Cast
            } else {
                Start::Operand
            };
        }
        match self.peek().kind {
            TokenKind::Punct(Punct::Bang) => Start::Prefix(UnaryOp::Not),
            TokenKind::Punct(Punct::Tilde) => Start::Prefix(UnaryOp::BitNot),
            TokenKind::Punct(Punct::Minus) => Start::Prefix(UnaryOp::Neg),
            TokenKind::Punct(Punct::Star) => Start::Prefix(UnaryOp::Deref),
            TokenKind::Punct(Punct::Amp) => Start::Prefix(UnaryOp::AddrOf),
            TokenKind::Punct(Punct::PlusPlus) => Start::PrefixIncDec(IncDec::Increment),
            TokenKind::Punct(Punct::MinusMinus) => Start::PrefixIncDec(IncDec::Decrement),
            _ => Start::Operand,
        }
    }

    fn prefix(&mut self, op: UnaryOp) -> PResult<Expr> {
        let op_span = self.bump().span;
        let operand = self.nested(Self::unary)?;
        let span = op_span.to(operand.span);
        self.expr_node(
            ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
            span,
        )
    }

    fn prefix_inc_dec(&mut self, op: IncDec) -> PResult<Expr> {
        let op_span = self.bump().span;
        let target = self.nested(Self::unary)?;
        self.inc_dec(op, true, target, op_span)
    }

    /// `++`/`--` applied to `target`, which must be a variable or map.
    fn inc_dec(&mut self, op: IncDec, prefix: bool, target: Expr, op_span: Span) -> PResult<Expr> {
        if !matches!(
            target.kind,
            ExprKind::Var(_) | ExprKind::Map(_) | ExprKind::MapAccess { .. }
        ) {
            return Err(self.report(
                Diagnostic::error(
                    target.span,
                    format!(
                        "the `{}` operator must be applied to a variable or map",
                        op.as_str()
                    ),
                )
                .with_note(op_span, "operator here"),
            ));
        }
        let span = op_span.to(target.span);
        self.expr_node(
            ExprKind::IncDec {
                op,
                prefix,
                target: Box::new(target),
            },
            span,
        )
    }

    /// `(type) operand`; the cursor is on `(`.
    fn cast(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        let ty = self.type_expr()?;
        self.close(Punct::RParen, open, "`)`")?;
        let operand = self.nested(Self::unary)?;
        let span = open.to(operand.span);
        self.expr_node(
            ExprKind::Cast {
                ty,
                expr: Box::new(operand),
            },
            span,
        )
    }

    /// A primary expression followed by field accesses, indexing and
    /// postfix `++`/`--`.
    fn postfix(&mut self) -> PResult<Expr> {
        let mut expr = self.primary()?;
        loop {
            match self.postfix_op(expr)? {
                ControlFlow::Continue(next) => expr = next,
                ControlFlow::Break(done) => return Ok(done),
            }
        }
    }

    /// Applies the postfix operator at the cursor to `expr`, or hands `expr`
    /// back unchanged as `Break` if there is none.
    fn postfix_op(&mut self, expr: Expr) -> PResult<ControlFlow<Expr, Expr>> {
        let next = match self.peek().kind {
            TokenKind::Punct(Punct::Dot) => self.dot(expr),
            TokenKind::Punct(Punct::Arrow) => self.arrow(expr),
            TokenKind::Punct(Punct::LBracket) => self.index(expr),
            TokenKind::Punct(Punct::PlusPlus) => self.postfix_inc_dec(IncDec::Increment, expr),
            TokenKind::Punct(Punct::MinusMinus) => self.postfix_inc_dec(IncDec::Decrement, expr),
            _ => return Ok(ControlFlow::Break(expr)),
        };
        next.map(ControlFlow::Continue)
    }

    /// `.field` or `.N` after `base`.
    fn dot(&mut self, base: Expr) -> PResult<Expr> {
        self.bump();
        let kind = if let TokenKind::Int(index) = self.peek().kind {
            let index_span = self.bump().span;
            if matches!(base.kind, ExprKind::Int(_)) && base.span.end + 1 == index_span.start {
                let span = base.span.to(index_span);
                return Err(self.report(
                    Diagnostic::error(span, "floating-point numbers are not supported")
                        .with_help("bpftrace has only integers: scale the value instead, e.g. 1500 thousandths for 1.5"),
                ));
            }
            let Ok(index) = u32::try_from(index) else {
                return Err(self.report(Diagnostic::error(index_span, "tuple index is too large")));
            };
            ExprKind::TupleIndex {
                base: Box::new(base),
                index,
            }
        } else {
            let field = self.field_name("a field name or tuple index after `.`")?;
            ExprKind::Field {
                base: Box::new(base),
                field,
                arrow: false,
            }
        };
        self.postfix_node(kind)
    }

    /// `->field` after `base`.
    fn arrow(&mut self, base: Expr) -> PResult<Expr> {
        self.bump();
        let field = self.field_name("a field name after `->`")?;
        self.postfix_node(ExprKind::Field {
            base: Box::new(base),
            field,
            arrow: true,
        })
    }

    /// `[index]` after `base`.
    fn index(&mut self, base: Expr) -> PResult<Expr> {
        let open = self.bump().span;
        let index = self.expr()?;
        self.close(Punct::RBracket, open, "`]`")?;
        self.postfix_node(ExprKind::Index {
            base: Box::new(base),
            index: Box::new(index),
        })
    }

    fn postfix_inc_dec(&mut self, op: IncDec, target: Expr) -> PResult<Expr> {
        let op_span = self.bump().span;
        self.inc_dec(op, false, target, op_span)
    }

    /// A postfix node spanning from its base to the last token consumed.
    fn postfix_node(&mut self, kind: ExprKind) -> PResult<Expr> {
        let start = match &kind {
            ExprKind::Field { base, .. }
            | ExprKind::TupleIndex { base, .. }
            | ExprKind::Index { base, .. } => base.span,
            _ => Span::empty(self.prev_end),
        };
        self.expr_node(kind, start.to(Span::empty(self.prev_end)))
    }

    /// Literals, names, calls, maps, parentheses and block expressions.
    fn primary(&mut self) -> PResult<Expr> {
        match self.primary_kind() {
            Primary::Paren => self.parenthesized(),
            Primary::Block => self.block_expr(),
            Primary::Map => self.map(),
            Primary::Call => self.call(),
            Primary::Sizeof => self.sizeof(),
            Primary::Offsetof => self.offsetof(),
            Primary::Leaf => self.leaf(),
        }
    }

    fn primary_kind(&mut self) -> Primary {
        if matches!(self.peek().kind, TokenKind::Ident(_)) {
            return if self.at_nth(1, Punct::LParen) {
                Primary::Call
            } else {
                Primary::Leaf
            };
        }
        match self.peek().kind {
            TokenKind::Punct(Punct::LParen) => Primary::Paren,
            TokenKind::Punct(Punct::LBrace) => Primary::Block,
            TokenKind::Map(_) => Primary::Map,
            TokenKind::Keyword(Keyword::Sizeof) => Primary::Sizeof,
            TokenKind::Keyword(Keyword::Offsetof) => Primary::Offsetof,
            _ => Primary::Leaf,
        }
    }

    /// A single-token expression: literal, identifier, variable, parameter.
    fn leaf(&mut self) -> PResult<Expr> {
        let kind = match &self.peek().kind {
            TokenKind::Int(value) => ExprKind::Int(*value),
            TokenKind::Str(value) => ExprKind::Str(value.clone()),
            TokenKind::Keyword(Keyword::True) => ExprKind::Bool(true),
            TokenKind::Keyword(Keyword::False) => ExprKind::Bool(false),
            TokenKind::Ident(name) => ExprKind::Ident(name.clone()),
            TokenKind::Var(name) => ExprKind::Var(name.clone()),
            TokenKind::Param(n) => ExprKind::Param(*n),
            TokenKind::ParamCount => ExprKind::ParamCount,
            &TokenKind::Keyword(
                keyword @ (Keyword::If
                | Keyword::Else
                | Keyword::While
                | Keyword::For
                | Keyword::Let),
            ) => return Err(self.statement_keyword(keyword)),
            _ => return Err(self.expected("an expression")),
        };
        let span = self.bump().span;
        self.expr_node(kind, span)
    }

    /// Reports a statement keyword where a value was expected.
    fn statement_keyword(&mut self, keyword: Keyword) -> Reported {
        let Some(diagnostic) = self.expected_diagnostic("an expression") else {
            return Reported;
        };
        let help = match keyword {
            Keyword::Else => "`else` must follow the `}` of an `if` block".to_string(),
            _ => format!(
                "`{}` starts a statement and has no value here",
                keyword.as_str()
            ),
        };
        self.report(diagnostic.with_help(help))
    }

    /// `{ … }` used as a value.
    fn block_expr(&mut self) -> PResult<Expr> {
        let block = self.block()?;
        let span = block.span;
        self.expr_node(ExprKind::Block(block), span)
    }

    /// `@name` or `@name[key, …]`.
    fn map(&mut self) -> PResult<Expr> {
        let map = self.bump_name();
        let Some(open) = self.eat(Punct::LBracket) else {
            return self.expr_node(ExprKind::Map(map.name), map.span);
        };
        let keys = self.list(Punct::RBracket, open, "a map key")?;
        let span = map.span.to(Span::empty(self.prev_end));
        self.expr_node(ExprKind::MapAccess { map, keys }, span)
    }

    /// `func(args…)`.
    fn call(&mut self) -> PResult<Expr> {
        let func = self.bump_name();
        let open = self.bump().span;
        let args = if self.eat(Punct::RParen).is_some() {
            Vec::new()
        } else {
            self.list(Punct::RParen, open, "a function argument")?
        };
        let span = func.span.to(Span::empty(self.prev_end));
        self.expr_node(ExprKind::Call { func, args }, span)
    }

    /// One or more comma-separated expressions and the closing `close`.
    fn list(&mut self, close: Punct, open: Span, what: &str) -> PResult<Vec<Expr>> {
        if self.at(close) {
            return Err(self.expected(what));
        }
        let mut items = vec![self.expr()?];
        while self.eat(Punct::Comma).is_some() {
            items.push(self.expr()?);
        }
        self.close_list(close, open)?;
        Ok(items)
    }

    /// The `close` ending a comma-separated list opened at `open`.
    fn close_list(&mut self, close: Punct, open: Span) -> PResult<Span> {
        let expected = format!("`,` or `{}`", close.as_str());
        self.close(close, open, &expected)
    }

    /// `( … )`: a parenthesized expression or a tuple, `()` and `(a,)`
    /// included. The cursor is on `(`.
    fn parenthesized(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        if let Some(close) = self.eat(Punct::RParen) {
            return self.expr_node(ExprKind::Tuple(Vec::new()), open.to(close));
        }
        let first = self.expr()?;
        if self.at(Punct::Comma) {
            return self.tuple_rest(open, first);
        }
        let close = self.close(Punct::RParen, open, "`)`")?;
        // The parentheses belong to the expression's source.
        Ok(Expr {
            span: open.to(close),
            ..first
        })
    }

    /// The elements after the first of a tuple; the cursor is on a `,`.
    fn tuple_rest(&mut self, open: Span, first: Expr) -> PResult<Expr> {
        let mut items = vec![first];
        while self.eat(Punct::Comma).is_some() && !self.at(Punct::RParen) {
            items.push(self.expr()?);
        }
        let close = self.close(Punct::RParen, open, "`,` or `)`")?;
        self.expr_node(ExprKind::Tuple(items), open.to(close))
    }

    /// `sizeof(type)` or `sizeof(expr)`.
    fn sizeof(&mut self) -> PResult<Expr> {
        let keyword = self.bump().span;
        let open = self.expect(Punct::LParen)?;
        let of = self.type_or_expr(Punct::RParen)?;
        let close = self.close(Punct::RParen, open, "`)`")?;
        self.expr_node(ExprKind::Sizeof(of), keyword.to(close))
    }

    /// `offsetof(struct T, a.b)` or `offsetof(expr, a)`.
    fn offsetof(&mut self) -> PResult<Expr> {
        let keyword = self.bump().span;
        let open = self.expect(Punct::LParen)?;
        let of = self.type_or_expr(Punct::Comma)?;
        self.expect(Punct::Comma)?;
        let mut fields = vec![self.field_name("a field name")?];
        while self.eat(Punct::Dot).is_some() {
            fields.push(self.field_name("a field name after `.`")?);
        }
        let close = self.close(Punct::RParen, open, "`)`")?;
        self.expr_node(ExprKind::Offsetof { of, fields }, keyword.to(close))
    }

    /// A type if the tokens up to `end` read as one, else an expression.
    fn type_or_expr(&mut self, end: Punct) -> PResult<TypeOrExpr> {
        if self.type_ahead(0, end) {
            Ok(TypeOrExpr::Type(self.type_expr()?))
        } else {
            Ok(TypeOrExpr::Expr(Box::new(self.expr()?)))
        }
    }

    /// A field name: an identifier, or a keyword (`args.config` is fine).
    fn field_name(&mut self, what: &str) -> PResult<Name> {
        match self.peek().kind {
            TokenKind::Ident(_) | TokenKind::Keyword(_) => Ok(self.bump_name()),
            _ => Err(self.expected(what)),
        }
    }
}

/// The binary operator a token stands for, with its precedence level.
fn binary_op(punct: Punct) -> Option<(BinOp, u8)> {
    Some(match punct {
        Punct::OrOr => (BinOp::Or, 1),
        Punct::AndAnd => (BinOp::And, 2),
        Punct::Pipe => (BinOp::BitOr, 3),
        Punct::Caret => (BinOp::BitXor, 4),
        Punct::Amp => (BinOp::BitAnd, 5),
        Punct::EqEq => (BinOp::Eq, 6),
        Punct::Ne => (BinOp::Ne, 6),
        Punct::Lt => (BinOp::Lt, 7),
        Punct::Le => (BinOp::Le, 7),
        Punct::Gt => (BinOp::Gt, 7),
        Punct::Ge => (BinOp::Ge, 7),
        Punct::Shl => (BinOp::Shl, 8),
        Punct::Shr => (BinOp::Shr, 8),
        Punct::Plus => (BinOp::Add, 9),
        Punct::Minus => (BinOp::Sub, 9),
        Punct::Star => (BinOp::Mul, 10),
        Punct::Slash => (BinOp::Div, 10),
        Punct::Percent => (BinOp::Mod, 10),
        _ => return None,
    })
}
