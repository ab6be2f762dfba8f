//! Tracepoints: a program attached to a kernel tracepoint.
//!
//! A tracepoint is opened as a perf event of type `PERF_TYPE_TRACEPOINT`
//! whose config is the tracepoint's id (from
//! `/sys/kernel/tracing/events/CATEGORY/NAME/id`); the program, of type
//! `BPF_PROG_TYPE_TRACEPOINT`, is linked to that event and then runs on
//! every hit on every CPU. The link detaches when dropped.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::perf_event::PerfEventLink;
use crate::program::Program;

/// `PERF_FLAG_FD_CLOEXEC` from `include/uapi/linux/perf_event.h`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// A program attached to a tracepoint; detached when dropped.
#[derive(Debug)]
pub struct TracepointLink {
    _link: PerfEventLink,
}

impl TracepointLink {
    /// Attaches `program` to the tracepoint `category:name` whose id is `id`.
    pub fn attach(program: &Program, category: &str, name: &str, id: u64) -> Result<Self> {
        let mut attr = libbpf_sys::perf_event_attr {
            size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
            type_: libbpf_sys::PERF_TYPE_TRACEPOINT,
            config: id,
            ..Default::default()
        };
        attr.__bindgen_anon_1.sample_period = 1;
        attr.__bindgen_anon_2.wakeup_events = 1;
        // SAFETY: attr is a valid perf_event_attr that outlives the call.
        // All processes (-1) on CPU 0: with BPF attached, a tracepoint
        // event runs the program on every CPU.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const libbpf_sys::perf_event_attr,
                -1i32,
                0i32,
                -1i32,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::sys(
                format!("opening tracepoint {category}:{name} (id {id})"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a non-negative return is a new fd we own.
        let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let link = PerfEventLink::link(program, event, &format!("tracepoint {category}:{name}"))?;
        Ok(Self { _link: link })
    }
}

/// The id of tracepoint `category:name` under the tracefs at `tracefs`.
pub fn id(tracefs: &str, category: &str, name: &str) -> Result<u64> {
    let path = format!("{tracefs}/events/{category}/{name}/id");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::sys(format!("reading {path}"), e))?;
    text.trim().parse().map_err(|_| Error::Sys {
        what: format!("parsing {path}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, text.trim().to_string()),
    })
}
