//! String literals.
//!
//! A string is `"…"` on one line. Its value is bytes, not UTF-8 text:
//! `"\xff"` is a valid one-byte string. Escapes are C's: `\n \t \r \a \b
//! \f \v \\ \" \' \?`, octal `\N`, `\NN`, `\NNN` (at most `\377`) and hex
//! `\xN`, `\xNN`. A bad escape is reported and lexing goes on, so one typo
//! does not hide the rest of the program's errors.

use super::Lexer;
use crate::diag::Diagnostic;
use crate::token::TokenKind;

impl<'a> Lexer<'a> {
    /// Lexes the string literal whose opening quote is at the cursor.
    pub(super) fn string(&mut self) -> TokenKind {
        let start = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return TokenKind::Str(value);
                }
                None | Some(b'\n') => return self.unterminated(start),
                Some(b'\r') if self.peek_at(1) == Some(b'\n') => return self.unterminated(start),
                Some(b'\\') => self.escape(&mut value),
                Some(b) => {
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// Reports a string cut off by the end of its line. The token becomes an
    /// error token, so the parser does not pile further errors on it.
    fn unterminated(&mut self, start: usize) -> TokenKind {
        self.error_token(
            Diagnostic::error(self.span_from(start), "unterminated string")
                .with_help("close the string with `\"` before the end of the line"),
        )
    }

    /// Decodes the escape sequence at the cursor (a `\`) into `value`.
    fn escape(&mut self, value: &mut Vec<u8>) {
        let start = self.pos;
        self.pos += 1;
        let simple = match self.peek() {
            // The string loop reports the missing closing quote.
            None | Some(b'\n') => return,
            Some(b'n') => b'\n',
            Some(b't') => b'\t',
            Some(b'r') => b'\r',
            Some(b'a') => 0x07,
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'v') => 0x0b,
            Some(b @ (b'\\' | b'"' | b'\'' | b'?')) => b,
            Some(b'0'..=b'7') => {
                let digits = self.digits(3, |b| matches!(b, b'0'..=b'7'));
                match u8::try_from(radix_value(digits, 8)) {
                    Ok(byte) => value.push(byte),
                    Err(_) => self.error(Diagnostic::error(
                        self.span_from(start),
                        format!("octal escape `\\{digits}` is larger than `\\377`"),
                    )),
                }
                return;
            }
            Some(b'x') => {
                self.pos += 1;
                let digits = self.digits(2, |b| b.is_ascii_hexdigit());
                if digits.is_empty() {
                    self.error(
                        Diagnostic::error(
                            self.span_from(start),
                            "`\\x` must be followed by hex digits",
                        )
                        .with_help("write a byte as `\\xNN`, e.g. `\\x41` for 'A'"),
                    );
                } else {
                    // At most two hex digits: always fits in a byte.
                    value.push(radix_value(digits, 16) as u8);
                }
                return;
            }
            Some(_) => {
                let c = self.rest().chars().next().unwrap_or('\\');
                self.pos += c.len_utf8();
                self.error(
                    Diagnostic::error(
                        self.span_from(start),
                        format!("unknown escape sequence `\\{}`", c.escape_debug()),
                    )
                    .with_help(
                        "write the byte as `\\xNN` or `\\NNN` (octal), e.g. `\\033` for ESC",
                    ),
                );
                value.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return;
            }
        };
        self.pos += 1;
        value.push(simple);
    }

    /// Up to `max` bytes satisfying `keep` at the cursor.
    fn digits(&mut self, max: usize, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.pos - start < max && self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }
}

/// The value of at most three validated digits in `radix`.
fn radix_value(digits: &str, radix: u32) -> u32 {
    digits
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .fold(0, |acc, d| acc * radix + d)
}

#[cfg(test)]
mod tests {
    use super::super::tests::lex;
    use crate::token::TokenKind;

    fn value(src: &str) -> (Vec<u8>, Vec<String>) {
        let (kinds, errors) = lex(src);
        match kinds.as_slice() {
            [TokenKind::Str(v)] => (v.clone(), errors),
            other => panic!("not one string: {other:?}"),
        }
    }

    #[test]
    fn escapes_decode_to_bytes() {
        let (v, errors) = value(r#""a\n\t\r\\\"\'\x41\x7\101\0\377\e""#);
        assert_eq!(
            errors,
            vec!["unknown escape sequence `\\e`".to_string()],
            "only \\e is unknown"
        );
        assert_eq!(v, b"a\n\t\r\\\"'A\x07A\0\xffe".to_vec());
        let (v, errors) = value("\"é\"");
        assert!(errors.is_empty());
        assert_eq!(v, "é".as_bytes());
    }

    #[test]
    fn bad_escapes_are_reported() {
        let (_, errors) = value(r#""\400 \xg""#);
        assert_eq!(
            errors,
            vec![
                "octal escape `\\400` is larger than `\\377`",
                "`\\x` must be followed by hex digits"
            ]
        );
    }

    #[test]
    fn strings_end_at_the_line() {
        let (kinds, errors) = lex("\"abc\nx");
        assert_eq!(kinds, vec![TokenKind::Error, TokenKind::Ident("x".into())]);
        assert_eq!(errors, vec!["unterminated string"]);
        let (_, errors) = lex("\"abc\\");
        assert_eq!(errors, vec!["unterminated string"]);
    }
}
