//! Probes: `spec[, spec…] [/predicate/] { body }`.

use super::{PResult, Parser, Reported};
use crate::ast::{Expr, Item, Name, Probe, ProbeSpec, SpecPart};
use crate::diag::Diagnostic;
use crate::lexer::RawSpec;
use crate::provider::ProbeKind;
use crate::span::Span;
use crate::token::{Punct, TokenKind};

impl Parser<'_> {
    /// A probe; the cursor is where its first spec starts.
    pub(super) fn probe(&mut self) -> PResult<Item> {
        let mut specs = Vec::new();
        let mut bad_spec = false;
        let mut start = None;
        loop {
            self.relex();
            let errors_before = self.lexer.error_count();
            let Some(raw) = self.lexer.probe_spec() else {
                return Err(self.expected("a probe"));
            };
            self.prev_end = raw.span.end;
            start.get_or_insert(raw.span);
            bad_spec |= self.lexer.error_count() > errors_before;
            match self.spec(raw) {
                Some(spec) => specs.push(spec),
                None => bad_spec = true,
            }
            // A trailing comma before the predicate or body is accepted.
            if self.eat(Punct::Comma).is_none() || self.at(Punct::LBrace) || self.at(Punct::Slash) {
                break;
            }
        }

        let predicate = if self.at(Punct::Slash) {
            Some(self.predicate()?)
        } else {
            None
        };
        if !self.at(Punct::LBrace) {
            // After a bad spec the rest is likely not a probe at all.
            if bad_spec {
                return Err(Reported);
            }
            let what = if predicate.is_some() {
                "`{` to start the probe's action block"
            } else {
                "`{` or `/` after the probe"
            };
            return Err(self.expected(what));
        }
        let body = self.block()?;
        Ok(Item::Probe(Probe {
            span: start.unwrap_or(body.span).to(body.span),
            specs,
            predicate,
            body,
        }))
    }

    /// Checks the provider of a scanned spec and builds the AST node, or
    /// reports an unknown provider.
    fn spec(&mut self, raw: RawSpec) -> Option<ProbeSpec> {
        let (&provider_span, parts) = raw.parts.split_first()?;
        let src = self.src;
        let text = |span: Span| src.get(span.range()).unwrap_or("").to_string();
        let provider = text(provider_span);
        let Some(kind) = ProbeKind::from_name(&provider) else {
            self.unknown_provider(&provider, provider_span, raw.span);
            return None;
        };
        Some(ProbeSpec {
            kind,
            provider: Name {
                name: provider,
                span: provider_span,
            },
            parts: parts
                .iter()
                .map(|&span| SpecPart {
                    text: text(span),
                    span,
                })
                .collect(),
            raw: text(raw.span),
            span: raw.span,
        })
    }

    fn unknown_provider(&mut self, provider: &str, span: Span, spec: Span) {
        let diagnostic = if provider.is_empty() {
            Diagnostic::error(spec, "expected a probe type before `:`").with_help(
                "probes look like `tracepoint:syscalls:sys_enter_openat` or `kprobe:vfs_read`",
            )
        } else {
            let d = Diagnostic::error(span, format!("unknown probe type `{provider}`"));
            match ProbeKind::suggest(provider) {
                Some(name) => d.with_help(format!("did you mean `{name}`?")),
                None => d.with_help(format!(
                    "probe types are {}",
                    ProbeKind::ALL.map(ProbeKind::name).join(", ")
                )),
            }
        };
        self.report(diagnostic);
    }

    /// `/expr/`; the cursor is on the opening `/`.
    fn predicate(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        self.in_predicate = true;
        let condition = self.expr();
        self.in_predicate = false;
        let condition = condition?;
        if self.eat(Punct::Slash).is_none() {
            if let Some(d) = self.expected_diagnostic("`/` to end the predicate") {
                self.report(d.with_note(open, "the predicate starts here").with_help(
                    "a predicate is `/condition/` followed by the action block `{ … }`",
                ));
            }
            return Err(Reported);
        }
        Ok(condition)
    }

    /// Whether the `/` at the cursor closes a predicate rather than divides:
    /// it is followed by the action block (or nothing).
    pub(super) fn at_predicate_end(&mut self) -> bool {
        self.in_predicate
            && matches!(
                self.peek_nth(1).kind,
                TokenKind::Punct(Punct::LBrace) | TokenKind::Eof
            )
    }
}
