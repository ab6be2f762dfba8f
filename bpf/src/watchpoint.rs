//! Watchpoints: a program runs when a thread touches an address.
//!
//! The CPU's debug registers watch 1, 2, 4 or 8 aligned bytes for writes,
//! reads and writes, or execution; the kernel offers them as perf events of
//! type `PERF_TYPE_BREAKPOINT`, opened on one thread (a process's main
//! thread when given its PID; other threads are not watched). A BPF program
//! of type `PERF_EVENT` attached to one runs on every hit, with the
//! registers at the faulting instruction as context. x86 has four debug
//! registers, cannot watch reads alone, and watches execution only alone
//! and only over 8 bytes.

use crate::error::{Error, Result};
use crate::perf_event::{self, PerfEventLink};
use crate::program::Program;

// HW_BREAKPOINT_R, _W and _X from include/uapi/linux/hw_breakpoint.h.
const READ: u32 = 1;
const WRITE: u32 = 2;
const EXECUTE: u32 = 4;

/// Which accesses fire a watchpoint, as bpftrace spells them (`r`, `w`,
/// `rw`, `x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(u32);

impl Access {
    /// Parses bpftrace's mode letters: any of `r`, `w`, `x`, each once.
    pub fn parse(mode: &str) -> Option<Access> {
        let mut bits = 0;
        for c in mode.chars() {
            let bit = match c {
                'r' => READ,
                'w' => WRITE,
                'x' => EXECUTE,
                _ => return None,
            };
            if bits & bit != 0 {
                return None;
            }
            bits |= bit;
        }
        (bits != 0).then_some(Access(bits))
    }
}

/// Attaches `program` (type `PERF_EVENT`) to accesses of `len` bytes at
/// `address` in process `pid`; detached when the link is dropped.
pub fn attach(
    program: &Program,
    pid: u32,
    address: u64,
    len: u64,
    access: Access,
) -> Result<PerfEventLink> {
    let what = format!("watchpoint at {address:#x} ({len} bytes) in process {pid}");
    let refuse = |why: &str| Err(Error::Probe(format!("cannot set {what}: {why}")));
    if pid == 0 {
        return refuse("give the PID of a user process (0 means scorch itself)");
    }
    if !matches!(len, 1 | 2 | 4 | 8) || address & (len - 1) != 0 {
        return refuse("the length must be 1, 2, 4 or 8 bytes and the address aligned to it");
    }
    if access.0 & EXECUTE != 0 && (access.0 != EXECUTE || len != 8) {
        return refuse("x86 watches execution only alone (`x`, not with r or w) and over 8 bytes");
    }
    let mut attr = libbpf_sys::perf_event_attr {
        size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
        type_: libbpf_sys::PERF_TYPE_BREAKPOINT,
        bp_type: access.0,
        ..Default::default()
    };
    attr.__bindgen_anon_3.bp_addr = address;
    attr.__bindgen_anon_4.bp_len = len;
    attr.__bindgen_anon_1.sample_period = 1;
    let event = perf_event::open(&attr, pid as i32, -1).map_err(|err| {
        let why = match err.raw_os_error() {
            Some(libc::ESRCH) => format!("process {pid} does not exist"),
            Some(libc::EINVAL) if access.0 == 1 => {
                "x86 cannot watch reads alone: use `rw`".to_string()
            }
            Some(libc::ENOSPC) => {
                "every debug register is taken (x86 has four): remove another watchpoint"
                    .to_string()
            }
            Some(libc::ENOENT | libc::EOPNOTSUPP) => {
                "this machine offers no hardware breakpoints".to_string()
            }
            _ => return Error::sys(format!("setting {what}"), err),
        };
        Error::Probe(format!("cannot set {what}: {why} ({err})"))
    })?;
    PerfEventLink::link(program, event, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bpftrace_modes() {
        assert_eq!(Access::parse("w"), Some(Access(2)));
        assert_eq!(Access::parse("rw"), Some(Access(3)));
        assert_eq!(Access::parse("wr"), Some(Access(3)));
        assert_eq!(Access::parse("x"), Some(Access(4)));
        assert_eq!(Access::parse("ww"), None);
        assert_eq!(Access::parse(""), None);
        assert_eq!(Access::parse("q"), None);
    }
}
