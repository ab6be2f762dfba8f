//! Raw tracepoints: a program that receives a tracepoint's arguments as
//! they are passed inside the kernel, an array of `u64`.
//!
//! The program (type `BPF_PROG_TYPE_RAW_TRACEPOINT`) is attached by name
//! with `BPF_RAW_TRACEPOINT_OPEN`; the returned file descriptor is the
//! attachment, and closing it detaches the program.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::program::Program;

/// A program attached to a raw tracepoint; detached when dropped.
#[derive(Debug)]
pub struct RawTracepointLink {
    _fd: OwnedFd,
}

impl RawTracepointLink {
    /// Attaches `program` to the raw tracepoint `name` (e.g. `sched_switch`).
    pub fn attach(program: &Program, name: &str) -> Result<Self> {
        let what = || {
            format!(
                "attaching BPF program `{}` to raw tracepoint {name}",
                program.name()
            )
        };
        let c_name = CString::new(name).map_err(|_| Error::Sys {
            what: what(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        // SAFETY: c_name is a valid C string; the program fd is valid.
        let fd = unsafe { libbpf_sys::bpf_raw_tracepoint_open(c_name.as_ptr(), program.raw_fd()) };
        if fd < 0 {
            return Err(Error::sys(what(), std::io::Error::from_raw_os_error(-fd)));
        }
        Ok(Self {
            // SAFETY: a non-negative return is a new fd we own.
            _fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }
}
