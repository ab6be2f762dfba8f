//! The abstract syntax tree of a bpftrace program.
//!
//! The tree records what was written, with a [`Span`] on every node, and
//! decides nothing that needs more than the text: names are not resolved,
//! builtins such as `pid` or `args` are [`ExprKind::Ident`]s, function names
//! are not checked, probe spec parts are kept raw. Later passes do that.
//!
//! Every [`Expr`] has an [`ExprId`], dense from 0 to
//! [`Program::expr_count`], so passes can keep per-expression facts (types,
//! registers) in side tables instead of mutating the tree.
//!
//! A few shapes worth knowing:
//!
//! - `@m` is [`ExprKind::Map`]; `@m[a, b]` is [`ExprKind::MapAccess`] with
//!   two keys (bpftrace treats it as the tuple key `(a, b)`).
//! - A predicate `/cond/` stays on the [`Probe`]; it is not folded into the
//!   body.
//! - `->` and `.` are both [`ExprKind::Field`] (current bpftrace makes `->` an
//!   alias); `arrow` remembers which was written.
//! - A block's last expression without `;` is its [`Block::value`]: the
//!   value of a block expression `{ let $a = 1; $a + 1 }`, and an ordinary
//!   discarded expression at the end of a probe body.

use crate::provider::ProbeKind;
use crate::span::Span;

/// Identifies an expression within its [`Program`]; an index for side tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

impl ExprId {
    /// The id as an index into a table of [`Program::expr_count`] entries.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A whole program: its top-level items in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Preamble items and probes, in the order written.
    pub items: Vec<Item>,
    /// Number of expressions; every [`ExprId`] is below it.
    pub expr_count: u32,
    /// The whole text.
    pub span: Span,
}

impl Program {
    /// The probes, skipping preamble items.
    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.items.iter().filter_map(|item| match item {
            Item::Probe(probe) => Some(probe),
            _ => None,
        })
    }
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `#include …`, `#define …` and other preprocessor lines.
    Preproc(Preproc),
    /// A C `struct`, `union` or `enum` definition.
    CDecl(CDecl),
    /// `config = { key = value; … }`.
    Config(Config),
    /// `import "path";`.
    Import(Import),
    /// `let @name = hash(100);`.
    MapDecl(MapDecl),
    /// `macro name(params) { … }`.
    Macro(Macro),
    /// `fn name($a: type, …): type { … }`.
    Subprog(Subprog),
    /// `spec, spec /predicate/ { … }`.
    Probe(Probe),
}

impl Item {
    /// The item's source range.
    pub fn span(&self) -> Span {
        match self {
            Item::Preproc(x) => x.span,
            Item::CDecl(x) => x.span,
            Item::Config(x) => x.span,
            Item::Import(x) => x.span,
            Item::MapDecl(x) => x.span,
            Item::Macro(x) => x.span,
            Item::Subprog(x) => x.span,
            Item::Probe(x) => x.span,
        }
    }
}

/// A name as written, with its span: a function, field, key or variable.
/// Variables and maps are stored without their `$` or `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The name's text.
    pub name: String,
    /// Where it was written (including any `$` or `@`).
    pub span: Span,
}

/// A preprocessor line; bpftrace hands these to its C parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preproc {
    /// What the line does, as far as the front end understands it.
    pub directive: Directive,
    /// The whole line(s), from `#` on.
    pub text: String,
    /// The whole line(s).
    pub span: Span,
}

/// The directives the front end distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `#include <path>` (`system`) or `#include "path"`.
    Include {
        /// The header path between the delimiters.
        path: String,
        /// Whether it was written with `<…>`.
        system: bool,
    },
    /// `#define NAME body`; `body` keeps any `(params)`.
    Define {
        /// The macro name.
        name: String,
        /// Everything after the name, trimmed.
        body: String,
    },
    /// Any other directive (`#ifdef`, `#endif`, …), kept as text.
    Other,
}

/// Which kind of C type a declaration or type name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// `struct`
    Struct,
    /// `union`
    Union,
    /// `enum`
    Enum,
}

impl RecordKind {
    /// The C keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Struct => "struct",
            RecordKind::Union => "union",
            RecordKind::Enum => "enum",
        }
    }
}

/// A C type definition in the preamble, kept as text for the type layout
/// pass: `struct foo { int a; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CDecl {
    /// `struct`, `union` or `enum`.
    pub kind: RecordKind,
    /// The tag, absent for an anonymous enum.
    pub name: Option<Name>,
    /// The braces and what is between them; `None` for `struct foo;`.
    pub body: Option<String>,
    /// From the keyword to the closing brace (or `;`).
    pub span: Span,
}

/// The `config = { … }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The assignments, in order.
    pub entries: Vec<ConfigEntry>,
    /// From `config` to the closing brace.
    pub span: Span,
}

/// One `key = value` in a config block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The setting, e.g. `max_map_keys` or `BPFTRACE_MAX_MAP_KEYS`.
    pub key: Name,
    /// Its value.
    pub value: ConfigValue,
    /// Where the value was written.
    pub value_span: Span,
    /// From key to value.
    pub span: Span,
}

/// A config value: the literals a config block accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigValue {
    /// `max_map_keys = 1024`
    Int(u64),
    /// `cpp_demangle = false`
    Bool(bool),
    /// `license = "GPL"`
    Str(Vec<u8>),
    /// `stack_mode = perf`
    Ident(String),
}

/// `import "path";`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The path as written in the string literal.
    pub path: Vec<u8>,
    /// The whole statement.
    pub span: Span,
}

/// A top-level map declaration, `let @name = kind(max_entries);`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDecl {
    /// The map, without `@`.
    pub map: Name,
    /// The map type: `hash`, `lruhash`, `percpuhash`, `percpulruhash`, ….
    pub kind: Name,
    /// The argument: maximum number of entries.
    pub max_entries: u64,
    /// The whole declaration.
    pub span: Span,
}

/// A bpftrace macro, `macro name(params) { … }`, expanded at call sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    /// The macro's name.
    pub name: Name,
    /// Its parameters, in order.
    pub params: Vec<MacroParam>,
    /// The body; its [`Block::value`] is the macro's value.
    pub body: Block,
    /// From `macro` to the closing brace.
    pub span: Span,
}

/// One macro parameter; its sigil says what a call must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroParam {
    /// Variable, map or expression.
    pub kind: MacroParamKind,
    /// The name without sigil.
    pub name: Name,
}

/// What a macro parameter binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroParamKind {
    /// `$a`: a scratch variable, which the macro may assign.
    Var,
    /// `@a`: a map, which the macro may update.
    Map,
    /// `a`: any expression, substituted where `a` appears.
    Expr,
}

/// A subprogram, `fn name($a: type, …): type { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subprog {
    /// The function name.
    pub name: Name,
    /// Typed parameters.
    pub params: Vec<SubprogParam>,
    /// The declared return type.
    pub ret: TypeExpr,
    /// The body.
    pub body: Block,
    /// From `fn` to the closing brace.
    pub span: Span,
}

/// One subprogram parameter, `$name: type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubprogParam {
    /// The variable, without `$`.
    pub var: Name,
    /// Its type.
    pub ty: TypeExpr,
    /// From variable to type.
    pub span: Span,
}

/// A probe: where to attach, when to run, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The comma-separated attach points; at least one.
    pub specs: Vec<ProbeSpec>,
    /// The `/…/` filter, if any.
    pub predicate: Option<Expr>,
    /// The action block.
    pub body: Block,
    /// From the first spec to the end of the body.
    pub span: Span,
}

/// One attach point, e.g. `t:syscalls:sys_enter_openat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The provider, with aliases normalised (`t` is [`ProbeKind::Tracepoint`]).
    pub kind: ProbeKind,
    /// The provider as written.
    pub provider: Name,
    /// The `:`-separated parts after the provider, raw: quotes, wildcards
    /// and escapes are left for the provider to interpret.
    pub parts: Vec<SpecPart>,
    /// The whole spec as written.
    pub raw: String,
    /// The whole spec.
    pub span: Span,
}

/// One `:`-separated part of a probe spec, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecPart {
    /// The text between the colons (possibly empty).
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// `{ statements }`, optionally ending in a value expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The statements, in order.
    pub stmts: Vec<Stmt>,
    /// A final expression written without `;`.
    pub value: Option<Box<Expr>>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    /// What it does.
    pub kind: StmtKind,
    /// Its source, without the terminating `;`.
    pub span: Span,
}

/// The kinds of statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    /// An expression evaluated for its effect: `printf(…);`, `@x++;`.
    Expr(Expr),
    /// `target = value`, or `target op= value` when `op` is set. The
    /// target is a [`ExprKind::Var`], [`ExprKind::Map`] or
    /// [`ExprKind::MapAccess`]; the parser rejects anything else.
    Assign {
        /// What is assigned.
        target: Expr,
        /// The operator of a compound assignment such as `+=`.
        op: Option<BinOp>,
        /// The new value (or right operand of `op`).
        value: Expr,
    },
    /// `let $var [: type] [= init]`.
    Let {
        /// The declared variable, without `$`.
        var: Name,
        /// The declared type.
        ty: Option<TypeExpr>,
        /// The initial value.
        init: Option<Expr>,
    },
    /// `_ = expr`: evaluate and discard without a warning.
    Discard(Expr),
    /// `if (…) { … } else …`.
    If(If),
    /// `unroll (count) { … }`: the body repeated at compile time.
    Unroll {
        /// The repeat count, a constant in valid programs.
        count: Expr,
        /// The repeated block.
        body: Block,
    },
    /// `while (cond) { … }`.
    While {
        /// Evaluated before each iteration.
        cond: Expr,
        /// The loop body.
        body: Block,
    },
    /// `for ($var : iterable) { … }`.
    For {
        /// The loop variable, without `$`.
        var: Name,
        /// A map or a range.
        iterable: ForIterable,
        /// The loop body.
        body: Block,
    },
    /// `return [expr]`.
    Return(Option<Expr>),
    /// `break`.
    Break,
    /// `continue`.
    Continue,
    /// A nested `{ … }` block, its own scope.
    Block(Block),
}

/// `if cond { … } [else …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct If {
    /// The condition.
    pub cond: Expr,
    /// Taken when the condition is true.
    pub then: Block,
    /// The `else` branch.
    pub otherwise: Option<Else>,
    /// From `if` to the end of the last branch.
    pub span: Span,
}

/// The branch after `else`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Else {
    /// `else { … }`
    Block(Block),
    /// `else if …`
    If(Box<If>),
}

/// What a `for` loop walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForIterable {
    /// `for ($kv : @map)`: the expression after `:`, a map when valid.
    Map(Expr),
    /// `for ($i : start..end)`: integers from `start` up to `end`, exclusive.
    Range {
        /// First value.
        start: Expr,
        /// One past the last value.
        end: Expr,
    },
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// Key for per-expression side tables.
    pub id: ExprId,
    /// What it is.
    pub kind: ExprKind,
    /// Its source.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    /// An integer literal; durations are already in nanoseconds.
    Int(u64),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal, escapes decoded.
    Str(Vec<u8>),
    /// A bare identifier: a builtin (`pid`, `args`, `arg0`), a zero-argument
    /// macro, an enum value or a `#define` constant.
    Ident(String),
    /// A scratch variable `$name`, without `$`.
    Var(String),
    /// A positional parameter `$N`.
    Param(u64),
    /// `$#`, the number of positional parameters.
    ParamCount,
    /// A map used whole or as a scalar: `@name` (empty name for `@`).
    Map(String),
    /// `@name[key, …]`.
    MapAccess {
        /// The map, without `@`.
        map: Name,
        /// The keys; several keys form a tuple key.
        keys: Vec<Expr>,
    },
    /// `func(args…)`: a builtin function, macro or subprogram call.
    Call {
        /// The function name.
        func: Name,
        /// The arguments, in order.
        args: Vec<Expr>,
    },
    /// `base.field` or `base->field`.
    Field {
        /// The struct, or pointer to it.
        base: Box<Expr>,
        /// The field name.
        field: Name,
        /// Whether `->` was written.
        arrow: bool,
    },
    /// `tuple.N`.
    TupleIndex {
        /// The tuple.
        base: Box<Expr>,
        /// The element index.
        index: u32,
    },
    /// `base[index]`: array or tuple element.
    Index {
        /// The indexed value.
        base: Box<Expr>,
        /// The index.
        index: Box<Expr>,
    },
    /// `(a, b, …)`; also `()` and `(a,)`.
    Tuple(Vec<Expr>),
    /// A prefix operator.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// `++x`, `x++`, `--x`, `x--` on a variable or map.
    IncDec {
        /// Increment or decrement.
        op: IncDec,
        /// Whether the operator came first (value after the update).
        prefix: bool,
        /// The variable or map; the parser rejects anything else.
        target: Box<Expr>,
    },
    /// A binary operator.
    Binary {
        /// The operator.
        op: BinOp,
        /// Where the operator was written.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `cond ? then : otherwise`.
    Ternary {
        /// The condition.
        cond: Box<Expr>,
        /// Value when true.
        then: Box<Expr>,
        /// Value when false.
        otherwise: Box<Expr>,
    },
    /// `(type) expr`.
    Cast {
        /// The target type.
        ty: TypeExpr,
        /// The converted value.
        expr: Box<Expr>,
    },
    /// `sizeof(type)` or `sizeof(expr)`.
    Sizeof(TypeOrExpr),
    /// `offsetof(struct T, a.b)` or `offsetof(expr, a)`.
    Offsetof {
        /// The record type, or a value of it.
        of: TypeOrExpr,
        /// The field path.
        fields: Vec<Name>,
    },
    /// A block used as a value: `{ let $a = 1; $a + 1 }`.
    Block(Block),
}

/// The argument of `sizeof` and `offsetof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeOrExpr {
    /// A type, e.g. `struct task_struct`.
    Type(TypeExpr),
    /// A value whose type is meant.
    Expr(Box<Expr>),
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
    /// `*p`
    Deref,
    /// `&x`
    AddrOf,
}

impl UnaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
            UnaryOp::Deref => "*",
            UnaryOp::AddrOf => "&",
        }
    }
}

/// `++` or `--`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncDec {
    /// `++`
    Increment,
    /// `--`
    Decrement,
}

impl IncDec {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            IncDec::Increment => "++",
            IncDec::Decrement => "--",
        }
    }
}

/// Binary operators, in C's meaning and precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// A type as written in a cast, `let`, `sizeof` or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    /// The type's shape.
    pub kind: TypeKind,
    /// Its source.
    pub span: Span,
}

/// The shapes of written types. Names are not resolved: `uint64`,
/// `string` and a kernel typedef such as `pid_t` are all [`TypeKind::Named`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    /// A plain type name.
    Named(String),
    /// `struct name`, `union name` or `enum name`.
    Record {
        /// Which keyword.
        kind: RecordKind,
        /// The tag.
        name: String,
    },
    /// `T *`
    Pointer(Box<TypeExpr>),
    /// `T[N]`, or `T[]` with the length left to inference.
    Array {
        /// Element type (for `string[N]`, the string itself).
        elem: Box<TypeExpr>,
        /// The length, if written.
        len: Option<u64>,
    },
}
