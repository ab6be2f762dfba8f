//! The bpftrace language for scorch: the front end.
//!
//! `scorch trace` runs bpftrace programs without bpftrace, LLVM or clang.
//! This crate turns program text into something the rest of the compiler
//! can trust, in passes that each do one job:
//!
//! 1. **Lexing** (the internal `lexer` module): text to tokens. The
//!    text mixes two languages — C-like code in action blocks and probe
//!    specs such as `uprobe:/lib/libc.so.6:malloc+0x10` at the top level —
//!    so the lexer has a mode for each, chosen by the parser.
//! 2. **Parsing** ([`parse`]): tokens to an [`ast::Program`], C operator
//!    precedence, every node with its [`Span`], every expression with an
//!    [`ast::ExprId`] for the side tables of later passes.
//! 3. Later slices: name resolution and macro expansion, type checking
//!    against BTF, lowering to an IR, BPF code generation. Each stage can
//!    be dumped as text ([`dump`] for the AST) for golden tests and
//!    `--dry-run` style output, as ply does.
//!
//! # Design constraints
//!
//! - **Current bpftrace, old scripts too.** The syntax is that of bpftrace
//!   0.2x (`begin`, `let`, `for`, macros, `args.x`, config blocks, duration
//!   literals) and older forms keep parsing (`BEGIN`, `->`, `unroll`,
//!   `#include`, struct definitions).
//! - **Errors are data.** A syntax error is a [`Diagnostic`] with a precise
//!   span, a plain message and, where we can tell, a note or a help line.
//!   The parser recovers and reports as many as it can in one run;
//!   [`Diagnostic::render`] prints them like rustc and bpftrace, with the
//!   source line and a caret.
//! - **Any input is safe.** No input makes the front end panic, loop
//!   forever or overflow the stack: recursion and tree height are bounded
//!   ([`MAX_DEPTH`]) and nothing indexes by input-derived values unchecked.
//!
//! # Non-goals of the front end
//!
//! It does not know what `pid` or `count()` are, which struct fields exist,
//! or whether `kprobe:vfs_read` can be attached: builtins are identifiers,
//! calls are names with arguments, probe spec parts stay raw text. Those
//! checks need BTF and the running kernel and belong to later passes.
//!
//! # Example
//!
//! ```
//! use scorch_lang::{dump, parse, SourceFile};
//!
//! let file = SourceFile::inline("t:syscalls:sys_enter_openat { @[comm] = count(); }");
//! let program = parse(&file).expect("valid program");
//! assert_eq!(
//!     dump::dump(&program),
//!     "(program\n  (probe\n    (spec tracepoint (as t) \"syscalls\" \"sys_enter_openat\")\n    \
//!      (block (= (@ comm) (call count)))))\n"
//! );
//!
//! let file = SourceFile::inline("trcepoint:syscalls:sys_enter_openat { }");
//! let errors = parse(&file).unwrap_err();
//! assert_eq!(
//!     errors[0].render(&file),
//!     "stdin:1:1: error: unknown probe type `trcepoint`\n\
//!      trcepoint:syscalls:sys_enter_openat { }\n\
//!      ^~~~~~~~~\n\
//!      help: did you mean `tracepoint`?\n"
//! );
//! ```

pub mod ast;
pub mod diag;
pub mod dump;
mod lexer;
mod parser;
pub mod provider;
pub mod span;
mod suggest;
mod token;
pub mod visit;

pub use diag::{render_all, Diagnostic, Severity};
pub use parser::{parse, MAX_DEPTH};
pub use provider::ProbeKind;
pub use span::{LineCol, SourceFile, Span};
