//! Facts read from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! The kernel describes every raw tracepoint in its BTF as a typedef
//! `btf_trace_NAME`: a pointer to a function whose first parameter is
//! the BPF context and whose others are the tracepoint's arguments. That
//! list is the one the kernel attaches raw tracepoint programs to, and the
//! parameter count bounds what `arg0`…`argN` may read.

use std::ffi::{CStr, CString};

use crate::error::{Error, Result};

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

/// `BTF_KIND_PTR`, `BTF_KIND_TYPEDEF` and `BTF_KIND_FUNC_PROTO` from
/// `include/uapi/linux/btf.h`.
const KIND_PTR: u32 = 2;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC_PROTO: u32 = 13;

/// A parsed BTF blob; freed when dropped.
pub(crate) struct Btf(pub(crate) *mut libbpf_sys::btf);

impl Drop for Btf {
    fn drop(&mut self) {
        // SAFETY: the pointer came from btf__parse and is freed once.
        unsafe { libbpf_sys::btf__free(self.0) }
    }
}

impl Btf {
    pub(crate) fn parse(path: &str) -> Result<Self> {
        let c_path = CString::new(path).map_err(|_| Error::Sys {
            what: format!("reading BTF from {path}"),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        // SAFETY: c_path is a valid C string; a null btf_ext is allowed.
        let btf = unsafe { libbpf_sys::btf__parse(c_path.as_ptr(), std::ptr::null_mut()) };
        // libbpf 1.x returns NULL with errno set on failure.
        if btf.is_null() {
            let errno = std::io::Error::last_os_error();
            return Err(Error::sys(format!("reading BTF from {path}"), errno));
        }
        Ok(Btf(btf))
    }

    /// `(kind, vlen, type or size, name)` of type `id`.
    fn ty(&self, id: u32) -> Option<(u32, u32, u32, &CStr, *const libbpf_sys::btf_type)> {
        // SAFETY: btf is valid; an out-of-range id gives NULL.
        let t = unsafe { libbpf_sys::btf__type_by_id(self.0, id) };
        if t.is_null() {
            return None;
        }
        // SAFETY: t points to a btf_type inside the parsed blob.
        let (name_off, info, next) =
            unsafe { ((*t).name_off, (*t).info, (*t).__bindgen_anon_1.type_) };
        // SAFETY: btf is valid; names are NUL-terminated in its string section.
        let name = unsafe { libbpf_sys::btf__name_by_offset(self.0, name_off) };
        let name = if name.is_null() {
            c""
        } else {
            // SAFETY: non-null names are valid C strings owned by btf.
            unsafe { CStr::from_ptr(name) }
        };
        Some(((info >> 24) & 0x1f, info & 0xffff, next, name, t))
    }
}

/// Every raw tracepoint described by the BTF at `path`, sorted by name.
pub fn raw_tracepoints(path: &str) -> Result<Vec<RawTracepoint>> {
    let btf = Btf::parse(path)?;
    // SAFETY: btf is valid.
    let count = unsafe { libbpf_sys::btf__type_cnt(btf.0) };
    let mut out = Vec::new();
    for id in 1..count {
        let Some((KIND_TYPEDEF, _, target, name, _)) = btf.ty(id) else {
            continue;
        };
        let Some(name) = name.to_bytes().strip_prefix(b"btf_trace_") else {
            continue;
        };
        let Some((KIND_PTR, _, proto, _, _)) = btf.ty(target) else {
            continue;
        };
        let Some((KIND_FUNC_PROTO, params, _, _, _)) = btf.ty(proto) else {
            continue;
        };
        out.push(RawTracepoint {
            name: String::from_utf8_lossy(name).into_owned(),
            // The first parameter is the context, not an argument.
            args: params.saturating_sub(1),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `BTF_KIND_FUNC` from `include/uapi/linux/btf.h`.
const KIND_FUNC: u32 = 12;

/// The BTF id of kernel function `name` in the BTF at `path`, which
/// fentry/fexit programs name as their target.
pub fn function_id(path: &str, name: &str) -> Result<u32> {
    find_id(path, name, KIND_FUNC)?.ok_or_else(|| {
        Error::Probe(format!(
            "the kernel's BTF ({path}) has no function `{name}`: it may be inlined, static without BTF, or misspelled; list candidates with `scorch trace -l 'fentry:*{name}*'`"
        ))
    })
}

/// The BTF id of the `btf_trace_NAME` typedef of raw tracepoint `name` in
/// the BTF at `path`, which tp_btf programs name as their target.
pub fn tracepoint_id(path: &str, name: &str) -> Result<u32> {
    find_id(path, &format!("btf_trace_{name}"), KIND_TYPEDEF)?.ok_or_else(|| {
        Error::Probe(format!(
            "the kernel's BTF ({path}) has no raw tracepoint `{name}`; list them with `scorch trace -l 'rawtracepoint:*'`"
        ))
    })
}

/// The id of the type of `kind` named `name` in the BTF at `path`, if it
/// holds one.
fn find_id(path: &str, name: &str, kind: u32) -> Result<Option<u32>> {
    let btf = Btf::parse(path)?;
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    // SAFETY: btf is valid and c_name a valid C string.
    let id = unsafe { libbpf_sys::btf__find_by_name_kind(btf.0, c_name.as_ptr(), kind) };
    Ok(u32::try_from(id).ok())
}
