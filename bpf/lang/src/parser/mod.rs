//! The parser: tokens to [`Program`], by recursive descent.
//!
//! Items and statements are parsed by hand-written functions, one per
//! construct; expressions by precedence climbing with C's operator
//! precedence (see `expr.rs`). The parser drives the lexer's modes: it
//! asks for a probe spec where a probe starts and for code everywhere
//! else, putting back any lookahead lexed in the wrong mode.
//!
//! Errors are reported into a list and parsing goes on: a bad statement is
//! skipped up to its `;` or the enclosing `}`, a bad item up to the end of
//! its block, so one run shows most of a program's syntax errors.
//!
//! Two limits keep hostile input harmless. Every recursive function passes
//! through [`Parser::nested`], which stops at [`MAX_DEPTH`] frames; and every
//! expression records its height, so even iteratively built chains such as
//! `1+1+…+1` cannot make a tree deeper than [`MAX_DEPTH`] that later passes
//! (and `Drop`) would have to recurse through. At the limit the parser needs
//! about 1 MiB of stack in a debug build (measured on the worst nesting
//! shapes), much less in release.

mod expr;
mod items;
mod probe;
mod stmt;
mod types;

use std::collections::VecDeque;

use crate::ast::{Expr, ExprId, ExprKind, Item, Name, Program};
use crate::diag::Diagnostic;
use crate::lexer::Lexer;
use crate::span::{offset_u32, SourceFile, Span};
use crate::token::{Keyword, Punct, Token, TokenKind};
use crate::visit::{self, Visitor};

/// Deepest nesting accepted: recursion frames, and expression tree height.
pub const MAX_DEPTH: u32 = 256;

/// Most diagnostics reported for one program; past this, more are noise.
const MAX_DIAGNOSTICS: usize = 50;

/// Parses `file` into a program, or returns every error found.
pub fn parse(file: &SourceFile) -> Result<Program, Vec<Diagnostic>> {
    let text = file.text();
    if u32::try_from(text.len()).is_err() {
        return Err(vec![Diagnostic::error(
            Span::empty(0),
            "the program is larger than 4 GiB",
        )]);
    }
    let mut parser = Parser::new(text);
    let items = parser.program();
    parser.finish(items)
}

/// Marks that an error has been reported and the caller should recover.
#[derive(Debug)]
struct Reported;

type PResult<T> = Result<T, Reported>;

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    /// Code tokens lexed but not consumed yet.
    ahead: VecDeque<Token>,
    /// End of the last consumed token: where "missing X" errors point.
    prev_end: u32,
    diagnostics: Vec<Diagnostic>,
    /// Height of each expression so far, indexed by [`ExprId`].
    heights: Vec<u32>,
    /// Current recursion depth, see [`Parser::nested`].
    depth: u32,
    /// Whether the "nested too deeply" error has been given.
    depth_reported: bool,
    /// Whether a `/` followed by `{` ends the expression (in a predicate).
    in_predicate: bool,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            lexer: Lexer::new(src),
            ahead: VecDeque::new(),
            prev_end: 0,
            diagnostics: Vec::new(),
            heights: Vec::new(),
            depth: 0,
            depth_reported: false,
            in_predicate: false,
        }
    }

    /// Items until the end of the file.
    fn program(&mut self) -> Vec<Item> {
        let mut items = Vec::new();
        loop {
            let item = match &self.peek().kind {
                TokenKind::Eof => break,
                TokenKind::Punct(Punct::Semi) => {
                    self.bump();
                    continue;
                }
                TokenKind::Punct(Punct::RBrace) => {
                    let span = self.bump().span;
                    self.report(Diagnostic::error(
                        span,
                        "unexpected `}`: no block is open here",
                    ));
                    continue;
                }
                TokenKind::Preproc(_) => Ok(self.preproc()),
                TokenKind::Keyword(Keyword::Config) => self.config(),
                TokenKind::Keyword(Keyword::Import) => self.import(),
                TokenKind::Keyword(Keyword::Let) => self.map_decl(),
                TokenKind::Keyword(Keyword::Macro) => self.macro_def(),
                TokenKind::Keyword(Keyword::Fn) => self.subprog(),
                TokenKind::Keyword(Keyword::Struct | Keyword::Union | Keyword::Enum) => {
                    self.c_decl()
                }
                _ => self.probe(),
            };
            match item {
                Ok(item) => items.push(item),
                Err(Reported) => self.recover_item(),
            }
        }
        items
    }

    /// The program, or all diagnostics in source order if any is an error.
    fn finish(self, items: Vec<Item>) -> Result<Program, Vec<Diagnostic>> {
        let mut diagnostics = self.lexer.into_errors();
        diagnostics.extend(self.diagnostics);
        diagnostics.sort_by_key(|d| d.span.start);
        if diagnostics.len() > MAX_DIAGNOSTICS {
            diagnostics.truncate(MAX_DIAGNOSTICS);
            if let Some(last) = diagnostics.pop() {
                let note = format!("stopped after {MAX_DIAGNOSTICS} errors");
                diagnostics.push(last.with_plain_note(note));
            }
        }
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(diagnostics);
        }
        Ok(Program {
            items,
            expr_count: offset_u32(self.heights.len()),
            span: Span::new(0, offset_u32(self.src.len())),
        })
    }

    // ---- Token cursor ----------------------------------------------------

    fn peek(&mut self) -> &Token {
        self.peek_nth(0)
    }

    /// The `n`th code token ahead (0 is the next one).
    fn peek_nth(&mut self, n: usize) -> &Token {
        while self.ahead.len() <= n {
            let token = self.lexer.next_token();
            self.ahead.push_back(token);
        }
        &self.ahead[n]
    }

    fn bump(&mut self) -> Token {
        let token = match self.ahead.pop_front() {
            Some(token) => token,
            None => self.lexer.next_token(),
        };
        if token.kind != TokenKind::Eof {
            self.prev_end = token.span.end;
        }
        token
    }

    fn at(&mut self, punct: Punct) -> bool {
        self.at_nth(0, punct)
    }

    fn at_nth(&mut self, n: usize, punct: Punct) -> bool {
        self.peek_nth(n).kind == TokenKind::Punct(punct)
    }

    fn at_keyword(&mut self, keyword: Keyword) -> bool {
        self.peek().kind == TokenKind::Keyword(keyword)
    }

    /// Consumes the next token if it is `punct`.
    fn eat(&mut self, punct: Punct) -> Option<Span> {
        self.at(punct).then(|| self.bump().span)
    }

    /// Consumes `punct` or reports what was found instead.
    fn expect(&mut self, punct: Punct) -> PResult<Span> {
        match self.eat(punct) {
            Some(span) => Ok(span),
            None => Err(self.expected(&format!("`{}`", punct.as_str()))),
        }
    }

    /// Consumes the `close` matching `open`, pointing back at `open` if it
    /// is missing. `expected` names what would have been acceptable.
    fn close(&mut self, close: Punct, open: Span, expected: &str) -> PResult<Span> {
        if let Some(span) = self.eat(close) {
            return Ok(span);
        }
        let Some(diagnostic) = self.expected_diagnostic(expected) else {
            return Err(Reported);
        };
        let note = format!(
            "to match this `{}`",
            self.src.get(open.range()).unwrap_or("(")
        );
        Err(self.report(diagnostic.with_note(open, note)))
    }

    /// Gives lookahead back to the lexer, so the next token can be lexed in
    /// another mode.
    fn relex(&mut self) {
        if let Some(first) = self.ahead.front() {
            self.lexer.reset(first.span.start);
        }
        self.ahead.clear();
    }

    /// An identifier as a [`Name`], or an error naming `what` was expected.
    fn name(&mut self, what: &str) -> PResult<Name> {
        match &self.peek().kind {
            TokenKind::Ident(_) => Ok(self.bump_name()),
            _ => Err(self.expected(what)),
        }
    }

    /// The next token — an identifier, keyword, variable or map — as a
    /// [`Name`] (without `$` or `@`).
    fn bump_name(&mut self) -> Name {
        let token = self.bump();
        let name = match token.kind {
            TokenKind::Ident(name) | TokenKind::Var(name) | TokenKind::Map(name) => name,
            TokenKind::Keyword(keyword) => keyword.as_str().to_string(),
            _ => String::new(),
        };
        Name {
            name,
            span: token.span,
        }
    }

    // ---- Errors and recovery ---------------------------------------------

    fn report(&mut self, diagnostic: Diagnostic) -> Reported {
        self.diagnostics.push(diagnostic);
        Reported
    }

    /// Reports "expected `what`, found …" at the next token.
    fn expected(&mut self, what: &str) -> Reported {
        if let Some(diagnostic) = self.expected_diagnostic(what) {
            self.report(diagnostic);
        }
        Reported
    }

    /// "expected `what`, found …" at the next token, unless that token is a
    /// lexical error (already reported) or the same place already has an
    /// error.
    fn expected_diagnostic(&mut self, what: &str) -> Option<Diagnostic> {
        let prev_end = self.prev_end;
        let ends_in_comment = self.lexer.ends_in_comment();
        let token = self.peek();
        let span = match token.kind {
            TokenKind::Error => return None,
            TokenKind::Eof if ends_in_comment => return None,
            TokenKind::Eof => Span::empty(prev_end),
            _ => token.span,
        };
        let message = format!("expected {what}, found {}", token.kind);
        if self
            .diagnostics
            .last()
            .is_some_and(|d| d.span.start == span.start)
        {
            return None;
        }
        Some(Diagnostic::error(span, message))
    }

    /// Reports a block (or other `{…}`) still open at the end of the file.
    fn unclosed(&mut self, open: Span, what: &str) -> Reported {
        if self.lexer.ends_in_comment() {
            return Reported;
        }
        self.report(
            Diagnostic::error(
                Span::empty(self.prev_end),
                format!("expected `}}` to close the {what}, found end of file"),
            )
            .with_note(open, format!("the {what} opened here")),
        )
    }

    /// Reports a missing `;` after the statement or item that just ended.
    fn missing_semi(&mut self, after: &str) {
        if let Some(diagnostic) = self.missing_semi_diagnostic(after) {
            self.report(diagnostic);
        }
    }

    /// The error for a missing `;`, pointing just after what ended; none
    /// at the end of the file, where the unclosed block is the error.
    fn missing_semi_diagnostic(&mut self, after: &str) -> Option<Diagnostic> {
        if matches!(self.peek().kind, TokenKind::Error | TokenKind::Eof) {
            return None;
        }
        let found = self.peek().kind.to_string();
        Some(Diagnostic::error(
            Span::empty(self.prev_end),
            format!("expected `;` after {after}, found {found}"),
        ))
    }

    /// Skips the rest of a statement: past its `;`, or up to the `}` of the
    /// enclosing block.
    fn recover_stmt(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek().kind {
                TokenKind::Eof => return,
                TokenKind::Punct(Punct::Semi) if depth == 0 => {
                    self.bump();
                    return;
                }
                TokenKind::Punct(Punct::RBrace) if depth == 0 => return,
                TokenKind::Punct(Punct::LBrace | Punct::LParen | Punct::LBracket) => depth += 1,
                TokenKind::Punct(Punct::RBrace | Punct::RParen | Punct::RBracket) => {
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips the rest of a top-level item: past the `}` that ends it.
    fn recover_item(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.bump().kind {
                TokenKind::Eof => return,
                TokenKind::Punct(Punct::LBrace) => depth += 1,
                TokenKind::Punct(Punct::RBrace) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    // ---- Limits and node construction ------------------------------------

    /// Runs `parse` one recursion level deeper, or fails past [`MAX_DEPTH`].
    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_DEPTH {
            let span = self.peek().span;
            return Err(self.too_deep(span));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn too_deep(&mut self, span: Span) -> Reported {
        if !self.depth_reported {
            self.depth_reported = true;
            self.report(
                Diagnostic::error(span, "the program is nested too deeply here")
                    .with_help("split the expression or block, e.g. with intermediate variables"),
            );
        }
        Reported
    }

    /// A new expression node with the next id.
    fn expr_node(&mut self, kind: ExprKind, span: Span) -> PResult<Expr> {
        let expr = Expr {
            id: ExprId(offset_u32(self.heights.len())),
            kind,
            span,
        };
        let mut tallest = TallestChild {
            heights: &self.heights,
            max: 0,
        };
        visit::walk_expr(&mut tallest, &expr);
        let height = tallest.max + 1;
        if height > MAX_DEPTH {
            return Err(self.too_deep(span));
        }
        self.heights.push(height);
        Ok(expr)
    }
}

/// Finds the tallest expression directly under a node. Expressions are not
/// descended into (their heights are known); statements of a block
/// expression are, their nesting being bounded by recursion.
struct TallestChild<'h> {
    heights: &'h [u32],
    max: u32,
}

impl Visitor for TallestChild<'_> {
    fn visit_expr(&mut self, expr: &Expr) {
        let height = self.heights.get(expr.id.index()).copied().unwrap_or(0);
        self.max = self.max.max(height);
    }
}

#[cfg(test)]
mod tests;
