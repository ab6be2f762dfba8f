//! The script's own `struct`, `union` and `enum` definitions, laid out as
//! a C compiler lays them out on 64-bit Linux: members at their natural
//! alignment, bitfields packed into units of their type unless they would
//! cross one, records padded to their largest alignment.

use super::{CTypeId, CTypes, Made, Member, Shape};
use crate::ast::{CDecl, RecordKind};
use crate::diag::Diagnostic;
use crate::sema::types::IntType;

impl CTypes<'_> {
    /// Declares the script's `struct`, `union` or `enum` `decl`.
    pub fn declare(&mut self, decl: &CDecl) -> Result<(), Diagnostic> {
        let Some(body) = &decl.body else {
            return Ok(());
        };
        let tokens = tokenize(body).map_err(|what| Diagnostic::error(decl.span, what))?;
        let mut p = DeclParser {
            tokens: &tokens,
            at: 0,
        };
        let fail = |what: String| Diagnostic::error(decl.span, what);
        if decl.kind == RecordKind::Enum {
            for (name, value) in p.enum_body().map_err(fail)? {
                self.script_enums.insert(name, value);
            }
            return Ok(());
        }
        let name = decl.name.as_ref().map_or("", |n| n.name.as_str());
        let id = self.record_body(&mut p, decl.kind, name, 0).map_err(fail)?;
        if !name.is_empty() {
            self.records
                .insert(format!("{} {name}", decl.kind.as_str()), id);
        }
        Ok(())
    }

    /// Lays out the record whose `{ … }` is next in `p`.
    fn record_body(
        &mut self,
        p: &mut DeclParser,
        kind: RecordKind,
        name: &str,
        depth: u32,
    ) -> Result<CTypeId, String> {
        if depth > 8 {
            return Err("struct definitions are nested too deeply".into());
        }
        p.expect("{")?;
        let union = kind == RecordKind::Union;
        let mut members = Vec::new();
        let (mut bits, mut size, mut align) = (0u32, 0u32, 1u32);
        while !p.eat("}") {
            let base = self.specifier(p, depth)?;
            loop {
                let (ty, member, width) = self.declarator(p, base)?;
                let msize = self.size_of(ty).ok_or_else(|| {
                    format!("member `{}` has no size", member.as_deref().unwrap_or("?"))
                })?;
                let malign = self.align_of(ty, 0).max(1);
                let offset_bits = match (union, width) {
                    (true, _) => 0,
                    (false, Some(w)) => {
                        // A bitfield starts a new unit when it would cross
                        // its type's alignment boundary.
                        let unit = malign * 8;
                        if bits / unit != (bits + w.max(1) - 1) / unit || w == 0 {
                            bits = bits.div_ceil(unit) * unit;
                        }
                        bits
                    }
                    (false, None) => bits.div_ceil(malign * 8) * malign * 8,
                };
                let width_bits = width.unwrap_or(msize * 8);
                align = align.max(malign);
                if union {
                    size = size.max(msize);
                } else {
                    bits = offset_bits + width_bits;
                }
                match member {
                    Some(m) => members.push(Member {
                        name: m,
                        offset_bits,
                        bitfield_bits: width.unwrap_or(0),
                        ty,
                    }),
                    None => {
                        for mut inner in self.members(ty) {
                            inner.offset_bits += offset_bits;
                            members.push(inner);
                        }
                    }
                }
                if !p.eat(",") {
                    break;
                }
            }
            p.expect(";")?;
        }
        if !union {
            size = bits.div_ceil(8);
        }
        size = size.div_ceil(align) * align;
        let full = if name.is_empty() {
            format!("{} (anonymous)", kind.as_str())
        } else {
            format!("{} {name}", kind.as_str())
        };
        // A new definition, even if an identical one exists.
        let mut made = self.made.borrow_mut();
        made.push(Made::Record {
            name: full,
            size,
            align,
            members,
        });
        Ok(CTypeId::Script(made.len() as u32 - 1))
    }

    /// A type specifier: `struct x`, `unsigned long`, `u32`, `struct { … }`.
    fn specifier(&mut self, p: &mut DeclParser, depth: u32) -> Result<CTypeId, String> {
        while p.eat("const") || p.eat("volatile") {}
        let Some(word) = p.next() else {
            return Err("expected a member type".into());
        };
        let kind = match word.as_str() {
            "struct" => Some(RecordKind::Struct),
            "union" => Some(RecordKind::Union),
            "enum" => Some(RecordKind::Enum),
            _ => None,
        };
        if let Some(kind) = kind {
            let name = match p.peek() {
                Some(n) if is_ident(n) => p.next().unwrap_or_default(),
                _ => String::new(),
            };
            if kind == RecordKind::Enum {
                if p.peek() == Some("{") {
                    for (n, v) in p.enum_body()? {
                        self.script_enums.insert(n, v);
                    }
                }
                return Ok(self.int(IntType::U32));
            }
            if p.peek() == Some("{") {
                let id = self.record_body(p, kind, &name, depth + 1)?;
                if !name.is_empty() {
                    self.records.insert(format!("{} {name}", kind.as_str()), id);
                }
                return Ok(id);
            }
            // C allows pointers to structs it has not seen defined.
            return Ok(self
                .record(kind, &name)
                .unwrap_or_else(|| self.make(Made::Forward(format!("{} {name}", kind.as_str())))));
        }
        // Multi-word integer types: `unsigned long long int`.
        let mut words = vec![word];
        while let Some(next) = p.peek() {
            if matches!(
                next,
                "unsigned" | "signed" | "long" | "short" | "int" | "char"
            ) && matches!(
                words[0].as_str(),
                "unsigned" | "signed" | "long" | "short" | "int" | "char"
            ) {
                words.push(p.next().unwrap_or_default());
            } else {
                break;
            }
        }
        let name = words.join(" ");
        self.named(&name)
            .ok_or_else(|| format!("unknown type `{name}`"))
    }

    /// `*name[N]:bits`: the member's type, name (none for an anonymous
    /// record) and bitfield width.
    fn declarator(
        &mut self,
        p: &mut DeclParser,
        base: CTypeId,
    ) -> Result<(CTypeId, Option<String>, Option<u32>), String> {
        let mut ty = base;
        while p.eat("*") {
            ty = self.pointer_to(ty);
            while p.eat("const") || p.eat("volatile") {}
        }
        let name = match p.peek() {
            Some(n) if is_ident(n) => p.next(),
            _ => None,
        };
        let mut dims = Vec::new();
        while p.eat("[") {
            let len = p.number()?;
            p.expect("]")?;
            dims.push(u32::try_from(len).map_err(|_| "array too large")?);
        }
        for len in dims.into_iter().rev() {
            ty = self.make(Made::Array(ty, len));
        }
        let width = if p.eat(":") {
            let w = p.number()?;
            if !(0..=64).contains(&w) {
                return Err(format!("bitfield width {w} is out of range"));
            }
            Some(w as u32)
        } else {
            None
        };
        if name.is_none() && !matches!(self.shape(ty), Shape::Record { .. }) && width.is_none() {
            return Err("expected a member name".into());
        }
        Ok((ty, name, width))
    }
}

fn is_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// Splits a C body into identifiers, numbers and punctuation.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '/' && matches!(chars.peek(), Some((_, '/'))) {
            for (_, c) in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        if c == '/' && matches!(chars.peek(), Some((_, '*'))) {
            let rest = &text[i + 2..];
            let end = rest.find("*/").ok_or("unterminated comment")?;
            let stop = i + 2 + end + 2;
            while chars.peek().is_some_and(|&(j, _)| j < stop) {
                chars.next();
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::from(c);
            while let Some(&(_, n)) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(word);
        } else if "{};*[]:,=-".contains(c) {
            out.push(c.to_string());
        } else {
            return Err(format!("unexpected `{c}` in a type definition"));
        }
    }
    Ok(out)
}

/// A cursor over the tokens of a C body.
struct DeclParser<'t> {
    tokens: &'t [String],
    at: usize,
}

impl DeclParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat(&mut self, what: &str) -> bool {
        let yes = self.peek() == Some(what);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn expect(&mut self, what: &str) -> Result<(), String> {
        if self.eat(what) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(t) => format!("expected `{what}` in a type definition, found `{t}`"),
            None => format!("expected `{what}` in a type definition"),
        })
    }

    fn number(&mut self) -> Result<i64, String> {
        let negative = self.eat("-");
        let text = self.next().unwrap_or_default();
        let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        }
        .ok_or_else(|| format!("expected a number in a type definition, found `{text}`"))?;
        Ok(if negative { -value } else { value })
    }

    /// `{ A, B = 5, C }`: each name and its value.
    fn enum_body(&mut self) -> Result<Vec<(String, i64)>, String> {
        self.expect("{")?;
        let mut out = Vec::new();
        let mut next = 0i64;
        while !self.eat("}") {
            let name = self
                .next()
                .filter(|n| is_ident(n))
                .ok_or("expected a name")?;
            if self.eat("=") {
                next = self.number()?;
            }
            out.push((name, next));
            next = next.wrapping_add(1);
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    fn decl(kind: RecordKind, name: &str, body: &str) -> CDecl {
        CDecl {
            kind,
            name: Some(crate::ast::Name {
                name: name.into(),
                span: Span::default(),
            }),
            body: Some(body.into()),
            span: Span::default(),
        }
    }

    #[test]
    fn script_structs_are_laid_out_as_c_does() {
        let mut t = CTypes::new(None);
        t.declare(&decl(
            RecordKind::Struct,
            "flow",
            "{ char c; unsigned int a:3, b:30; long x; short s[3]; struct { int in; }; }",
        ))
        .unwrap();
        let id = t.record(RecordKind::Struct, "flow").unwrap();
        let m: Vec<(String, u32, u32)> = t
            .members(id)
            .into_iter()
            .map(|m| (m.name, m.offset_bits, m.bitfield_bits))
            .collect();
        assert_eq!(
            m,
            vec![
                ("c".into(), 0, 0),
                ("a".into(), 8, 3),
                // 30 bits do not fit after bit 11 in the first int.
                ("b".into(), 32, 30),
                ("x".into(), 64, 0),
                ("s".into(), 128, 0),
                ("in".into(), 192, 0),
            ]
        );
        assert_eq!(t.size_of(id), Some(32));
        assert_eq!(t.name_of(id), "struct flow");
        t.declare(&decl(RecordKind::Enum, "e", "{ A, B = 5, C }"))
            .unwrap();
        assert_eq!(t.enumerator("C"), Some(6));
        t.declare(&decl(RecordKind::Struct, "fwd", "{ struct nope *p; }"))
            .unwrap();
        let bad = t.declare(&decl(RecordKind::Struct, "bad", "{ struct nope n; }"));
        assert_eq!(bad.unwrap_err().message, "member `n` has no size");
    }
}
