//! Integer literals.
//!
//! bpftrace has no floating point, so every number is an unsigned 64-bit
//! integer (a leading `-` is a unary operator). Accepted forms:
//!
//! - decimal `1234`, with `_` separators `1_000_000`;
//! - octal with a leading zero `0755`, hexadecimal `0x1F` / `0X1f`;
//! - scientific notation, integers only: `2e3` is 2000, `1e-3` is invalid;
//! - C suffixes `u`, `l`, `ll`, `ul`, `ull` (any case), accepted and ignored;
//! - duration suffixes `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, converted to
//!   nanoseconds: `1ms` is 1000000.

use super::Lexer;
use crate::diag::Diagnostic;
use crate::token::TokenKind;

/// Duration suffixes and their value in nanoseconds.
const DURATIONS: [(&str, u64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

/// C integer suffixes, compared case-insensitively; they do not change the value.
const C_SUFFIXES: [&str; 7] = ["u", "l", "ll", "ul", "lu", "ull", "llu"];

const SUFFIX_HELP: &str = "integer suffixes are the durations `ns`, `us`, `ms`, `s`, `m`, `h`, \
                           `d` and C's `u`, `l`, `ll`, `ul`, `ull`";

impl Lexer<'_> {
    /// Lexes the alphanumeric run at the cursor as an integer literal.
    pub(super) fn number(&mut self) -> TokenKind {
        let start = self.pos;
        self.eat_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        let text = &self.src[start..self.pos];
        match parse(text) {
            Ok(value) => TokenKind::Int(value),
            Err((message, help)) => {
                let mut diagnostic = Diagnostic::error(self.span_from(start), message);
                if let Some(help) = help {
                    diagnostic = diagnostic.with_help(help);
                }
                self.error_token(diagnostic)
            }
        }
    }
}

/// An error message and optional help for a malformed literal.
type LiteralError = (String, Option<&'static str>);

/// The value of an integer literal such as `0x10`, `1_000`, `2e3` or `5ms`.
fn parse(text: &str) -> Result<u64, LiteralError> {
    let too_large = || {
        (
            format!("integer literal `{text}` does not fit in 64 bits"),
            None,
        )
    };

    if let Some(body) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        let (digits, suffix) = split(body, |c| c.is_ascii_hexdigit() || c == '_');
        if digits.bytes().all(|b| b == b'_') {
            return Err(("hexadecimal literal has no digits".to_string(), None));
        }
        check_separators(digits)?;
        let value = fold(digits, 16).ok_or_else(too_large)?;
        return match suffix {
            "" => Ok(value),
            s if is_c_suffix(s) => Ok(value),
            s => Err(bad_suffix(s)),
        };
    }

    let (mantissa, rest) = split(text, |c| c.is_ascii_digit() || c == '_');
    check_separators(mantissa)?;
    let (exponent, suffix) = match rest.strip_prefix('e') {
        Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => {
            split(after, |c| c.is_ascii_digit() || c == '_')
        }
        _ => ("", rest),
    };
    check_separators(exponent)?;

    let octal = exponent.is_empty() && mantissa.len() > 1 && mantissa.starts_with('0');
    let mut value = if octal {
        if let Some(bad) = mantissa.chars().find(|c| matches!(c, '8' | '9')) {
            return Err((
                format!("invalid digit `{bad}` in octal literal `{text}`"),
                Some("a leading `0` makes a literal octal; remove it for a decimal number"),
            ));
        }
        fold(mantissa, 8)
    } else {
        fold(mantissa, 10)
    }
    .ok_or_else(too_large)?;

    if !exponent.is_empty() {
        let power = fold(exponent, 10)
            .and_then(|e| u32::try_from(e).ok())
            .and_then(|e| 10u64.checked_pow(e))
            .ok_or_else(too_large)?;
        value = value.checked_mul(power).ok_or_else(too_large)?;
    }

    if suffix.is_empty() || is_c_suffix(suffix) {
        return Ok(value);
    }
    match DURATIONS.iter().find(|(name, _)| *name == suffix) {
        Some(&(_, ns)) => value.checked_mul(ns).ok_or_else(too_large),
        None => Err(bad_suffix(suffix)),
    }
}

/// Splits `text` after its longest prefix of characters satisfying `keep`.
fn split(text: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(|c: char| !keep(c)).unwrap_or(text.len()))
}

fn check_separators(digits: &str) -> Result<(), LiteralError> {
    if digits.ends_with('_') {
        Err((
            "an integer literal cannot end with `_`".to_string(),
            Some("`_` may only separate digits, as in `1_000`"),
        ))
    } else {
        Ok(())
    }
}

/// The value of `digits` (with `_` separators) in `radix`, unless it overflows.
fn fold(digits: &str, radix: u32) -> Option<u64> {
    digits
        .chars()
        .filter(|&c| c != '_')
        .try_fold(0u64, |acc, c| {
            acc.checked_mul(u64::from(radix))?
                .checked_add(u64::from(c.to_digit(radix)?))
        })
}

fn is_c_suffix(suffix: &str) -> bool {
    C_SUFFIXES.iter().any(|s| s.eq_ignore_ascii_case(suffix))
}

fn bad_suffix(suffix: &str) -> LiteralError {
    (
        format!("invalid suffix `{suffix}` on integer literal"),
        Some(SUFFIX_HELP),
    )
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepted_forms() {
        for (text, value) in [
            ("0", 0),
            ("42", 42),
            ("1_000_000", 1_000_000),
            ("0x10", 16),
            ("0XfF", 255),
            ("0xdead_beef", 0xdead_beef),
            ("0755", 0o755),
            ("00", 0),
            ("2e3", 2000),
            ("1e6", 1_000_000),
            ("123UL", 123),
            ("123u", 123),
            ("123LL", 123),
            ("0x10ull", 16),
            ("100ns", 100),
            ("10us", 10_000),
            ("1ms", 1_000_000),
            ("1s", 1_000_000_000),
            ("1m", 60_000_000_000),
            ("2h", 7_200_000_000_000),
            ("1d", 86_400_000_000_000),
            ("18446744073709551615", u64::MAX),
            ("0xffffffffffffffff", u64::MAX),
        ] {
            assert_eq!(parse(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn rejected_forms() {
        for (text, message) in [
            (
                "18446744073709551616",
                "integer literal `18446744073709551616` does not fit in 64 bits",
            ),
            (
                "0x1_0000_0000_0000_0000",
                "integer literal `0x1_0000_0000_0000_0000` does not fit in 64 bits",
            ),
            ("1e20", "integer literal `1e20` does not fit in 64 bits"),
            (
                "1e99999999999",
                "integer literal `1e99999999999` does not fit in 64 bits",
            ),
            (
                "20000000000d",
                "integer literal `20000000000d` does not fit in 64 bits",
            ),
            ("0x", "hexadecimal literal has no digits"),
            ("0xg", "hexadecimal literal has no digits"),
            ("09", "invalid digit `9` in octal literal `09`"),
            ("1_", "an integer literal cannot end with `_`"),
            ("1abc", "invalid suffix `abc` on integer literal"),
            ("1e", "invalid suffix `e` on integer literal"),
            ("1MS", "invalid suffix `MS` on integer literal"),
            ("0x10ms", "invalid suffix `ms` on integer literal"),
        ] {
            assert_eq!(
                parse(text).map_err(|e| e.0),
                Err(message.to_string()),
                "{text}"
            );
        }
    }
}
