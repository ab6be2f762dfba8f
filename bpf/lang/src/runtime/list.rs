//! `-l [PATTERN]`: the probes this machine offers, as `bpftrace -l` prints
//! them — tracepoints from tracefs, raw tracepoints from the kernel's BTF,
//! and the software and hardware perf events, one full name per line.
//! Kernel functions (`kprobe:*`, `fentry:*`) are listed when the pattern
//! names their provider (there are tens of thousands), a binary's
//! functions and USDT probes when it names the binary
//! (`uprobe:/bin/bash:*`, `usdt:./app:*`). With `-v` (`-lv`), each
//! tracepoint's fields and each fentry function's arguments follow it.

use std::io::Write;

use super::RunError;
use crate::provider::ProbeKind;
use crate::sema::{self, perf_events, probes::glob};
use scorch_bpf::counter::CounterKind;

/// Writes the probes matching `pattern` (a glob such as
/// `tracepoint:syscalls:sys_enter_*`; aliases such as `t:` or `rt:` work
/// for the provider), one per line, sorted.
pub fn list(pattern: &str, kernel: &dyn sema::Kernel, out: &mut dyn Write) -> Result<(), RunError> {
    list_with(pattern, kernel, false, out)
}

/// [`list`], with the arguments of each probe under it when `verbose`.
pub fn list_with(
    pattern: &str,
    kernel: &dyn sema::Kernel,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<(), RunError> {
    let pattern = match pattern.split_once(':') {
        Some((provider, rest)) => match ProbeKind::from_name(provider) {
            Some(kind) => format!("{}:{rest}", kind.name()),
            None => pattern.to_string(),
        },
        None if pattern.is_empty() => "*".to_string(),
        None => pattern.to_string(),
    };
    // Whether any name of `provider` can match: skips reading what is not
    // asked for, and says when a failure to read it matters.
    let wants = |provider: &str| match pattern.split_once(':') {
        Some((p, _)) => glob(p, provider),
        None => true,
    };
    let explicit = |provider: &str| pattern.starts_with(&format!("{provider}:"));
    let mut names: Vec<String> = Vec::new();
    if wants("tracepoint") {
        match kernel.tracepoints() {
            Ok(all) => names.extend(
                all.into_iter()
                    .map(|(category, name)| format!("tracepoint:{category}:{name}")),
            ),
            Err(e) if explicit("tracepoint") => {
                return Err(RunError::Bpf(format!("listing tracepoints: {e}")))
            }
            Err(_) => {}
        }
    }
    if wants("rawtracepoint") {
        match kernel.raw_tracepoints() {
            Ok(all) => names.extend(
                all.into_iter()
                    .map(|(name, _)| format!("rawtracepoint:{name}")),
            ),
            Err(e) if explicit("rawtracepoint") => {
                return Err(RunError::Bpf(format!("listing raw tracepoints: {e}")))
            }
            Err(_) => {}
        }
    }
    for (provider, kind) in [
        ("software", CounterKind::Software),
        ("hardware", CounterKind::Hardware),
    ] {
        names.extend(
            perf_events::events(kind)
                .iter()
                .map(|e| format!("{provider}:{}:", e.counter.name)),
        );
    }
    names.retain(|full| glob(&pattern, full));
    if let Some((provider, rest)) = pattern.split_once(':') {
        names.extend(super::list_functions::list(
            provider,
            rest,
            kernel.target_pid(),
        )?);
    }
    names.sort();
    names.dedup();
    let mut details = super::list_functions::Details::new(&names);
    for name in names {
        writeln!(out, "{name}").map_err(|e| RunError::Io(e.to_string()))?;
        if verbose {
            for line in details.of(&name, kernel) {
                writeln!(out, "    {line}").map_err(|e| RunError::Io(e.to_string()))?;
            }
        }
    }
    Ok(())
}
