//! Byte-for-byte compatibility with bpftrace, on programs whose output
//! does not depend on the machine.
//!
//! Each `tests/compat/NAME.bt` runs (with the parameters `abc 42`) and
//! its stdout must equal `NAME.out`; `json_*` programs run with `-f json`,
//! `unsafe_*` programs with `--unsafe`.
//! The `.out` files are bpftrace 0.17's output, and when `/usr/bin/bpftrace`
//! is installed the test checks that it still prints exactly that, with
//! two adjustments for what scorch deliberately does differently:
//! bpftrace 0.17 prints `Attaching N probes...` on stdout (scorch prints
//! `Attached N probes` on stderr, as current bpftrace does), and two
//! empty lines at the end of `-f json` output (scorch keeps every line
//! JSON).
//!
//! Needs root; skips with the reason printed otherwise.

mod golden;

use std::path::Path;
use std::process::Command;

use scorch_lang::{run, OutputFormat, RunOptions};

fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: running programs needs root");
    }
    root
}

fn json(path: &Path) -> bool {
    named(path, "json_")
}

fn allows_unsafe(path: &Path) -> bool {
    named(path, "unsafe_")
}

fn named(path: &Path, prefix: &str) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
}

/// What bpftrace prints for `path`, adjusted as the module docs say.
fn bpftrace(path: &Path) -> Option<String> {
    let bin = Path::new("/usr/bin/bpftrace");
    if !bin.exists() {
        return None;
    }
    let mut cmd = Command::new(bin);
    if json(path) {
        cmd.args(["-f", "json"]);
    }
    if allows_unsafe(path) {
        cmd.arg("--unsafe");
    }
    let out = cmd.arg(path).args(golden::PARAMS).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let dropped = |l: &str| l.starts_with("Attaching ") || (json(path) && l == "\n");
    lines.retain(|l| !dropped(l));
    Some(lines.concat())
}

#[test]
fn output_matches_bpftrace() {
    if !privileged() {
        return;
    }
    let mut failures = Vec::new();
    let files = golden::programs("compat");
    assert!(files.len() >= 10, "the compat corpus shrank");
    for path in files {
        let file = golden::load(&path);
        let mut opts =
            RunOptions::with_params(golden::PARAMS.iter().map(|s| s.to_string()).collect());
        if json(&path) {
            opts.format = OutputFormat::Json;
        }
        opts.unsafe_ = allows_unsafe(&path);
        let mut out = Vec::new();
        let mut err = Vec::new();
        match run(&file, &opts, &mut out, &mut err) {
            Ok(_) => {
                let golden_path = path.with_extension("out");
                failures.extend(golden::check(&golden_path, &String::from_utf8_lossy(&out)));
                if let Some(reference) = bpftrace(&path) {
                    failures.extend(
                        golden::check(&golden_path, &reference)
                            .map(|d| format!("bpftrace disagrees: {d}")),
                    );
                }
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    golden::report(failures);
}
