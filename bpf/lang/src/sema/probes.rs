//! Probe specs resolved into attach points.
//!
//! One written spec can stand for many attach points
//! (`t:syscalls:sys_enter_*`) and every attach point needs facts from the
//! kernel (a tracepoint's id and record layout). This pass turns each
//! [`ProbeSpec`] into [`Instance`]s, reading those facts once through the
//! [`Kernel`] and reporting unknown names with the nearest known one.
//!
//! Probe kinds handled: `begin`/`end`, `tracepoint`, `rawtracepoint`,
//! `interval`, `profile`, `software`, `hardware`, `uprobe`/`uretprobe` and
//! `usdt` ([`super::user_probes`]), `kprobe`/`kretprobe` and
//! `fentry`/`fexit` ([`super::kernel_probes`]); the others are reported as
//! not supported yet.

use std::collections::HashMap;
use std::sync::Arc;

use scorch_bpf::counter::{Counter, CounterKind};

use super::kernel::Kernel;
pub use super::kernel_probes::{FentryParam, KernelFunction};
use super::perf_events;
use super::tracepoint::{parse_format, Format};
use super::types::AddrSpace;
pub use super::user_probes::{UsdtPoint, UserProbe};
use crate::ast::ProbeSpec;
use crate::diag::Diagnostic;
use crate::provider::ProbeKind;

/// How often a timed probe fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// This many times per second.
    Hz(u64),
    /// Once every this many nanoseconds.
    PeriodNs(u64),
}

/// Where one instance of a probe attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Once, before everything else.
    Begin,
    /// Once, at the end.
    End,
    /// A kernel tracepoint.
    Tracepoint {
        /// Its category (`syscalls`).
        category: String,
        /// Its name (`sys_enter_openat`).
        name: String,
        /// Its record layout and id.
        format: Arc<Format>,
    },
    /// A raw kernel tracepoint: its arguments as an array of `u64`.
    RawTracepoint {
        /// Its name (`sched_switch`).
        name: String,
        /// How many arguments it has.
        args: u32,
    },
    /// A software or hardware perf event on every CPU.
    Counter {
        /// The event.
        counter: Counter,
        /// Fire once every this many events.
        period: u64,
    },
    /// A timer on one CPU.
    Interval(Rate),
    /// A timer on every CPU.
    Profile(Rate),
    /// An instruction of a user-space file: a uprobe, or a uretprobe on
    /// the function it starts.
    Uprobe(Arc<UserProbe>),
    /// A USDT probe of a user-space file.
    Usdt(Arc<UsdtPoint>),
    /// A kernel function through a kprobe or kretprobe.
    Kprobe {
        /// The function.
        function: String,
        /// Offset into it (0: its entry).
        offset: u64,
        /// On return rather than on entry.
        ret: bool,
    },
    /// A hardware watchpoint on memory of the `-p` process.
    Watchpoint {
        /// The watched address.
        address: u64,
        /// How many bytes: 1, 2, 4 or 8.
        len: u64,
        /// Which accesses fire it.
        access: scorch_bpf::watchpoint::Access,
        /// The process.
        pid: u32,
    },
    /// A kernel function through a BPF trampoline: fentry/fexit, or a
    /// kprobe/kretprobe the kernel can only run that way.
    Fentry(Arc<KernelFunction>),
}

impl Attach {
    /// Where an integer the probe sees points when cast to a pointer: user
    /// memory in user-space probes, as bpftrace decides.
    pub fn address_space(&self) -> AddrSpace {
        match self {
            Attach::Uprobe(_) | Attach::Usdt(_) | Attach::Watchpoint { .. } => AddrSpace::User,
            _ => AddrSpace::Kernel,
        }
    }

    /// The function the probe is in, for `func`.
    pub fn function(&self) -> Option<&str> {
        match self {
            Attach::Uprobe(u) => Some(&u.function),
            Attach::Usdt(u) => Some(&u.probe.name),
            Attach::Kprobe { function, .. } => Some(function),
            Attach::Fentry(f) => Some(&f.function),
            _ => None,
        }
    }
}

/// One attach point of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The full probe name, as the `probe` builtin prints it.
    pub name: String,
    /// Where it attaches.
    pub attach: Attach,
}

/// Expands specs, caching kernel facts between them.
pub(super) struct Resolver<'k> {
    pub(super) kernel: &'k dyn Kernel,
    /// The kernel's BTF and the functions kprobes can target, read once.
    pub(super) kernel_facts: super::kernel_probes::Facts,
    tracepoints: Option<Result<Vec<(String, String)>, String>>,
    raw_tracepoints: Option<Result<Vec<(String, u32)>, String>>,
    formats: HashMap<(String, String), Arc<Format>>,
}

impl<'k> Resolver<'k> {
    pub(super) fn new(kernel: &'k dyn Kernel) -> Self {
        Resolver {
            kernel,
            kernel_facts: Default::default(),
            tracepoints: None,
            raw_tracepoints: None,
            formats: HashMap::new(),
        }
    }

    /// The process user-space probes are for.
    fn user_target(&self) -> super::user_probes::Target<'k> {
        super::user_probes::Target {
            pid: self.kernel.target_pid(),
            command: self.kernel.command_binary(),
        }
    }

    /// The instances `spec` stands for.
    pub(super) fn resolve(&mut self, spec: &ProbeSpec) -> Result<Vec<Instance>, Diagnostic> {
        let parts: Vec<&str> = spec.parts.iter().map(|p| p.text.as_str()).collect();
        match spec.kind {
            ProbeKind::Begin | ProbeKind::End => {
                if !parts.is_empty() {
                    return Err(Diagnostic::error(
                        spec.span,
                        format!("`{}` takes no arguments", spec.provider.name),
                    ));
                }
                let (name, attach) = if spec.kind == ProbeKind::Begin {
                    ("BEGIN", Attach::Begin)
                } else {
                    ("END", Attach::End)
                };
                Ok(vec![Instance {
                    name: name.into(),
                    attach,
                }])
            }
            ProbeKind::Tracepoint => self.tracepoint(spec, &parts),
            ProbeKind::Interval | ProbeKind::Profile => {
                let rate = timer_rate(spec, &parts)?;
                let attach = if spec.kind == ProbeKind::Interval {
                    Attach::Interval(rate)
                } else {
                    Attach::Profile(rate)
                };
                Ok(vec![Instance {
                    name: format!("{}:{}", spec.kind.name(), parts.join(":")),
                    attach,
                }])
            }
            ProbeKind::RawTracepoint => self.raw_tracepoint(spec, &parts),
            ProbeKind::Software => counter(spec, &parts, CounterKind::Software),
            ProbeKind::Hardware => counter(spec, &parts, CounterKind::Hardware),
            ProbeKind::Uprobe | ProbeKind::Uretprobe => {
                super::user_probes::uprobe(spec, &parts, self.user_target())
            }
            ProbeKind::Usdt => super::user_probes::usdt(spec, &parts, self.user_target()),
            ProbeKind::Kprobe | ProbeKind::Kretprobe | ProbeKind::Fentry | ProbeKind::Fexit => {
                self.kernel_probe(spec, &parts)
            }
            ProbeKind::Watchpoint | ProbeKind::AsyncWatchpoint => {
                watchpoint(spec, &parts, self.kernel.target_pid())
            }
            other => Err(Diagnostic::error(
                spec.provider.span,
                format!("`{other}` probes are not supported by scorch yet"),
            )
            .with_help(
                "supported probe types: begin, end, tracepoint, rawtracepoint, interval, \
                 profile, software, hardware, uprobe, uretprobe, usdt, kprobe, kretprobe, \
                 fentry, fexit, watchpoint, asyncwatchpoint",
            )),
        }
    }

    fn tracepoint(
        &mut self,
        spec: &ProbeSpec,
        parts: &[&str],
    ) -> Result<Vec<Instance>, Diagnostic> {
        let [category, name] = parts else {
            return Err(Diagnostic::error(
                spec.span,
                "a tracepoint probe is written `tracepoint:CATEGORY:NAME`",
            ));
        };
        // A name without wildcards needs only its format file: listing
        // every tracepoint (a slow read of tracefs) is for globs and for
        // suggesting a near name when the tracepoint does not exist.
        let literal = |s: &str| !s.contains(['*', '?']);
        if literal(category) && literal(name) {
            if let Ok(format) = self.format(spec, category, name) {
                return Ok(vec![Instance {
                    name: format!("tracepoint:{category}:{name}"),
                    attach: Attach::Tracepoint {
                        category: category.to_string(),
                        name: name.to_string(),
                        format,
                    },
                }]);
            }
        }
        let all = self.tracepoints(spec)?;
        let matches: Vec<(String, String)> = all
            .iter()
            .filter(|(c, n)| glob(category, c) && glob(name, n))
            .cloned()
            .collect();
        if matches.is_empty() {
            let wanted = format!("{category}:{name}");
            let mut d = Diagnostic::error(spec.span, format!("tracepoint not found: {wanted}"))
                .with_target_missing();
            let known: Vec<String> = all.iter().map(|(c, n)| format!("{c}:{n}")).collect();
            if let Some(near) = crate::suggest::closest(&wanted, known.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `tracepoint:{near}`?"));
            } else {
                d = d.with_help("list tracepoints with `scorch trace -l 'tracepoint:*'`");
            }
            return Err(d);
        }
        let mut out = Vec::with_capacity(matches.len());
        for (category, name) in matches {
            let format = self.format(spec, &category, &name)?;
            out.push(Instance {
                name: format!("tracepoint:{category}:{name}"),
                attach: Attach::Tracepoint {
                    category,
                    name,
                    format,
                },
            });
        }
        Ok(out)
    }

    /// `rawtracepoint:NAME` or `rawtracepoint:MODULE:NAME`, wildcards allowed.
    fn raw_tracepoint(
        &mut self,
        spec: &ProbeSpec,
        parts: &[&str],
    ) -> Result<Vec<Instance>, Diagnostic> {
        let name = match parts {
            [name] | [_, name] if !name.is_empty() => *name,
            _ => {
                return Err(Diagnostic::error(
                    spec.span,
                    "a raw tracepoint probe is written `rawtracepoint:NAME`",
                ))
            }
        };
        let kernel = self.kernel;
        let list = self
            .raw_tracepoints
            .get_or_insert_with(|| kernel.raw_tracepoints().map_err(|e| e.to_string()));
        let all = match list {
            Ok(all) => all,
            Err(e) => {
                return Err(Diagnostic::error(
                    spec.span,
                    format!("cannot list raw tracepoints: {e}"),
                )
                .with_help(
                    "raw tracepoints are listed in the kernel's BTF, /sys/kernel/btf/vmlinux",
                ))
            }
        };
        let found: Vec<Instance> = all
            .iter()
            .filter(|(n, _)| glob(name, n))
            .map(|(n, args)| Instance {
                name: format!("rawtracepoint:{n}"),
                attach: Attach::RawTracepoint {
                    name: n.clone(),
                    args: *args,
                },
            })
            .collect();
        if found.is_empty() {
            let mut d = Diagnostic::error(spec.span, format!("raw tracepoint not found: {name}"));
            d = match crate::suggest::closest(name, all.iter().map(|(n, _)| n.as_str())) {
                Some(near) => d.with_help(format!("did you mean `rawtracepoint:{near}`?")),
                None => {
                    d.with_help("list raw tracepoints with `scorch trace -l 'rawtracepoint:*'`")
                }
            };
            return Err(d);
        }
        Ok(found)
    }

    fn tracepoints(&mut self, spec: &ProbeSpec) -> Result<&[(String, String)], Diagnostic> {
        let kernel = self.kernel;
        let list = self.tracepoints.get_or_insert_with(|| {
            kernel
                .tracepoints()
                .map_err(|e| e.to_string())
                .map(|mut v| {
                    v.sort();
                    v.dedup();
                    v
                })
        });
        match list {
            Ok(list) => Ok(list),
            Err(e) => Err(Diagnostic::error(
                spec.span,
                format!("cannot list tracepoints: {e}"),
            )
            .with_help("tracefs must be mounted at /sys/kernel/tracing (scorch mounts it when run as root)")),
        }
    }

    fn format(
        &mut self,
        spec: &ProbeSpec,
        category: &str,
        name: &str,
    ) -> Result<Arc<Format>, Diagnostic> {
        let key = (category.to_string(), name.to_string());
        if let Some(format) = self.formats.get(&key) {
            return Ok(format.clone());
        }
        let text = self.kernel.tracepoint_format(category, name).map_err(|e| {
            Diagnostic::error(
                spec.span,
                format!("cannot read the format of tracepoint {category}:{name}: {e}"),
            )
        })?;
        let format = Arc::new(parse_format(category, &text));
        self.formats.insert(key, format.clone());
        Ok(format)
    }
}

/// `interval:ms:100`, `interval:100ms`, `profile:hz:99`, `profile:99`.
fn timer_rate(spec: &ProbeSpec, parts: &[&str]) -> Result<Rate, Diagnostic> {
    let usage = || {
        Diagnostic::error(
            spec.span,
            format!("cannot understand the rate of `{}`", spec.raw),
        )
        .with_help(format!(
            "write `{0}:hz:N`, `{0}:s:N`, `{0}:ms:N` or `{0}:us:N`",
            spec.kind.name()
        ))
    };
    let (unit, count) = match parts {
        [unit, count] => (*unit, *count),
        [one] => {
            let split = one.find(|c: char| !c.is_ascii_digit()).unwrap_or(one.len());
            let (count, unit) = one.split_at(split);
            let unit = if unit.is_empty() && spec.kind == ProbeKind::Profile {
                "hz"
            } else {
                unit
            };
            (unit, count)
        }
        _ => return Err(usage()),
    };
    let count: u64 = parse_count(count).ok_or_else(usage)?;
    if count == 0 {
        return Err(Diagnostic::error(spec.span, "the rate must be at least 1"));
    }
    let ns = |mult: u64| {
        count
            .checked_mul(mult)
            .map(Rate::PeriodNs)
            .ok_or_else(|| Diagnostic::error(spec.span, "the period is too long"))
    };
    match unit {
        "hz" => Ok(Rate::Hz(count)),
        "s" => ns(1_000_000_000),
        "ms" => ns(1_000_000),
        "us" => ns(1_000),
        "ns" if spec.kind == ProbeKind::Interval => ns(1),
        _ => Err(usage()),
    }
}

/// `software:EVENT[:COUNT]` and `hardware:EVENT[:COUNT]`.
fn counter(
    spec: &ProbeSpec,
    parts: &[&str],
    kind: CounterKind,
) -> Result<Vec<Instance>, Diagnostic> {
    let provider = spec.kind.name();
    let (name, count) = match parts {
        [name] => (*name, None),
        [name, ""] => (*name, None),
        [name, count] => (*name, Some(*count)),
        _ => {
            return Err(Diagnostic::error(
                spec.span,
                format!("a {provider} probe is written `{provider}:EVENT[:COUNT]`"),
            ))
        }
    };
    let Some(def) = perf_events::find(kind, name) else {
        let names = perf_events::events(kind)
            .iter()
            .flat_map(|e| std::iter::once(e.counter.name).chain(e.alias));
        let mut d = Diagnostic::error(spec.span, format!("unknown {provider} event `{name}`"));
        d = match crate::suggest::closest(name, names) {
            Some(near) => d.with_help(format!("did you mean `{provider}:{near}`?")),
            None => d.with_help(format!("list them with `scorch trace -l '{provider}:*'`")),
        };
        return Err(d);
    };
    let period = match count {
        None => def.default_count,
        Some(text) => match parse_count(text) {
            Some(n) if n > 0 => n,
            _ => {
                return Err(Diagnostic::error(
                    spec.span,
                    format!("invalid count `{text}`: write a positive integer such as 1000 or 1e6"),
                ))
            }
        },
    };
    Ok(vec![Instance {
        name: format!("{provider}:{}:{period}", def.counter.name),
        attach: Attach::Counter {
            counter: def.counter,
            period,
        },
    }])
}

/// `watchpoint:ADDRESS:LENGTH:MODE` (also `asyncwatchpoint`), on the `-p`
/// process or the `-c` command. scorch never stops the process on a hit, so both behave
/// as bpftrace's `asyncwatchpoint`.
fn watchpoint(
    spec: &ProbeSpec,
    parts: &[&str],
    pid: Option<u32>,
) -> Result<Vec<Instance>, Diagnostic> {
    let kind = spec.kind.name();
    let usage = || {
        Diagnostic::error(
            spec.span,
            format!("a {kind} probe is written `{kind}:ADDRESS:LENGTH:MODE`"),
        )
        .with_help("e.g. `watchpoint:0x10000000:8:w`; LENGTH is 1, 2, 4 or 8, MODE r, w, rw or x")
    };
    let [address, len, mode] = parts else {
        return Err(usage());
    };
    let number = super::user_probes::parse_number;
    let (Some(address), Some(len)) = (number(address), number(len)) else {
        return Err(usage());
    };
    let Some(access) = scorch_bpf::watchpoint::Access::parse(mode) else {
        return Err(usage());
    };
    let Some(pid) = pid else {
        return Err(Diagnostic::error(
            spec.span,
            format!(
                "a {kind} watches memory of one process: give it with -p PID or run it with -c CMD"
            ),
        ));
    };
    Ok(vec![Instance {
        name: format!("{kind}:{address:#x}:{len}:{mode}"),
        attach: Attach::Watchpoint {
            address,
            len,
            access,
            pid,
        },
    }])
}

/// A decimal count, allowing `1e6` and `1_000` as bpftrace does.
fn parse_count(text: &str) -> Option<u64> {
    let text = text.replace('_', "");
    if let Some((mantissa, exp)) = text.split_once('e') {
        let m: u64 = mantissa.parse().ok()?;
        let e: u32 = exp.parse().ok()?;
        return m.checked_mul(10u64.checked_pow(e)?);
    }
    text.parse().ok()
}

/// Shell-style match with `*` and `?`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob("sys_enter_*", "sys_enter_openat"));
        assert!(glob("*", ""));
        assert!(glob("sys_?nter_read", "sys_enter_read"));
        assert!(glob("*open*", "sys_enter_openat"));
        assert!(!glob("sys_enter_*", "sys_exit_read"));
        assert!(!glob("a", "ab"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("1e6"), Some(1_000_000));
        assert_eq!(parse_count("1_000"), Some(1000));
        assert_eq!(parse_count("x"), None);
        assert_eq!(parse_count("9e99"), None);
    }
}
