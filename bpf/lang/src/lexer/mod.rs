//! The lexer: program text to tokens, on demand.
//!
//! bpftrace's text is two languages interleaved. Inside action blocks,
//! predicates, config blocks and macros it is C-like code; at the top level
//! it is probe specs such as `uprobe:/lib/libc.so.6:malloc+0x10`, where `/`,
//! `.`, `-`, `+`, `*` and `:` are ordinary characters. No single token set
//! covers both, so the lexer has modes and the parser picks one per call:
//!
//! - [`Lexer::next_token`] lexes code,
//! - [`Lexer::probe_spec`] scans one probe spec as raw text split at `:`,
//! - [`Lexer::c_body`] skips a brace-balanced C declaration body.
//!
//! Because a token lexed in the wrong mode must be taken back, the lexer is
//! a cursor that the parser can [`reset`](Lexer::reset); errors found past
//! the new position are dropped with it and found again on the way forward.
//! Errors are collected, never fatal: a bad token becomes
//! [`TokenKind::Error`] and lexing continues.

mod number;
mod probe;
mod string;

pub(crate) use probe::RawSpec;

use crate::diag::Diagnostic;
use crate::span::{offset_u32, Span};
use crate::token::{Keyword, Punct, Token, TokenKind};

/// A cursor over the program text producing tokens and lexical errors.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    errors: Vec<Diagnostic>,
    /// Start of an unterminated block comment that swallowed the rest.
    open_comment: Option<usize>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            errors: Vec::new(),
            open_comment: None,
        }
    }

    /// Moves the cursor to `pos`, forgetting errors found from there on.
    pub fn reset(&mut self, pos: u32) {
        self.pos = (pos as usize).min(self.src.len());
        self.errors.retain(|e| (e.span.start as usize) < self.pos);
        self.open_comment = self.open_comment.filter(|&start| start < self.pos);
    }

    /// Number of lexical errors found so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Whether the text ends early because a block comment is never closed;
    /// "found end of file" is then no news.
    pub fn ends_in_comment(&self) -> bool {
        self.open_comment.is_some()
    }

    /// The lexical errors found so far.
    pub fn into_errors(self) -> Vec<Diagnostic> {
        self.errors
    }

    /// The next code token; [`TokenKind::Eof`] at the end, forever.
    pub fn next_token(&mut self) -> Token {
        self.skip_trivia();
        let start = self.pos;
        let Some(b) = self.peek() else {
            return Token {
                kind: TokenKind::Eof,
                span: self.span_from(start),
            };
        };
        let kind = match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let word = self.ident();
                Keyword::from_word(word)
                    .map_or_else(|| TokenKind::Ident(word.to_string()), TokenKind::Keyword)
            }
            b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b'$' => self.dollar(),
            b'@' => {
                self.pos += 1;
                TokenKind::Map(self.ident().to_string())
            }
            b'#' => self.preproc(),
            _ => self.punct(),
        };
        Token {
            kind,
            span: self.span_from(start),
        }
    }

    /// Skips whitespace, comments and a `#!` line at the very start.
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c), _) => self.pos += 1,
                (Some(b'/'), Some(b'/')) => self.skip_line(),
                (Some(b'#'), Some(b'!')) if self.pos == 0 => self.skip_line(),
                (Some(b'/'), Some(b'*')) => {
                    let start = self.pos;
                    match self.rest()[2..].find("*/") {
                        Some(end) => self.pos += 2 + end + 2,
                        None => {
                            self.pos = self.src.len();
                            self.open_comment = Some(start);
                            self.error(
                                Diagnostic::error(
                                    Span::new(offset_u32(start), offset_u32(start + 2)),
                                    "unterminated block comment",
                                )
                                .with_help("close the comment with `*/`"),
                            );
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Moves to the end of the line, leaving the newline.
    fn skip_line(&mut self) {
        self.pos = self
            .rest()
            .find('\n')
            .map_or(self.src.len(), |n| self.pos + n);
    }

    /// `[_a-zA-Z][_a-zA-Z0-9]*` at the cursor, or `""`.
    fn ident(&mut self) -> &'a str {
        let start = self.pos;
        if matches!(self.peek(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_')) {
            self.eat_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        }
        &self.src[start..self.pos]
    }

    /// `$name`, `$N` or `$#`.
    fn dollar(&mut self) -> TokenKind {
        let start = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'#') => {
                self.pos += 1;
                TokenKind::ParamCount
            }
            Some(b'0'..=b'9') => {
                self.eat_while(|b| b.is_ascii_digit());
                let digits = &self.src[start + 1..self.pos];
                match digits.parse::<u64>() {
                    Ok(0) => self.error_token(
                        Diagnostic::error(
                            self.span_from(start),
                            "there is no positional parameter `$0`",
                        )
                        .with_help("positional parameters start at `$1`; `$#` is their count"),
                    ),
                    Ok(n) => TokenKind::Param(n),
                    Err(_) => self.error_token(Diagnostic::error(
                        self.span_from(start),
                        "positional parameter number is too large",
                    )),
                }
            }
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') => TokenKind::Var(self.ident().to_string()),
            _ => self.error_token(
                Diagnostic::error(self.span_from(start), "expected a variable name after `$`")
                    .with_help("variables look like `$name`, positional parameters like `$1`"),
            ),
        }
    }

    /// A `#` line, with `\`-continued lines, as one token.
    fn preproc(&mut self) -> TokenKind {
        let start = self.pos;
        loop {
            self.skip_line();
            let line = self.src[start..self.pos].trim_end_matches('\r');
            if !line.ends_with('\\') || self.pos == self.src.len() {
                break;
            }
            self.pos += 1;
        }
        TokenKind::Preproc(self.src[start..self.pos].trim_end().to_string())
    }

    /// An operator or punctuation; anything else is an invalid character.
    fn punct(&mut self) -> TokenKind {
        let rest = self.rest();
        if let Some(p) = Punct::BY_LENGTH
            .into_iter()
            .find(|p| rest.starts_with(p.as_str()))
        {
            self.pos += p.as_str().len();
            return TokenKind::Punct(p);
        }
        let start = self.pos;
        let c = rest.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
        if c == '\'' {
            return self.char_literal();
        }
        self.pos += c.len_utf8().min(rest.len()).max(1);
        self.error_token(Diagnostic::error(
            self.span_from(start),
            format!("unexpected character {c:?}"),
        ))
    }

    /// A C character literal such as `'a'`, which bpftrace does not have.
    fn char_literal(&mut self) -> TokenKind {
        let start = self.pos;
        let line = self.rest().split('\n').next().unwrap_or("");
        // Through the closing quote if there is one on this line, else the quote alone.
        self.pos += line[1..].find('\'').map_or(1, |end| end + 2);
        self.error_token(
            Diagnostic::error(
                self.span_from(start),
                "character literals are not supported",
            )
            .with_help("write the character's code instead, e.g. 65 for 'A'"),
        )
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.errors.push(diagnostic);
    }

    /// Records `diagnostic` and yields the token that stands for it.
    fn error_token(&mut self, diagnostic: Diagnostic) -> TokenKind {
        self.error(diagnostic);
        TokenKind::Error
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.src.as_bytes().get(self.pos + n).copied()
    }

    fn eat_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
    }

    fn span_from(&self, start: usize) -> Span {
        Span::new(offset_u32(start), offset_u32(self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn lex(src: &str) -> (Vec<TokenKind>, Vec<String>) {
        let mut lexer = Lexer::new(src);
        let mut kinds = Vec::new();
        loop {
            let t = lexer.next_token();
            if t.kind == TokenKind::Eof {
                break;
            }
            kinds.push(t.kind);
        }
        let errors = lexer.into_errors().into_iter().map(|e| e.message).collect();
        (kinds, errors)
    }

    fn p(p: Punct) -> TokenKind {
        TokenKind::Punct(p)
    }

    #[test]
    fn words_variables_maps_and_params() {
        let (kinds, errors) = lex("if pid $x @m @ $1 $# let _a1");
        assert!(errors.is_empty());
        assert_eq!(
            kinds,
            vec![
                TokenKind::Keyword(Keyword::If),
                TokenKind::Ident("pid".into()),
                TokenKind::Var("x".into()),
                TokenKind::Map("m".into()),
                TokenKind::Map(String::new()),
                TokenKind::Param(1),
                TokenKind::ParamCount,
                TokenKind::Keyword(Keyword::Let),
                TokenKind::Ident("_a1".into()),
            ]
        );
    }

    #[test]
    fn operators_take_the_longest_match() {
        let (kinds, _) = lex("<<= >>= << <= < -> -- - ++ .. . != !");
        use Punct::*;
        let expected = [
            ShlEq, ShrEq, Shl, Le, Lt, Arrow, MinusMinus, Minus, PlusPlus, DotDot, Dot, Ne, Bang,
        ];
        assert_eq!(kinds, expected.map(p).to_vec());
    }

    #[test]
    fn ranges_and_tuple_indices_are_not_numbers_with_dots() {
        let (kinds, _) = lex("0..10 $t.0.1");
        assert_eq!(
            kinds,
            vec![
                TokenKind::Int(0),
                p(Punct::DotDot),
                TokenKind::Int(10),
                TokenKind::Var("t".into()),
                p(Punct::Dot),
                TokenKind::Int(0),
                p(Punct::Dot),
                TokenKind::Int(1),
            ]
        );
    }

    #[test]
    fn comments_and_shebang_are_skipped() {
        let (kinds, errors) = lex("#!/usr/bin/env bpftrace\n// a\n/* b\n c */ x // y");
        assert!(errors.is_empty());
        assert_eq!(kinds, vec![TokenKind::Ident("x".into())]);
        let (_, errors) = lex("x /* never closed");
        assert_eq!(errors, vec!["unterminated block comment"]);
    }

    #[test]
    fn preprocessor_lines_keep_continuations() {
        let (kinds, _) = lex("#include <linux/sched.h>\n#define A \\\n  1\nx");
        assert_eq!(
            kinds,
            vec![
                TokenKind::Preproc("#include <linux/sched.h>".into()),
                TokenKind::Preproc("#define A \\\n  1".into()),
                TokenKind::Ident("x".into()),
            ]
        );
    }

    #[test]
    fn bad_dollars_and_characters_are_errors() {
        let (kinds, errors) = lex("$0 $ ` é 'a' '");
        assert_eq!(kinds, vec![TokenKind::Error; 6]);
        assert_eq!(
            errors,
            vec![
                "there is no positional parameter `$0`",
                "expected a variable name after `$`",
                "unexpected character '`'",
                "unexpected character 'é'",
                "character literals are not supported",
                "character literals are not supported",
            ]
        );
    }

    #[test]
    fn reset_forgets_errors_past_the_new_position() {
        let mut lexer = Lexer::new("a ` b");
        lexer.next_token();
        lexer.next_token();
        lexer.reset(2);
        assert_eq!(lexer.errors.len(), 0);
        assert_eq!(lexer.next_token().kind, TokenKind::Error);
        assert_eq!(lexer.into_errors().len(), 1);
    }
}
