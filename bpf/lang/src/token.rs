//! The vocabulary of the language: what the lexer hands the parser.
//!
//! Builtins (`pid`, `comm`, `args`, `arg0`, …) are plain identifiers here;
//! only words that change the shape of the grammar are keywords. Probe specs
//! are not tokens of this kind: the lexer scans them in a mode of their own
//! (see [`crate::lexer::RawSpec`]).

use std::fmt;

use crate::span::Span;

/// A lexed token with its source range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// What a token is, with its decoded value where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// `[_a-zA-Z][_a-zA-Z0-9]*` that is not a keyword.
    Ident(String),
    Keyword(Keyword),
    /// `$name`; the name without `$`.
    Var(String),
    /// `@name`, or `@` alone (empty name).
    Map(String),
    /// `$1`, `$2`, …
    Param(u64),
    /// `$#`
    ParamCount,
    /// An integer literal, already converted (durations to nanoseconds).
    Int(u64),
    /// A string literal with escapes decoded.
    Str(Vec<u8>),
    /// A `#…` preprocessor line, continuation lines included.
    Preproc(String),
    Punct(Punct),
    /// Something the lexer already reported as an error.
    Error,
    Eof,
}

/// Keywords: words that cannot be identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    If,
    Else,
    Unroll,
    While,
    For,
    Return,
    Break,
    Continue,
    Let,
    Macro,
    Fn,
    Config,
    Import,
    Sizeof,
    Offsetof,
    Struct,
    Union,
    Enum,
    True,
    False,
}

impl Keyword {
    const ALL: [Keyword; 20] = [
        Keyword::If,
        Keyword::Else,
        Keyword::Unroll,
        Keyword::While,
        Keyword::For,
        Keyword::Return,
        Keyword::Break,
        Keyword::Continue,
        Keyword::Let,
        Keyword::Macro,
        Keyword::Fn,
        Keyword::Config,
        Keyword::Import,
        Keyword::Sizeof,
        Keyword::Offsetof,
        Keyword::Struct,
        Keyword::Union,
        Keyword::Enum,
        Keyword::True,
        Keyword::False,
    ];

    pub fn from_word(word: &str) -> Option<Keyword> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::If => "if",
            Keyword::Else => "else",
            Keyword::Unroll => "unroll",
            Keyword::While => "while",
            Keyword::For => "for",
            Keyword::Return => "return",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Let => "let",
            Keyword::Macro => "macro",
            Keyword::Fn => "fn",
            Keyword::Config => "config",
            Keyword::Import => "import",
            Keyword::Sizeof => "sizeof",
            Keyword::Offsetof => "offsetof",
            Keyword::Struct => "struct",
            Keyword::Union => "union",
            Keyword::Enum => "enum",
            Keyword::True => "true",
            Keyword::False => "false",
        }
    }
}

/// Punctuation and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Punct {
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Semi,
    Comma,
    Colon,
    Question,
    Dot,
    DotDot,
    Arrow,
    Assign,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Amp,
    Pipe,
    Caret,
    Bang,
    Tilde,
    Lt,
    Gt,
    Le,
    Ge,
    EqEq,
    Ne,
    Shl,
    Shr,
    AndAnd,
    OrOr,
    PlusPlus,
    MinusMinus,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    AmpEq,
    PipeEq,
    CaretEq,
    ShlEq,
    ShrEq,
}

impl Punct {
    /// Every punctuation token, longest spelling first so that a scan
    /// taking the first match takes the longest one.
    pub const BY_LENGTH: [Punct; 46] = [
        Punct::ShlEq,
        Punct::ShrEq,
        Punct::DotDot,
        Punct::Arrow,
        Punct::Le,
        Punct::Ge,
        Punct::EqEq,
        Punct::Ne,
        Punct::Shl,
        Punct::Shr,
        Punct::AndAnd,
        Punct::OrOr,
        Punct::PlusPlus,
        Punct::MinusMinus,
        Punct::PlusEq,
        Punct::MinusEq,
        Punct::StarEq,
        Punct::SlashEq,
        Punct::PercentEq,
        Punct::AmpEq,
        Punct::PipeEq,
        Punct::CaretEq,
        Punct::LParen,
        Punct::RParen,
        Punct::LBrace,
        Punct::RBrace,
        Punct::LBracket,
        Punct::RBracket,
        Punct::Semi,
        Punct::Comma,
        Punct::Colon,
        Punct::Question,
        Punct::Dot,
        Punct::Assign,
        Punct::Plus,
        Punct::Minus,
        Punct::Star,
        Punct::Slash,
        Punct::Percent,
        Punct::Amp,
        Punct::Pipe,
        Punct::Caret,
        Punct::Bang,
        Punct::Tilde,
        Punct::Lt,
        Punct::Gt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Punct::LParen => "(",
            Punct::RParen => ")",
            Punct::LBrace => "{",
            Punct::RBrace => "}",
            Punct::LBracket => "[",
            Punct::RBracket => "]",
            Punct::Semi => ";",
            Punct::Comma => ",",
            Punct::Colon => ":",
            Punct::Question => "?",
            Punct::Dot => ".",
            Punct::DotDot => "..",
            Punct::Arrow => "->",
            Punct::Assign => "=",
            Punct::Plus => "+",
            Punct::Minus => "-",
            Punct::Star => "*",
            Punct::Slash => "/",
            Punct::Percent => "%",
            Punct::Amp => "&",
            Punct::Pipe => "|",
            Punct::Caret => "^",
            Punct::Bang => "!",
            Punct::Tilde => "~",
            Punct::Lt => "<",
            Punct::Gt => ">",
            Punct::Le => "<=",
            Punct::Ge => ">=",
            Punct::EqEq => "==",
            Punct::Ne => "!=",
            Punct::Shl => "<<",
            Punct::Shr => ">>",
            Punct::AndAnd => "&&",
            Punct::OrOr => "||",
            Punct::PlusPlus => "++",
            Punct::MinusMinus => "--",
            Punct::PlusEq => "+=",
            Punct::MinusEq => "-=",
            Punct::StarEq => "*=",
            Punct::SlashEq => "/=",
            Punct::PercentEq => "%=",
            Punct::AmpEq => "&=",
            Punct::PipeEq => "|=",
            Punct::CaretEq => "^=",
            Punct::ShlEq => "<<=",
            Punct::ShrEq => ">>=",
        }
    }
}

/// How a token is named in "expected X, found Y" messages.
impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Ident(name) => write!(f, "identifier `{name}`"),
            TokenKind::Keyword(k) => write!(f, "keyword `{}`", k.as_str()),
            TokenKind::Var(name) => write!(f, "variable `${name}`"),
            TokenKind::Map(name) => write!(f, "map `@{name}`"),
            TokenKind::Param(n) => write!(f, "positional parameter `${n}`"),
            TokenKind::ParamCount => f.write_str("`$#`"),
            TokenKind::Int(_) => f.write_str("integer literal"),
            TokenKind::Str(_) => f.write_str("string literal"),
            TokenKind::Preproc(_) => f.write_str("preprocessor directive"),
            TokenKind::Punct(p) => write!(f, "`{}`", p.as_str()),
            TokenKind::Error => f.write_str("invalid token"),
            TokenKind::Eof => f.write_str("end of file"),
        }
    }
}
