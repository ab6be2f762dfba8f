//! Semantic analysis: names resolved, types inferred, probes expanded.
//!
//! The parser knows the shape of a program; this pass knows what it means.
//! It answers, for the code generator, every question whose answer is not
//! in the text alone:
//!
//! - **Probes**: which attach points a spec stands for (wildcards expanded
//!   against the kernel's tracepoint list) and what `args` holds there
//!   (from each tracepoint's format file) — see [`probes`], [`tracepoint`].
//! - **Names**: which builtin an identifier is (and whether it exists in
//!   this kind of probe), which function a call is, which declaration a
//!   `$var` refers to ([`scope`]).
//! - **C types**: kernel structs from BTF and the script's `struct`
//!   definitions ([`ctypes`]), read member by member ([`Access`]);
//!   identifiers C headers would define ([`constants`], BTF enumerators).
//!   The kernel's BTF is read only when the program may need it.
//! - **Types**: of every expression ([`types`]), and of every map's keys
//!   and values across all probes ([`maps`]). Types flow between probes
//!   through maps (`@a = @b` in one probe, `@b = comm` in another), so the
//!   checker walks the program repeatedly, without reporting, until no map
//!   or variable type changes; a last walk reports what is still wrong.
//!
//! Like the parser, the pass collects every error it can and never
//! panics. It is pure: the kernel is reached only through [`Kernel`], which
//! tests answer from a copied tracefs directory (and a small BTF file
//! beside it).

pub mod builtins;
mod calls;
mod check;
pub mod constants;
pub mod ctypes;
mod d_path;
pub mod dump;
mod expr;
mod function_args;
pub mod functions;
pub mod kernel;
pub mod kernel_probes;
pub mod maps;
mod members;
pub mod perf_events;
pub mod probes;
pub mod records;
pub mod scope;
pub mod signals;
pub mod tracepoint;
mod tseries;
pub mod types;
pub mod user_probes;

use std::collections::HashMap;

use crate::ast::{ConfigValue, ExprId, Item, Program};
use crate::diag::Diagnostic;
use crate::printf;
use crate::provider::ProbeKind;
use crate::span::Span;
pub use builtins::Builtin;
pub use ctypes::{CTypeId, CTypes};
pub use functions::Function;
pub use kernel::{Kernel, TraceFs};
pub use maps::MapInfo;
pub use probes::{Attach, Instance, KernelFunction, Rate};
pub use scope::{VarId, VarInfo};
pub use types::{AddrSpace, AggKind, IntType, StackMode, StackType, TseriesAgg, Type};

/// Settings a program can change in its `config` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Size of strings read by `str()` (bpftrace's `max_strlen`).
    pub max_strlen: u32,
    /// Entries of each map (bpftrace's `max_map_keys`).
    pub max_map_keys: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_strlen: 64,
            max_map_keys: 4096,
        }
    }
}

/// A value known at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Const {
    /// An integer.
    Int(i64),
    /// A string's bytes, without NUL.
    Str(Vec<u8>),
}

/// How `base.member`, `base[i]` or `*p` reads memory: the address is the
/// base's value (a pointer, or the address of a struct in memory) plus
/// `offset`, plus the index times `stride`; what is read there follows from
/// the expression's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Bytes past the base address.
    pub offset: u32,
    /// For `[i]`: bytes per element.
    pub stride: u32,
    /// For a bitfield: its first bit in the bytes read at `offset`, and its
    /// width in bits.
    pub bitfield: Option<(u8, u8)>,
    /// Which memory it is in.
    pub space: AddrSpace,
}

/// One `printf` call site: its format and the types of its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintfInfo {
    /// The parsed format.
    pub format: printf::Format,
    /// The argument types, in order.
    pub args: Vec<Type>,
}

/// One probe of the program, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Its attach points, in spec order.
    pub instances: Vec<Instance>,
    /// Whether the body reads something that differs per attach point
    /// (`args`, `probe`), so that each needs its own program.
    pub per_instance: bool,
}

impl ProbeInfo {
    /// The distinct kinds of its attach points.
    pub fn kinds(&self) -> Vec<ProbeKind> {
        let mut kinds: Vec<ProbeKind> = Vec::new();
        for i in &self.instances {
            let kind = match i.attach {
                Attach::Begin => ProbeKind::Begin,
                Attach::End => ProbeKind::End,
                Attach::Tracepoint { .. } => ProbeKind::Tracepoint,
                Attach::RawTracepoint { .. } => ProbeKind::RawTracepoint,
                Attach::Counter { counter, .. } => match counter.kind {
                    scorch_bpf::counter::CounterKind::Software => ProbeKind::Software,
                    scorch_bpf::counter::CounterKind::Hardware => ProbeKind::Hardware,
                },
                Attach::Interval(_) => ProbeKind::Interval,
                Attach::Profile(_) => ProbeKind::Profile,
                Attach::Uprobe(ref u) if u.ret => ProbeKind::Uretprobe,
                Attach::Uprobe(_) => ProbeKind::Uprobe,
                Attach::Usdt(_) => ProbeKind::Usdt,
                Attach::Kprobe { ret: false, .. } => ProbeKind::Kprobe,
                Attach::Kprobe { ret: true, .. } => ProbeKind::Kretprobe,
                Attach::Fentry(ref f) => f.kind(),
                Attach::Watchpoint { .. } => ProbeKind::Watchpoint,
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    }
}

/// Everything semantic analysis found out, for code generation.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// The type of every expression, by [`ExprId`] (`Void` if unvisited).
    pub types: Vec<Type>,
    /// Every map, in order of first appearance.
    pub maps: Vec<MapInfo>,
    /// Every scratch variable, by [`VarId`].
    pub vars: Vec<VarInfo>,
    /// The variable each `$var` expression refers to.
    pub var_refs: HashMap<ExprId, VarId>,
    /// The variable each `let` declares, by the span of its name.
    pub let_vars: HashMap<Span, VarId>,
    /// The builtin each builtin identifier is.
    pub builtins: HashMap<ExprId, Builtin>,
    /// The function each call is.
    pub calls: HashMap<ExprId, Function>,
    /// Expressions whose value is known at compile time.
    pub consts: HashMap<ExprId, Const>,
    /// Member, element and pointer reads, by the reading expression.
    pub accesses: HashMap<ExprId, Access>,
    /// `p + n` and `p - n` on typed pointers: the size `n` is scaled by.
    pub pointer_steps: HashMap<ExprId, u32>,
    /// `printf`, `system` and `cat` call sites, indexed by [`Analysis::formats`].
    pub printfs: Vec<PrintfInfo>,
    /// `time()` formats, indexed by [`Analysis::formats`].
    pub time_formats: Vec<String>,
    /// Calls of functions that need `--unsafe`: the function's name and
    /// where it is called.
    pub unsafe_calls: Vec<(String, Span)>,
    /// `strftime()` formats, indexed by the id in [`Type::Strftime`].
    pub strftime_formats: Vec<String>,
    /// `join()` delimiters, indexed by [`Analysis::formats`].
    pub join_delims: Vec<Vec<u8>>,
    /// For `printf`, `time` and `join` calls: the index of their format
    /// (or delimiter).
    pub formats: HashMap<ExprId, usize>,
    /// The probes, in source order.
    pub probes: Vec<ProbeInfo>,
    /// Settings from the `config` block.
    pub config: Config,
    /// Warnings: the program runs, but maybe not as meant.
    pub warnings: Vec<Diagnostic>,
}

impl Analysis {
    /// The type of `id`.
    pub fn ty(&self, id: ExprId) -> &Type {
        self.types.get(id.index()).unwrap_or(&Type::Void)
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<(usize, &MapInfo)> {
        self.maps.iter().enumerate().find(|(_, m)| m.name == name)
    }
}

/// Most diagnostics reported for one program; past this, more are noise.
const MAX_DIAGNOSTICS: usize = 50;

/// How many silent walks may pass before types must have settled.
const MAX_INFERENCE_WALKS: usize = 8;

/// Analyzes `program`, with `params` as its positional parameters.
///
/// Returns the analysis (with any warnings), or every error and warning.
pub fn analyze(
    program: &Program,
    kernel: &dyn Kernel,
    params: &[String],
) -> Result<Analysis, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut config = Config::default();
    let mut maps = maps::MapTable::default();
    // The kernel's BTF is read only for programs that may need it.
    let declares = program.items.iter().any(|i| matches!(i, Item::CDecl(_)));
    let mut types = match declares || uses_kernel_types(program) {
        true => CTypes::new(kernel.types()),
        false => CTypes::new(None),
    };
    for item in &program.items {
        if let Item::CDecl(decl) = item {
            if let Err(d) = types.declare(decl) {
                diags.push(d);
            }
        }
        preamble(item, &mut config, &mut maps, &mut diags);
    }

    let mut resolver = probes::Resolver::new(kernel);
    let mut probe_infos = Vec::new();
    for probe in program.probes() {
        let mut instances = Vec::new();
        let mut missing = Vec::new();
        for spec in &probe.specs {
            match resolver.resolve(spec) {
                Ok(found) => instances.extend(found),
                Err(d) if d.target_missing => missing.push(d),
                Err(d) => diags.push(d),
            }
        }
        diags.extend(skip_missing(missing, !instances.is_empty()));
        probe_infos.push(ProbeInfo {
            instances,
            per_instance: false,
        });
    }
    if diags.iter().any(Diagnostic::is_error) {
        diags.truncate(MAX_DIAGNOSTICS);
        return Err(diags);
    }

    let mut vars = scope::Vars::default();
    for _ in 0..MAX_INFERENCE_WALKS {
        let before = (maps.snapshot(), vars.snapshot());
        let mut silent =
            check::Checker::new(kernel, &types, params, &config, &mut maps, &mut vars, false);
        silent.program(program, &mut probe_infos);
        if (maps.snapshot(), vars.snapshot()) == before {
            break;
        }
    }
    let mut reporting =
        check::Checker::new(kernel, &types, params, &config, &mut maps, &mut vars, true);
    reporting.program(program, &mut probe_infos);
    let mut analysis = reporting.finish();
    diags.append(&mut analysis.warnings);
    if diags.iter().any(Diagnostic::is_error) {
        diags.sort_by_key(|d| (d.span.start, !d.is_error()));
        diags.truncate(MAX_DIAGNOSTICS);
        return Err(diags);
    }
    analysis.warnings = diags;
    analysis.maps = maps.finish();
    analysis.vars = vars.infos.clone();
    analysis.probes = probe_infos;
    analysis.config = config;
    Ok(analysis)
}

/// Attach points whose target does not exist: errors when the probe has
/// no other, else warnings, and the probe runs without them — as in
/// bpftrace, where tools list the names a function had across kernels
/// (biolatency's `__blk_account_io_start`, dcsnoop's
/// `lookup_fast.constprop.*`).
fn skip_missing(missing: Vec<Diagnostic>, others_found: bool) -> Vec<Diagnostic> {
    if !others_found {
        return missing;
    }
    missing
        .into_iter()
        .map(|d| Diagnostic::warning(d.span, format!("{}: skipping this attach point", d.message)))
        .collect()
}

/// Whether `program` may need the kernel's types: reading the kernel's
/// BTF takes milliseconds, which one-liners without them need not spend.
fn uses_kernel_types(program: &Program) -> bool {
    struct Find(bool);
    impl crate::visit::Visitor for Find {
        fn visit_expr(&mut self, e: &crate::ast::Expr) {
            use crate::ast::ExprKind as K;
            let is_language_type = |t: &crate::ast::TypeExpr| match &t.kind {
                crate::ast::TypeKind::Named(n) => {
                    n == "string" || tracepoint::c_int_type(n).is_some()
                }
                _ => false,
            };
            match &e.kind {
                K::Field { base, .. } => {
                    self.0 |= !matches!(&base.kind, K::Ident(n) if n == "args")
                }
                K::Cast { ty, .. } => self.0 |= !is_language_type(ty),
                K::Sizeof(crate::ast::TypeOrExpr::Type(ty)) => self.0 |= !is_language_type(ty),
                K::Sizeof(_) | K::Offsetof { .. } | K::Index { .. } => self.0 = true,
                K::Unary {
                    op: crate::ast::UnaryOp::Deref,
                    ..
                } => self.0 = true,
                // Enumerators: capitals that are not known constants.
                K::Ident(name) => {
                    self.0 |= name.bytes().any(|b| b.is_ascii_uppercase())
                        && constants::lookup(name).is_none()
                }
                _ => {}
            }
            crate::visit::walk_expr(self, e);
        }
    }
    let mut find = Find(false);
    for probe in program.probes() {
        if let Some(p) = &probe.predicate {
            crate::visit::Visitor::visit_expr(&mut find, p);
        }
        crate::visit::Visitor::visit_block(&mut find, &probe.body);
    }
    find.0
}

/// Handles the items before the probes.
fn preamble(
    item: &Item,
    config: &mut Config,
    maps: &mut maps::MapTable,
    diags: &mut Vec<Diagnostic>,
) {
    match item {
        Item::Preproc(_) | Item::CDecl(_) | Item::Probe(_) => {}
        Item::Config(c) => {
            for entry in &c.entries {
                let key = entry.key.name.to_ascii_lowercase();
                let key = key.strip_prefix("bpftrace_").unwrap_or(&key);
                let value = match entry.value {
                    ConfigValue::Int(v) => u32::try_from(v).ok(),
                    _ => None,
                };
                match (key, value) {
                    ("max_strlen", Some(v)) if (1..=1024).contains(&v) => config.max_strlen = v,
                    ("max_map_keys", Some(v)) if v >= 1 => config.max_map_keys = v,
                    ("max_strlen" | "max_map_keys", _) => diags.push(Diagnostic::error(
                        entry.value_span,
                        format!("invalid value for `{}`", entry.key.name),
                    )),
                    _ => diags.push(Diagnostic::warning(
                        entry.key.span,
                        format!("config `{}` has no effect in scorch", entry.key.name),
                    )),
                }
            }
        }
        Item::MapDecl(m) => {
            if matches!(
                m.kind.name.as_str(),
                "hash" | "lruhash" | "percpuhash" | "percpulruhash"
            ) {
                maps.declare(&m.map.name, m.max_entries);
            } else {
                diags.push(Diagnostic::error(
                    m.kind.span,
                    format!("unknown map type `{}`", m.kind.name),
                ));
            }
        }
        Item::Import(x) => diags.push(Diagnostic::error(
            x.span,
            "`import` is not supported by scorch yet",
        )),
        // Expanded where they are called ([`crate::macros`]).
        Item::Macro(_) => {}
        Item::Subprog(x) => diags.push(Diagnostic::error(
            x.span,
            "`fn` subprograms are not supported by scorch yet",
        )),
    }
}
