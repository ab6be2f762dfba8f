//! Per-CPU perf events that run a BPF program on every sample.
//!
//! [`PerfEventLink`] owns the perf event and the BPF link that ties the
//! program to it; dropping it detaches the program and closes the event, so
//! nothing stays attached when a run fails half-way.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::program::Program;

/// `PERF_FLAG_FD_CLOEXEC` from `include/uapi/linux/perf_event.h`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// What drives sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The software CPU clock: works everywhere, including VMs.
    CpuClock,
    /// Hardware CPU cycles: needs a PMU.
    Cycles,
}

/// How often the event fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Samples per second.
    Frequency(u64),
    /// One sample every N events.
    Period(u64),
}

/// A program attached to one perf event; detached when dropped.
#[derive(Debug)]
pub struct PerfEventLink {
    // Field order is drop order: detach the link before closing the event.
    _link: OwnedFd,
    _event: OwnedFd,
}

impl PerfEventLink {
    /// Opens `event` on `cpu` for all processes at `rate` and attaches `program`.
    pub fn attach(program: &Program, event: Event, rate: Rate, cpu: u32) -> Result<Self> {
        let event_fd = open_event(event, rate, cpu)?;
        Self::link(program, event_fd, &format!("the perf event of CPU {cpu}"))
    }

    /// Attaches `program` to the open perf event `event_fd` (described by
    /// `what` in errors), taking ownership of it.
    pub(crate) fn link(program: &Program, event_fd: OwnedFd, what: &str) -> Result<Self> {
        // SAFETY: both fds are valid; opts may be null.
        let link = unsafe {
            libbpf_sys::bpf_link_create(
                program.raw_fd(),
                event_fd.as_raw_fd(),
                libbpf_sys::BPF_PERF_EVENT,
                std::ptr::null(),
            )
        };
        if link < 0 {
            return Err(Error::sys(
                format!("attaching BPF program `{}` to {what}", program.name()),
                std::io::Error::from_raw_os_error(-link),
            ));
        }
        Ok(Self {
            // SAFETY: a non-negative return is a new fd we own.
            _link: unsafe { OwnedFd::from_raw_fd(link) },
            _event: event_fd,
        })
    }
}

fn open_event(event: Event, rate: Rate, cpu: u32) -> Result<OwnedFd> {
    let mut attr = libbpf_sys::perf_event_attr {
        size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
        ..Default::default()
    };
    let (ty, config, name) = match event {
        Event::CpuClock => (
            libbpf_sys::PERF_TYPE_SOFTWARE,
            libbpf_sys::PERF_COUNT_SW_CPU_CLOCK,
            "cpu-clock",
        ),
        Event::Cycles => (
            libbpf_sys::PERF_TYPE_HARDWARE,
            libbpf_sys::PERF_COUNT_HW_CPU_CYCLES,
            "cycles",
        ),
    };
    attr.type_ = ty;
    attr.config = config as u64;
    match rate {
        Rate::Frequency(hz) => {
            attr.set_freq(1);
            attr.__bindgen_anon_1.sample_freq = hz;
        }
        Rate::Period(n) => attr.__bindgen_anon_1.sample_period = n,
    }
    open(&attr, -1, cpu as i32).map_err(|err| {
        let what = format!("opening the {name} perf event on CPU {cpu}");
        match (event, err.raw_os_error()) {
            (Event::Cycles, Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV)) => Error::Sys {
                what: format!("{what}: this machine has no hardware PMU (common in VMs); use the cpu-clock event"),
                source: err,
            },
            (_, Some(libc::EINVAL)) if matches!(rate, Rate::Frequency(_)) => Error::Sys {
                what: format!(
                    "{what}: frequency refused; it may exceed kernel.perf_event_max_sample_rate"
                ),
                source: err,
            },
            _ => Error::sys(what, err),
        }
    })
}

/// Opens the perf event `attr` describes for process `pid` (-1: every
/// process) on `cpu` (-1: every CPU), close-on-exec.
pub(crate) fn open(
    attr: &libbpf_sys::perf_event_attr,
    pid: i32,
    cpu: i32,
) -> std::io::Result<OwnedFd> {
    // SAFETY: attr is a valid perf_event_attr that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const libbpf_sys::perf_event_attr,
            pid,
            cpu,
            -1i32,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a non-negative return is a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The CPUs that are online, from `/sys/devices/system/cpu/online`.
pub fn online_cpus() -> Result<Vec<u32>> {
    let path = "/sys/devices/system/cpu/online";
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::sys(format!("reading {path}"), e))?;
    parse_cpu_list(&text).ok_or_else(|| Error::Sys {
        what: format!("parsing {path}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, text.trim().to_string()),
    })
}

/// Parses a kernel CPU list such as `0-3,5,7-8`.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi): (u32, u32) = (lo.parse().ok()?, hi.parse().ok()?);
                if lo > hi {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,5,7-8\n"),
            Some(vec![0, 1, 2, 3, 5, 7, 8])
        );
        assert_eq!(parse_cpu_list("0\n"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
