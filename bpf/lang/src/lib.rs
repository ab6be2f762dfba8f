//! The bpftrace language for scorch: compiler and runtime.
//!
//! `scorch trace` runs bpftrace programs without bpftrace, LLVM or clang.
//! This crate turns program text into BPF programs and runs them, in
//! passes that each do one job and can each be dumped as text for golden
//! tests, as ply does:
//!
//! 1. **Lexing** (the internal `lexer` module): text to tokens. The
//!    text mixes two languages — C-like code in action blocks and probe
//!    specs such as `uprobe:/lib/libc.so.6:malloc+0x10` at the top level —
//!    so the lexer has a mode for each, chosen by the parser.
//! 2. **Parsing** ([`parse`]): tokens to an [`ast::Program`], C operator
//!    precedence, every node with its [`Span`], every expression with an
//!    [`ast::ExprId`] for the side tables of later passes ([`dump`]).
//! 3. **Semantic analysis** ([`sema`]): probe specs expanded against the
//!    kernel's tracepoints, names resolved, the type of every expression
//!    and of every map inferred across probes ([`sema::dump`]); kernel
//!    structs (`curtask->real_parent->comm`), casts, `sizeof`, enumerators
//!    and header constants from the kernel's BTF and the script's own
//!    declarations ([`sema::ctypes`]).
//! 4. **Code generation** ([`codegen`]): BPF instructions for each probe,
//!    with virtual registers on `r6`–`r8` and the stack, and per-CPU scratch
//!    memory for strings, keys and events ([`codegen::dump`]).
//! 5. **Running** ([`runtime`]): maps created, programs loaded and
//!    attached, ring-buffer events and maps printed by [`output`] exactly
//!    as bpftrace prints them.
//!
//! Everything up to code generation is pure: the kernel is reached through
//! [`sema::Kernel`], which tests answer from a copied tracefs directory.
//!
//! # Design constraints
//!
//! - **Current bpftrace, old scripts too.** The syntax is that of bpftrace
//!   0.2x (`begin`, `let`, `for`, macros, `args.x`, config blocks, duration
//!   literals) and older forms keep parsing (`BEGIN`, `->`, `unroll`,
//!   `#include`, struct definitions). Output is byte for byte bpftrace's.
//! - **Errors are data.** A syntax or type error is a [`Diagnostic`] with a
//!   precise span, a plain message and, where we can tell, a note or a
//!   help line ("did you mean …"). Passes recover and report as many as
//!   they can in one run; [`Diagnostic::render`] prints them like rustc and
//!   bpftrace, with the source line and a caret.
//! - **Any input is safe.** No input makes the compiler panic, loop
//!   forever or overflow the stack: recursion and tree height are bounded
//!   ([`MAX_DEPTH`]) and nothing indexes by input-derived values unchecked.
//! - **Code the verifier accepts first time**: null-checked lookups,
//!   zeroed keys, no dead code, kernel memory read through helpers only.
//!
//! # Not yet
//!
//! `iter` probes; struct walks
//! through BTF; the other functions bpftrace has beyond stacks
//! (`override` is refused with the reason: it needs a kprobe that may
//! override); `fn` subprograms.
//! Each is reported as "not supported by scorch yet" at the place it is
//! written. `for` loops walk maps (not per-CPU aggregations) and ranges.
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
pub mod codegen;
pub mod diag;
pub mod dump;
mod lexer;
pub mod macros;
pub mod output;
mod parser;
pub mod printf;
pub mod provider;
pub mod runtime;
pub mod sema;
pub mod span;
mod suggest;
mod token;
pub mod visit;

pub use diag::{render_all, Diagnostic, Severity};
pub use parser::{parse, MAX_DEPTH};
pub use provider::ProbeKind;
pub use runtime::{run, OutputFormat, RunError, RunOptions};
pub use span::{LineCol, SourceFile, Span};
