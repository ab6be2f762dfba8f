//! Expressions: their types, and the names inside them.

use super::builtins::{self, Builtin, Unavailable};
use super::check::Checker;
use super::maps::display;
use super::probes::Attach;
use super::tracepoint::{c_int_type, FieldType};
use super::types::Type;
use super::Const;
use crate::ast::{BinOp, Expr, ExprKind, IncDec, Name, TypeExpr, TypeKind, UnaryOp};
use crate::diag::Diagnostic;

impl Checker<'_> {
    /// The type of `e`, recorded for code generation; `None` when it
    /// cannot be known (an error was reported, or will be).
    pub(super) fn expr(&mut self, e: &Expr) -> Option<Type> {
        let ty = self.expr_kind(e)?;
        self.set_type(e, &ty);
        Some(ty)
    }

    fn expr_kind(&mut self, e: &Expr) -> Option<Type> {
        match &e.kind {
            ExprKind::Int(v) => Some(if *v > i64::MAX as u64 {
                Type::U64
            } else {
                Type::I64
            }),
            ExprKind::Bool(_) => Some(Type::U64),
            ExprKind::Str(bytes) => Some(Type::Str(bytes.len() as u32 + 1)),
            ExprKind::Ident(name) => self.builtin(e, name),
            ExprKind::Var(name) => {
                let Some(id) = self.vars.lookup(name) else {
                    self.undefined_var(e, name);
                    return None;
                };
                self.out.var_refs.insert(e.id, id);
                let ty = self.vars.info(id).ty.clone();
                if ty.is_none() && !self.vars.info(id).failed {
                    self.error(Diagnostic::error(
                        e.span,
                        format!("`${name}` is used before it is given a value"),
                    ));
                }
                ty
            }
            ExprKind::Param(n) => Some(self.param(e, *n)),
            ExprKind::ParamCount => {
                self.out
                    .consts
                    .insert(e.id, Const::Int(self.params.len() as i64));
                Some(Type::I64)
            }
            ExprKind::Map(name) => {
                self.map_keys(e, name, &[]);
                self.map_read(e, name)
            }
            ExprKind::MapAccess { map, keys } => {
                self.map_keys(e, &map.name, keys);
                self.map_read(e, &map.name)
            }
            ExprKind::Call { func, args } => self.call(e, func, args, super::calls::Use::Value),
            ExprKind::Field { base, field, .. } => self.field(e, base, field),
            ExprKind::TupleIndex { base, index } => {
                match self.expr(base)? {
                    Type::Tuple(items) => match items.get(*index as usize) {
                        Some(item) => Some(item.clone()),
                        None => {
                            self.error(Diagnostic::error(
                            e.span,
                            format!("tuple index {index} is out of range for a tuple of {} elements", items.len()),
                        ));
                            None
                        }
                    },
                    other => {
                        self.error(Diagnostic::error(
                            base.span,
                            format!("cannot index into a value of type {other}"),
                        ));
                        None
                    }
                }
            }
            ExprKind::Index { base, index } => self.index(e, base, index),
            ExprKind::Tuple(items) => {
                let mut types = Vec::with_capacity(items.len());
                for item in items {
                    let ty = self.stored_expr(item)?;
                    if !ty.is_storable() {
                        self.error(Diagnostic::error(
                            item.span,
                            format!("a value of type {ty} cannot be part of a tuple"),
                        ));
                        return None;
                    }
                    types.push(ty.widened());
                }
                Some(Type::Tuple(types))
            }
            ExprKind::Unary { op, operand } => self.unary(e, *op, operand),
            ExprKind::IncDec { op, target, .. } => self.inc_dec(*op, target),
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => self.binary(e, *op, *op_span, lhs, rhs),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.condition(cond, "a `?:` condition");
                let (a, b) = (self.expr(then)?, self.expr(otherwise)?);
                let ty = match (&a, &b) {
                    (Type::Int(x), Type::Int(y)) => Some(Type::Int(x.arith(*y))),
                    _ => a.unify(&b),
                };
                if ty.is_none() {
                    self.error(Diagnostic::error(
                        e.span,
                        format!("the branches of `?:` have different types: {a} and {b}"),
                    ));
                }
                ty
            }
            ExprKind::Cast { ty, expr } => self.cast(e, ty, expr),
            ExprKind::Sizeof(of) => self.sizeof(e, of),
            ExprKind::Offsetof { of, fields } => self.offsetof(e, of, fields),
            ExprKind::Block(block) => self.block(block),
        }
    }

    /// `$N`: an integer if the parameter is one, otherwise a string; 0
    /// when it was not given, as bpftrace does.
    fn param(&mut self, e: &Expr, n: u64) -> Type {
        let value = usize::try_from(n)
            .ok()
            .and_then(|n| self.params.get(n.checked_sub(1)?));
        let (c, ty) = match value {
            None => (Const::Int(0), Type::I64),
            Some(text) => match parse_int(text) {
                Some(v) => (Const::Int(v), Type::I64),
                None => {
                    let len = text.len() as u32 + 1;
                    (Const::Str(text.as_bytes().to_vec()), Type::Str(len))
                }
            },
        };
        self.out.consts.insert(e.id, c);
        ty
    }

    /// The value type of `@name` read at `e`.
    fn map_read(&mut self, e: &Expr, name: &str) -> Option<Type> {
        let Some(ty) = self.maps.value(name).cloned() else {
            let mut d = Diagnostic::error(e.span, format!("undefined map {}", display(name)));
            let names: Vec<String> = self
                .maps
                .names()
                .filter(|n| *n != name && self.maps.value(n).is_some())
                .map(str::to_string)
                .collect();
            if let Some(near) = crate::suggest::closest(name, names.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean {}?", display(near)));
            } else {
                d = d.with_help(format!(
                    "assign it a value first, e.g. `{} = 1`",
                    display(name)
                ));
            }
            self.error(d);
            return None;
        };
        if let Type::Agg(kind) = ty {
            self.error(
                Diagnostic::error(
                    e.span,
                    format!(
                        "reading the value of a {}() map in a probe is not supported by scorch yet",
                        kind.function()
                    ),
                )
                .with_help("print it with `print()`, or keep a plain counter: `@n = @n + 1`"),
            );
            return None;
        }
        Some(ty)
    }

    fn builtin(&mut self, e: &Expr, name: &str) -> Option<Type> {
        let kinds = self.kinds.clone();
        let mut found = None;
        for kind in kinds {
            match builtins::lookup(name, kind) {
                Ok(b) => found = Some(b),
                Err(Unavailable::Unknown(_)) if self.header_constant(e, name).is_some() => {
                    return Some(Type::I64);
                }
                Err(why) => {
                    let d = match why {
                        Unavailable::Unknown(near) => {
                            let d =
                                Diagnostic::error(e.span, format!("unknown identifier `{name}`"));
                            let near = near
                                .map(str::to_string)
                                .or_else(|| self.types.near_constant(name));
                            match near {
                                Some(near) => d.with_help(format!("did you mean `{near}`?")),
                                None => d,
                            }
                        }
                        Unavailable::NotInProbe(why) => Diagnostic::error(
                            e.span,
                            format!("`{name}` cannot be used in {kind} probes"),
                        )
                        .with_help(why),
                        Unavailable::NotSupported => Diagnostic::error(
                            e.span,
                            format!("the builtin `{name}` is not supported by scorch yet"),
                        ),
                    };
                    self.error(d);
                    return None;
                }
            }
        }
        let (builtin, ty) = found?;
        self.out.builtins.insert(e.id, builtin);
        match builtin {
            Builtin::Args => {
                self.per_instance = true;
                Some(ty)
            }
            Builtin::Arg(n) => {
                if let Some(why) = self.function_arg_problem(n) {
                    self.error(Diagnostic::error(e.span, why));
                    return None;
                }
                if self
                    .instances
                    .iter()
                    .any(|i| matches!(i.attach, Attach::Usdt(_)))
                {
                    // Each USDT probe keeps its arguments somewhere else.
                    self.per_instance = true;
                }
                // Every attach point must pass that argument: the kernel
                // refuses a program that reads past the last one.
                let short = self.instances.iter().find_map(|i| match &i.attach {
                    Attach::RawTracepoint { args, .. } if u32::from(n) >= *args => {
                        Some((i.name.clone(), *args))
                    }
                    _ => None,
                });
                if let Some((probe, args)) = short {
                    let have = match args {
                        0 => "no arguments".to_string(),
                        1 => "1 argument (arg0)".to_string(),
                        n => format!("{n} arguments (arg0 to arg{})", n - 1),
                    };
                    self.error(Diagnostic::error(
                        e.span,
                        format!("`{name}` is out of range: {probe} has {have}"),
                    ));
                    return None;
                }
                Some(ty)
            }
            Builtin::Curtask => {
                let task = self
                    .types
                    .record(crate::ast::RecordKind::Struct, "task_struct");
                Some(match task {
                    Some(to) => self.types.pointer(to, super::types::AddrSpace::Kernel),
                    None => ty,
                })
            }
            Builtin::Retval => Some(self.retval_type()),
            Builtin::Func => {
                self.per_instance = true;
                let longest = self
                    .instances
                    .iter()
                    .filter_map(|i| i.attach.function())
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                Some(Type::Str(longest as u32 + 1))
            }
            Builtin::Probe => {
                self.per_instance = true;
                let longest = self
                    .instances
                    .iter()
                    .map(|i| i.name.len())
                    .max()
                    .unwrap_or(0);
                Some(Type::Str(longest as u32 + 1))
            }
            _ => Some(ty),
        }
    }

    /// `base.field` or `base->field`.
    fn field(&mut self, e: &Expr, base: &Expr, field: &Name) -> Option<Type> {
        match self.expr(base)? {
            Type::Args => self.args_field(field),
            other => self.member_access(e, base, other, field),
        }
    }

    /// `args.field` in every attach point of the probe.
    fn args_field(&mut self, field: &Name) -> Option<Type> {
        if let Some(ty) = self.function_param(field) {
            return ty;
        }
        let mut ty: Option<(Type, String)> = None;
        for instance in self.instances.clone() {
            let Attach::Tracepoint { format, .. } = &instance.attach else {
                continue;
            };
            let Some(f) = format.field(&field.name) else {
                let mut d = Diagnostic::error(
                    field.span,
                    format!("{} has no field `{}`", instance.name, field.name),
                );
                let names = format.fields.iter().map(|f| f.name.as_str());
                d = match crate::suggest::closest(&field.name, names) {
                    Some(near) => d.with_help(format!("did you mean `{near}`?")),
                    None => d.with_help(format!(
                        "its fields are: {}",
                        format
                            .fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                self.error(d);
                return None;
            };
            let Some(this) = f.ty.value_type() else {
                self.error(Diagnostic::error(
                    field.span,
                    format!(
                        "field `{}` of {} has type `{}`, which scorch cannot read yet",
                        field.name, instance.name, f.c_type
                    ),
                ));
                return None;
            };
            match &ty {
                None => ty = Some((this, instance.name.clone())),
                Some((known, first)) if *known != this && !same_shape(&f.ty, known) => {
                    self.error(Diagnostic::error(
                        field.span,
                        format!(
                            "field `{}` is {known} in {first} but {this} in {}",
                            field.name, instance.name
                        ),
                    ));
                    return None;
                }
                Some(_) => {}
            }
        }
        ty.map(|(t, _)| t)
    }

    fn unary(&mut self, e: &Expr, op: UnaryOp, operand: &Expr) -> Option<Type> {
        if op == UnaryOp::Deref {
            return self.deref(e, operand);
        }
        let ty = self.expr(operand)?;
        match (op, &ty) {
            (UnaryOp::Not, t) if t.is_scalar() => Some(Type::U64),
            (UnaryOp::Neg, Type::Int(_)) => Some(Type::I64),
            (UnaryOp::BitNot, Type::Int(int)) => Some(Type::Int(int.arith(*int))),
            (UnaryOp::AddrOf, _) => {
                self.error(Diagnostic::error(
                    e.span,
                    format!(
                        "the `{}` operator is not supported by scorch yet",
                        op.as_str()
                    ),
                ));
                None
            }
            _ => {
                self.error(Diagnostic::error(
                    e.span,
                    format!("`{}` cannot be applied to {ty}", op.as_str()),
                ));
                None
            }
        }
    }

    fn inc_dec(&mut self, op: IncDec, target: &Expr) -> Option<Type> {
        let ty = match &target.kind {
            ExprKind::Var(name) => {
                let Some(id) = self.vars.lookup(name) else {
                    self.undefined_var(target, name);
                    return None;
                };
                self.out.var_refs.insert(target.id, id);
                self.vars.info(id).ty.clone()
            }
            ExprKind::Map(name) => {
                self.map_keys(target, name, &[]);
                self.inc_map(target, name)
            }
            ExprKind::MapAccess { map, keys } => {
                self.map_keys(target, &map.name, keys);
                self.inc_map(target, &map.name)
            }
            _ => None,
        };
        match ty {
            Some(Type::Int(int)) => {
                let ty = Type::Int(int);
                self.set_type(target, &ty);
                Some(ty)
            }
            Some(other) => {
                self.error(Diagnostic::error(
                    target.span,
                    format!("`{}` needs an integer, not {other}", op.as_str()),
                ));
                None
            }
            None => None,
        }
    }

    fn inc_map(&mut self, target: &Expr, name: &str) -> Option<Type> {
        if self.maps.value(name).is_none() {
            self.map_value(name, &Type::I64, target.span);
        }
        self.maps.value(name).cloned()
    }

    fn binary(
        &mut self,
        e: &Expr,
        op: BinOp,
        op_span: crate::span::Span,
        lhs: &Expr,
        rhs: &Expr,
    ) -> Option<Type> {
        let (a, b) = (self.expr(lhs), self.expr(rhs));
        let (a, b) = (a?, b?);
        let mismatch = |this: &mut Self| {
            this.error(Diagnostic::error(
                op_span,
                format!("`{}` cannot be applied to {a} and {b}", op.as_str()),
            ));
            None
        };
        match op {
            BinOp::And | BinOp::Or => {
                if a.is_scalar() && b.is_scalar() {
                    Some(Type::U64)
                } else {
                    mismatch(self)
                }
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match (&a, &b)
            {
                (Type::Str(_), Type::Str(_)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
                    Some(Type::U64)
                }
                _ if a.is_scalar() && b.is_scalar() => Some(Type::U64),
                _ => mismatch(self),
            },
            _ => match (&a, &b) {
                (Type::Int(x), Type::Int(y)) => {
                    if matches!(op, BinOp::Div | BinOp::Mod) && x.signed && y.signed {
                        self.error(Diagnostic::warning(
                            e.span,
                            format!(
                                "signed operands for `{}` can lead to undefined behavior (cast to unsigned to silence this warning)",
                                op.as_str()
                            ),
                        ));
                    }
                    Some(Type::Int(x.arith(*y)))
                }
                (Type::Ptr { to, .. }, Type::Int(_)) if matches!(op, BinOp::Add | BinOp::Sub) => {
                    // As in C, `p + n` steps over `n` pointed-to values.
                    let step = to.and_then(|t| self.types.size_of(t)).unwrap_or(1);
                    if step != 1 {
                        self.out.pointer_steps.insert(e.id, step);
                    }
                    Some(a.clone())
                }
                // Other arithmetic on an address (`curtask & ~0xfff`,
                // `p - q`) is arithmetic on its 64-bit value.
                (Type::Ptr { .. }, Type::Int(_) | Type::Ptr { .. })
                | (Type::Int(_), Type::Ptr { .. }) => Some(Type::U64),
                _ => mismatch(self),
            },
        }
    }

    /// The integer value of a constant expression (a literal or `$N`).
    pub(super) fn const_int(&mut self, e: &Expr) -> Option<i64> {
        match &e.kind {
            ExprKind::Int(v) => {
                self.set_type(e, &Type::I64);
                i64::try_from(*v).ok()
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand,
            } => {
                let v = self.const_int(operand)?.checked_neg()?;
                self.set_type(e, &Type::I64);
                Some(v)
            }
            ExprKind::Param(_) => {
                self.expr(e);
                match self.out.consts.get(&e.id) {
                    Some(Const::Int(v)) => Some(*v),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The type a written type names: a language type, or a C type read
    /// as an integer or pointer.
    pub(super) fn type_expr(&mut self, t: &TypeExpr) -> Option<Type> {
        match &t.kind {
            TypeKind::Named(name) if name == "string" => Some(Type::Str(self.config.max_strlen)),
            TypeKind::Named(name) if c_int_type(name).is_some() => c_int_type(name).map(Type::Int),
            TypeKind::Array {
                elem,
                len: Some(len),
            } if matches!(&elem.kind, TypeKind::Named(n) if n == "string") => {
                Some(Type::Str((*len).clamp(1, 4096) as u32))
            }
            _ => self.c_value_type(t),
        }
    }
}

/// Whether two readings of a field have the same shape, e.g. `int` and
/// `pid_t` in different tracepoints.
fn same_shape(field: &FieldType, known: &Type) -> bool {
    match (field, known) {
        (FieldType::Int(a), Type::Int(b)) => a == b,
        (FieldType::Ptr { space, .. }, Type::Ptr { space: s, .. }) => space == s,
        _ => false,
    }
}

/// An integer written as a positional parameter: decimal or `0x` hex,
/// optionally negative.
fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        None => return None,
    };
    Some(if neg { -v } else { v })
}
