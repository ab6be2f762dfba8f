//! Programs the kernel attaches by BTF id: fentry/fexit and tp_btf.
//!
//! fentry/fexit programs run through a BPF trampoline on entry to, or
//! return from, a kernel function: cheaper than kprobes and typed (the
//! arguments are the function's, as `u64`s; fexit adds the return value
//! after them), but they need a kernel that can build trampolines
//! (`CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS`) and lets root use them: our
//! development kernel refuses to load them. tp_btf programs are raw
//! tracepoints whose arguments (typed pointers such as `struct task_struct
//! *`) the verifier knows from the `btf_trace_NAME` typedef; they work
//! wherever BTF does. Both load with their target's id and attach with
//! `BPF_RAW_TRACEPOINT_OPEN` and no name.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::btf;
use crate::error::{Error, Result};
use crate::program::{Program, ProgramType};

/// The program type that targets kernel function `function` on entry, or on
/// return when `exit`, looked up in the running kernel's BTF.
pub fn fentry_type(function: &str, exit: bool) -> Result<ProgramType> {
    let id = btf::function_id(btf::VMLINUX, function)?;
    Ok(if exit {
        ProgramType::Fexit(id)
    } else {
        ProgramType::Fentry(id)
    })
}

/// Turns the kernel's refusal of an fentry/fexit program into a message that
/// says what to do; other errors pass through.
///
/// Kernels without trampolines answer `EOPNOTSUPP`/`ENOTSUPP`; kernels whose
/// security policy forbids them (lockdown, a BPF LSM) answer `EPERM` even to
/// root, with an empty verifier log.
pub fn explain_fentry_error(err: Error, function: &str) -> Error {
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

/// The program type of a typed (tp_btf) program on raw tracepoint
/// `tracepoint` (e.g. `sched_switch`), looked up in the running kernel's BTF.
pub fn tp_btf_type(tracepoint: &str) -> Result<ProgramType> {
    btf::tracepoint_id(btf::VMLINUX, tracepoint).map(ProgramType::TpBtf)
}

/// A loaded fentry, fexit or tp_btf program attached to its target;
/// detached when dropped.
#[derive(Debug)]
pub struct BtfLink {
    _link: OwnedFd,
}

impl BtfLink {
    /// Attaches `program` (loaded as [`ProgramType::Fentry`],
    /// [`ProgramType::Fexit`] or [`ProgramType::TpBtf`]) to the target it
    /// was loaded for.
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
