//! What `arg0..`, `retval` and `args.NAME` mean in probes on functions.
//!
//! kprobes and uprobes read `arg0..arg5` from the registers of the x86_64
//! calling convention; USDT probes from where each probe's note says;
//! fentry/fexit (and kprobes run through them) from the trampoline's
//! argument array, where BTF also names them (`args.filename`) and types
//! them.

use super::check::Checker;
use super::probes::Attach;
use super::types::Type;
use crate::ast::Name;
use crate::diag::Diagnostic;
use scorch_bpf::usdt::ArgLocation;

/// Arguments the x86_64 calling convention passes in registers.
pub const REGISTER_ARGS: u8 = 6;

fn count(n: usize) -> String {
    match n {
        0 => "no arguments".to_string(),
        1 => "1 argument (arg0)".to_string(),
        n => format!("{n} arguments (arg0 to arg{})", n - 1),
    }
}

impl Checker<'_> {
    /// Why `argN` cannot be read in some attach point of this probe.
    pub(super) fn function_arg_problem(&self, n: u8) -> Option<String> {
        self.instances.iter().find_map(|i| match &i.attach {
            Attach::Uprobe(_) | Attach::Kprobe { .. } if n >= REGISTER_ARGS => Some(format!(
                "`arg{n}` is out of reach: scorch reads function arguments from registers, arg0 to arg{} on x86_64",
                REGISTER_ARGS - 1
            )),
            Attach::Fentry(f) if usize::from(n) >= f.params.len() => Some(format!(
                "`arg{n}` is out of range: {} has {}",
                f.function,
                count(f.params.len())
            )),
            Attach::Usdt(u) => match u.probe.args.get(usize::from(n)) {
                None => Some(format!(
                    "`arg{n}` is out of range: {} has {}",
                    i.name,
                    count(u.probe.args.len())
                )),
                Some(arg) => match &arg.location {
                    ArgLocation::Unsupported(spec) => Some(format!(
                        "argument {n} of {} is `{spec}`, a location scorch cannot read yet",
                        i.name
                    )),
                    _ => None,
                },
            },
            _ => None,
        })
    }

    /// The type of `retval`: the function's return type in fexit probes,
    /// else a 64-bit register.
    pub(super) fn retval_type(&self) -> Type {
        let mut types = self.instances.iter().map(|i| match &i.attach {
            Attach::Fentry(f) if !f.via_kprobe => f.return_type.clone(),
            _ => None,
        });
        let first = types.next().flatten();
        match first {
            Some(t) if types.all(|other| other.as_ref() == Some(&t)) => t,
            _ => Type::U64,
        }
    }

    /// `args.NAME` in fentry/fexit probes: `None` when the probe is not
    /// one, else the argument's type (`Some(None)` after an error).
    pub(super) fn function_param(&mut self, field: &Name) -> Option<Option<Type>> {
        let functions: Vec<_> = self
            .instances
            .iter()
            .filter_map(|i| match &i.attach {
                Attach::Fentry(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        if functions.is_empty() {
            return None;
        }
        let mut found: Option<(Type, String)> = None;
        for f in functions {
            let Some(param) = f.params.iter().find(|p| p.name == field.name) else {
                let names = f.params.iter().map(|p| p.name.as_str());
                let d = Diagnostic::error(
                    field.span,
                    format!("{} has no argument `{}`", f.function, field.name),
                );
                let d = match crate::suggest::closest(&field.name, names) {
                    Some(near) => d.with_help(format!("did you mean `{near}`?")),
                    None => d.with_help(format!(
                        "its arguments are: {}",
                        f.params
                            .iter()
                            .map(|p| format!("{} {}", p.c_type, p.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                self.error(d);
                return Some(None);
            };
            let Some(ty) = param.ty.clone() else {
                self.error(Diagnostic::error(
                    field.span,
                    format!(
                        "argument `{}` of {} has type `{}`, which scorch cannot read yet",
                        field.name, f.function, param.c_type
                    ),
                ));
                return Some(None);
            };
            match &found {
                None => found = Some((ty, f.function.clone())),
                Some((known, first)) if *known != ty => {
                    self.error(Diagnostic::error(
                        field.span,
                        format!(
                            "argument `{}` is {known} in {first} but {ty} in {}",
                            field.name, f.function
                        ),
                    ));
                    return Some(None);
                }
                Some(_) => {}
            }
        }
        Some(found.map(|(t, _)| t))
    }
}
