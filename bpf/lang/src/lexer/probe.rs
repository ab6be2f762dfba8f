//! Raw scanning modes: probe specs and C declaration bodies.
//!
//! A probe spec is scanned as text, not tokens: it runs until whitespace or
//! one of `, { } ; ( )`, and is split into parts at each `:`. Inside it:
//!
//! - `"…"` quotes a part, so `uprobe:./app:"ns::f(int, char)"` keeps its
//!   colons, commas and spaces; `\` escapes the next character;
//! - `/` is part of a path when the path characters after it reach another
//!   `:` (`uprobe:/bin/bash:readline`); otherwise it starts the predicate
//!   (`kprobe:f/pid == 1/`), as do `//` and `/*` start a comment.
//!
//! What each part means depends on the provider and is decided after
//! parsing; here they are only located.

use super::Lexer;
use crate::diag::Diagnostic;
use crate::span::Span;

/// One probe spec as written: its whole span and the spans of its
/// `:`-separated parts, the provider first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawSpec {
    pub span: Span,
    pub parts: Vec<Span>,
}

impl Lexer<'_> {
    /// Scans the probe spec at the cursor, or returns `None` if none starts here.
    pub fn probe_spec(&mut self) -> Option<RawSpec> {
        self.skip_trivia();
        let start = self.pos;
        let mut parts = Vec::new();
        let mut part_start = start;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => break,
                b',' | b'{' | b'}' | b';' | b'(' | b')' => break,
                b'/' if matches!(self.peek_at(1), Some(b'/' | b'*')) => break,
                b'/' if !self.slash_continues_path() => break,
                b':' => {
                    parts.push(self.span_from(part_start));
                    self.pos += 1;
                    part_start = self.pos;
                }
                b'"' => self.quoted_part(),
                b'\\' => {
                    self.pos += 1;
                    self.skip_char();
                }
                _ => self.skip_char(),
            }
        }
        if self.pos == start {
            return None;
        }
        parts.push(self.span_from(part_start));
        Some(RawSpec {
            span: self.span_from(start),
            parts,
        })
    }

    /// Whether the `/` at the cursor belongs to a path: path characters
    /// lead from it to a `:`.
    fn slash_continues_path(&self) -> bool {
        let mut rest = self.src.as_bytes()[self.pos..].iter();
        while let Some(&b) = rest.next() {
            match b {
                b':' => return true,
                b'\\' => {
                    rest.next();
                }
                _ if b.is_ascii_alphanumeric() || b"_-./+*?[]~@$".contains(&b) => {}
                _ => return false,
            }
        }
        false
    }

    /// Skips a `"…"` part of a probe spec; it may not span lines.
    fn quoted_part(&mut self) {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return;
                }
                Some(b'\\') if self.peek_at(1).is_some_and(|b| b != b'\n') => {
                    self.pos += 1;
                    self.skip_char();
                }
                None | Some(b'\n') => {
                    self.error(
                        Diagnostic::error(self.span_from(start), "unterminated string in probe")
                            .with_help("close the quoted part with `\"`"),
                    );
                    return;
                }
                Some(_) => self.skip_char(),
            }
        }
    }

    /// Scans a brace-balanced C body starting at the cursor's `{`, skipping
    /// comments and quoted literals. Returns its span, or `None` — with the
    /// cursor at the end — if it is never closed.
    pub fn c_body(&mut self) -> Option<Span> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        return Some(self.span_from(start));
                    }
                }
                b'/' if matches!(self.peek_at(1), Some(b'/' | b'*')) => {
                    self.skip_trivia();
                    continue;
                }
                b'"' | b'\'' => {
                    self.c_literal(b);
                    continue;
                }
                _ => {}
            }
            self.skip_char();
        }
        None
    }

    /// Skips a C string or character literal, stopping at the end of the line.
    fn c_literal(&mut self, quote: u8) {
        self.pos += 1;
        while let Some(b) = self.peek() {
            match b {
                b'\n' => return,
                b'\\' => self.pos += 1,
                _ if b == quote => {
                    self.pos += 1;
                    return;
                }
                _ => {}
            }
            self.skip_char();
        }
    }

    /// Moves past one character (not byte), if there is one.
    fn skip_char(&mut self) {
        self.pos += self.rest().chars().next().map_or(0, char::len_utf8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's text and its parts' texts, then what the lexer sees next.
    fn spec(src: &str) -> (Vec<&str>, String) {
        let mut lexer = Lexer::new(src);
        let raw = lexer.probe_spec().expect("a spec");
        assert_eq!(raw.span.start as usize, src.len() - src.trim_start().len());
        let parts = raw.parts.iter().map(|&p| &src[p.range()]).collect();
        let next = format!("{}", lexer.next_token().kind);
        assert!(lexer.into_errors().is_empty());
        (parts, next)
    }

    #[test]
    fn specs_split_at_colons() {
        for (src, parts, next) in [
            ("BEGIN {", vec!["BEGIN"], "`{`"),
            (
                "tracepoint:syscalls:sys_enter_* {",
                vec!["tracepoint", "syscalls", "sys_enter_*"],
                "`{`",
            ),
            (
                "uprobe:/bin/bash:readline{",
                vec!["uprobe", "/bin/bash", "readline"],
                "`{`",
            ),
            (
                "uprobe:/lib/x86_64-linux-gnu/libc.so.6:malloc+0x10 /",
                vec!["uprobe", "/lib/x86_64-linux-gnu/libc.so.6", "malloc+0x10"],
                "`/`",
            ),
            (
                "usdt:./app:prov:probe,",
                vec!["usdt", "./app", "prov", "probe"],
                "`,`",
            ),
            (
                "usdt:/a:[ns]:p?",
                vec!["usdt", "/a", "[ns]", "p?"],
                "end of file",
            ),
            (
                "software:cpu-clock:100000",
                vec!["software", "cpu-clock", "100000"],
                "end of file",
            ),
            (
                "watchpoint:0x1234:8:rw\n{",
                vec!["watchpoint", "0x1234", "8", "rw"],
                "`{`",
            ),
            ("interval:1s//c\n{", vec!["interval", "1s"], "`{`"),
            ("  \n  i:ms:100/*c*/{", vec!["i", "ms", "100"], "`{`"),
            ("kprobe:f/pid == 1/{", vec!["kprobe", "f"], "`/`"),
            ("kprobe:f/arg0/{", vec!["kprobe", "f"], "`/`"),
            (
                r#"uprobe:./a:"ns::f(int, char)" {"#,
                vec!["uprobe", "./a", r#""ns::f(int, char)""#],
                "`{`",
            ),
            (
                r"uprobe:/x\:y:f",
                vec!["uprobe", r"/x\:y", "f"],
                "end of file",
            ),
            ("kprobe:", vec!["kprobe", ""], "end of file"),
        ] {
            let (got, got_next) = spec(src);
            assert_eq!(got, parts, "{src}");
            assert_eq!(got_next, next, "{src}");
        }
    }

    #[test]
    fn no_spec_before_a_brace() {
        let mut lexer = Lexer::new("  { }");
        assert_eq!(lexer.probe_spec(), None);
    }

    #[test]
    fn unterminated_quote_in_a_spec() {
        let mut lexer = Lexer::new("uprobe:a:\"f\n{");
        let raw = lexer.probe_spec().expect("a spec");
        assert_eq!(raw.parts.len(), 3);
        let errors = lexer.into_errors();
        assert_eq!(errors[0].message, "unterminated string in probe");
    }

    #[test]
    fn c_bodies_balance_braces_and_skip_literals() {
        let src = "{ int a; struct { char c; } s; /* } */ char *p = \"}\"; char q = '}'; } tail";
        let mut lexer = Lexer::new(src);
        let span = lexer.c_body().expect("closed");
        assert_eq!(&src[span.range()], &src[..src.len() - 5]);
        let mut lexer = Lexer::new("{ int a; { }");
        assert_eq!(lexer.c_body(), None);
    }
}
