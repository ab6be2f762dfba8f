//! Kernel and script C types in expressions: `->` and `.` through BTF,
//! `[i]`, `*p`, casts to C types, `sizeof`, `offsetof`, and identifiers
//! that C headers would define (constants and enumerators).
//!
//! A pointer whose C type is known ([`Type::Ptr`] with `to`) can be walked:
//! `curtask->real_parent->comm` reads `real_parent` (a pointer) from the
//! task, then `comm` (a `char[16]`, so a string) from the parent. A struct
//! member that is itself a struct (`curtask->se`) is not read at all: it
//! becomes a [`Type::Mem`], its address, from which the next member is
//! read. Each read is recorded as an [`Access`] for code generation.
//!
//! Like current bpftrace, `.` and `->` are interchangeable: `.` reads
//! through a pointer and `->` from a struct in memory (bpftrace 0.17
//! refused both; every program it accepts means the same here).

use super::builtins::Builtin;
use super::check::Checker;
use super::ctypes::{CTypeId, Shape};
use super::probes::Attach;
use super::types::{AddrSpace, IntType, Type};
use super::{Access, Const};
use crate::ast::{Expr, ExprKind, Name, RecordKind, TypeExpr, TypeKind, TypeOrExpr};
use crate::diag::Diagnostic;

/// Why kernel types are missing, for messages.
const NO_BTF: &str =
    "kernel types come from the kernel's BTF, /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)";

impl Checker<'_> {
    /// `base.field` or `base->field` on anything but `args`.
    pub(super) fn member_access(
        &mut self,
        e: &Expr,
        base: &Expr,
        base_ty: Type,
        field: &Name,
    ) -> Option<Type> {
        let (record, space, pointers) = match &base_ty {
            Type::Ptr {
                to, space, target, ..
            } => match to.or_else(|| self.c_type_named(target)) {
                Some(to) => (to, *space, *space),
                None => {
                    self.error(self.unknown_target(field, target));
                    return None;
                }
            },
            Type::Mem {
                id,
                space,
                pointers,
                ..
            } => (*id, *space, *pointers),
            Type::Record(r) => (r.id, super::records::COPY_SPACE, r.pointers),
            Type::Int(_) => match self.typed_arg(base) {
                Some(ty) => (ty, AddrSpace::Kernel, AddrSpace::Kernel),
                None => {
                    let mut d = Diagnostic::error(
                        field.span,
                        format!(
                            "cannot read field `{}` of a value of type {base_ty}",
                            field.name
                        ),
                    );
                    d = d.with_note(
                        base.span,
                        format!("this is {base_ty}, not a pointer to a struct"),
                    );
                    d = d.with_help(match self.types.has_kernel() {
                        true => "cast it to a pointer to a struct first, e.g. `((struct task_struct *)arg0)->pid`",
                        false => NO_BTF,
                    });
                    self.error(d);
                    return None;
                }
            },
            other => {
                self.error(Diagnostic::error(
                    field.span,
                    format!("a value of type {other} has no fields"),
                ));
                return None;
            }
        };
        let name = self.types.name_of(record);
        let record = match self.types.shape(record) {
            Shape::Record { .. } => record,
            Shape::Pointer(_) => {
                self.error(
                    Diagnostic::error(
                        field.span,
                        format!(
                            "cannot read field `{}` of {name}: it is a pointer to a pointer",
                            field.name
                        ),
                    )
                    .with_help("read the pointer first: `(*p)->field`"),
                );
                return None;
            }
            Shape::Opaque(what) => {
                self.error(
                    Diagnostic::error(
                        field.span,
                        format!("cannot read field `{}` of {what}", field.name),
                    )
                    .with_help(format!("define `{name} {{ … }}` in the script")),
                );
                return None;
            }
            _ => {
                self.error(Diagnostic::error(
                    field.span,
                    format!(
                        "{name} is not a struct or union: it has no field `{}`",
                        field.name
                    ),
                ));
                return None;
            }
        };
        let members = self.types.members(record);
        let Some(member) = members.iter().find(|m| m.name == field.name) else {
            let mut d = Diagnostic::error(
                field.span,
                format!("{name} has no field `{}` in this kernel", field.name),
            );
            let names = members.iter().map(|m| m.name.as_str());
            d = match crate::suggest::closest(&field.name, names) {
                Some(near) => d.with_help(format!("did you mean `{near}`?")),
                None => d.with_help(format!(
                    "list its fields with `bpftool btf dump file /sys/kernel/btf/vmlinux format c` ({} has {} fields)",
                    name,
                    members.len()
                )),
            };
            self.error(d);
            return None;
        };
        let ty = match self.types.member_type(member.ty, space, pointers) {
            Ok(ty) => ty,
            Err(what) => {
                self.error(Diagnostic::error(
                    field.span,
                    format!(
                        "field `{}` of {name} is {what}, which scorch cannot read",
                        field.name
                    ),
                ));
                return None;
            }
        };
        let mut access = Access {
            offset: member.offset_bits / 8,
            stride: 0,
            bitfield: None,
            space,
        };
        if member.bitfield_bits > 0 {
            let first = member.offset_bits % 8;
            if first + member.bitfield_bits > 64 || !ty.is_int() {
                self.error(Diagnostic::error(
                    field.span,
                    format!(
                        "bitfield `{}` of {name} spans more than 8 bytes",
                        field.name
                    ),
                ));
                return None;
            }
            access.bitfield = Some((first as u8, member.bitfield_bits as u8));
        } else if member.offset_bits % 8 != 0 {
            self.error(Diagnostic::error(
                field.span,
                format!("field `{}` of {name} does not start on a byte", field.name),
            ));
            return None;
        }
        self.out.accesses.insert(e.id, access);
        Some(ty)
    }

    /// The C type of raw tracepoint argument `base` (`arg1` of
    /// `sched_switch` is a `struct task_struct *`), when every attach
    /// point agrees on it.
    fn typed_arg(&mut self, base: &Expr) -> Option<CTypeId> {
        let Some(Builtin::Arg(n)) = self.out.builtins.get(&base.id).copied() else {
            return None;
        };
        let kernel = self.kernel.types()?;
        let mut found: Option<CTypeId> = None;
        for instance in &self.instances {
            let Attach::RawTracepoint { name, .. } = &instance.attach else {
                return None;
            };
            let arg = *kernel.raw_tracepoint_args(name)?.get(usize::from(n))?;
            let Shape::Pointer(to) = self.types.shape(CTypeId::Kernel(arg)) else {
                return None;
            };
            match found {
                None => found = Some(to),
                Some(known) if self.types.name_of(known) == self.types.name_of(to) => {}
                Some(_) => return None,
            }
        }
        found
    }

    /// The C type spelt `target` (`const struct sock`), if known.
    fn c_type_named(&self, target: &str) -> Option<CTypeId> {
        let t = super::ctypes::strip_qualifiers(target);
        for kind in [RecordKind::Struct, RecordKind::Union] {
            if let Some(name) = t.strip_prefix(kind.as_str()) {
                return self.types.record(kind, name.trim());
            }
        }
        self.types.named(t)
    }

    fn unknown_target(&self, field: &Name, target: &str) -> Diagnostic {
        let d = Diagnostic::error(
            field.span,
            format!(
                "cannot read field `{}`: the type `{target}` is not known",
                field.name
            ),
        );
        if self.types.has_kernel() {
            d.with_help("cast it to a struct pointer: `(struct NAME *)`")
        } else {
            d.with_help(NO_BTF)
        }
    }

    /// `base[index]`: an element of an array or of what a pointer points
    /// to, or a byte of a string.
    pub(super) fn index(&mut self, e: &Expr, base: &Expr, index: &Expr) -> Option<Type> {
        let base_ty = self.expr(base);
        let index_ty = self.expr(index);
        let (base_ty, index_ty) = (base_ty?, index_ty?);
        if !index_ty.is_int() {
            self.error(Diagnostic::error(
                index.span,
                format!("an index must be an integer, not {index_ty}"),
            ));
            return None;
        }
        let constant = match &index.kind {
            ExprKind::Int(v) => Some(*v),
            _ => None,
        };
        let (element, len, space, pointers) = match &base_ty {
            Type::Str(len) => {
                if constant.is_some_and(|i| i >= u64::from(*len)) {
                    self.error(self.out_of_bounds(index, *len));
                    return None;
                }
                return Some(Type::Int(IntType {
                    size: 1,
                    signed: true,
                }));
            }
            Type::Ptr {
                to: Some(to),
                space,
                ..
            } => (*to, None, *space, *space),
            Type::Mem {
                id,
                space,
                pointers,
                ..
            } => match self.types.shape(*id) {
                Shape::Array { element, len } => (element, Some(len), *space, *pointers),
                _ => {
                    self.error(Diagnostic::error(
                        e.span,
                        format!("cannot index into {base_ty}: it is not an array"),
                    ));
                    return None;
                }
            },
            other => {
                self.error(Diagnostic::error(
                    base.span,
                    format!("cannot index into a value of type {other}"),
                ));
                return None;
            }
        };
        if let (Some(i), Some(len)) = (constant, len) {
            if i >= u64::from(len) {
                self.error(self.out_of_bounds(index, len));
                return None;
            }
        }
        let ty = self.read_type(e, element, space, pointers)?;
        let stride = self.types.size_of(element).unwrap_or(0);
        self.out.accesses.insert(
            e.id,
            Access {
                offset: 0,
                stride,
                bitfield: None,
                space,
            },
        );
        Some(ty)
    }

    fn out_of_bounds(&self, index: &Expr, len: u32) -> Diagnostic {
        Diagnostic::error(
            index.span,
            format!("index out of bounds: the array has {len} elements"),
        )
    }

    /// `*p`: what a typed pointer points to. An integer is read as the
    /// address of one of its own type, as in bpftrace (loads.bt reads
    /// `*kaddr("avenrun")`).
    pub(super) fn deref(&mut self, e: &Expr, operand: &Expr) -> Option<Type> {
        let ty = self.expr(operand)?;
        let (to, space) = match ty {
            Type::Ptr {
                to: Some(to),
                space,
                ..
            } => (to, space),
            Type::Int(int) => (self.types.int(int), self.integer_address_space(e)?),
            ty => {
                self.error(Diagnostic::error(
                    e.span,
                    format!(
                        "cannot dereference {ty}: only pointers of a known C type and integers can be read"
                    ),
                ));
                return None;
            }
        };
        let ty = self.read_type(e, to, space, space)?;
        self.out.accesses.insert(
            e.id,
            Access {
                offset: 0,
                stride: 0,
                bitfield: None,
                space,
            },
        );
        Some(ty)
    }

    /// The value type of C type `id` read at `e` from `space`, its
    /// pointers into `pointers`, reporting what cannot be.
    fn read_type(
        &mut self,
        e: &Expr,
        id: CTypeId,
        space: AddrSpace,
        pointers: AddrSpace,
    ) -> Option<Type> {
        match self.types.member_type(id, space, pointers) {
            Ok(ty) => Some(ty),
            Err(what) => {
                self.error(Diagnostic::error(
                    e.span,
                    format!("this is {what}, which scorch cannot read"),
                ));
                None
            }
        }
    }

    /// The memory an integer cast to a pointer at `e` points into: user
    /// memory in uprobe, USDT and watchpoint probes, else the kernel's.
    fn integer_address_space(&mut self, e: &Expr) -> Option<AddrSpace> {
        let mut spaces = self.instances.iter().map(|i| i.attach.address_space());
        let first = spaces.next().unwrap_or(AddrSpace::Kernel);
        if spaces.all(|s| s == first) {
            return Some(first);
        }
        self.error(
            Diagnostic::error(
                e.span,
                "this probe list mixes user-space and kernel probes: \
                 the pointer could point into either",
            )
            .with_help("give the user-space and the kernel probes separate bodies"),
        );
        None
    }

    /// `(type) expr`.
    pub(super) fn cast(&mut self, e: &Expr, ty: &TypeExpr, expr: &Expr) -> Option<Type> {
        if let TypeKind::Pointer(_) = &ty.kind {
            let from = self.expr(expr);
            let pointer = self.c_type(ty);
            let (from, pointer) = (from?, pointer?);
            let Shape::Pointer(to) = self.types.shape(pointer) else {
                return None;
            };
            let space = match from {
                Type::Ptr { space, .. } => space,
                Type::Int(_) => self.integer_address_space(e)?,
                other => {
                    self.error(Diagnostic::error(
                        e.span,
                        format!("cannot cast {other} to a pointer"),
                    ));
                    return None;
                }
            };
            return Some(self.types.pointer(to, space));
        }
        if let TypeKind::Record { kind, name } = &ty.kind {
            if *kind != RecordKind::Enum {
                self.expr(expr);
                self.error(
                    Diagnostic::error(
                        ty.span,
                        format!("cannot cast to `{} {name}`, a struct value", kind.as_str()),
                    )
                    .with_help(format!("cast to a pointer: `({} {name} *)`", kind.as_str())),
                );
                return None;
            }
        }
        let target = self.type_expr(ty)?;
        let from = self.expr(expr)?;
        match (&target, &from) {
            (Type::Int(_), Type::Int(_) | Type::Ptr { .. }) => Some(target),
            _ => {
                self.error(Diagnostic::error(
                    e.span,
                    format!("cannot cast {from} to {target}"),
                ));
                None
            }
        }
    }

    /// The C type `t` names, reporting unknown ones.
    pub(super) fn c_type(&mut self, t: &TypeExpr) -> Option<CTypeId> {
        match self.types.from_type_expr(t) {
            Ok(id) => Some(id),
            Err(mut d) => {
                if !self.types.has_kernel() && d.help.is_none() {
                    d = d.with_help(NO_BTF);
                }
                self.error(d);
                None
            }
        }
    }

    /// A written type that is not a language type (`uint32`, `string`):
    /// a kernel typedef (`u32`, `pid_t`) read as an integer.
    pub(super) fn c_value_type(&mut self, t: &TypeExpr) -> Option<Type> {
        let id = self.c_type(t)?;
        match self.types.value_type(id, AddrSpace::Kernel) {
            Ok(ty @ (Type::Int(_) | Type::Ptr { .. })) => Some(ty),
            _ => {
                self.error(Diagnostic::error(
                    t.span,
                    format!(
                        "`{}` cannot be used here: only integer, pointer and string types can",
                        self.types.name_of(id)
                    ),
                ));
                None
            }
        }
    }

    /// `sizeof(type)` or `sizeof(expr)`.
    pub(super) fn sizeof(&mut self, e: &Expr, of: &TypeOrExpr) -> Option<Type> {
        let size = match of {
            TypeOrExpr::Type(t) => match &t.kind {
                TypeKind::Named(n) if n == "string" => Some(self.config.max_strlen),
                TypeKind::Array {
                    elem,
                    len: Some(len),
                } if matches!(&elem.kind, TypeKind::Named(n) if n == "string") => {
                    Some((*len).clamp(1, 4096) as u32)
                }
                _ => {
                    let id = self.c_type(t)?;
                    let size = self.types.size_of(id);
                    if size.is_none() {
                        self.error(Diagnostic::error(
                            t.span,
                            format!("`{}` has no size", self.types.name_of(id)),
                        ));
                    }
                    size
                }
            },
            TypeOrExpr::Expr(x) => Some(self.expr(x)?.size()),
        }?;
        self.out.consts.insert(e.id, Const::Int(i64::from(size)));
        Some(Type::U64)
    }

    /// `offsetof(struct T, a.b)` or `offsetof(expr, a)`.
    pub(super) fn offsetof(&mut self, e: &Expr, of: &TypeOrExpr, fields: &[Name]) -> Option<Type> {
        let mut id = match of {
            TypeOrExpr::Type(t) => self.c_type(t)?,
            TypeOrExpr::Expr(x) => match self.expr(x)? {
                Type::Mem { id, .. } => id,
                other => {
                    self.error(Diagnostic::error(
                        x.span,
                        format!("offsetof needs a struct, not {other}"),
                    ));
                    return None;
                }
            },
        };
        let mut offset = 0u64;
        for field in fields {
            let name = self.types.name_of(id);
            let members = self.types.members(id);
            let Some(m) = members.iter().find(|m| m.name == field.name) else {
                let mut d =
                    Diagnostic::error(field.span, format!("{name} has no field `{}`", field.name));
                if let Some(near) =
                    crate::suggest::closest(&field.name, members.iter().map(|m| m.name.as_str()))
                {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                self.error(d);
                return None;
            };
            if m.bitfield_bits > 0 {
                self.error(Diagnostic::error(
                    field.span,
                    format!("`{}` is a bitfield: it has no byte offset", field.name),
                ));
                return None;
            }
            offset += u64::from(m.offset_bits / 8);
            id = m.ty;
        }
        self.out.consts.insert(e.id, Const::Int(offset as i64));
        Some(Type::U64)
    }

    /// An identifier that is no builtin: a `#define` constant or an
    /// enumerator, as C headers would have made it.
    pub(super) fn header_constant(&mut self, e: &Expr, name: &str) -> Option<Type> {
        let value = super::constants::lookup(name).or_else(|| self.types.enumerator(name))?;
        self.out.consts.insert(e.id, Const::Int(value));
        Some(Type::I64)
    }
}
