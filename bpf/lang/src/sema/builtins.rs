//! Builtin variables: what `pid`, `comm` or `args` mean in a probe.
//!
//! A builtin's type is fixed, but whether it exists depends on the probe:
//! `args` is the record of a tracepoint and means nothing in `interval`.
//! [`lookup`] answers both questions; unknown names get a suggestion drawn
//! from every builtin bpftrace knows, so `pdi` suggests `pid` even where
//! scorch does not implement all of them yet.

use super::types::{IntType, StackMode, StackType, Type};
use crate::provider::ProbeKind;

/// A builtin variable scorch compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// Process id (tgid).
    Pid,
    /// Thread id.
    Tid,
    /// User id.
    Uid,
    /// Group id.
    Gid,
    /// Nanoseconds since boot (monotonic).
    Nsecs,
    /// Nanoseconds since the program started.
    Elapsed,
    /// The CPU the probe runs on.
    Cpu,
    /// The NUMA node the probe runs on.
    NumaId,
    /// The current thread's name.
    Comm,
    /// The cgroup v2 id of the current task.
    Cgroup,
    /// A pseudo-random 32-bit number.
    Rand,
    /// The address of the current `task_struct`.
    Curtask,
    /// The kernel's jiffies counter.
    Jiffies,
    /// The tracepoint record.
    Args,
    /// The probe's full name.
    Probe,
    /// The kernel stack.
    Kstack,
    /// The user stack.
    Ustack,
    /// Argument N: of a raw tracepoint, a function (kprobe, uprobe) or a
    /// USDT probe.
    Arg(u8),
    /// The return value of a function (kretprobe, uretprobe, fexit).
    Retval,
    /// The name of the probed function.
    Func,
}

/// Whether probes of `kind` fire inside a function whose arguments
/// `arg0..` name.
fn has_args(kind: ProbeKind) -> bool {
    matches!(
        kind,
        ProbeKind::Kprobe | ProbeKind::Uprobe | ProbeKind::Usdt
    )
}

/// Whether probes of `kind` fire on return from a function.
fn has_retval(kind: ProbeKind) -> bool {
    matches!(
        kind,
        ProbeKind::Kretprobe | ProbeKind::Uretprobe | ProbeKind::Fexit
    )
}

/// Every builtin bpftrace documents, for suggestions.
const ALL_NAMES: &[&str] = &[
    "pid",
    "tid",
    "uid",
    "gid",
    "nsecs",
    "elapsed",
    "numaid",
    "cpu",
    "comm",
    "kstack",
    "ustack",
    "arg0",
    "arg1",
    "arg2",
    "args",
    "sarg0",
    "retval",
    "func",
    "probe",
    "curtask",
    "rand",
    "cgroup",
    "cpid",
    "username",
    "jiffies",
    "usermode",
    "ncpus",
    "__builtin_cpu",
];

/// Why a builtin name cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No builtin by that name; maybe a near one.
    Unknown(Option<&'static str>),
    /// Known, but not in this kind of probe.
    NotInProbe(&'static str),
    /// Known to bpftrace, not compiled by scorch yet.
    NotSupported,
}

/// The builtin `name` in a probe of `kind`, and its type.
pub fn lookup(name: &str, kind: ProbeKind) -> Result<(Builtin, Type), Unavailable> {
    let u32t = Type::Int(IntType::U32);
    let found = match name {
        "pid" => (Builtin::Pid, u32t),
        "tid" => (Builtin::Tid, u32t),
        "uid" => (Builtin::Uid, u32t),
        "gid" => (Builtin::Gid, u32t),
        "nsecs" => (Builtin::Nsecs, Type::U64),
        "elapsed" => (Builtin::Elapsed, Type::U64),
        "cpu" | "__builtin_cpu" => (Builtin::Cpu, u32t),
        "numaid" => (Builtin::NumaId, u32t),
        "comm" => (Builtin::Comm, Type::Str(16)),
        "cgroup" => (Builtin::Cgroup, Type::U64),
        "rand" => (Builtin::Rand, u32t),
        "curtask" => (Builtin::Curtask, Type::U64),
        "jiffies" => (Builtin::Jiffies, Type::U64),
        "probe" => (Builtin::Probe, Type::Str(0)),
        "kstack" | "ustack" => {
            let user = name == "ustack";
            let ty = Type::Stack(StackType {
                user,
                mode: StackMode::Bpftrace,
                limit: StackType::MAX_LIMIT,
            });
            (
                if user {
                    Builtin::Ustack
                } else {
                    Builtin::Kstack
                },
                ty,
            )
        }
        "args" => {
            if !matches!(
                kind,
                ProbeKind::Tracepoint | ProbeKind::Fentry | ProbeKind::Fexit
            ) {
                return Err(Unavailable::NotInProbe(
                    "`args` is only available in tracepoint, fentry and fexit probes",
                ));
            }
            (Builtin::Args, Type::Args)
        }
        "retval" if has_retval(kind) => (Builtin::Retval, Type::U64),
        "retval" => {
            return Err(Unavailable::NotInProbe(
                "the retval builtin can only be used with kretprobe, uretprobe and fexit probes",
            ))
        }
        "func" if has_args(kind) || has_retval(kind) || kind == ProbeKind::Fentry => {
            (Builtin::Func, Type::Str(0))
        }
        _ if is_arg_n(name) && has_args(kind) => match name[3..].parse::<u8>() {
            Ok(n) => (Builtin::Arg(n), Type::U64),
            Err(_) => return Err(Unavailable::NotInProbe("functions have at most a few arguments")),
        },
        _ if is_arg_n(name) && matches!(kind, ProbeKind::Fentry | ProbeKind::Fexit) => {
            return Err(Unavailable::NotInProbe(
                "fentry and fexit probes name their arguments: use `args.NAME`",
            ))
        }
        _ if is_arg_n(name) && has_retval(kind) => {
            return Err(Unavailable::NotInProbe(
                "the argN builtins can only be used with kprobe, uprobe and usdt probes (a return probe no longer has the arguments)",
            ))
        }
        _ if is_arg_n(name) && kind == ProbeKind::RawTracepoint => match name[3..].parse::<u8>() {
            Ok(n) => (Builtin::Arg(n), Type::U64),
            Err(_) => {
                return Err(Unavailable::NotInProbe(
                    "raw tracepoints have at most a few arguments",
                ))
            }
        },
        _ if is_arg_n(name) || name == "retval" || name == "func" || name.starts_with("sarg") => {
            return Err(Unavailable::NotInProbe(match kind {
                ProbeKind::Tracepoint => {
                    "tracepoint probes have no positional arguments: use `args.FIELD`"
                }
                ProbeKind::RawTracepoint => "raw tracepoints have `arg0`…`argN` only",
                ProbeKind::Fentry | ProbeKind::Fexit => {
                    "fentry and fexit probes name their arguments: use `args.NAME`"
                }
                _ => "this builtin needs a kprobe, uprobe or fentry probe",
            }))
        }
        _ if ALL_NAMES.contains(&name) => return Err(Unavailable::NotSupported),
        _ => {
            return Err(Unavailable::Unknown(crate::suggest::closest(
                name,
                ALL_NAMES.iter().copied(),
            )))
        }
    };
    Ok(found)
}

fn is_arg_n(name: &str) -> bool {
    name.strip_prefix("arg")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_only_in_tracepoints() {
        assert!(lookup("args", ProbeKind::Tracepoint).is_ok());
        assert!(matches!(
            lookup("args", ProbeKind::Interval),
            Err(Unavailable::NotInProbe(_))
        ));
        assert!(matches!(
            lookup("arg0", ProbeKind::Tracepoint),
            Err(Unavailable::NotInProbe(_))
        ));
    }

    #[test]
    fn suggestions_and_unsupported() {
        assert_eq!(
            lookup("pdi", ProbeKind::Begin),
            Err(Unavailable::Unknown(Some("pid")))
        );
        assert_eq!(
            lookup("sarg0", ProbeKind::Interval).map(|_| ()),
            Err(Unavailable::NotInProbe(
                "this builtin needs a kprobe, uprobe or fentry probe"
            ))
        );
        assert!(lookup("kstack", ProbeKind::Profile).is_ok());
        assert_eq!(
            lookup("arg3", ProbeKind::RawTracepoint),
            Ok((Builtin::Arg(3), Type::U64))
        );
        assert_eq!(
            lookup("comm", ProbeKind::Profile),
            Ok((Builtin::Comm, Type::Str(16)))
        );
    }
}
