//! Preamble items: preprocessor lines, C type definitions, `config`,
//! `import`, map declarations, macros and subprograms.

use super::{PResult, Parser, Reported};
use crate::ast::{
    CDecl, Config, ConfigEntry, ConfigValue, Directive, Import, Item, Macro, MacroParam,
    MacroParamKind, MapDecl, Name, Preproc, RecordKind, Subprog, SubprogParam,
};
use crate::diag::Diagnostic;
use crate::span::{offset_u32, Span};
use crate::token::{Keyword, Punct, TokenKind};

impl Parser<'_> {
    /// A `#…` line.
    pub(super) fn preproc(&mut self) -> Item {
        let token = self.bump();
        let text = match token.kind {
            TokenKind::Preproc(text) => text,
            _ => String::new(),
        };
        Item::Preproc(Preproc {
            directive: directive(&text),
            text,
            span: token.span,
        })
    }

    /// `struct|union|enum [name] { … } [;]` or `struct name;`, kept as text.
    pub(super) fn c_decl(&mut self) -> PResult<Item> {
        let keyword = self.bump();
        let kind = match keyword.kind {
            TokenKind::Keyword(Keyword::Union) => RecordKind::Union,
            TokenKind::Keyword(Keyword::Enum) => RecordKind::Enum,
            _ => RecordKind::Struct,
        };
        let name = match self.peek().kind {
            TokenKind::Ident(_) => Some(self.bump_name()),
            _ => None,
        };
        if let Some(semi) = self.eat(Punct::Semi) {
            if name.is_none() {
                return Err(self.report(Diagnostic::error(
                    semi,
                    format!("expected a name after `{}`", kind.as_str()),
                )));
            }
            return Ok(Item::CDecl(CDecl {
                kind,
                name,
                body: None,
                span: keyword.span.to(semi),
            }));
        }
        if !self.at(Punct::LBrace) {
            let what = format!("`{{` to define the {}", kind.as_str());
            return Err(self.expected(&what));
        }
        let open = self.peek().span;
        self.relex();
        let Some(body) = self.lexer.c_body() else {
            self.prev_end = offset_u32(self.src.trim_end().len());
            return Err(self.unclosed(open, &format!("{} definition", kind.as_str())));
        };
        self.prev_end = body.end;
        let end = self.eat(Punct::Semi).unwrap_or(body);
        Ok(Item::CDecl(CDecl {
            kind,
            name,
            body: Some(self.src.get(body.range()).unwrap_or("").to_string()),
            span: keyword.span.to(end),
        }))
    }

    /// `config = { key = value; … }`.
    pub(super) fn config(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        self.expect(Punct::Assign)?;
        let open = self.expect(Punct::LBrace)?;
        let mut entries = Vec::new();
        loop {
            while self.eat(Punct::Semi).is_some() {}
            match self.peek().kind {
                TokenKind::Punct(Punct::RBrace) => break,
                TokenKind::Eof => return Err(self.unclosed(open, "config block")),
                _ => {}
            }
            let key = self.name("a config setting name")?;
            self.expect(Punct::Assign)?;
            let token = self.peek().clone();
            let value = match token.kind {
                TokenKind::Int(n) => ConfigValue::Int(n),
                TokenKind::Str(s) => ConfigValue::Str(s),
                TokenKind::Keyword(Keyword::True) => ConfigValue::Bool(true),
                TokenKind::Keyword(Keyword::False) => ConfigValue::Bool(false),
                TokenKind::Ident(name) => ConfigValue::Ident(name),
                _ => {
                    return Err(
                        self.expected("a config value (integer, string, `true`, `false` or name)")
                    )
                }
            };
            self.bump();
            entries.push(ConfigEntry {
                span: key.span.to(token.span),
                key,
                value,
                value_span: token.span,
            });
            if self.eat(Punct::Semi).is_none() && !self.at(Punct::RBrace) {
                self.missing_semi("the config setting");
            }
        }
        let close = self.bump().span;
        Ok(Item::Config(Config {
            entries,
            span: keyword.to(close),
        }))
    }

    /// `import "path";`
    pub(super) fn import(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        let path = match self.peek().kind {
            TokenKind::Str(ref path) => path.clone(),
            _ => return Err(self.expected("a string with the path to import")),
        };
        self.bump();
        self.end_item("the import");
        Ok(Item::Import(Import {
            path,
            span: keyword.to(Span::empty(self.prev_end)),
        }))
    }

    /// `let @name = kind(max_entries);`
    pub(super) fn map_decl(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        let map = match self.peek().kind {
            TokenKind::Map(ref name) => Name {
                name: name.clone(),
                span: self.peek().span,
            },
            TokenKind::Var(_) => {
                let span = self.peek().span;
                return Err(self.report(
                    Diagnostic::error(span, "scratch variables cannot be declared outside a probe")
                        .with_help("top-level `let` declares maps: `let @name = hash(1024);`"),
                ));
            }
            _ => return Err(self.expected("a map name after `let`")),
        };
        self.bump();
        self.expect(Punct::Assign)?;
        let kind = self.name("a map type such as `hash` or `lruhash`")?;
        let open = self.expect(Punct::LParen)?;
        let max_entries = match self.peek().kind {
            TokenKind::Int(n) => n,
            _ => return Err(self.expected("the maximum number of entries")),
        };
        self.bump();
        let close = self.close(Punct::RParen, open, "`)`")?;
        self.end_item("the map declaration");
        Ok(Item::MapDecl(MapDecl {
            map,
            kind,
            max_entries,
            span: keyword.to(close),
        }))
    }

    /// `macro name(params) { … }`.
    pub(super) fn macro_def(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        let name = self.name("a macro name")?;
        let open = self.expect(Punct::LParen)?;
        let mut params = Vec::new();
        if self.eat(Punct::RParen).is_none() {
            loop {
                let token = self.peek().clone();
                let kind = match token.kind {
                    TokenKind::Var(name) => (MacroParamKind::Var, name),
                    TokenKind::Map(name) => (MacroParamKind::Map, name),
                    TokenKind::Ident(name) => (MacroParamKind::Expr, name),
                    _ => return Err(self.expected("a macro parameter (`$var`, `@map` or `name`)")),
                };
                self.bump();
                params.push(MacroParam {
                    kind: kind.0,
                    name: Name {
                        name: kind.1,
                        span: token.span,
                    },
                });
                if self.eat(Punct::Comma).is_none() {
                    break;
                }
            }
            self.close(Punct::RParen, open, "`,` or `)`")?;
        }
        let body = self.block()?;
        Ok(Item::Macro(Macro {
            span: keyword.to(body.span),
            name,
            params,
            body,
        }))
    }

    /// `fn name($a: type, …): type { … }`.
    pub(super) fn subprog(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        let name = self.name("a function name")?;
        let open = self.expect(Punct::LParen)?;
        let mut params = Vec::new();
        if self.eat(Punct::RParen).is_none() {
            loop {
                let var = self.var_name("a parameter such as `$x`")?;
                self.expect(Punct::Colon)?;
                let ty = self.type_expr()?;
                params.push(SubprogParam {
                    span: var.span.to(ty.span),
                    var,
                    ty,
                });
                if self.eat(Punct::Comma).is_none() {
                    break;
                }
            }
            self.close(Punct::RParen, open, "`,` or `)`")?;
        }
        if self.eat(Punct::Colon).is_none() {
            let Some(d) = self.expected_diagnostic("`:` and the return type") else {
                return Err(Reported);
            };
            return Err(self.report(
                d.with_help("write the return type, e.g. `fn f($x: uint64): void { … }`"),
            ));
        }
        let ret = self.type_expr()?;
        let body = self.block()?;
        Ok(Item::Subprog(Subprog {
            span: keyword.to(body.span),
            name,
            params,
            ret,
            body,
        }))
    }

    /// The `;` ending a one-line item; reported but not fatal when missing.
    fn end_item(&mut self, what: &str) {
        if self.eat(Punct::Semi).is_none() {
            self.missing_semi(what);
        }
    }
}

/// What a preprocessor line does, from its text.
fn directive(text: &str) -> Directive {
    let line = text.trim_start_matches('#').trim_start();
    if let Some(rest) = line.strip_prefix("include") {
        let path = rest.trim();
        for (open, close, system) in [('<', '>', true), ('"', '"', false)] {
            if let Some(inner) = path.strip_prefix(open).and_then(|p| p.strip_suffix(close)) {
                return Directive::Include {
                    path: inner.to_string(),
                    system,
                };
            }
        }
    }
    if let Some(rest) = line.strip_prefix("define") {
        if rest.starts_with(char::is_whitespace) {
            let rest = rest.trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, body) = rest.split_at(end);
            if !name.is_empty() {
                return Directive::Define {
                    name: name.to_string(),
                    body: body.trim().to_string(),
                };
            }
        }
    }
    Directive::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        assert_eq!(
            directive("#include <linux/sched.h>"),
            Directive::Include {
                path: "linux/sched.h".into(),
                system: true
            }
        );
        assert_eq!(
            directive("# include \"mine.h\""),
            Directive::Include {
                path: "mine.h".into(),
                system: false
            }
        );
        assert_eq!(
            directive("#define RED \"\\033[31m\""),
            Directive::Define {
                name: "RED".into(),
                body: "\"\\033[31m\"".into()
            }
        );
        assert_eq!(
            directive("#define MAX(a, b) ((a) > (b) ? (a) : (b))"),
            Directive::Define {
                name: "MAX".into(),
                body: "(a, b) ((a) > (b) ? (a) : (b))".into()
            }
        );
        assert_eq!(directive("#ifdef BPFTRACE_HAVE_BTF"), Directive::Other);
        assert_eq!(directive("#include linux"), Directive::Other);
        assert_eq!(directive("#define"), Directive::Other);
    }
}
