//! `kprobe`/`kretprobe` and `fentry`/`fexit` specs resolved to kernel
//! functions.
//!
//! kprobes can target the functions tracefs lists (or, under lockdown,
//! kallsyms); fentry/fexit the functions the kernel's BTF describes, with
//! typed, named arguments (`args.filename`). A kernel without kprobes but
//! with BPF trampolines runs a kprobe (without offset) as an fentry, a
//! kretprobe as an fexit: the program then reads `arg0..` from the
//! trampoline's argument array instead of `pt_regs`. Setting
//! [`VIA_FENTRY_ENV`] forces that path, for tests on kernels that have both.

use std::path::Path;
use std::sync::Arc;

use scorch_bpf::btf_types::{self, KernelTypes};

use super::ctypes::CTypeId;
use super::kernel::Kernel;
use super::probes::{glob, Attach, Instance, Resolver};
use super::types::{AddrSpace, IntType, Type};
use crate::ast::ProbeSpec;
use crate::diag::Diagnostic;
use crate::provider::ProbeKind;

/// Set (to anything) to run kprobes through fentry/fexit even where the
/// kernel has kprobes.
pub const VIA_FENTRY_ENV: &str = "SCORCH_KPROBE_VIA_FENTRY";

/// A kernel function attached through a BPF trampoline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFunction {
    /// The function.
    pub function: String,
    /// On return (fexit) rather than on entry (fentry).
    pub ret: bool,
    /// Its parameters, from BTF.
    pub params: Vec<FentryParam>,
    /// The type of its return value (`None`: one scorch cannot read).
    pub return_type: Option<Type>,
    /// Where fexit finds the return value in its context, in 8-byte slots.
    pub return_slot: usize,
    /// Written as a kprobe or kretprobe: `arg0..` rather than `args`.
    pub via_kprobe: bool,
}

impl KernelFunction {
    /// The kind of probe it was written as.
    pub fn kind(&self) -> ProbeKind {
        match (self.via_kprobe, self.ret) {
            (true, false) => ProbeKind::Kprobe,
            (true, true) => ProbeKind::Kretprobe,
            (false, false) => ProbeKind::Fentry,
            (false, true) => ProbeKind::Fexit,
        }
    }
}

/// One parameter of a kernel function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FentryParam {
    /// Its name.
    pub name: String,
    /// Its C type, for messages and `-lv`.
    pub c_type: String,
    /// Its type as a value (`None`: one scorch cannot read, such as a
    /// struct passed by value).
    pub ty: Option<Type>,
    /// Its first 8-byte slot in the trampoline's context: a struct of 9
    /// to 16 bytes passed by value takes two.
    pub slot: usize,
}

/// The trampoline context slots of a parameter of BTF type `id`.
fn slots(btf: &KernelTypes, id: btf_types::TypeId) -> usize {
    btf.size_of(id)
        .map_or(1, |size| (size as usize).div_ceil(8).max(1))
}

/// Kernel facts read once per analysis.
#[derive(Default)]
pub(crate) struct Facts {
    functions: Option<Result<Vec<String>, String>>,
    btf: Option<Result<Arc<KernelTypes>, String>>,
}

impl Facts {
    /// The functions kprobes can target.
    fn functions(&mut self, kernel: &dyn Kernel) -> Result<&[String], String> {
        self.functions
            .get_or_insert_with(|| kernel.kernel_functions().map_err(|e| e.to_string()))
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The running kernel's BTF.
    fn btf(&mut self, kernel: &dyn Kernel) -> Result<Arc<KernelTypes>, String> {
        self.btf
            .get_or_insert_with(|| kernel.kernel_types().map_err(|e| e.to_string()))
            .clone()
    }
}

/// Whether kprobes must go through fentry/fexit: the kernel has no kprobe
/// PMU, or [`VIA_FENTRY_ENV`] asks for it.
pub fn kprobes_via_fentry() -> bool {
    std::env::var_os(VIA_FENTRY_ENV).is_some()
        || !Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
}

/// The value type of BTF type `id`: integers, enums and pointers.
pub fn value_type(btf: &KernelTypes, id: btf_types::TypeId) -> Option<Type> {
    match btf.resolve(id) {
        btf_types::Type::Int { size, signed, .. } | btf_types::Type::Enum { size, signed, .. }
            if matches!(size, 1 | 2 | 4 | 8) =>
        {
            Some(Type::Int(IntType {
                size: size as u8,
                signed,
            }))
        }
        btf_types::Type::Pointer(target) => Some(Type::Ptr {
            target: btf.name_of(target),
            space: AddrSpace::Kernel,
            to: Some(CTypeId::Kernel(target)),
        }),
        _ => None,
    }
}

/// The BTF prototype of `function`, if BTF describes it.
pub fn function_proto(btf: &KernelTypes, function: &str) -> Option<Proto> {
    let (params, ret) = btf.function(function)?;
    let mut next_slot = 0;
    let params = params
        .into_iter()
        .map(|p| {
            let slot = next_slot;
            next_slot += slots(btf, p.ty);
            FentryParam {
                c_type: btf.name_of(p.ty),
                ty: value_type(btf, p.ty),
                name: p.name,
                slot,
            }
        })
        .collect();
    let ret = match ret {
        0 => None,
        id => value_type(btf, id),
    };
    Some(Proto {
        params,
        return_type: ret,
        return_slot: next_slot,
    })
}

/// A kernel function's prototype as fentry/fexit see it.
pub struct Proto {
    /// Its parameters.
    pub params: Vec<FentryParam>,
    /// The type of its return value (`None`: one scorch cannot read).
    pub return_type: Option<Type>,
    /// The context slot of the return value in fexit, after the parameters'.
    pub return_slot: usize,
}

impl Resolver<'_> {
    /// `kprobe:FUNC[+OFFSET]`, `kretprobe:FUNC`, `fentry:FUNC`,
    /// `fexit:FUNC`, each with wildcards in the function, and `vmlinux:`
    /// before it as `-l` lists fentry probes (other modules are refused:
    /// the function lists here do not say which module has what).
    pub(super) fn kernel_probe(
        &mut self,
        spec: &ProbeSpec,
        parts: &[&str],
    ) -> Result<Vec<Instance>, Diagnostic> {
        let kind = spec.kind;
        let name = kind.name();
        let target = match parts {
            [function] | ["vmlinux", function] if !function.is_empty() => *function,
            [module, function] if !function.is_empty() => {
                return Err(Diagnostic::error(
                    spec.span,
                    format!("scorch does not select kernel functions by module (`{module}:`) yet"),
                )
                .with_help(format!(
                    "drop the module: `{name}:{function}` finds a module's functions by name too"
                )))
            }
            _ => {
                return Err(Diagnostic::error(
                    spec.span,
                    format!("a {name} probe is written `{name}:FUNCTION`"),
                ))
            }
        };
        let ret = matches!(kind, ProbeKind::Kretprobe | ProbeKind::Fexit);
        let (function, offset) = match target.split_once('+') {
            Some((f, off)) if kind == ProbeKind::Kprobe => {
                match super::user_probes::parse_number(off) {
                    Some(off) => (f, off),
                    None => {
                        return Err(Diagnostic::error(
                            spec.span,
                            format!("invalid offset `{off}`: write a number such as 16 or 0x10"),
                        ))
                    }
                }
            }
            _ => (target, 0),
        };
        let kprobe = matches!(kind, ProbeKind::Kprobe | ProbeKind::Kretprobe);
        if kprobe && !self.kernel.kprobes_via_fentry() {
            return self.kprobes(spec, function, offset, ret);
        }
        if kprobe && offset != 0 {
            return Err(Diagnostic::error(
                spec.span,
                format!(
                    "cannot attach {name}:{target}: this kernel has no kprobes (built without CONFIG_KPROBES and CONFIG_KPROBE_EVENTS), and fentry, which scorch uses instead, can only attach at a function's entry"
                ),
            )
            .with_help(format!("probe the function's entry: `{name}:{function}`")));
        }
        self.trampolines(spec, function, ret, kprobe)
    }

    fn kprobes(
        &mut self,
        spec: &ProbeSpec,
        pattern: &str,
        offset: u64,
        ret: bool,
    ) -> Result<Vec<Instance>, Diagnostic> {
        let name = spec.kind.name();
        let all = self.kernel_facts.functions(self.kernel).map_err(|e| {
            Diagnostic::error(spec.span, format!("cannot list kernel functions: {e}"))
        })?;
        let found: Vec<Instance> = all
            .iter()
            .filter(|f| glob(pattern, f))
            .map(|f| Instance {
                name: match offset {
                    0 => format!("{name}:{f}"),
                    off => format!("{name}:{f}+{off}"),
                },
                attach: Attach::Kprobe {
                    function: f.clone(),
                    offset,
                    ret,
                },
            })
            .collect();
        if found.is_empty() {
            return Err(not_found(spec, pattern, all));
        }
        Ok(found)
    }

    fn trampolines(
        &mut self,
        spec: &ProbeSpec,
        pattern: &str,
        ret: bool,
        via_kprobe: bool,
    ) -> Result<Vec<Instance>, Diagnostic> {
        let name = spec.kind.name();
        let btf = self.kernel_facts.btf(self.kernel).map_err(|e| {
            let why = if via_kprobe {
                "this kernel has no kprobes (built without CONFIG_KPROBES), and fentry, which scorch uses instead, needs the kernel's BTF (CONFIG_DEBUG_INFO_BTF)"
            } else {
                "fentry/fexit need the kernel's BTF (CONFIG_DEBUG_INFO_BTF)"
            };
            Diagnostic::error(spec.span, format!("cannot attach {name}:{pattern}: {why}: {e}"))
        })?;
        let names = btf.function_names();
        let found: Vec<Instance> = names
            .iter()
            .filter(|f| glob(pattern, f))
            .filter_map(|f| {
                let proto = function_proto(&btf, f)?;
                Some(Instance {
                    name: format!("{name}:{f}"),
                    attach: Attach::Fentry(Arc::new(KernelFunction {
                        function: f.clone(),
                        ret,
                        params: proto.params,
                        return_type: proto.return_type,
                        return_slot: proto.return_slot,
                        via_kprobe,
                    })),
                })
            })
            .collect();
        if found.is_empty() {
            let mut d = not_found(spec, pattern, &names);
            if via_kprobe {
                d = d.with_note(
                    spec.span,
                    "this kernel has no kprobes (built without CONFIG_KPROBES), so scorch looked for the function in BTF, for fentry",
                );
            }
            return Err(d);
        }
        Ok(found)
    }
}

fn not_found(spec: &ProbeSpec, pattern: &str, known: &[String]) -> Diagnostic {
    let name = spec.kind.name();
    let d = Diagnostic::error(
        spec.span,
        format!("no kernel function `{pattern}` to attach {name} to"),
    )
    .with_target_missing();
    match crate::suggest::closest(pattern, known.iter().map(String::as_str)) {
        Some(near) => d.with_help(format!("did you mean `{name}:{near}`?")),
        None => d.with_help(format!("list them with `scorch trace -l '{name}:*'`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-byte struct passed by value takes two slots of the trampoline's
    /// context, and fexit's return value comes after all of them.
    #[test]
    fn structs_passed_by_value_take_two_slots() {
        let Ok(btf) = KernelTypes::vmlinux() else {
            eprintln!("skipped: this kernel's BTF cannot be read");
            return;
        };
        let proto = function_proto(&btf, "timespec64_add_safe")
            .expect("timespec64_add_safe(struct timespec64, struct timespec64) is in BTF");
        let slots: Vec<usize> = proto.params.iter().map(|p| p.slot).collect();
        assert_eq!(slots, [0, 2]);
        assert_eq!(proto.return_slot, 4);
        let proto = function_proto(&btf, "do_nanosleep").expect("do_nanosleep is in BTF");
        let slots: Vec<usize> = proto.params.iter().map(|p| p.slot).collect();
        assert_eq!(slots, [0, 1]);
        assert_eq!(proto.return_slot, 2);
    }
}
