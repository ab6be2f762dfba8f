//! Source text and positions in it.
//!
//! Every token and AST node carries a [`Span`]: a half-open byte range into
//! the one [`SourceFile`] being compiled. Byte offsets are cheap to store and
//! compare; the file turns them into the 1-based line and column that
//! diagnostics print, counting columns in characters like rustc does.

/// The name bpftrace gives a program passed with `-e`; diagnostics for such
/// programs start with `stdin:LINE:COL`.
pub const INLINE_NAME: &str = "stdin";

/// A half-open byte range `start..end` in a [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// The range `start..end`.
    pub fn new(start: u32, end: u32) -> Self {
        Span { start, end }
    }

    /// An empty span at `at`: a position between two bytes.
    pub fn empty(at: u32) -> Self {
        Span { start: at, end: at }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Number of bytes covered.
    pub fn len(self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span covers no byte.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The byte range, for slicing the text.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains(self, other: Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number in characters, starting at 1.
    pub col: u32,
}

/// A named program text with a line index for position lookups.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Byte offset at which each line starts; the first entry is 0.
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// A source file called `name` (a path, or [`INLINE_NAME`] for `-e`).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| offset_u32(i + 1)),
            )
            .collect();
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// A program given on the command line with `-e`, named `stdin`.
    pub fn inline(text: impl Into<String>) -> Self {
        Self::new(INLINE_NAME, text)
    }

    /// A source file from raw bytes; invalid UTF-8 becomes U+FFFD.
    pub fn from_bytes(name: impl Into<String>, bytes: &[u8]) -> Self {
        Self::new(name, String::from_utf8_lossy(bytes).into_owned())
    }

    /// The name diagnostics print before the position.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole program text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text covered by `span`, or `""` if it is out of range.
    pub fn snippet(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }

    /// Line and column of a byte offset (clamped to the end of the text).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = self.clamp(offset);
        let index = self.line_index(offset);
        let start = self.line_starts[index] as usize;
        let chars = self
            .text
            .get(start..offset as usize)
            .map_or(0, |s| s.chars().count());
        LineCol {
            line: offset_u32(index + 1),
            col: offset_u32(chars + 1),
        }
    }

    /// The text of 1-based line `line`, without its line terminator.
    pub fn line_text(&self, line: u32) -> &str {
        let index = (line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(index) else {
            return "";
        };
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&next| next as usize - 1);
        let line = self.text.get(start as usize..end).unwrap_or("");
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// Byte offset one past the last character of the line holding `offset`.
    pub(crate) fn line_end(&self, offset: u32) -> u32 {
        let offset = self.clamp(offset);
        let index = self.line_index(offset);
        let start = self.line_starts[index];
        start + offset_u32(self.line_text(offset_u32(index + 1)).len())
    }

    /// Index into `line_starts` of the line containing `offset`.
    fn line_index(&self, offset: u32) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// `offset` moved into the text and back onto a character boundary.
    fn clamp(&self, offset: u32) -> u32 {
        let mut offset = (offset as usize).min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset_u32(offset)
    }
}

/// A byte offset as stored in spans; texts past 4 GiB are refused by the
/// parser, so saturating here only guards the arithmetic.
pub(crate) fn offset_u32(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let f = SourceFile::new("t.bt", "ab\n\tcé d\n\nlast");
        assert_eq!(f.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(f.line_col(2), LineCol { line: 1, col: 3 });
        assert_eq!(f.line_col(3), LineCol { line: 2, col: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(f.line_col(8), LineCol { line: 2, col: 5 });
        assert_eq!(f.line_col(10), LineCol { line: 3, col: 1 });
        assert_eq!(f.line_col(11), LineCol { line: 4, col: 1 });
        assert_eq!(f.line_col(1000), LineCol { line: 4, col: 5 });
        assert_eq!(f.line_text(2), "\tcé d");
        assert_eq!(f.line_text(3), "");
        assert_eq!(f.line_text(4), "last");
        assert_eq!(f.line_text(9), "");
    }

    #[test]
    fn offsets_inside_a_character_round_down() {
        let f = SourceFile::new("t.bt", "é");
        assert_eq!(f.line_col(1), LineCol { line: 1, col: 1 });
    }

    #[test]
    fn crlf_lines_drop_the_carriage_return() {
        let f = SourceFile::new("t.bt", "a\r\nb\r\n");
        assert_eq!(f.line_text(1), "a");
        assert_eq!(f.line_end(0), 1);
        assert_eq!(f.line_text(2), "b");
    }

    #[test]
    fn spans_join_and_contain() {
        let a = Span::new(2, 4);
        let b = Span::new(6, 9);
        assert_eq!(a.to(b), Span::new(2, 9));
        assert!(a.to(b).contains(b));
        assert!(!a.contains(b));
        assert!(Span::empty(3).is_empty());
    }
}
