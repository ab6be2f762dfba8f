//! Counting perf events: a program run every N software or hardware events.
//!
//! `software:page-faults:100` runs its program on every 100th page fault
//! of each CPU; `hardware:cache-misses:1e6` on every millionth cache
//! miss. Both are perf events opened per CPU with a sample period, as
//! the timer events of [`perf_event`](crate::perf_event) are; only the
//! event type (`PERF_TYPE_SOFTWARE` or `PERF_TYPE_HARDWARE`) and its
//! config differ. Hardware events need a PMU, which most VMs lack.

use crate::error::{Error, Result};
use crate::perf_event::{self, PerfEventLink};
use crate::program::Program;

/// Which family of perf events a counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// Kernel software events (`PERF_TYPE_SOFTWARE`).
    Software,
    /// CPU performance counters (`PERF_TYPE_HARDWARE`).
    Hardware,
}

/// One counting event: its family, its config and a name for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Software or hardware.
    pub kind: CounterKind,
    /// The `PERF_COUNT_SW_*` or `PERF_COUNT_HW_*` value.
    pub config: u64,
    /// The event's name, e.g. `page-faults`.
    pub name: &'static str,
}

/// Opens `counter` on `cpu` for all processes, firing every `period`
/// events, and attaches `program` to it.
pub fn attach(program: &Program, counter: Counter, period: u64, cpu: u32) -> Result<PerfEventLink> {
    let mut attr = libbpf_sys::perf_event_attr {
        size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
        type_: match counter.kind {
            CounterKind::Software => libbpf_sys::PERF_TYPE_SOFTWARE,
            CounterKind::Hardware => libbpf_sys::PERF_TYPE_HARDWARE,
        },
        config: counter.config,
        ..Default::default()
    };
    attr.__bindgen_anon_1.sample_period = period;
    let event = perf_event::open(&attr, -1, cpu as i32).map_err(|err| {
        let what = format!("opening the {} perf event on CPU {cpu}", counter.name);
        match (counter.kind, err.raw_os_error()) {
            (CounterKind::Hardware, Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV)) => {
                Error::Sys {
                    what: format!(
                        "{what}: this machine has no hardware PMU for it (common in VMs); \
                         use a software event such as software:cpu-clock"
                    ),
                    source: err,
                }
            }
            _ => Error::sys(what, err),
        }
    })?;
    PerfEventLink::link(
        program,
        event,
        &format!("the {} event of CPU {cpu}", counter.name),
    )
}
