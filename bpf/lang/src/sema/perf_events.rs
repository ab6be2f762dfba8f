//! The software and hardware events `software:` and `hardware:` probes
//! name, with bpftrace's aliases and default counts.
//!
//! `software:page-faults:100` fires on every 100th page fault of a CPU;
//! without a count, each event has bpftrace's default period.

use scorch_bpf::counter::{Counter, CounterKind};

/// One event a probe can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDef {
    /// The event's perf type, config and canonical name.
    pub counter: Counter,
    /// A short name bpftrace also accepts (`cs` for `context-switches`).
    pub alias: Option<&'static str>,
    /// The period when the probe gives no count.
    pub default_count: u64,
}

const fn event(
    kind: CounterKind,
    name: &'static str,
    alias: Option<&'static str>,
    config: u32,
    default_count: u64,
) -> EventDef {
    EventDef {
        counter: Counter {
            kind,
            config: config as u64,
            name,
        },
        alias,
        default_count,
    }
}

use CounterKind::{Hardware as HW, Software as SW};

/// The software events, as perf_event_open(2) defines them.
pub const SOFTWARE: [EventDef; 11] = [
    event(
        SW,
        "cpu-clock",
        Some("cpu"),
        libbpf_sys::PERF_COUNT_SW_CPU_CLOCK,
        1_000_000,
    ),
    event(
        SW,
        "task-clock",
        None,
        libbpf_sys::PERF_COUNT_SW_TASK_CLOCK,
        1_000_000,
    ),
    event(
        SW,
        "page-faults",
        Some("faults"),
        libbpf_sys::PERF_COUNT_SW_PAGE_FAULTS,
        100,
    ),
    event(
        SW,
        "context-switches",
        Some("cs"),
        libbpf_sys::PERF_COUNT_SW_CONTEXT_SWITCHES,
        1_000,
    ),
    event(
        SW,
        "cpu-migrations",
        None,
        libbpf_sys::PERF_COUNT_SW_CPU_MIGRATIONS,
        1,
    ),
    event(
        SW,
        "minor-faults",
        None,
        libbpf_sys::PERF_COUNT_SW_PAGE_FAULTS_MIN,
        100,
    ),
    event(
        SW,
        "major-faults",
        None,
        libbpf_sys::PERF_COUNT_SW_PAGE_FAULTS_MAJ,
        1,
    ),
    event(
        SW,
        "alignment-faults",
        None,
        libbpf_sys::PERF_COUNT_SW_ALIGNMENT_FAULTS,
        1,
    ),
    event(
        SW,
        "emulation-faults",
        None,
        libbpf_sys::PERF_COUNT_SW_EMULATION_FAULTS,
        1,
    ),
    event(SW, "dummy", None, libbpf_sys::PERF_COUNT_SW_DUMMY, 1),
    event(
        SW,
        "bpf-output",
        None,
        libbpf_sys::PERF_COUNT_SW_BPF_OUTPUT,
        1,
    ),
];

/// The generic hardware events, as perf_event_open(2) defines them.
pub const HARDWARE: [EventDef; 10] = [
    event(
        HW,
        "cpu-cycles",
        Some("cycles"),
        libbpf_sys::PERF_COUNT_HW_CPU_CYCLES,
        1_000_000,
    ),
    event(
        HW,
        "instructions",
        None,
        libbpf_sys::PERF_COUNT_HW_INSTRUCTIONS,
        1_000_000,
    ),
    event(
        HW,
        "cache-references",
        None,
        libbpf_sys::PERF_COUNT_HW_CACHE_REFERENCES,
        1_000_000,
    ),
    event(
        HW,
        "cache-misses",
        None,
        libbpf_sys::PERF_COUNT_HW_CACHE_MISSES,
        1_000_000,
    ),
    event(
        HW,
        "branch-instructions",
        Some("branches"),
        libbpf_sys::PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
        100_000,
    ),
    event(
        HW,
        "branch-misses",
        None,
        libbpf_sys::PERF_COUNT_HW_BRANCH_MISSES,
        100_000,
    ),
    event(
        HW,
        "bus-cycles",
        None,
        libbpf_sys::PERF_COUNT_HW_BUS_CYCLES,
        100_000,
    ),
    event(
        HW,
        "frontend-stalls",
        None,
        libbpf_sys::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
        1_000_000,
    ),
    event(
        HW,
        "backend-stalls",
        None,
        libbpf_sys::PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
        1_000_000,
    ),
    event(
        HW,
        "ref-cycles",
        None,
        libbpf_sys::PERF_COUNT_HW_REF_CPU_CYCLES,
        1_000_000,
    ),
];

/// The events of `kind`.
pub fn events(kind: CounterKind) -> &'static [EventDef] {
    match kind {
        CounterKind::Software => &SOFTWARE,
        CounterKind::Hardware => &HARDWARE,
    }
}

/// The event of `kind` called `name` or aliased so.
pub fn find(kind: CounterKind, name: &str) -> Option<&'static EventDef> {
    events(kind)
        .iter()
        .find(|e| e.counter.name == name || e.alias == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_defaults() {
        let cs = find(CounterKind::Software, "cs").unwrap();
        assert_eq!(cs.counter.name, "context-switches");
        assert_eq!(cs.default_count, 1000);
        assert_eq!(
            find(CounterKind::Software, "faults").unwrap().default_count,
            100
        );
        assert_eq!(
            find(CounterKind::Hardware, "cycles")
                .unwrap()
                .counter
                .config,
            u64::from(libbpf_sys::PERF_COUNT_HW_CPU_CYCLES)
        );
        assert!(find(CounterKind::Software, "cycles").is_none());
    }
}
