//! Dynamic probes: uprobes and kprobes, through their perf PMUs.
//!
//! The kernel exposes both as dynamic perf event sources
//! (`/sys/bus/event_source/devices/{uprobe,kprobe}`): `type` names the PMU,
//! `format/retprobe` the `config` bit that turns a probe into a return
//! probe. A uprobe's `config1` points at the file's path and `config2` holds
//! the file offset of the instruction; a kprobe's `config1` points at the
//! function name and `config2` holds an offset into it. The program (type
//! `KPROBE`, `pt_regs` as context) is linked to the event like any other
//! perf event; dropping the link detaches it.

use std::ffi::CString;
use std::path::Path;

use crate::error::{Error, Result};
use crate::perf_event::{self, PerfEventLink};
use crate::program::Program;

/// Where a dynamic probe fires.
#[derive(Debug, Clone, Copy)]
pub enum ProbePoint<'a> {
    /// An instruction in a user-space file, by file offset.
    User {
        /// The executable or library.
        path: &'a Path,
        /// File offset of the instruction (see [`crate::elf_symbols`]).
        offset: u64,
        /// Fire on return from the function instead of on entry.
        ret: bool,
        /// Only in this process (all processes when `None`).
        pid: Option<u32>,
        /// File offset of a USDT semaphore the kernel counts up while
        /// attached (0: none).
        semaphore: u64,
    },
    /// A kernel function, by name, plus an offset into it.
    Kernel {
        /// The function.
        function: &'a str,
        /// Offset into the function (0: its entry).
        offset: u64,
        /// Fire on return from the function instead of on entry.
        ret: bool,
    },
}

impl ProbePoint<'_> {
    fn pmu(&self) -> &'static str {
        match self {
            ProbePoint::User { .. } => "uprobe",
            ProbePoint::Kernel { .. } => "kprobe",
        }
    }

    fn is_return(&self) -> bool {
        match *self {
            ProbePoint::User { ret, .. } | ProbePoint::Kernel { ret, .. } => ret,
        }
    }

    /// How the probe is named in messages: `uprobe:/bin/bash+0x1234`,
    /// `kretprobe:do_nanosleep`.
    pub fn describe(&self) -> String {
        match *self {
            ProbePoint::User {
                path, offset, ret, ..
            } => {
                let kind = if ret { "uretprobe" } else { "uprobe" };
                format!("{kind}:{}+{offset:#x}", path.display())
            }
            ProbePoint::Kernel {
                function,
                offset,
                ret,
            } => {
                let kind = if ret { "kretprobe" } else { "kprobe" };
                match offset {
                    0 => format!("{kind}:{function}"),
                    _ => format!("{kind}:{function}+{offset}"),
                }
            }
        }
    }
}

/// Attaches `program` (of type [`KPROBE`](crate::program::ProgramType::Kprobe))
/// to `point`. The probe is detached when the returned link is dropped.
pub fn attach(program: &Program, point: &ProbePoint) -> Result<PerfEventLink> {
    let what = point.describe();
    let pmu = Pmu::read(point.pmu(), &what)?;
    let (target, offset, pid, semaphore) = match *point {
        ProbePoint::User {
            path,
            offset,
            pid,
            semaphore,
            ..
        } => (
            path.as_os_str().as_encoded_bytes().to_vec(),
            offset,
            pid,
            semaphore,
        ),
        ProbePoint::Kernel {
            function, offset, ..
        } => (function.as_bytes().to_vec(), offset, None, 0),
    };
    let target = CString::new(target)
        .map_err(|_| Error::Probe(format!("{what}: the name contains a NUL byte")))?;
    let mut attr = libbpf_sys::perf_event_attr {
        size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
        type_: pmu.ty,
        ..Default::default()
    };
    if point.is_return() {
        attr.config |= 1 << pmu.retprobe_bit;
    }
    if semaphore != 0 {
        let shift = pmu.ref_ctr_shift.ok_or_else(|| {
            Error::Unsupported(format!(
                "cannot attach {what}: the probe has a semaphore, and this kernel's uprobes cannot count one (no format/ref_ctr_offset: Linux 4.20 or later needed)"
            ))
        })?;
        attr.config |= semaphore << shift;
    }
    attr.__bindgen_anon_3.config1 = target.as_ptr() as u64;
    attr.__bindgen_anon_4.config2 = offset;
    attr.__bindgen_anon_1.sample_period = 1;
    // A probe in every process is opened on one CPU and fires on all.
    let (pid, cpu) = match pid {
        // perf_event_open reads pid 0 as the calling process.
        Some(0) => {
            return Err(Error::Probe(format!(
                "cannot attach {what} to process 0: give the PID of a user process"
            )))
        }
        Some(pid) => (pid as i32, -1),
        None => (-1, 0),
    };
    let event = perf_event::open(&attr, pid, cpu).map_err(|err| {
        let why = match (point, err.raw_os_error()) {
            (ProbePoint::Kernel { function, .. }, Some(libc::ENOENT | libc::EINVAL)) => format!(
                "the kernel cannot probe `{function}` (not a function, inlined, or marked notrace): pick another from `scorch trace -l 'kprobe:*'`"
            ),
            (ProbePoint::User { pid: Some(pid), .. }, Some(libc::ESRCH)) => {
                format!("process {pid} does not exist")
            }
            (ProbePoint::User { path, .. }, Some(libc::ENOENT)) => {
                format!("{} does not exist", path.display())
            }
            (ProbePoint::User { .. }, Some(libc::EINVAL)) => {
                "the kernel refused the offset: it must point at an instruction inside an executable mapping of the file".to_string()
            }
            _ => return Error::sys(format!("opening {what}"), err),
        };
        Error::Probe(format!("cannot attach {what}: {why} ({err})"))
    })?;
    PerfEventLink::link(program, event, &what)
}

/// The kernel functions kprobes can target, sorted: tracefs's
/// `available_filter_functions`, or where that is unreadable (lockdown),
/// the text symbols of `/proc/kallsyms`.
pub fn kernel_functions(tracefs: &str) -> Result<Vec<String>> {
    let filter = format!("{tracefs}/available_filter_functions");
    let kallsyms = "/proc/kallsyms";
    let first_word = |line: &str| line.split_whitespace().next().map(str::to_string);
    let mut names: Vec<String> = match std::fs::read_to_string(&filter) {
        // `name` or `name [module]`.
        Ok(text) => text.lines().filter_map(first_word).collect(),
        // `address type name [module]`: the text symbols.
        Err(_) => std::fs::read_to_string(kallsyms)
            .map_err(|e| Error::sys(format!("reading {kallsyms}"), e))?
            .lines()
            .filter_map(
                |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [_, "t" | "T", name, ..] => Some(name.to_string()),
                    _ => None,
                },
            )
            .collect(),
    };
    if names.is_empty() {
        return Err(Error::Probe(format!(
            "neither {filter} nor {kallsyms} lists kernel functions"
        )));
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// A dynamic PMU as sysfs describes it.
struct Pmu {
    ty: u32,
    retprobe_bit: u32,
    /// Where a uprobe's semaphore offset goes in `config` (`None`: the
    /// kernel cannot count semaphores).
    ref_ctr_shift: Option<u32>,
}

impl Pmu {
    fn read(name: &str, what: &str) -> Result<Self> {
        let dir = format!("/sys/bus/event_source/devices/{name}");
        let missing = || {
            let config = if name == "kprobe" {
                "CONFIG_KPROBES and CONFIG_KPROBE_EVENTS"
            } else {
                "CONFIG_UPROBES and CONFIG_UPROBE_EVENTS"
            };
            let instead = if name == "kprobe" {
                "; fentry/fexit (`fentry:FUNCTION`) work instead where the kernel has BTF and BPF trampolines"
            } else {
                ""
            };
            Error::Unsupported(format!(
                "cannot attach {what}: this kernel has no {name} PMU ({dir} is missing): it was built without {config}{instead}"
            ))
        };
        let ty = std::fs::read_to_string(format!("{dir}/type")).map_err(|_| missing())?;
        let ty = ty.trim().parse().map_err(|_| missing())?;
        // `format/retprobe` reads `config:0`, `format/ref_ctr_offset`
        // `config:32-63`: the first bit of each.
        let first_bit = |field: &str| -> Option<u32> {
            let format = std::fs::read_to_string(format!("{dir}/format/{field}")).ok()?;
            let bits = format.trim().strip_prefix("config:")?;
            bits.split('-').next()?.parse().ok()
        };
        Ok(Pmu {
            ty,
            retprobe_bit: first_bit("retprobe").unwrap_or(0),
            ref_ctr_shift: first_bit("ref_ctr_offset"),
        })
    }
}
