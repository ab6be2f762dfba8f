//! A text form of an analysis, for golden tests and `--dry-run` output.
//!
//! One line per fact: each probe with its attach points, each map with its
//! key and value types, each variable and each printf format.

use std::fmt::Write as _;

use super::probes::{Attach, Rate};
use super::Analysis;

/// The analysis as text, ending with a newline.
pub fn dump(analysis: &Analysis) -> String {
    let mut out = String::new();
    for (i, probe) in analysis.probes.iter().enumerate() {
        let per = if probe.per_instance {
            " (one program per attach point)"
        } else {
            ""
        };
        let _ = writeln!(out, "probe {i}{per}");
        for instance in &probe.instances {
            let detail = match &instance.attach {
                Attach::Begin | Attach::End => String::new(),
                Attach::Tracepoint { format, .. } => match format.id {
                    Some(id) => format!(" id {id}"),
                    None => " (no id)".to_string(),
                },
                Attach::RawTracepoint { args, .. } => format!(" args {args}"),
                Attach::Counter { counter, period } => {
                    format!(
                        " {:?} config {} every {period}",
                        counter.kind, counter.config
                    )
                }
                Attach::Interval(rate) | Attach::Profile(rate) => match rate {
                    Rate::Hz(hz) => format!(" every 1/{hz} s"),
                    Rate::PeriodNs(ns) => format!(" every {ns} ns"),
                },
                Attach::Uprobe(u) => format!(" offset {:#x}", u.offset),
                Attach::Usdt(u) => format!(
                    " offset {:#x} semaphore {:#x} args {}",
                    u.probe.offset,
                    u.probe.semaphore,
                    u.probe.args.len()
                ),
                Attach::Kprobe { offset, .. } => format!(" offset {offset}"),
                Attach::Watchpoint { pid, .. } => format!(" in process {pid}"),
                Attach::Fentry(f) => format!(
                    " btf args {}{}",
                    f.params.len(),
                    if f.via_kprobe {
                        " (as fentry/fexit)"
                    } else {
                        ""
                    }
                ),
            };
            let _ = writeln!(out, "  {}{detail}", instance.name);
        }
    }
    for map in &analysis.maps {
        let keys = if map.keys.is_empty() {
            String::new()
        } else {
            let keys: Vec<String> = map.keys.iter().map(ToString::to_string).collect();
            format!("[{}]", keys.join(", "))
        };
        let _ = writeln!(out, "map @{}{keys}: {}", map.name, map.value);
    }
    for var in &analysis.vars {
        let ty = var.ty.as_ref().map_or("?".to_string(), ToString::to_string);
        let _ = writeln!(out, "var ${}: {ty}", var.name);
    }
    for (i, p) in analysis.printfs.iter().enumerate() {
        let args: Vec<String> = p.args.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "printf {i}: ({})", args.join(", "));
    }
    for (i, t) in analysis.time_formats.iter().enumerate() {
        let _ = writeln!(out, "time {i}: {}", crate::printf::quote(t));
    }
    for (i, f) in analysis.strftime_formats.iter().enumerate() {
        let _ = writeln!(out, "strftime {i}: {}", crate::printf::quote(f));
    }
    for (i, d) in analysis.join_delims.iter().enumerate() {
        let d = String::from_utf8_lossy(d);
        let _ = writeln!(out, "join {i}: {}", crate::printf::quote(&d));
    }
    out
}
