//! Attach targets the kernel's BTF (`/sys/kernel/btf/vmlinux`) names.
//!
//! The kernel describes every raw tracepoint in its BTF as a typedef
//! `btf_trace_NAME`: a pointer to a function whose first parameter is
//! the BPF context and whose others are the tracepoint's arguments. That
//! list is the one the kernel attaches raw tracepoint programs to, and the
//! parameter count bounds what `arg0`…`argN` may read. fentry/fexit
//! programs load with the id of their function's `FUNC` record, tp_btf
//! programs with the id of that typedef. These helpers read one BTF file
//! per call; a compiler resolving many targets holds one
//! [`KernelTypes`](crate::btf_types::KernelTypes) instead.

use crate::btf_types::KernelTypes;
use crate::error::Result;

/// Where the running kernel publishes its BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// One raw tracepoint of the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTracepoint {
    /// Its name, e.g. `sched_switch`.
    pub name: String,
    /// How many `u64` arguments it passes.
    pub args: u32,
}

/// Every raw tracepoint described by the BTF at `path`, sorted by name.
pub fn raw_tracepoints(path: &str) -> Result<Vec<RawTracepoint>> {
    Ok(KernelTypes::parse(path)?.raw_tracepoints())
}

/// The BTF id of kernel function `name` in the BTF at `path`, which
/// fentry/fexit programs name as their target.
pub fn function_id(path: &str, name: &str) -> Result<u32> {
    KernelTypes::parse(path)?.function_id(name)
}

/// The BTF id of the `btf_trace_NAME` typedef of raw tracepoint `name` in
/// the BTF at `path`, which tp_btf programs name as their target.
pub fn tracepoint_id(path: &str, name: &str) -> Result<u32> {
    KernelTypes::parse(path)?.tracepoint_id(name)
}
