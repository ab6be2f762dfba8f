//! Running a program once, now, from user space.
//!
//! `BPF_PROG_TEST_RUN` executes a loaded program synchronously in the
//! calling thread. For a raw-tracepoint program that is a real run in the
//! context of the caller — its pid, its comm, this CPU — which is exactly
//! what a tracer's `BEGIN` and `END` probes are: code that runs once in
//! the tracer itself, before tracing starts and after it stops.

use crate::error::{Error, Result};
use crate::program::Program;

/// Arguments a raw tracepoint program may read (`MAX_BPF_FUNC_ARGS`).
const MAX_ARGS: usize = 12;

/// Runs the raw-tracepoint `program` once with zero arguments; returns
/// its return value.
pub fn run_once(program: &Program) -> Result<u32> {
    let mut args = [0u64; MAX_ARGS];
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        ctx_in: args.as_mut_ptr().cast(),
        ctx_size_in: std::mem::size_of_val(&args) as u32,
        ..Default::default()
    };
    // SAFETY: opts and the context it points to outlive the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(program.raw_fd(), &mut opts) };
    if rc < 0 {
        return Err(Error::sys(
            format!("running BPF program `{}`", program.name()),
            std::io::Error::from_raw_os_error(-rc),
        ));
    }
    Ok(opts.retval)
}
