//! `path(p[, size])`: the full path of a `struct path`, through the
//! kernel's `bpf_d_path` helper.
//!
//! The kernel lets only a few attach points call `bpf_d_path`: fentry and
//! fexit programs on the functions of its `btf_allowlist_d_path` (plus
//! iterators and sleepable LSM hooks, which scorch does not attach). The
//! helper also wants the `struct path` as the kernel hands it to the
//! program — a typed function argument (`args.path`) or a struct inside
//! one (`args.filp->f_path`) — not a value read from memory. Both are
//! checked here, so a script fails with its location rather than with a
//! verifier log.

use super::check::Checker;
use super::ctypes::{CTypeId, Shape};
use super::probes::Attach;
use super::types::Type;
use crate::ast::{Expr, ExprKind, Name};
use crate::diag::Diagnostic;

/// The functions whose fentry/fexit programs may call `bpf_d_path`: the
/// kernel's `btf_allowlist_d_path` (unchanged from 5.10 to 6.x; the
/// `security_*` ones need CONFIG_SECURITY, `security_path_truncate`
/// CONFIG_SECURITY_PATH).
pub const D_PATH_FUNCTIONS: &[&str] = &[
    "dentry_open",
    "filp_close",
    "security_file_open",
    "security_file_permission",
    "security_inode_getattr",
    "security_path_truncate",
    "vfs_fallocate",
    "vfs_getattr",
    "vfs_truncate",
];

/// Largest buffer `path(p, size)` may ask for: `PATH_MAX`.
const MAX_PATH_SIZE: i64 = 4096;

impl Checker<'_> {
    /// `path(p[, size])`: a string of `size` bytes (`max_strlen` by
    /// default), as bpftrace.
    pub(super) fn path_call(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 1, 2) {
            return None;
        }
        self.d_path_allowed_here(e);
        let size = match args.get(1) {
            None => self.config.max_strlen,
            Some(arg) => match self.const_int(arg) {
                Some(n) if (1..=MAX_PATH_SIZE).contains(&n) => n as u32,
                _ => {
                    self.error(Diagnostic::error(
                        arg.span,
                        format!(
                            "path() size must be an integer constant from 1 to {MAX_PATH_SIZE}"
                        ),
                    ));
                    return None;
                }
            },
        };
        let ty = self.expr(&args[0])?;
        if stored(&args[0]) {
            self.error(
                Diagnostic::error(
                    args[0].span,
                    "path() reads only a `struct path *` taken from the probe's arguments, not one kept in a variable or map",
                )
                .with_help("the kernel trusts only the pointers it passed in: call path(args.path) in the probe itself"),
            );
            return None;
        }
        let record = match &ty {
            Type::Ptr { to: Some(to), .. } => Some(*to),
            Type::Mem { id, .. } => Some(*id),
            _ => None,
        };
        let is_path = record.is_some_and(|id| {
            matches!(self.types.shape(id), Shape::Record { ref name, .. } if super::ctypes::strip_qualifiers(name) == "struct path")
        });
        if !is_path {
            self.error(
                Diagnostic::error(
                    args[0].span,
                    format!("path() takes a `struct path *`, not {ty}"),
                )
                .with_help("give it a function argument such as `args.path`, or a struct path inside one such as `args.filp->f_path`"),
            );
            return None;
        }
        if let Some(CTypeId::Script(_)) = record {
            self.error(
                Diagnostic::error(
                    args[0].span,
                    "path() takes the kernel's `struct path *`, and this `struct path` is the script's own",
                )
                .with_help("leave `struct path` undeclared: the kernel's comes from its BTF"),
            );
            return None;
        }
        Some(Type::Str(size))
    }

    /// Reports a `path()` call in a probe whose attach points cannot call
    /// `bpf_d_path`.
    fn d_path_allowed_here(&mut self, e: &Expr) {
        let refused = self.instances.iter().find(|i| match &i.attach {
            Attach::Fentry(f) => f.via_kprobe || !D_PATH_FUNCTIONS.contains(&f.function.as_str()),
            _ => true,
        });
        let Some(refused) = refused else {
            return;
        };
        let name = refused.name.clone();
        self.error(
            Diagnostic::error(
                e.span,
                format!(
                    "path() needs a fentry/fexit probe on a function the kernel allows bpf_d_path in, such as fentry:filp_close; `{name}` is not one"
                ),
            )
            .with_help(format!(
                "the kernel allows it in fentry/fexit probes on {}",
                D_PATH_FUNCTIONS.join(", ")
            )),
        );
    }
}

/// Whether `e` reads a value kept in a variable or map (or something
/// inside one), not the probe's own arguments.
fn stored(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Var(_) | ExprKind::Map(_) | ExprKind::MapAccess { .. } => true,
        ExprKind::Field { base, .. } | ExprKind::Index { base, .. } => stored(base),
        ExprKind::Unary { operand, .. } => stored(operand),
        _ => false,
    }
}
