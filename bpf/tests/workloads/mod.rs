//! Test workloads from `tests/workloads`, built for the BPF tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `tests/workloads/SRC.c` with `-O2 -fomit-frame-pointer` as `OUT`
/// in the target's scratch folder (test binaries run at once: each names
/// its own output).
pub fn c_without_frame_pointers(src: &str, out: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/workloads/{src}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(out);
    let status = Command::new("gcc")
        .args(["-O2", "-fomit-frame-pointer", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "building {}", src.display());
    out
}
