//! Creating the maps and loading the programs of a compiled program.
//!
//! Generated instructions refer to maps by their index in
//! [`Compiled::maps`]; here each map is created and every `ld_imm64` map
//! reference is patched with the real file descriptor before the program
//! goes to the verifier.

use libbpf_rs::{MapHandle, MapType};
use scorch_bpf::insn::Insn;
use scorch_bpf::program::{Program, ProgramType};
use std::os::fd::{AsFd, AsRawFd};

use super::RunError;
use crate::codegen::{Compiled, MapKind, ProgKind, GLOBALS_SIZE, GLOBAL_START};
use crate::sema::{Attach, KernelFunction};

/// The kernel objects of a running program.
pub(super) struct Loaded {
    /// Maps, by index in [`Compiled::maps`].
    pub(super) maps: Vec<MapHandle>,
    /// Programs, by index in [`Compiled::programs`].
    pub(super) programs: Vec<Program>,
}

/// Creates every map and loads every program; `start_ns` is the
/// `CLOCK_MONOTONIC` time `elapsed` counts from.
pub(super) fn load(compiled: &Compiled, start_ns: u64) -> Result<Loaded, RunError> {
    let mut maps = Vec::with_capacity(compiled.maps.len());
    for def in &compiled.maps {
        let ty = match def.kind {
            MapKind::Hash => MapType::Hash,
            MapKind::PercpuHash => MapType::PercpuHash,
            MapKind::Array => MapType::Array,
            MapKind::PercpuArray => MapType::PercpuArray,
            MapKind::RingBuf => MapType::RingBuf,
            MapKind::StackTrace => MapType::StackTrace,
        };
        let map =
            scorch_bpf::map::create(ty, &def.name, def.key_size, def.value_size, def.max_entries)
                .map_err(|e| RunError::Bpf(format!("{e}")))?;
        maps.push(map);
    }
    if let Some(globals) = maps.get(compiled.globals) {
        // The start time, and the "exited" flag cleared.
        let mut value = vec![0u8; GLOBALS_SIZE as usize];
        let start = GLOBAL_START as usize;
        value[start..start + 8].copy_from_slice(&start_ns.to_ne_bytes());
        scorch_bpf::map::set(globals, &0u32.to_ne_bytes(), &value)
            .map_err(|e| RunError::Bpf(format!("{e}")))?;
    }
    let fds: Vec<i32> = maps.iter().map(|m| m.as_fd().as_raw_fd()).collect();
    let mut programs = Vec::with_capacity(compiled.programs.len());
    for (i, def) in compiled.programs.iter().enumerate() {
        let insns = patch(&def.insns, &fds);
        let ty = match def.kind {
            ProgKind::RunOnce => ProgramType::RawTracepoint,
            ProgKind::Tracepoint => ProgramType::Tracepoint,
            ProgKind::RawTracepoint => ProgramType::RawTracepoint,
            ProgKind::PerfEvent => ProgramType::PerfEvent,
            ProgKind::Kprobe => ProgramType::Kprobe,
            ProgKind::Trampoline => trampoline_type(def)?,
        };
        let name = scorch_bpf::map::kernel_name(&format!("scorch_{i}"));
        let loaded = if def.callbacks.is_empty() {
            Program::load(ty, &name, &insns)
        } else {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(def.callbacks.iter().map(|&(start, _)| start))
                .collect();
            let arity: Vec<u32> = std::iter::once(1)
                .chain(def.callbacks.iter().map(|&(_, n)| n))
                .collect();
            scorch_bpf::func_info::FuncInfo::load(&starts, &arity)
                .and_then(|funcs| Program::load_with_funcs(ty, &name, &insns, &funcs))
        };
        let loaded = match (&def.instances.first().map(|i| &i.attach), loaded) {
            (Some(Attach::Fentry(f)), Err(e)) => Err(trampoline_error(f, e)),
            (_, loaded) => loaded,
        };
        let program = loaded.map_err(|e| match e {
            scorch_bpf::Error::Verifier { summary, log, .. } => RunError::Verifier {
                probe: def.name(),
                summary,
                log,
            },
            other => RunError::Bpf(format!(
                "loading the program of probe {}: {other}",
                def.name()
            )),
        })?;
        programs.push(program);
    }
    Ok(Loaded { maps, programs })
}

/// The program type of a trampoline program: fentry or fexit, with its
/// function's BTF id.
fn trampoline_type(def: &crate::codegen::ProgramDef) -> Result<ProgramType, RunError> {
    let Some(Attach::Fentry(f)) = def.instances.first().map(|i| &i.attach) else {
        return Err(RunError::Bpf(format!(
            "internal error: program of {} has no kernel function",
            def.name()
        )));
    };
    scorch_bpf::btf_link::fentry_type(&f.function, f.ret)
        .map_err(|e| RunError::Bpf(format!("{}: {e}", def.name())))
}

/// The kernel's refusal of a trampoline program, explained; for a kprobe
/// run as fentry, also why it was not a kprobe.
fn trampoline_error(f: &KernelFunction, e: scorch_bpf::Error) -> scorch_bpf::Error {
    if !f.via_kprobe {
        return scorch_bpf::btf_link::explain_fentry_error(e, &f.function);
    }
    let kind = if f.ret { "kretprobe" } else { "kprobe" };
    let cause = if std::env::var_os(crate::sema::kernel_probes::VIA_FENTRY_ENV).is_some() {
        format!("{} is set", crate::sema::kernel_probes::VIA_FENTRY_ENV)
    } else {
        "this kernel has no kprobes: it was built without CONFIG_KPROBES and CONFIG_KPROBE_EVENTS (/sys/bus/event_source/devices/kprobe is missing)".to_string()
    };
    scorch_bpf::Error::Unsupported(format!(
        "cannot attach {kind}:{}: {cause}, so scorch tried fentry/fexit, and the kernel refused that too ({e}): fentry needs BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) and a security policy that allows them (see /sys/kernel/security/lockdown); trace a tracepoint instead (`scorch trace -l 'tracepoint:*'`)",
        f.function
    ))
}

/// `insns` with map indexes replaced by file descriptors.
pub(super) fn patch(insns: &[Insn], fds: &[i32]) -> Vec<Insn> {
    let mut out = insns.to_vec();
    let mut i = 0;
    while i < out.len() {
        let insn = &mut out[i];
        if insn.code == 0x18 {
            let src = u32::from(insn.src);
            if src == libbpf_sys::BPF_PSEUDO_MAP_FD || src == libbpf_sys::BPF_PSEUDO_MAP_VALUE {
                if let Some(&fd) = usize::try_from(insn.imm).ok().and_then(|m| fds.get(m)) {
                    insn.imm = fd;
                }
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorch_bpf::insn::{R1, R2};

    #[test]
    fn map_indexes_become_fds() {
        let mut insns = Vec::new();
        insns.extend(Insn::ld_map_fd(R1, 1));
        insns.extend(Insn::ld_imm64(R2, 1));
        let patched = patch(&insns, &[10, 11]);
        assert_eq!(patched[0].imm, 11);
        assert_eq!(patched[2].imm, 1, "plain constants stay");
    }
}
