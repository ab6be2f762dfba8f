//! Attaching loaded programs to their events.
//!
//! Every attachment is a link value that detaches when dropped; a run
//! keeps them in one vector and stops tracing by clearing it.

use scorch_bpf::btf_link::BtfLink;
use scorch_bpf::perf_event::PerfEventLink;
use scorch_bpf::probe::ProbePoint;
use scorch_bpf::program::Program;
use scorch_bpf::raw_tracepoint::RawTracepointLink;
use scorch_bpf::tracepoint::TracepointLink;
use scorch_bpf::{Event, Rate as PerfRate};

use super::RunError;
use crate::codegen::ProgramDef;
use crate::sema::{Attach, Rate};

/// Everything attached; dropping it detaches all.
#[derive(Debug, Default)]
pub(super) struct Attachments {
    _tracepoints: Vec<TracepointLink>,
    _perf_events: Vec<PerfEventLink>,
    _raw_tracepoints: Vec<RawTracepointLink>,
    _trampolines: Vec<BtfLink>,
}

fn perf_rate(rate: Rate) -> PerfRate {
    match rate {
        Rate::Hz(hz) => PerfRate::Frequency(hz),
        Rate::PeriodNs(ns) => PerfRate::Period(ns),
    }
}

/// Attaches `program` to every attach point of `def` (nothing for
/// `begin`/`end`, which run once), adding the links to `to`. User-space
/// probes fire only in process `pid`, when given.
pub(super) fn attach(
    def: &ProgramDef,
    program: &Program,
    tracefs: &str,
    pid: Option<u32>,
    to: &mut Attachments,
    verbose: &mut dyn FnMut(String),
) -> Result<(), RunError> {
    let fail = |what: String, e: scorch_bpf::Error| RunError::Bpf(format!("attaching {what}: {e}"));
    for instance in &def.instances {
        match &instance.attach {
            Attach::Begin | Attach::End => {}
            Attach::Tracepoint {
                category,
                name,
                format,
            } => {
                let id = match format.id {
                    Some(id) => u64::from(id),
                    None => scorch_bpf::tracepoint::id(tracefs, category, name)
                        .map_err(|e| fail(instance.name.clone(), e))?,
                };
                let link = TracepointLink::attach(program, category, name, id)
                    .map_err(|e| fail(instance.name.clone(), e))?;
                verbose(format!("attached {} (tracepoint id {id})", instance.name));
                to._tracepoints.push(link);
            }
            Attach::RawTracepoint { name, .. } => {
                let link = RawTracepointLink::attach(program, name)
                    .map_err(|e| fail(instance.name.clone(), e))?;
                verbose(format!("attached {} (raw tracepoint)", instance.name));
                to._raw_tracepoints.push(link);
            }
            Attach::Counter { counter, period } => {
                let cpus = scorch_bpf::online_cpus().map_err(|e| fail(instance.name.clone(), e))?;
                for &cpu in &cpus {
                    let link = scorch_bpf::counter::attach(program, *counter, *period, cpu)
                        .map_err(|e| fail(instance.name.clone(), e))?;
                    to._perf_events.push(link);
                }
                verbose(format!(
                    "attached {} on {} CPU(s)",
                    instance.name,
                    cpus.len()
                ));
            }
            Attach::Uprobe(u) => {
                let point = ProbePoint::User {
                    path: &u.path,
                    offset: u.offset,
                    ret: u.ret,
                    pid,
                    semaphore: 0,
                };
                let link = scorch_bpf::probe::attach(program, &point)
                    .map_err(|e| fail(instance.name.clone(), e))?;
                verbose(format!("attached {} ({})", instance.name, point.describe()));
                to._perf_events.push(link);
            }
            Attach::Usdt(u) => {
                let point = ProbePoint::User {
                    path: &u.path,
                    offset: u.probe.offset,
                    ret: false,
                    pid,
                    semaphore: u.probe.semaphore,
                };
                let link = scorch_bpf::probe::attach(program, &point)
                    .map_err(|e| fail(instance.name.clone(), e))?;
                verbose(format!(
                    "attached {} ({}, semaphore at {:#x})",
                    instance.name,
                    point.describe(),
                    u.probe.semaphore
                ));
                to._perf_events.push(link);
            }
            Attach::Kprobe {
                function,
                offset,
                ret,
            } => {
                let point = ProbePoint::Kernel {
                    function,
                    offset: *offset,
                    ret: *ret,
                };
                let link = scorch_bpf::probe::attach(program, &point)
                    .map_err(|e| fail(instance.name.clone(), e))?;
                verbose(format!("attached {}", instance.name));
                to._perf_events.push(link);
            }
            Attach::Watchpoint {
                address,
                len,
                access,
                pid,
            } => {
                let link = scorch_bpf::watchpoint::attach(program, *pid, *address, *len, *access)
                    .map_err(|e| fail(instance.name.clone(), e))?;
                verbose(format!("attached {} in process {pid}", instance.name));
                to._perf_events.push(link);
            }
            Attach::Fentry(f) => {
                let link = BtfLink::attach(program).map_err(|e| fail(instance.name.clone(), e))?;
                let how = match (f.via_kprobe, f.ret) {
                    (true, false) => " through fentry (this kernel runs it without kprobes)",
                    (true, true) => " through fexit (this kernel runs it without kprobes)",
                    _ => "",
                };
                verbose(format!("attached {}{how}", instance.name));
                to._trampolines.push(link);
            }
            Attach::Interval(rate) | Attach::Profile(rate) => {
                let cpus = scorch_bpf::online_cpus().map_err(|e| fail(instance.name.clone(), e))?;
                let cpus: Vec<u32> = if matches!(instance.attach, Attach::Interval(_)) {
                    cpus.into_iter().take(1).collect()
                } else {
                    cpus
                };
                for &cpu in &cpus {
                    let link =
                        PerfEventLink::attach(program, Event::CpuClock, perf_rate(*rate), cpu)
                            .map_err(|e| fail(instance.name.clone(), e))?;
                    to._perf_events.push(link);
                }
                verbose(format!(
                    "attached {} on {} CPU(s)",
                    instance.name,
                    cpus.len()
                ));
            }
        }
    }
    Ok(())
}
