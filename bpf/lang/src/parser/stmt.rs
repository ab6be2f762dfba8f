//! Blocks and statements.
//!
//! Simple statements (expressions, assignments, `let`, `return`, `break`,
//! `continue`) end with `;`, which may be left out before the closing `}`.
//! Compound statements (`if`, `while`, `for`, `unroll`, nested blocks) end
//! with their block. Stray `;`s are accepted.

use super::{PResult, Parser, Reported};
use crate::ast::{BinOp, Block, Else, Expr, ExprKind, ForIterable, If, Name, Stmt, StmtKind};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::token::{Keyword, Punct, TokenKind};

/// Whether a statement needs a `;` after it.
enum Ends {
    WithSemi,
    WithBlock,
}

/// What a statement starts with.
enum Start {
    If,
    Unroll,
    While,
    For,
    Block,
    Return,
    Break,
    Continue,
    Let,
    Discard,
    Expr,
}

// As in `expr.rs`, functions on the recursive path (block → statement →
// block) dispatch without building values, to keep debug stack frames small.
impl Parser<'_> {
    /// `{ statements [value] }`.
    pub(super) fn block(&mut self) -> PResult<Block> {
        self.nested(Self::block_inner)
    }

    fn block_inner(&mut self) -> PResult<Block> {
        let open = self.expect(Punct::LBrace)?;
        let mut stmts = Vec::new();
        let mut value = None;
        loop {
            while self.eat(Punct::Semi).is_some() {}
            match self.peek().kind {
                TokenKind::Punct(Punct::RBrace) => break,
                TokenKind::Eof => return Err(self.unclosed(open, "block")),
                _ => {}
            }
            let parsed = self.nested(Self::stmt);
            self.add_stmt(parsed, &mut stmts, &mut value);
        }
        let close = self.bump().span;
        Ok(Block {
            stmts,
            value,
            span: open.to(close),
        })
    }

    /// Adds a parsed statement to its block, checking the `;` after it: a
    /// final expression without one becomes the block's value.
    fn add_stmt(
        &mut self,
        parsed: PResult<(Stmt, Ends)>,
        stmts: &mut Vec<Stmt>,
        value: &mut Option<Box<Expr>>,
    ) {
        match parsed {
            Ok((stmt, Ends::WithBlock)) => stmts.push(stmt),
            Ok((stmt, Ends::WithSemi)) => {
                if self.eat(Punct::Semi).is_some() {
                    stmts.push(stmt);
                } else if self.at(Punct::RBrace) {
                    match stmt.kind {
                        StmtKind::Expr(expr) => *value = Some(Box::new(expr)),
                        _ => stmts.push(stmt),
                    }
                } else {
                    self.missing_semi_after(&stmt);
                    stmts.push(stmt);
                }
            }
            Err(Reported) => self.recover_stmt(),
        }
    }

    /// Reports a missing `;` after `stmt`. A bare name followed by `{` or
    /// `:` is more likely the next probe, after a block left open.
    fn missing_semi_after(&mut self, stmt: &Stmt) {
        let Some(mut diagnostic) = self.missing_semi_diagnostic("the statement") else {
            return;
        };
        let bare_name =
            matches!(&stmt.kind, StmtKind::Expr(e) if matches!(e.kind, ExprKind::Ident(_)));
        if bare_name && (self.at(Punct::LBrace) || self.at(Punct::Colon)) {
            let name = self.src.get(stmt.span.range()).unwrap_or("");
            diagnostic = diagnostic.with_help(format!(
                "if `{name}` starts a probe, a `}}` is missing before it"
            ));
        }
        self.report(diagnostic);
    }

    fn stmt(&mut self) -> PResult<(Stmt, Ends)> {
        let start = self.peek().span;
        let parsed = match self.stmt_start() {
            Start::If => self.if_stmt().map(|i| (StmtKind::If(i), Ends::WithBlock)),
            Start::Unroll => self.unroll_stmt(),
            Start::While => self.while_stmt(),
            Start::For => self.for_stmt(),
            Start::Block => self.block().map(|b| (StmtKind::Block(b), Ends::WithBlock)),
            Start::Return => self.return_stmt(),
            Start::Break => self.jump_stmt(StmtKind::Break),
            Start::Continue => self.jump_stmt(StmtKind::Continue),
            Start::Let => self.let_stmt(),
            Start::Discard => self.discard_stmt(),
            Start::Expr => self.expr_or_assign(),
        };
        let (kind, ends) = parsed?;
        let span = start.to(Span::empty(self.prev_end));
        Ok((Stmt { kind, span }, ends))
    }

    fn stmt_start(&mut self) -> Start {
        let discard = matches!(&self.peek().kind, TokenKind::Ident(name) if name == "_");
        if discard {
            return if self.at_nth(1, Punct::Assign) {
                Start::Discard
            } else {
                Start::Expr
            };
        }
        match self.peek().kind {
            TokenKind::Keyword(Keyword::If) => Start::If,
            TokenKind::Keyword(Keyword::Unroll) => Start::Unroll,
            TokenKind::Keyword(Keyword::While) => Start::While,
            TokenKind::Keyword(Keyword::For) => Start::For,
            TokenKind::Punct(Punct::LBrace) => Start::Block,
            TokenKind::Keyword(Keyword::Return) => Start::Return,
            TokenKind::Keyword(Keyword::Break) => Start::Break,
            TokenKind::Keyword(Keyword::Continue) => Start::Continue,
            TokenKind::Keyword(Keyword::Let) => Start::Let,
            _ => Start::Expr,
        }
    }

    /// `unroll (count) { … }`.
    fn unroll_stmt(&mut self) -> PResult<(StmtKind, Ends)> {
        self.bump();
        let count = self.expr()?;
        let body = self.block()?;
        Ok((StmtKind::Unroll { count, body }, Ends::WithBlock))
    }

    /// `while (cond) { … }`.
    fn while_stmt(&mut self) -> PResult<(StmtKind, Ends)> {
        self.bump();
        let cond = self.expr()?;
        let body = self.block()?;
        Ok((StmtKind::While { cond, body }, Ends::WithBlock))
    }

    /// `return [value]`.
    fn return_stmt(&mut self) -> PResult<(StmtKind, Ends)> {
        self.bump();
        let value = if self.at(Punct::Semi) || self.at(Punct::RBrace) {
            None
        } else {
            Some(self.expr()?)
        };
        Ok((StmtKind::Return(value), Ends::WithSemi))
    }

    /// `break` or `continue`.
    fn jump_stmt(&mut self, kind: StmtKind) -> PResult<(StmtKind, Ends)> {
        self.bump();
        Ok((kind, Ends::WithSemi))
    }

    /// `_ = expr`.
    fn discard_stmt(&mut self) -> PResult<(StmtKind, Ends)> {
        self.bump();
        self.bump();
        Ok((StmtKind::Discard(self.expr()?), Ends::WithSemi))
    }

    /// `if cond { … } [else if … | else { … }]`.
    fn if_stmt(&mut self) -> PResult<If> {
        let keyword = self.bump().span;
        let cond = self.expr()?;
        let then = self.block()?;
        let otherwise = if self.eat_keyword(Keyword::Else) {
            if self.at_keyword(Keyword::If) {
                Some(Else::If(Box::new(self.nested(Self::if_stmt)?)))
            } else {
                Some(Else::Block(self.block()?))
            }
        } else {
            None
        };
        Ok(If {
            cond,
            then,
            otherwise,
            span: keyword.to(Span::empty(self.prev_end)),
        })
    }

    /// `for ($var : @map) { … }` or `for ($var : start..end) { … }`; the
    /// parentheses are optional.
    fn for_stmt(&mut self) -> PResult<(StmtKind, Ends)> {
        self.bump();
        let open = self.eat(Punct::LParen);
        let var = self.var_name("a loop variable such as `$i`")?;
        self.expect(Punct::Colon)?;
        let first = self.expr()?;
        let iterable = if self.eat(Punct::DotDot).is_some() {
            ForIterable::Range {
                start: first,
                end: self.expr()?,
            }
        } else {
            ForIterable::Map(first)
        };
        if let Some(open) = open {
            self.close(Punct::RParen, open, "`)`")?;
        }
        let body = self.block()?;
        let kind = StmtKind::For {
            var,
            iterable,
            body,
        };
        Ok((kind, Ends::WithBlock))
    }

    /// `let $var [: type] [= init]`.
    fn let_stmt(&mut self) -> PResult<(StmtKind, Ends)> {
        self.bump();
        if let TokenKind::Map(_) = self.peek().kind {
            let span = self.peek().span;
            return Err(self.report(
                Diagnostic::error(span, "maps can only be declared at the top level").with_help(
                    "move `let @map = …;` before the probes, or assign the map directly",
                ),
            ));
        }
        let var = self.var_name("a variable such as `$x`")?;
        let ty = match self.eat(Punct::Colon) {
            Some(_) => Some(self.type_expr()?),
            None => None,
        };
        let init = match self.eat(Punct::Assign) {
            Some(_) => Some(self.expr()?),
            None => None,
        };
        Ok((StmtKind::Let { var, ty, init }, Ends::WithSemi))
    }

    /// An expression statement, or an assignment if an assignment operator
    /// follows the first expression.
    fn expr_or_assign(&mut self) -> PResult<(StmtKind, Ends)> {
        let target = self.expr()?;
        let op = match self.peek().kind {
            TokenKind::Punct(Punct::Assign) => None,
            TokenKind::Punct(p) => match compound_op(p) {
                Some(op) => Some(op),
                None => return Ok((StmtKind::Expr(target), Ends::WithSemi)),
            },
            _ => return Ok((StmtKind::Expr(target), Ends::WithSemi)),
        };
        let op_span = self.bump().span;
        self.check_assignable(&target, op_span);
        let value = self.expr()?;
        Ok((StmtKind::Assign { target, op, value }, Ends::WithSemi))
    }

    /// Reports a target that cannot be assigned: only variables, maps and
    /// map elements can.
    fn check_assignable(&mut self, target: &Expr, op: Span) {
        let diagnostic = match &target.kind {
            ExprKind::Var(_) | ExprKind::Map(_) | ExprKind::MapAccess { .. } => return,
            ExprKind::TupleIndex { .. } => {
                Diagnostic::error(target.span, "tuples are immutable: cannot assign to a tuple element")
                    .with_help("build a new tuple and assign it instead")
            }
            ExprKind::Ident(name) => Diagnostic::error(target.span, format!("cannot assign to `{name}`"))
                .with_help(format!(
                    "scratch variables start with `$` and maps with `@`: `${name} = …` or `@{name} = …`"
                )),
            _ => Diagnostic::error(target.span, "cannot assign to this expression").with_help(
                "only variables (`$x`), maps (`@m`) and map elements (`@m[k]`) can be assigned",
            ),
        };
        self.report(diagnostic.with_note(op, "assigned here"));
    }

    /// `$name`, as a [`Name`] without the `$`.
    pub(super) fn var_name(&mut self, what: &str) -> PResult<Name> {
        let token = self.peek();
        match &token.kind {
            TokenKind::Var(name) => {
                let name = Name {
                    name: name.clone(),
                    span: token.span,
                };
                self.bump();
                Ok(name)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn eat_keyword(&mut self, keyword: Keyword) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.bump();
        }
        found
    }
}

/// The operator of a compound assignment token such as `+=`.
fn compound_op(punct: Punct) -> Option<BinOp> {
    Some(match punct {
        Punct::PlusEq => BinOp::Add,
        Punct::MinusEq => BinOp::Sub,
        Punct::StarEq => BinOp::Mul,
        Punct::SlashEq => BinOp::Div,
        Punct::PercentEq => BinOp::Mod,
        Punct::AmpEq => BinOp::BitAnd,
        Punct::PipeEq => BinOp::BitOr,
        Punct::CaretEq => BinOp::BitXor,
        Punct::ShlEq => BinOp::Shl,
        Punct::ShrEq => BinOp::Shr,
        _ => return None,
    })
}
