//! Function calls, checked by family: aggregations, map operations,
//! output, strings and flow.

use super::check::Checker;
use super::functions::{self, Function, Lookup};
use super::maps::display;
use super::probes::Attach;
use super::signals;
use super::types::{AddrSpace, AggKind, IntType, StackMode, StackType, Type};
use super::{Const, PrintfInfo};
use crate::ast::{Expr, ExprKind, Name};
use crate::diag::Diagnostic;
use crate::printf::{self, ArgKind};
use crate::span::Span;

/// Where a call appears, which decides what it may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// Its value is discarded.
    Statement,
    /// Its value is used in an expression.
    Value,
    /// It is assigned to a map: aggregations are allowed.
    MapValue,
}

/// Most buckets `lhist` may have, as in bpftrace.
const MAX_LHIST_BUCKETS: i64 = 1000;

impl Checker<'_> {
    pub(super) fn call(&mut self, e: &Expr, func: &Name, args: &[Expr], used: Use) -> Option<Type> {
        let f = match functions::lookup(&func.name) {
            Lookup::Known(f) => f,
            Lookup::NotSupported => {
                self.error(Diagnostic::error(
                    func.span,
                    format!(
                        "the function `{}` is not supported by scorch yet",
                        func.name
                    ),
                ));
                return None;
            }
            Lookup::Unknown(near) => {
                let mut d =
                    Diagnostic::error(func.span, format!("unknown function `{}`", func.name));
                if let Some(near) = near {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                self.error(d);
                return None;
            }
        };
        self.out.calls.insert(e.id, f);
        if f.is_unsafe() {
            self.out.unsafe_calls.push((func.name.clone(), e.span));
        }
        if f.is_aggregation() && used != Use::MapValue {
            self.error(
                Diagnostic::error(
                    e.span,
                    format!("{}() can only be assigned to a map", func.name),
                )
                .with_help(format!("write `@name = {}(…)`", func.name)),
            );
            for arg in args {
                self.expr(arg);
            }
            return None;
        }
        let ty = match f {
            Function::Count => self
                .arity(e, func, args, 0, 0)
                .then_some(Type::Agg(AggKind::Count)),
            Function::Sum
            | Function::Avg
            | Function::Min
            | Function::Max
            | Function::Stats
            | Function::Hist => self.aggregation(e, f, func, args),
            Function::Lhist => self.lhist(e, func, args),
            Function::Tseries => self.tseries(e, func, args),
            Function::Delete => self.delete(e, func, args),
            Function::Clear | Function::Zero => {
                if self.arity(e, func, args, 1, 1) {
                    self.whole_map(&args[0], &func.name);
                }
                Some(Type::Void)
            }
            Function::Print => self.print(e, func, args),
            Function::Printf | Function::System | Function::Cat => self.printf(e, func, args),
            Function::Time => self.time(e, func, args),
            Function::Str => self.str_call(e, func, args),
            Function::Exit => {
                if self.arity(e, func, args, 0, 1) {
                    if let Some(code) = args.first() {
                        self.int_arg(code, "exit code");
                    }
                }
                Some(Type::Void)
            }
            Function::Ksym | Function::Usym => {
                if !self.arity(e, func, args, 1, 1) {
                    return None;
                }
                let ty = self.expr(&args[0])?;
                if !ty.is_int() && !matches!(ty, Type::Ptr { .. }) {
                    self.error(Diagnostic::error(
                        args[0].span,
                        format!("{}() takes an address, not {ty}", func.name),
                    ));
                    return None;
                }
                Some(if f == Function::Ksym {
                    Type::Ksym
                } else {
                    Type::Usym
                })
            }
            Function::Kaddr => self.kaddr(e, func, args),
            Function::Uaddr => self.uaddr(e, func, args),
            Function::Join => self.join(e, func, args),
            Function::Strftime => self.strftime(e, func, args),
            Function::Signal => self.signal(e, func, args),
            Function::Buf => self.buf(e, func, args),
            Function::Ntop => self.ntop(e, func, args),
            Function::Cgroupid => self.cgroupid(e, func, args),
            Function::Kptr | Function::Uptr => self.mark_pointer(e, f, func, args),
            Function::Strncmp => self.strncmp(e, func, args),
            Function::Strcontains => self.strcontains(e, func, args),
            Function::Macaddr => self.macaddr(e, func, args),
            Function::Path => self.path_call(e, func, args),
            Function::Len => {
                if !self.arity(e, func, args, 1, 1) {
                    return None;
                }
                let ty = self.whole_map(&args[0], "len")?;
                if let Type::Agg(k) = ty {
                    if k.is_histogram() {
                        // Their keys are buckets, not the map's keys.
                        self.error(Diagnostic::error(
                            args[0].span,
                            format!(
                                "len() of a {}() map is not supported by scorch yet",
                                k.function()
                            ),
                        ));
                        return None;
                    }
                }
                Some(Type::U64)
            }
            Function::Bswap => {
                if !self.arity(e, func, args, 1, 1) {
                    return None;
                }
                // As bpftrace: unsigned, of the argument's size (a
                // variable's: that of its first value).
                let Type::Int(int) = self.int_arg(&args[0], "argument of bswap()")? else {
                    return None;
                };
                let var_size = self
                    .out
                    .var_refs
                    .get(&args[0].id)
                    .and_then(|&id| self.vars.info(id).int_size);
                Some(Type::Int(IntType {
                    size: var_size.unwrap_or(int.size),
                    signed: false,
                }))
            }
            Function::Override => {
                if self.arity(e, func, args, 1, 1) {
                    self.int_arg(&args[0], "return value");
                }
                // Changing a return value (bpf_override_return) is not
                // implemented; it would also need a kernel built with
                // CONFIG_BPF_KPROBE_OVERRIDE.
                self.error(
                    Diagnostic::error(
                        e.span,
                        "override() needs a kprobe on an ALLOW_ERROR_INJECTION function",
                    )
                    .with_help(
                        "scorch does not implement override() yet; the functions that allow \
                         error injection are in /sys/kernel/debug/error_injection/list",
                    ),
                );
                None
            }
            Function::Kstack | Function::Ustack => {
                self.stack_call(e, func, args, f == Function::Ustack)
            }
            Function::HasKey => {
                if !self.arity(e, func, args, 2, 2) {
                    return None;
                }
                let ExprKind::Map(name) = &args[0].kind else {
                    self.error(Diagnostic::error(
                        args[0].span,
                        "has_key() takes a map as its first argument",
                    ));
                    return None;
                };
                self.map_keys(&args[0], name, &args[1..]);
                Some(Type::U64)
            }
        };
        if used == Use::Value && ty == Some(Type::Void) {
            self.error(Diagnostic::error(
                e.span,
                format!("{}() does not return a value", func.name),
            ));
            return None;
        }
        ty
    }

    /// `kstack(mode)`, `kstack(limit)`, `kstack(mode, limit)`: the mode a
    /// bare name (`bpftrace`, `perf`, `raw`), the limit an integer literal.
    fn stack_call(&mut self, e: &Expr, func: &Name, args: &[Expr], user: bool) -> Option<Type> {
        if !self.arity(e, func, args, 0, 2) {
            return None;
        }
        let mut st = StackType {
            user,
            mode: StackMode::Bpftrace,
            limit: StackType::MAX_LIMIT,
        };
        for (i, arg) in args.iter().enumerate() {
            match &arg.kind {
                ExprKind::Ident(mode) if i == 0 => {
                    st.mode = match mode.as_str() {
                        "bpftrace" => StackMode::Bpftrace,
                        "perf" => StackMode::Perf,
                        "raw" => StackMode::Raw,
                        _ => {
                            self.error(
                                Diagnostic::error(arg.span, format!("unknown stack mode `{mode}`"))
                                    .with_help("use `bpftrace`, `perf` or `raw`"),
                            );
                            return None;
                        }
                    }
                }
                ExprKind::Int(n) if i + 1 == args.len() => {
                    if !(1..=u64::from(StackType::MAX_LIMIT)).contains(n) {
                        self.error(Diagnostic::error(
                            arg.span,
                            format!(
                                "{}() limit must be between 1 and {}",
                                func.name,
                                StackType::MAX_LIMIT
                            ),
                        ));
                        return None;
                    }
                    st.limit = *n as u32;
                }
                _ => {
                    self.error(Diagnostic::error(
                        arg.span,
                        format!(
                            "{}() takes a stack mode and a limit, both literals: `{}(perf, 8)`",
                            func.name, func.name
                        ),
                    ));
                    return None;
                }
            }
        }
        Some(Type::Stack(st))
    }

    /// `kaddr("name")`: the symbol's address, known at compile time.
    fn kaddr(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 1) {
            return None;
        }
        let ExprKind::Str(name) = &args[0].kind else {
            self.error(Diagnostic::error(
                args[0].span,
                "kaddr() takes a string literal: `kaddr(\"jiffies\")`",
            ));
            return None;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match self.kernel.kernel_symbol(&name) {
            Ok(Some(addr)) => {
                self.out.consts.insert(e.id, Const::Int(addr as i64));
                Some(Type::U64)
            }
            Ok(None) => {
                let d = Diagnostic::error(args[0].span, format!("no kernel symbol `{name}`"));
                self.error(match self.kernel.kernel_lists_data_symbols() {
                    Ok(false) => d.with_help(format!(
                        "this kernel lists only its functions in /proc/kallsyms (it was built \
                         without CONFIG_KALLSYMS_ALL), so kaddr() finds no variables; if \
                         `{name}` is one, it needs a kernel built with CONFIG_KALLSYMS_ALL=y"
                    )),
                    _ => d.with_help(format!(
                        "kernel symbols are listed in /proc/kallsyms: `grep -w {name} /proc/kallsyms`"
                    )),
                });
                None
            }
            Err(err) => {
                self.error(Diagnostic::error(
                    args[0].span,
                    format!("cannot look up kernel symbol `{name}`: {err}"),
                ));
                None
            }
        }
    }

    /// `uaddr("name")`: the address of a symbol of the probed binary,
    /// known at compile time, in uprobe and usdt probes only.
    fn uaddr(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 1) {
            return None;
        }
        let ExprKind::Str(name) = &args[0].kind else {
            self.error(Diagnostic::error(
                args[0].span,
                "uaddr() takes a string literal: `uaddr(\"counter\")`",
            ));
            return None;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let mut address = None;
        for instance in self.instances.clone() {
            let path = match &instance.attach {
                Attach::Uprobe(u) => u.path.clone(),
                Attach::Usdt(u) => u.path.clone(),
                _ => {
                    self.error(
                        Diagnostic::error(
                            e.span,
                            format!("uaddr() cannot be used in {} probes", instance.name),
                        )
                        .with_help(
                            "uaddr() names a symbol of the binary of a uprobe or usdt probe",
                        ),
                    );
                    return None;
                }
            };
            match scorch_bpf::elf_symbols::symbol_address(&path, &name) {
                Ok(Some(found)) if address.is_none_or(|a| a == found) => address = Some(found),
                Ok(Some(_)) => {
                    self.error(Diagnostic::error(
                        args[0].span,
                        format!("`{name}` has different addresses in the probe's binaries"),
                    ));
                    return None;
                }
                Ok(None) => {
                    self.error(Diagnostic::error(
                        args[0].span,
                        format!("{} has no symbol `{name}`", path.display()),
                    ));
                    return None;
                }
                Err(err) => {
                    self.error(Diagnostic::error(args[0].span, err.to_string()));
                    return None;
                }
            }
        }
        self.out.consts.insert(e.id, Const::Int(address? as i64));
        Some(Type::U64)
    }

    /// `cgroupid("/sys/fs/cgroup/…")`: the cgroup's id, known at compile
    /// time, as the `cgroup` builtin gives it.
    fn cgroupid(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 1) {
            return None;
        }
        self.expr(&args[0]);
        let path = match (&args[0].kind, self.out.consts.get(&args[0].id)) {
            (ExprKind::Str(path), _) => path.clone(),
            (ExprKind::Param(_), Some(Const::Str(path))) => path.clone(),
            _ => {
                self.error(Diagnostic::error(
                    args[0].span,
                    "cgroupid() takes a path as a string literal: `cgroupid(\"/sys/fs/cgroup/system.slice\")`",
                ));
                return None;
            }
        };
        let path = String::from_utf8_lossy(&path).into_owned();
        match self.kernel.cgroup_id(&path) {
            Ok(id) => {
                self.out.consts.insert(e.id, Const::Int(id as i64));
                Some(Type::U64)
            }
            Err(err) => {
                self.error(
                    Diagnostic::error(
                        args[0].span,
                        format!("cannot find the id of cgroup `{path}`: {err}"),
                    )
                    .with_help("give the path of a cgroup v2 directory, such as /sys/fs/cgroup/system.slice"),
                );
                None
            }
        }
    }

    /// `kptr(x)` and `uptr(x)`: `x` as a pointer into kernel or user
    /// memory, which decides how it is read once cast and dereferenced.
    fn mark_pointer(&mut self, e: &Expr, f: Function, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 1) {
            return None;
        }
        let space = if f == Function::Kptr {
            AddrSpace::Kernel
        } else {
            AddrSpace::User
        };
        match self.expr(&args[0])? {
            Type::Ptr { target, to, .. } => Some(Type::Ptr { target, space, to }),
            Type::Int(_) => Some(Type::Ptr {
                target: "void".to_string(),
                space,
                to: None,
            }),
            other => {
                self.error(Diagnostic::error(
                    args[0].span,
                    format!("{}() takes an integer or a pointer, not {other}", func.name),
                ));
                None
            }
        }
    }

    /// `strncmp(s1, s2, n)`: 0 when the first `n` bytes of two strings are
    /// equal (up to a NUL in both), else 1, as bpftrace.
    fn strncmp(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 3, 3) {
            return None;
        }
        let a = self.string_arg(&args[0], "strncmp");
        let b = self.string_arg(&args[1], "strncmp");
        match self.const_int(&args[2]) {
            Some(n) if n >= 0 => {
                self.out.consts.insert(args[2].id, Const::Int(n));
            }
            _ => {
                self.expr(&args[2]);
                self.error(Diagnostic::error(
                    args[2].span,
                    "strncmp() length must be a non-negative integer constant",
                ));
                return None;
            }
        }
        a?;
        b?;
        Some(Type::U64)
    }

    /// `strcontains(haystack, needle)`: 1 when `needle` occurs in
    /// `haystack`, else 0.
    fn strcontains(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 2, 2) {
            return None;
        }
        let a = self.string_arg(&args[0], "strcontains");
        let b = self.string_arg(&args[1], "strcontains");
        a?;
        b?;
        Some(Type::U64)
    }

    /// Checks an argument that must be a string.
    fn string_arg(&mut self, arg: &Expr, func: &str) -> Option<Type> {
        let ty = self.expr(arg)?;
        if !ty.is_str() {
            self.error(
                Diagnostic::error(arg.span, format!("{func}() compares strings, not {ty}"))
                    .with_help("read a string from a pointer with str()"),
            );
            return None;
        }
        Some(ty)
    }

    /// Checks that between `min` and `max` arguments were given.
    pub(super) fn arity(
        &mut self,
        e: &Expr,
        func: &Name,
        args: &[Expr],
        min: usize,
        max: usize,
    ) -> bool {
        if (min..=max).contains(&args.len()) {
            return true;
        }
        let wanted = match (min, max) {
            (0, 0) => "no arguments".to_string(),
            (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
            (a, b) => format!("{a} to {b} arguments"),
        };
        self.error(Diagnostic::error(
            e.span,
            format!("{}() takes {wanted} ({} given)", func.name, args.len()),
        ));
        false
    }

    pub(super) fn int_arg(&mut self, arg: &Expr, what: &str) -> Option<Type> {
        let ty = self.expr(arg)?;
        if !ty.is_int() {
            self.error(Diagnostic::error(
                arg.span,
                format!("the {what} must be an integer, not {ty}"),
            ));
            return None;
        }
        Some(ty)
    }

    fn aggregation(&mut self, e: &Expr, f: Function, func: &Name, args: &[Expr]) -> Option<Type> {
        let most = if f == Function::Hist { 2 } else { 1 };
        if !self.arity(e, func, args, 1, most) {
            return None;
        }
        let mut bits = 0u8;
        if let Some(arg) = args.get(1) {
            match self.const_int(arg) {
                Some(k @ 0..=5) => bits = k as u8,
                _ => {
                    self.error(Diagnostic::error(
                        arg.span,
                        "hist() bits must be an integer constant from 0 to 5",
                    ));
                    return None;
                }
            }
        }
        let ty = self.int_arg(&args[0], "value")?;
        let signed = ty.as_int().is_some_and(|i| i.signed);
        Some(Type::Agg(match f {
            Function::Sum => AggKind::Sum { signed },
            Function::Avg => AggKind::Avg,
            Function::Min => AggKind::Min,
            Function::Max => AggKind::Max,
            Function::Stats => AggKind::Stats,
            _ => AggKind::Hist { bits },
        }))
    }

    fn lhist(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 4, 4) {
            return None;
        }
        self.int_arg(&args[0], "value")?;
        let mut bounds = [0i64; 3];
        for (slot, (arg, what)) in bounds
            .iter_mut()
            .zip(args[1..].iter().zip(["min", "max", "step"]))
        {
            let Some(v) = self.const_int(arg) else {
                self.error(Diagnostic::error(
                    arg.span,
                    format!("lhist() {what} must be an integer constant"),
                ));
                return None;
            };
            *slot = v;
        }
        let [min, max, step] = bounds;
        let problem = if min < 0 {
            Some("lhist() min must be non-negative")
        } else if max <= min {
            Some("lhist() max must be greater than min")
        } else if step <= 0 {
            Some("lhist() step must be positive")
        } else if (max - min) / step > MAX_LHIST_BUCKETS {
            Some("lhist() would have more than 1000 buckets")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(Diagnostic::error(e.span, problem));
            return None;
        }
        Some(Type::Agg(AggKind::Lhist { min, max, step }))
    }

    /// Checks an argument that names a whole map: `clear(@m)`.
    fn whole_map(&mut self, arg: &Expr, func: &str) -> Option<Type> {
        let ExprKind::Map(name) = &arg.kind else {
            self.error(Diagnostic::error(
                arg.span,
                format!("{func}() takes a map, such as `@name`"),
            ));
            return None;
        };
        let ty = self.maps.value(name).cloned();
        if ty.is_none() {
            self.error(Diagnostic::error(
                arg.span,
                format!("undefined map {}", display(name)),
            ));
        }
        if let Some(ty) = &ty {
            self.set_type(arg, ty);
        }
        ty
    }

    fn delete(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 2) {
            return None;
        }
        let target = &args[0];
        let name = match (&target.kind, args.len()) {
            (ExprKind::MapAccess { map, keys }, 1) => {
                self.map_keys(target, &map.name, keys);
                &map.name
            }
            (ExprKind::Map(name), 1) => {
                self.map_keys(target, name, &[]);
                name
            }
            (ExprKind::Map(name), _) => {
                self.map_keys(target, name, &args[1..]);
                name
            }
            _ => {
                self.error(Diagnostic::error(
                    target.span,
                    "delete() takes a map element, such as `@name[key]`",
                ));
                return None;
            }
        };
        if let Some(ty) = self.maps.value(name).cloned() {
            if let Type::Agg(k) = &ty {
                if k.is_histogram() {
                    self.error(Diagnostic::error(
                        target.span,
                        format!(
                            "delete() of one key of a {}() map is not supported by scorch yet; use clear()",
                            k.function()
                        ),
                    ));
                }
            }
            self.set_type(target, &ty);
        } else {
            self.error(Diagnostic::error(
                target.span,
                format!("undefined map {}", display(name)),
            ));
        }
        Some(Type::Void)
    }

    fn print(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 3) {
            return None;
        }
        if let ExprKind::Map(_) = &args[0].kind {
            self.whole_map(&args[0], "print");
            for (arg, what) in args[1..].iter().zip(["top", "div"]) {
                match self.const_int(arg) {
                    Some(v) if (0..=i64::from(u32::MAX)).contains(&v) => {}
                    _ => self.error(Diagnostic::error(
                        arg.span,
                        format!("print() {what} must be a non-negative integer constant"),
                    )),
                }
            }
            return Some(Type::Void);
        }
        if args.len() > 1 {
            self.error(Diagnostic::error(
                args[1].span,
                "print() of a value takes one argument",
            ));
        }
        let ty = self.stored_expr(&args[0])?;
        if !ty.is_storable() {
            self.error(Diagnostic::error(
                args[0].span,
                format!("cannot print a value of type {ty}"),
            ));
        }
        Some(Type::Void)
    }

    fn format_literal<'x>(&mut self, arg: &'x Expr, func: &str) -> Option<&'x [u8]> {
        match &arg.kind {
            ExprKind::Str(bytes) => {
                self.set_type(arg, &Type::Str(bytes.len() as u32 + 1));
                Some(bytes)
            }
            _ => {
                self.expr(arg);
                self.error(Diagnostic::error(
                    arg.span,
                    format!("the first argument of {func}() must be a string literal"),
                ));
                None
            }
        }
    }

    fn printf(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        let Some(first) = args.first() else {
            self.arity(e, func, args, 1, usize::MAX);
            return None;
        };
        let rest: Vec<Option<Type>> = args[1..].iter().map(|a| self.expr(a)).collect();
        let bytes = self.format_literal(first, &func.name)?;
        let text = String::from_utf8_lossy(bytes).into_owned();
        let format = match printf::Format::parse(&text) {
            Ok(f) => f,
            Err(err) => {
                self.error(Diagnostic::error(
                    literal_span(first, err.offset),
                    format!("invalid {} format: {}", func.name, err.message),
                ));
                return None;
            }
        };
        let specs: Vec<&printf::Spec> = format.specs().collect();
        if specs.len() != rest.len() {
            let which = if specs.len() < rest.len() {
                "many"
            } else {
                "few"
            };
            self.error(Diagnostic::error(
                e.span,
                format!(
                    "{}: too {which} arguments for format string ({} given, {} expected)",
                    func.name,
                    rest.len(),
                    specs.len()
                ),
            ));
            return None;
        }
        let mut types = Vec::with_capacity(rest.len());
        for ((spec, ty), arg) in specs.iter().zip(&rest).zip(&args[1..]) {
            let ty = ty.clone()?;
            let ok = match spec.arg_kind() {
                ArgKind::Str => {
                    ty.is_str()
                        || matches!(
                            ty,
                            Type::Stack(_)
                                | Type::Ksym
                                | Type::Usym
                                | Type::Strftime(_)
                                | Type::Inet
                                | Type::Mac
                        )
                }
                ArgKind::Buf => matches!(ty, Type::Buf(_)),
                // A timestamp prints only as the text it formats to.
                ArgKind::Int | ArgKind::Ptr => ty.is_scalar() && !matches!(ty, Type::Strftime(_)),
            };
            if !ok {
                let wanted = match spec.arg_kind() {
                    ArgKind::Str => "a string",
                    ArgKind::Buf => "a buffer from buf()",
                    ArgKind::Int | ArgKind::Ptr => "an integer",
                };
                self.error(Diagnostic::error(
                    arg.span,
                    format!("{}: %{} expects {wanted}, not {ty}", func.name, spec.conv),
                ));
                return None;
            }
            types.push(ty);
        }
        let index = self.out.printfs.len();
        self.out.printfs.push(PrintfInfo {
            format,
            args: types,
        });
        self.out.formats.insert(e.id, index);
        Some(Type::Void)
    }

    fn time(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 0, 1) {
            return None;
        }
        let format = match args.first() {
            Some(arg) => String::from_utf8_lossy(self.format_literal(arg, "time")?).into_owned(),
            None => "%H:%M:%S\n".to_string(),
        };
        let index = self.out.time_formats.len();
        self.out.time_formats.push(format);
        self.out.formats.insert(e.id, index);
        Some(Type::Void)
    }

    /// `join(argv[, delim])`: an array of string pointers, ended by a
    /// NULL, printed joined by `delim` (a string literal, `" "` by default).
    fn join(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 2) {
            return None;
        }
        let ty = self.expr(&args[0])?;
        if !ty.is_int() && !matches!(ty, Type::Ptr { .. }) {
            self.error(Diagnostic::error(
                args[0].span,
                format!("join() takes an array of strings (`char *arr[]`), not {ty}"),
            ));
            return None;
        }
        let delim = match args.get(1) {
            Some(arg) => match &arg.kind {
                ExprKind::Str(bytes) => {
                    self.set_type(arg, &Type::Str(bytes.len() as u32 + 1));
                    bytes.clone()
                }
                _ => {
                    self.expr(arg);
                    self.error(Diagnostic::error(
                        arg.span,
                        "join() delimiter must be a string literal: `join(args.argv, \",\")`",
                    ));
                    return None;
                }
            },
            None => b" ".to_vec(),
        };
        let index = self.out.join_delims.len();
        self.out.join_delims.push(delim);
        self.out.formats.insert(e.id, index);
        Some(Type::Void)
    }

    /// `strftime(fmt, nsecs)`: the timestamp, formatted in user space.
    fn strftime(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 2, 2) {
            return None;
        }
        let format = self.format_literal(&args[0], "strftime");
        self.int_arg(&args[1], "timestamp")?;
        let format = String::from_utf8_lossy(format?).into_owned();
        let id = match self.out.strftime_formats.iter().position(|f| *f == format) {
            Some(id) => id,
            None => {
                self.out.strftime_formats.push(format);
                self.out.strftime_formats.len() - 1
            }
        };
        Some(Type::Strftime(id as u32))
    }

    /// `signal(SIG)`: a signal name (`"SIGKILL"` or `"KILL"`) or number.
    fn signal(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 1) {
            return None;
        }
        let arg = &args[0];
        if let ExprKind::Str(name) = &arg.kind {
            let name = String::from_utf8_lossy(name);
            let Some(number) = signals::number(&name) else {
                self.error(
                    Diagnostic::error(arg.span, format!("unknown signal `{name}`"))
                        .with_help("use a name such as \"SIGUSR1\" or \"KILL\", or a number"),
                );
                return None;
            };
            self.set_type(arg, &Type::U64);
            self.out
                .consts
                .insert(arg.id, Const::Int(i64::from(number)));
            return Some(Type::Void);
        }
        self.int_arg(arg, "signal")?;
        if let Some(n) = self.const_int(arg) {
            if !(1..=signals::MAX).contains(&n) {
                self.error(Diagnostic::error(
                    arg.span,
                    format!(
                        "signal {n} is out of range: signals are 1 to {}",
                        signals::MAX
                    ),
                ));
                return None;
            }
        }
        Some(Type::Void)
    }

    /// `buf(p[, len])`: `len` bytes from `p` (at most `max_strlen`); the
    /// length may be left out when `p` is a string or array.
    fn buf(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 2) {
            return None;
        }
        let max = self.config.max_strlen;
        let source = self.expr(&args[0])?;
        let cap = match (args.get(1), &source) {
            (None, Type::Str(size)) => *size,
            (None, _) => {
                self.error(Diagnostic::error(
                    e.span,
                    "buf() of a pointer needs a length: `buf(p, 16)`",
                ));
                return None;
            }
            (Some(len), _) => {
                self.int_arg(len, "length")?;
                match self.const_int(len) {
                    Some(n) if n < 0 => {
                        self.error(Diagnostic::error(
                            len.span,
                            "buf() length must not be negative",
                        ));
                        return None;
                    }
                    Some(n) => (n as u64).min(u64::from(max)) as u32,
                    None => max,
                }
            }
        };
        if !matches!(source, Type::Str(_) | Type::Ptr { .. } | Type::Int(_)) {
            self.error(Diagnostic::error(
                args[0].span,
                format!("buf() reads memory from a pointer, not from {source}"),
            ));
            return None;
        }
        Some(Type::Buf(cap))
    }

    /// `ntop(addr)` or `ntop(af, addr)`: an IPv4 address in an integer,
    /// or an IPv4 or IPv6 one in a `buf()` of 4 or 16 bytes or in a
    /// kernel array such as `in6_u.u6_addr8`; without
    /// `af`, the size says which.
    fn ntop(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 2) {
            return None;
        }
        if args.len() == 2 {
            self.int_arg(&args[0], "address family")?;
        }
        let addr = args.last()?;
        match self.expr(addr)? {
            Type::Int(_) | Type::Buf(4 | 16) | Type::Mem { size: 4 | 16, .. } => Some(Type::Inet),
            other => {
                self.error(Diagnostic::error(
                    addr.span,
                    format!("ntop() takes an integer, or a buf() or array of 4 or 16 bytes, not {other}"),
                ));
                None
            }
        }
    }

    /// `macaddr(addr)`: six bytes read from a pointer, an address or an
    /// array of 6 bytes (`ethhdr->h_source`, which reads as a
    /// `string[6]`), as bpftrace.
    fn macaddr(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 1) {
            return None;
        }
        let ty = self.expr(&args[0])?;
        if matches!(args[0].kind, ExprKind::Str(_)) {
            self.error(
                Diagnostic::error(args[0].span, "macaddr() does not take a string literal")
                    .with_help("give it a pointer or an array of 6 bytes read from memory"),
            );
            return None;
        }
        match ty {
            Type::Int(_) | Type::Ptr { .. } | Type::Mem { size: 6, .. } | Type::Str(6) => {
                Some(Type::Mac)
            }
            other => {
                self.error(Diagnostic::error(
                    args[0].span,
                    format!("macaddr() takes a pointer or an array of 6 bytes, not {other}"),
                ));
                None
            }
        }
    }

    fn str_call(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 2) {
            return None;
        }
        let len = match args.get(1) {
            None => None,
            Some(arg) => match self.const_int(arg) {
                // `len` characters, plus the NUL, within `max_strlen`.
                Some(n) if n >= 1 => {
                    Some((n as u64 + 1).min(u64::from(self.config.max_strlen)) as u32)
                }
                _ => {
                    self.error(Diagnostic::error(
                        arg.span,
                        "str() length must be a positive integer constant",
                    ));
                    return None;
                }
            },
        };
        let source = self.expr(&args[0])?;
        if let Some(Const::Str(bytes)) = self.out.consts.get(&args[0].id).cloned() {
            // `str($1)`: the parameter, cut to `len` characters.
            let mut bytes = bytes;
            if let Some(len) = len {
                bytes.truncate(len as usize - 1);
            }
            let ty = Type::Str(bytes.len() as u32 + 1);
            self.out.consts.insert(e.id, Const::Str(bytes));
            return Some(ty);
        }
        if let (Some(Const::Int(v)), ExprKind::Param(_)) =
            (self.out.consts.get(&args[0].id).cloned(), &args[0].kind)
        {
            let mut bytes = v.to_string().into_bytes();
            if let Some(len) = len {
                bytes.truncate(len as usize - 1);
            }
            let ty = Type::Str(bytes.len() as u32 + 1);
            self.out.consts.insert(e.id, Const::Str(bytes));
            return Some(ty);
        }
        match source {
            Type::Str(size) => Some(Type::Str(len.map_or(size, |l| l.min(size)))),
            Type::Ptr { .. } | Type::Int(_) => {
                Some(Type::Str(len.unwrap_or(self.config.max_strlen)))
            }
            other => {
                self.error(Diagnostic::error(
                    args[0].span,
                    format!("str() reads a string from a pointer, not from {other}"),
                ));
                None
            }
        }
    }
}

/// The span of byte `offset` of a string literal's value, for errors
/// inside format strings (exact when the literal has no escapes).
fn literal_span(literal: &Expr, offset: usize) -> Span {
    let start = literal
        .span
        .start
        .saturating_add(1)
        .saturating_add(offset as u32);
    if start < literal.span.end {
        Span::new(start, start + 1)
    } else {
        literal.span
    }
}
