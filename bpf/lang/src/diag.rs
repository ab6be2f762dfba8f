//! Diagnostics: what went wrong, where, and what to do about it.
//!
//! A [`Diagnostic`] is data, not a printed line: passes collect as many as
//! they can find and the caller renders them all at once against the
//! [`SourceFile`] they came from. The rendering follows rustc and bpftrace:
//!
//! ```text
//! stdin:1:18: error: expected expression, found `;`
//! BEGIN { @x = 1 + ; }
//!                  ^
//! help: ...
//! ```
//!
//! The caret line puts `^` under the first character of the span and `~`
//! under the rest of it (up to the end of the first line it touches).

use std::fmt::Write as _;

use crate::span::{SourceFile, Span};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The program is rejected.
    Error,
    /// The program runs, but probably not as meant.
    Warning,
}

impl Severity {
    /// The word printed after the position: `error` or `warning`.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A secondary message, pointing at related source when it has a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Where the note points, if anywhere.
    pub span: Option<Span>,
    /// The note's text.
    pub message: String,
}

/// One problem found in a program, with its location and advice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", severity.label())]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The main message, one plain sentence without a trailing period.
    pub message: String,
    /// The source the message is about.
    pub span: Span,
    /// Related places or facts, printed after the main snippet.
    pub notes: Vec<Note>,
    /// What the user can do, printed last as `help: ...`.
    pub help: Option<String>,
    /// The error says a probe's target (function, tracepoint) does not
    /// exist: a probe with other attach points skips it, as bpftrace does.
    pub target_missing: bool,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, span, message)
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, span, message)
    }

    fn new(severity: Severity, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            span,
            notes: Vec::new(),
            help: None,
            target_missing: false,
        }
    }

    /// Marks the error as one about a probe target that does not exist.
    pub fn with_target_missing(mut self) -> Self {
        self.target_missing = true;
        self
    }

    /// Adds a note pointing at `span`.
    pub fn with_note(mut self, span: Span, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            span: Some(span),
            message: message.into(),
        });
        self
    }

    /// Adds a note without a location.
    pub fn with_plain_note(mut self, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            span: None,
            message: message.into(),
        });
        self
    }

    /// Sets the `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether this diagnostic rejects the program.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic as text: position, message, source line, caret line,
    /// then notes and help. Ends with a newline.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = String::new();
        snippet(
            &mut out,
            file,
            self.span,
            self.severity.label(),
            &self.message,
        );
        for note in &self.notes {
            match note.span {
                Some(span) => snippet(&mut out, file, span, "note", &note.message),
                None => line(&mut out, format_args!("note: {}", note.message)),
            }
        }
        if let Some(help) = &self.help {
            line(&mut out, format_args!("help: {help}"));
        }
        out
    }
}

/// Renders several diagnostics, separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], file: &SourceFile) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(file))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `FILE:LINE:COL: LABEL: MESSAGE`, the source line, and the caret line.
fn snippet(out: &mut String, file: &SourceFile, span: Span, label: &str, message: &str) {
    let pos = file.line_col(span.start);
    line(
        out,
        format_args!(
            "{}:{}:{}: {label}: {message}",
            file.name(),
            pos.line,
            pos.col
        ),
    );
    let text = file.line_text(pos.line);
    line(out, format_args!("{text}"));

    // Reproduce tabs so the caret lines up however the terminal expands them.
    let mut carets: String = text
        .chars()
        .take(pos.col as usize - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let start = span.start.min(file.line_end(span.start));
    let end = span.end.min(file.line_end(span.start)).max(start);
    let width = file.snippet(Span::new(start, end)).chars().count().max(1);
    carets.push('^');
    carets.extend(std::iter::repeat_n('~', width - 1));
    line(out, format_args!("{carets}"));
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_line_and_carets() {
        let file = SourceFile::inline("BEGIN { @x = 1 + ; }\n");
        let d = Diagnostic::error(Span::new(17, 18), "expected expression, found `;`")
            .with_help("write an operand after `+`");
        let expected = format!(
            "stdin:1:18: error: expected expression, found `;`\n\
             BEGIN {{ @x = 1 + ; }}\n\
             {}^\n\
             help: write an operand after `+`\n",
            " ".repeat(17)
        );
        assert_eq!(d.render(&file), expected);
    }

    #[test]
    fn tildes_cover_the_span_and_tabs_are_kept() {
        let file = SourceFile::new("a.bt", "x\n\tfoo(bar)\n");
        let d = Diagnostic::warning(Span::new(3, 11), "odd call").with_plain_note("just a note");
        assert_eq!(
            d.render(&file),
            "a.bt:2:2: warning: odd call\n\tfoo(bar)\n\t^~~~~~~~\nnote: just a note\n"
        );
    }

    #[test]
    fn multi_line_spans_stop_at_the_end_of_the_first_line() {
        let file = SourceFile::new("a.bt", "ab {\n  c\n}");
        let d = Diagnostic::error(Span::new(3, 10), "block").with_note(Span::empty(10), "end");
        assert_eq!(
            d.render(&file),
            "a.bt:1:4: error: block\nab {\n   ^\na.bt:3:2: note: end\n}\n ^\n"
        );
    }

    #[test]
    fn spans_past_the_end_are_clamped() {
        let file = SourceFile::new("a.bt", "ab");
        let d = Diagnostic::error(Span::new(7, 9), "eof");
        assert_eq!(d.render(&file), "a.bt:1:3: error: eof\nab\n  ^\n");
    }

    #[test]
    fn display_is_the_plain_message() {
        let d = Diagnostic::error(Span::empty(0), "unterminated string");
        assert_eq!(d.to_string(), "error: unterminated string");
    }
}
