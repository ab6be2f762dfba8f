//! tracefs and bpffs: mounted on demand, as scorch needs them.

use std::ffi::CString;
use std::path::Path;

use crate::error::{Error, Result};

/// Where tracefs is expected.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where bpffs is expected.
pub const BPFFS: &str = "/sys/fs/bpf";

/// Mounts tracefs and bpffs at their usual places when they are missing.
pub fn ensure_mounted() -> Result<()> {
    ensure(TRACEFS, "tracefs", libc::TRACEFS_MAGIC)?;
    ensure(BPFFS, "bpf", libc::BPF_FS_MAGIC)
}

fn ensure(target: &str, fstype: &str, magic: i64) -> Result<()> {
    if fs_magic(target) == Some(magic) {
        return Ok(());
    }
    let c_target = CString::new(target).unwrap_or_default();
    let c_type = CString::new(fstype).unwrap_or_default();
    // SAFETY: valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            c_type.as_ptr(),
            c_target.as_ptr(),
            c_type.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::sys(
            format!("{fstype} is not mounted at {target} and mounting it failed (try `mount -t {fstype} {fstype} {target}`)"),
            err,
        ));
    }
    Ok(())
}

fn fs_magic(path: &str) -> Option<i64> {
    if !Path::new(path).exists() {
        return None;
    }
    let c_path = CString::new(path).ok()?;
    // SAFETY: statfs is plain data; zeroed is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_type as i64)
}
