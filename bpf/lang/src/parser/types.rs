//! Written types, and telling a cast from a parenthesized expression.
//!
//! `(x) - 1` could be a cast of `-1` to type `x` or a subtraction; C
//! resolves this with a symbol table, which a parser does not have. The rule
//! here: `(struct …)`, `(T *)` and `(T[N])` are always casts, as are
//! language type names (`uint64`, `string`, …) and names ending in `_t`
//! (`(pid_t)-1`). Any other `(name)` is a cast only when what follows can
//! only start an operand — `(foo)$x` is a cast, `(foo) - 1` a subtraction.

use super::{PResult, Parser, MAX_DEPTH};
use crate::ast::{RecordKind, TypeExpr, TypeKind};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::token::{Keyword, Punct, TokenKind};

/// Type names the language defines; kernel typedefs come from BTF later.
const TYPE_NAMES: [&str; 14] = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "string",
    "inet",
    "buffer",
    "void",
    "timestamp",
];

/// Whether `name` is taken to be a type wherever one may appear.
fn is_type_name(name: &str) -> bool {
    TYPE_NAMES.contains(&name) || name.ends_with("_t")
}

impl Parser<'_> {
    /// Whether the `(` at the cursor starts a cast.
    pub(super) fn cast_ahead(&mut self) -> bool {
        let Some((end, certain)) = self.scan_type(1) else {
            return false;
        };
        if !self.at_nth(end, Punct::RParen) {
            return false;
        }
        certain
            || matches!(
                self.peek_nth(end + 1).kind,
                TokenKind::Int(_)
                    | TokenKind::Str(_)
                    | TokenKind::Var(_)
                    | TokenKind::Map(_)
                    | TokenKind::Param(_)
                    | TokenKind::ParamCount
                    | TokenKind::Ident(_)
                    | TokenKind::Keyword(
                        Keyword::Sizeof | Keyword::Offsetof | Keyword::True | Keyword::False
                    )
                    | TokenKind::Punct(Punct::LParen | Punct::Bang | Punct::Tilde)
            )
    }

    /// Whether the tokens from lookahead index `start` certainly form a
    /// type followed by `end` (for `sizeof(…)` and `offsetof(…, …)`).
    pub(super) fn type_ahead(&mut self, start: usize, end: Punct) -> bool {
        match self.scan_type(start) {
            Some((after, true)) => self.at_nth(after, end),
            _ => false,
        }
    }

    /// If a type could start at lookahead index `start`, the index just
    /// past it and whether it is certainly a type (rather than perhaps a
    /// parenthesized name).
    fn scan_type(&mut self, start: usize) -> Option<(usize, bool)> {
        let (mut at, mut certain) = match &self.peek_nth(start).kind {
            TokenKind::Keyword(Keyword::Struct | Keyword::Union | Keyword::Enum) => {
                if !matches!(self.peek_nth(start + 1).kind, TokenKind::Ident(_)) {
                    return None;
                }
                (start + 2, true)
            }
            TokenKind::Ident(name) => (start + 1, is_type_name(name)),
            _ => return None,
        };
        if certain && self.at_nth(at, Punct::LBracket) {
            at += 1;
            if matches!(self.peek_nth(at).kind, TokenKind::Int(_)) {
                at += 1;
            }
            if !self.at_nth(at, Punct::RBracket) {
                return None;
            }
            at += 1;
        }
        while self.at_nth(at, Punct::Star) {
            at += 1;
            certain = true;
        }
        Some((at, certain))
    }

    /// A type: `name`, `struct name`, then an optional `[N]` and any `*`s.
    pub(super) fn type_expr(&mut self) -> PResult<TypeExpr> {
        let start = self.peek().span;
        let kind = match self.peek().kind {
            TokenKind::Keyword(keyword @ (Keyword::Struct | Keyword::Union | Keyword::Enum)) => {
                self.bump();
                let kind = match keyword {
                    Keyword::Union => RecordKind::Union,
                    Keyword::Enum => RecordKind::Enum,
                    _ => RecordKind::Struct,
                };
                let what = format!("a name after `{}`", kind.as_str());
                let name = self.name(&what)?.name;
                TypeKind::Record { kind, name }
            }
            TokenKind::Ident(_) => TypeKind::Named(self.bump_name().name),
            _ => return Err(self.expected("a type")),
        };
        let mut ty = TypeExpr {
            kind,
            span: start.to(Span::empty(self.prev_end)),
        };
        if self.eat(Punct::LBracket).is_some() {
            let len = match self.peek().kind {
                TokenKind::Int(len) => {
                    self.bump();
                    Some(len)
                }
                _ => None,
            };
            let close = self.expect(Punct::RBracket)?;
            ty = TypeExpr {
                span: start.to(close),
                kind: TypeKind::Array {
                    elem: Box::new(ty),
                    len,
                },
            };
        }
        let mut stars = 0;
        while let Some(star) = self.eat(Punct::Star) {
            stars += 1;
            if stars > MAX_DEPTH {
                return Err(self.report(Diagnostic::error(star, "too many `*` in a pointer type")));
            }
            ty = TypeExpr {
                span: start.to(star),
                kind: TypeKind::Pointer(Box::new(ty)),
            };
        }
        ty.span = ty.span.to(Span::empty(self.prev_end));
        Ok(ty)
    }
}
