//! fentry/fexit: programs the kernel calls through a BPF trampoline on entry
//! to, or return from, a kernel function named by its BTF id.
//!
//! Cheaper than kprobes and typed (the arguments are the function's, as
//! `u64`s; fexit adds the return value after them), but they need a kernel
//! that can build trampolines (`CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS`)
//! and lets root use them: our development kernel refuses to load them.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::btf;
use crate::error::{Error, Result};
use crate::program::{Program, ProgramType};

/// The program type that targets kernel function `function` on entry, or on
/// return when `exit`, looked up in the running kernel's BTF.
pub fn program_type(function: &str, exit: bool) -> Result<ProgramType> {
    let id = btf::function_id(btf::VMLINUX, function)?;
    Ok(if exit {
        ProgramType::Fexit(id)
    } else {
        ProgramType::Fentry(id)
    })
}

/// Turns the kernel's refusal of a trampoline program into a message that
/// says what to do; other errors pass through.
///
/// Kernels without trampolines answer `EOPNOTSUPP`/`ENOTSUPP`; kernels whose
/// security policy forbids them (lockdown, a BPF LSM) answer `EPERM` even to
/// root, with an empty verifier log.
pub fn explain_load_error(err: Error, function: &str) -> Error {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let refused = match &err {
        Error::Sys { source, .. } => {
            matches!(source.raw_os_error(), Some(libc::EOPNOTSUPP | ENOTSUPP))
        }
        Error::Permission { .. } => root,
        _ => false,
    };
    if !refused {
        return err;
    }
    Error::Unsupported(format!(
        "cannot load fentry/fexit programs for `{function}`: this kernel refused ({err}); it needs BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) and a security policy that allows them (see /sys/kernel/security/lockdown); use kprobe:{function} or a tracepoint instead"
    ))
}

/// The kernel's internal `ENOTSUPP`, which some BPF paths return.
const ENOTSUPP: i32 = 524;

/// A loaded fentry/fexit program attached to its function; detached when
/// dropped.
#[derive(Debug)]
pub struct TrampolineLink {
    _link: OwnedFd,
}

impl TrampolineLink {
    /// Attaches `program` (loaded as [`ProgramType::Fentry`] or
    /// [`ProgramType::Fexit`]) to the function it was loaded for.
    pub fn attach(program: &Program) -> Result<Self> {
        // SAFETY: a null name is how tracing programs open their link.
        let fd = unsafe { libbpf_sys::bpf_raw_tracepoint_open(std::ptr::null(), program.raw_fd()) };
        if fd < 0 {
            return Err(Error::sys(
                format!(
                    "attaching BPF program `{}` to its trampoline",
                    program.name()
                ),
                std::io::Error::from_raw_os_error(-fd),
            ));
        }
        Ok(Self {
            // SAFETY: a non-negative return is a new fd we own.
            _link: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }
}
