//! printf-style format strings: parsed once, rendered in user space.
//!
//! bpftrace hands its format strings to C's `snprintf`, so the output of
//! `printf("%d", x)` follows C's rules — including that `%d` without a
//! length modifier prints the low 32 bits of the value, `%lu` all 64 and
//! `%hhd` the low 8. [`Format::parse`] checks the string at compile time;
//! [`Format::render`] reproduces C's formatting of the values that come
//! back from the kernel.
//!
//! Supported: flags `-+ #0`, a width, a precision (`%.3s`, `%.5d`),
//! length modifiers `hh h l ll j z t`, and the conversions
//! `d i u x X o c s p %`. A `*` width is rejected, as bpftrace does.
//! bpftrace's own `%r` prints a `buf()` with non-printable bytes as
//! `\xNN`, and `%rx` prints every byte so; they take no flags.

use std::fmt::Write as _;

/// What a conversion expects from its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// An integer: `%d %i %u %x %X %o %c`.
    Int,
    /// A string: `%s`.
    Str,
    /// An integer or a pointer, printed as `0x…`: `%p`.
    Ptr,
    /// A `buf()`: `%r`, `%rx`.
    Buf,
}

/// One `%…` conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// `-`: pad on the right.
    pub left: bool,
    /// `+`: always print a sign.
    pub plus: bool,
    /// ` `: a space where a `+` would go.
    pub space: bool,
    /// `#`: `0x` / leading `0` prefixes.
    pub alt: bool,
    /// `0`: pad numbers with zeros.
    pub zero: bool,
    /// Minimum width.
    pub width: usize,
    /// Precision, if written.
    pub precision: Option<usize>,
    /// Bits of the argument that are printed: 8, 16, 32 or 64.
    pub bits: u32,
    /// The conversion character.
    pub conv: char,
    /// `%rx`: every byte of the buffer as `\xNN`.
    pub hex: bool,
}

impl Spec {
    /// What the argument must be.
    pub fn arg_kind(&self) -> ArgKind {
        match self.conv {
            's' => ArgKind::Str,
            'p' => ArgKind::Ptr,
            'r' => ArgKind::Buf,
            _ => ArgKind::Int,
        }
    }
}

/// A piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text printed as is (`%%` already turned into `%`).
    Text(String),
    /// A conversion that consumes one argument.
    Spec(Spec),
}

/// A parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
}

/// An argument value as it comes back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// An integer's 64 bits.
    Int(u64),
    /// A string's bytes, up to (not including) its NUL.
    Str(Vec<u8>),
    /// A buffer's bytes.
    Buf(Vec<u8>),
}

/// Why a format string was refused; the offset is a byte index into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// Byte offset of the bad conversion in the string.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl Format {
    /// Parses `text` (escapes already decoded).
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            if chars.peek().map(|&(_, c)| c) == Some('%') {
                chars.next();
                literal.push('%');
                continue;
            }
            let error = |message: String| FormatError {
                offset: start,
                message,
            };
            let mut spec = Spec {
                left: false,
                plus: false,
                space: false,
                alt: false,
                zero: false,
                width: 0,
                precision: None,
                bits: 32,
                conv: 'd',
                hex: false,
            };
            while let Some(&(_, f)) = chars.peek() {
                match f {
                    '-' => spec.left = true,
                    '+' => spec.plus = true,
                    ' ' => spec.space = true,
                    '#' => spec.alt = true,
                    '0' => spec.zero = true,
                    _ => break,
                }
                chars.next();
            }
            let number = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
                let mut n: usize = 0;
                while let Some(&(_, d)) = chars.peek() {
                    let Some(digit) = d.to_digit(10) else { break };
                    n = n
                        .saturating_mul(10)
                        .saturating_add(digit as usize)
                        .min(4096);
                    chars.next();
                }
                n
            };
            if chars.peek().map(|&(_, c)| c) == Some('*') {
                return Err(error("a `*` width or precision is not supported".into()));
            }
            spec.width = number(&mut chars);
            if chars.peek().map(|&(_, c)| c) == Some('.') {
                chars.next();
                if chars.peek().map(|&(_, c)| c) == Some('*') {
                    return Err(error("a `*` width or precision is not supported".into()));
                }
                spec.precision = Some(number(&mut chars));
            }
            let mut length = String::new();
            while let Some(&(_, l)) = chars.peek() {
                if !matches!(l, 'h' | 'l' | 'j' | 'z' | 't') || length.len() >= 2 {
                    break;
                }
                length.push(l);
                chars.next();
            }
            spec.bits = match length.as_str() {
                "" => 32,
                "hh" => 8,
                "h" => 16,
                "l" | "ll" | "j" | "z" | "t" => 64,
                other => return Err(error(format!("invalid length modifier `{other}`"))),
            };
            let Some((_, conv)) = chars.next() else {
                return Err(error(
                    "incomplete conversion at the end of the format".into(),
                ));
            };
            if !matches!(
                conv,
                'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c' | 's' | 'p' | 'r'
            ) {
                return Err(error(format!("unsupported conversion `%{conv}`")));
            }
            spec.conv = conv;
            if conv == 'r' {
                let flags = spec.left || spec.plus || spec.space || spec.alt || spec.zero;
                if flags || spec.width != 0 || spec.precision.is_some() || spec.bits != 32 {
                    return Err(error("%r takes no flags, width or length".into()));
                }
                if chars.peek().map(|&(_, c)| c) == Some('x') {
                    chars.next();
                    spec.hex = true;
                }
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Spec(spec));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Format { pieces })
    }

    /// The conversions, in argument order.
    pub fn specs(&self) -> impl Iterator<Item = &Spec> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Spec(spec) => Some(spec),
            Piece::Text(_) => None,
        })
    }

    /// The text with `args` substituted as C's `snprintf` would. Missing
    /// arguments print as 0 or the empty string; a string given to an
    /// integer conversion prints as 0 and vice versa (sema prevents both).
    pub fn render(&self, args: &[Arg]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut args = args.iter();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
                Piece::Spec(spec) => render_one(&mut out, spec, args.next()),
            }
        }
        out
    }
}

/// A buffer as bpftrace prints it: printable ASCII as is, other bytes
/// (all of them when `hex`) as `\xNN`.
pub fn escape_bytes(bytes: &[u8], hex: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if !hex && (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn render_one(out: &mut Vec<u8>, spec: &Spec, arg: Option<&Arg>) {
    let int = match arg {
        Some(Arg::Int(v)) => *v,
        _ => 0,
    };
    match spec.conv {
        'r' => {
            if let Some(Arg::Buf(bytes)) = arg {
                out.extend_from_slice(escape_bytes(bytes, spec.hex).as_bytes());
            }
            return;
        }
        's' => {
            let bytes = match arg {
                Some(Arg::Str(s)) => s.as_slice(),
                _ => &[],
            };
            let end = spec.precision.map_or(bytes.len(), |p| p.min(bytes.len()));
            return pad(out, spec, &[], &bytes[..end], false);
        }
        'c' => return pad(out, spec, &[], &[int as u8], false),
        'p' => {
            let digits = format!("{int:x}");
            return pad(out, spec, b"0x", digits.as_bytes(), false);
        }
        _ => {}
    }
    let masked = if spec.bits == 64 {
        int
    } else {
        int & ((1u64 << spec.bits) - 1)
    };
    let (sign, magnitude): (&[u8], u64) = match spec.conv {
        'd' | 'i' => {
            let shift = 64 - spec.bits;
            let value = ((masked << shift) as i64) >> shift;
            let sign: &[u8] = if value < 0 {
                b"-"
            } else if spec.plus {
                b"+"
            } else if spec.space {
                b" "
            } else {
                b""
            };
            (sign, value.unsigned_abs())
        }
        _ => (b"", masked),
    };
    let mut digits = match spec.conv {
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'o' => format!("{magnitude:o}"),
        _ => magnitude.to_string(),
    };
    if let Some(p) = spec.precision {
        if p == 0 && magnitude == 0 {
            digits.clear();
        } else if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
    }
    let prefix: Vec<u8> = match spec.conv {
        'x' if spec.alt && magnitude != 0 => [sign, b"0x"].concat(),
        'X' if spec.alt && magnitude != 0 => [sign, b"0X"].concat(),
        'o' if spec.alt && !digits.starts_with('0') => {
            digits.insert(0, '0');
            sign.to_vec()
        }
        _ => sign.to_vec(),
    };
    let zero_ok = spec.precision.is_none();
    pad(out, spec, &prefix, digits.as_bytes(), zero_ok);
}

/// Writes `prefix` and `body` padded to the spec's width.
fn pad(out: &mut Vec<u8>, spec: &Spec, prefix: &[u8], body: &[u8], zero_ok: bool) {
    let len = prefix.len() + body.len();
    let fill = spec.width.saturating_sub(len);
    if spec.left {
        out.extend_from_slice(prefix);
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if spec.zero && zero_ok {
        out.extend_from_slice(prefix);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(body);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(prefix);
        out.extend_from_slice(body);
    }
}

/// Describes a format for messages: `"%d %s\n"` as bpftrace quotes it.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(fmt: &str, args: &[Arg]) -> String {
        String::from_utf8(Format::parse(fmt).unwrap().render(args)).unwrap()
    }

    fn int(v: i64) -> Arg {
        Arg::Int(v as u64)
    }

    fn s(v: &str) -> Arg {
        Arg::Str(v.as_bytes().to_vec())
    }

    // Expected strings are what bpftrace 0.17 (C's snprintf) prints.
    #[test]
    fn integers_follow_c_length_rules() {
        assert_eq!(
            render(
                "%d|%u|%lu|%ld|%x|%-5d|%05d|",
                &[
                    int(5_000_000_000),
                    int(-1),
                    int(-1),
                    int(-1),
                    int(-1),
                    int(3),
                    int(42)
                ]
            ),
            "705032704|4294967295|18446744073709551615|-1|ffffffff|3    |00042|"
        );
        assert_eq!(
            render(
                "%X|%o|%+d|%hhd|%hd|%lld|%llu|%i|% d",
                &[
                    int(255),
                    int(8),
                    int(5),
                    int(300),
                    int(70000),
                    int(-1),
                    int(-1),
                    int(9),
                    int(4)
                ]
            ),
            "FF|10|+5|44|4464|-1|18446744073709551615|9| 4"
        );
        assert_eq!(
            render(
                "%#x %#o %.3d %8.3d|%-+6d|",
                &[int(255), int(8), int(7), int(-7), int(7)]
            ),
            "0xff 010 007     -007|+7    |"
        );
    }

    #[test]
    fn buffers_escape_or_hex_every_byte() {
        let f = Format::parse("%r|%rx|").unwrap();
        let kinds: Vec<ArgKind> = f.specs().map(Spec::arg_kind).collect();
        assert_eq!(kinds, [ArgKind::Buf, ArgKind::Buf]);
        let buf = Arg::Buf(b"a\n\xff~".to_vec());
        assert_eq!(
            f.render(&[buf.clone(), buf]),
            b"a\\x0a\\xff~|\\x61\\x0a\\xff\\x7e|"
        );
        assert!(Format::parse("%-r").is_err());
        assert!(Format::parse("%lr").is_err());
    }

    #[test]
    fn strings_chars_pointers_and_percent() {
        assert_eq!(
            render(
                "%s|%5s|%-5s|%.2s|%c%c|%p|100%%",
                &[
                    s("str"),
                    s("ab"),
                    s("ab"),
                    s("abcdef"),
                    int(72),
                    int(105),
                    int(4096)
                ]
            ),
            "str|   ab|ab   |ab|Hi|0x1000|100%"
        );
        assert_eq!(render("%d %s", &[]), "0 ");
    }

    #[test]
    fn parse_errors_point_at_the_conversion() {
        let e = Format::parse("ok %*d").unwrap_err();
        assert_eq!(e.offset, 3);
        let e = Format::parse("%d %q").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (3, "unsupported conversion `%q`")
        );
        assert!(Format::parse("50%").is_err());
        assert!(Format::parse("%lll").is_err());
        let f = Format::parse("%s=%lu\n").unwrap();
        let kinds: Vec<ArgKind> = f.specs().map(Spec::arg_kind).collect();
        assert_eq!(kinds, [ArgKind::Str, ArgKind::Int]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
