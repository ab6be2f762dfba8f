//! Loading hand-assembled programs into the kernel.
//!
//! Programs load through libbpf's `bpf_prog_load` without a log first (fast);
//! when the kernel refuses, they load again with the verifier log so the
//! error can say why.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::insn::Insn;

/// Kinds of program scorch loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramType {
    /// Runs on a perf event overflow (`bpf_perf_event_data` context).
    PerfEvent,
    /// Runs on a tracepoint hit (the tracepoint's record as context).
    Tracepoint,
    /// Runs on a kprobe or uprobe hit (`pt_regs` as context).
    Kprobe,
    /// Runs on entry to the kernel function with this BTF id (its
    /// arguments as a `u64` array), through a BPF trampoline.
    Fentry(u32),
    /// Runs on return from the kernel function with this BTF id (its
    /// arguments, then its return value, as a `u64` array).
    Fexit(u32),
    /// Runs on the raw tracepoint whose `btf_trace_NAME` typedef has this
    /// BTF id, with its typed arguments as a `u64` array (tp_btf).
    TpBtf(u32),
    /// Runs on a raw tracepoint (its `u64` arguments as context); also
    /// what scorch runs once from user space with `BPF_PROG_TEST_RUN`.
    RawTracepoint,
}

impl ProgramType {
    fn raw(self) -> libbpf_sys::bpf_prog_type {
        match self {
            ProgramType::PerfEvent => libbpf_sys::BPF_PROG_TYPE_PERF_EVENT,
            ProgramType::Tracepoint => libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
            ProgramType::Kprobe => libbpf_sys::BPF_PROG_TYPE_KPROBE,
            ProgramType::Fentry(_) | ProgramType::Fexit(_) | ProgramType::TpBtf(_) => {
                libbpf_sys::BPF_PROG_TYPE_TRACING
            }
            ProgramType::RawTracepoint => libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT,
        }
    }
}

/// A loaded program; unloaded when dropped (and no link holds it).
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    name: String,
}

const LOG_SIZE: usize = 16 * 1024 * 1024;

impl Program {
    /// Loads `insns` as a GPL program of type `ty` named `name`.
    pub fn load(ty: ProgramType, name: &str, insns: &[Insn]) -> Result<Self> {
        Self::load_with(ty, name, insns, None)
    }

    /// Loads a program with subprograms, described by `funcs`.
    pub fn load_with_funcs(
        ty: ProgramType,
        name: &str,
        insns: &[Insn],
        funcs: &crate::func_info::FuncInfo,
    ) -> Result<Self> {
        Self::load_with(ty, name, insns, Some(funcs))
    }

    fn load_with(
        ty: ProgramType,
        name: &str,
        insns: &[Insn],
        funcs: Option<&crate::func_info::FuncInfo>,
    ) -> Result<Self> {
        let raw: Vec<libbpf_sys::bpf_insn> = insns.iter().map(|i| i.to_raw()).collect();
        let c_name = CString::new(name).unwrap_or_default();
        let license = c"GPL";
        let load = |log: Option<&mut Vec<u8>>| {
            let mut opts = libbpf_sys::bpf_prog_load_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
                ..Default::default()
            };
            let btf_target = match ty {
                ProgramType::Fentry(id) => Some((id, libbpf_sys::BPF_TRACE_FENTRY)),
                ProgramType::Fexit(id) => Some((id, libbpf_sys::BPF_TRACE_FEXIT)),
                ProgramType::TpBtf(id) => Some((id, libbpf_sys::BPF_TRACE_RAW_TP)),
                _ => None,
            };
            if let Some((id, attach_type)) = btf_target {
                opts.attach_btf_id = id;
                opts.expected_attach_type = attach_type;
            }
            if let Some(funcs) = funcs {
                opts.prog_btf_fd = funcs.btf_fd() as u32;
                opts.func_info = funcs.records().as_ptr().cast();
                opts.func_info_cnt = funcs.records().len() as u32;
                opts.func_info_rec_size = std::mem::size_of::<libbpf_sys::bpf_func_info>() as u32;
            }
            if let Some(buf) = log {
                opts.log_level = 1;
                opts.log_size = buf.len() as u32;
                opts.log_buf = buf.as_mut_ptr().cast();
            }
            // SAFETY: every pointer outlives the call; sizes match the buffers.
            let fd = unsafe {
                libbpf_sys::bpf_prog_load(
                    ty.raw(),
                    c_name.as_ptr(),
                    license.as_ptr(),
                    raw.as_ptr(),
                    raw.len() as _,
                    &mut opts,
                )
            };
            if fd < 0 {
                Err(std::io::Error::from_raw_os_error(-fd))
            } else {
                // SAFETY: a non-negative return is a new fd we own.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        };
        match load(None) {
            Ok(fd) => Ok(Self {
                fd,
                name: name.to_string(),
            }),
            Err(first) => {
                let mut buf = vec![0u8; LOG_SIZE];
                let again = load(Some(&mut buf));
                let log =
                    String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(0)])
                        .into_owned();
                match again {
                    Ok(fd) => Ok(Self {
                        fd,
                        name: name.to_string(),
                    }),
                    Err(err) if !log.trim().is_empty() => Err(Error::Verifier {
                        program: name.to_string(),
                        summary: summarize(&log, &err),
                        log,
                    }),
                    Err(_) => Err(Error::sys(format!("loading BPF program `{name}`"), first)),
                }
            }
        }
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Raw fd, for attach calls.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The verifier's reason: the last non-statistics line of its log.
fn summarize(log: &str, err: &std::io::Error) -> String {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
        })
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_skips_statistics() {
        let log = "0: (b7) r0 = 0\n1: (95) exit\nR0 !read_ok\nprocessed 2 insns (limit 1000000)\n";
        let err = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(summarize(log, &err), "R0 !read_ok");
        assert_eq!(summarize("", &err), err.to_string());
    }
}
