//! The vDSO, symbolized from our own copy.
//!
//! The kernel maps the same small ELF image, the vDSO, into every process
//! (`[vdso]` in the maps; `clock_gettime` and friends run there). It is not a
//! file, so it cannot be opened like the others; but it is the same image in
//! our process as in any other of the same ABI. We copy ours into an
//! anonymous memory file once and symbolize through that. A mapping whose
//! size differs from ours (a 32-bit process) stays unresolved.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::FromRawFd;

use crate::maps;

/// How the vDSO appears in `/proc/PID/maps`.
pub(crate) const NAME: &str = "[vdso]";

/// A memory file holding a copy of this process's vDSO.
pub(crate) fn image() -> Option<File> {
    let maps_text = fs::read_to_string("/proc/self/maps").ok()?;
    let region = maps::parse(&maps_text).find(|e| e.path == NAME)?;
    let mut bytes = vec![0; usize::try_from(region.end - region.start).ok()?];
    File::open("/proc/self/mem")
        .ok()?
        .read_exact_at(&mut bytes, region.start)
        .ok()?;
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns
    // a new descriptor that nothing else owns, or -1.
    let fd = unsafe { libc::memfd_create(c"scorch-vdso".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh, valid descriptor owned by no one else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(&bytes).ok()?;
    Some(file)
}
