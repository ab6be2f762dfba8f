//! Shared helpers of the unwinder's tests: workloads built from
//! `tests/workloads/`, and binutils as an independent oracle.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Debian's libc, built without frame pointers.
pub const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

fn workloads() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/workloads")
}

/// Runs `command`, panicking with its stderr when it fails; returns stdout.
pub fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Builds a workload once per test binary under `name` with `build`.
fn build_once(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("unwind-workloads");
    std::fs::create_dir_all(&dir).expect("workload dir");
    let out = dir.join(name);
    build(&out);
    built.insert(name.to_owned(), out.clone());
    out
}

/// `tests/workloads/NAME.c` built with `-O2 -fomit-frame-pointer` and `flags`, as `out_name`.
pub fn c_workload(name: &str, out_name: &str, flags: &[&str]) -> PathBuf {
    build_once(out_name, |out| {
        run(Command::new("gcc")
            .args(["-O2", "-fomit-frame-pointer"])
            .args(flags)
            .arg("-o")
            .arg(out)
            .arg(workloads().join(format!("{name}.c"))));
    })
}

/// `tests/workloads/NAME.rs` built as a release binary with default flags (no frame pointers).
pub fn rust_release_workload(name: &str) -> PathBuf {
    build_once(&format!("{name}-release"), |out| {
        run(Command::new("rustc")
            .args(["-C", "opt-level=3", "-o"])
            .arg(out)
            .arg(workloads().join(format!("{name}.rs"))));
    })
}

/// A function symbol: address, size, name without version.
#[derive(Debug, Clone)]
pub struct Symbol {
    pub address: u64,
    pub size: u64,
    pub name: String,
}

/// Function symbols of `path` (`.symtab` and `.dynsym`) as `readelf -Ws` lists them, sorted.
pub fn symbols(path: &Path) -> Vec<Symbol> {
    let text = run(Command::new("readelf").arg("-Ws").arg(path));
    let mut out: Vec<Symbol> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Num: Value Size Type Bind Vis Ndx Name
            if f.len() < 8 || f[3] != "FUNC" || f[6] == "UND" {
                return None;
            }
            Some(Symbol {
                address: u64::from_str_radix(f[1], 16).ok()?,
                size: f[2].parse().ok()?,
                name: f[7].split('@').next()?.to_owned(),
            })
        })
        .collect();
    out.sort_by_key(|s| s.address);
    out
}

/// The function symbol containing `vaddr`.
pub fn symbol_at(symbols: &[Symbol], vaddr: u64) -> Option<&Symbol> {
    symbols
        .iter()
        .rev()
        .find(|s| s.address <= vaddr && vaddr < s.address + s.size.max(1))
}

pub mod oracle;
