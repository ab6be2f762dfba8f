//! Shared by the integration tests: building the fixture programs and
//! running them as workloads to symbolize.

#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Build-id the C fixture is linked with.
pub const BUILD_ID: &str = "5c0bc4ed00112233445566778899aabbccddeeff";

/// A fresh directory for one test under cargo's target tmpdir.
pub fn tmp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scorch-symbolizer")
        .join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Whether `tool` can be run; prints why the test is skipped when not.
pub fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        println!("skipped: `{tool}` is not installed");
    }
    found
}

/// Whether we run as root; prints why the test is skipped when not.
pub fn root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        println!("skipped: needs root ({why})");
    }
    root
}

/// Compiles `source` to `output` with the flags the fixtures document.
/// Executables are only ever written by child processes: an executable
/// open for writing in this process could leak into a concurrently spawned
/// child and make exec fail with ETXTBSY.
pub fn compile(compiler: &str, source: &Path, output: &Path) {
    let status = Command::new(compiler)
        .args(["-O1", "-g", "-fno-omit-frame-pointer"])
        .arg(format!("-Wl,--build-id=0x{BUILD_ID}"))
        .arg(source)
        .arg("-o")
        .arg(output)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{compiler} failed on {}",
        source.display()
    );
}

/// Runs `command` (e.g. `strip`) and asserts it succeeded.
pub fn run(command: &mut Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?} failed");
}

/// The number of the line of `source` that carries `marker`.
pub fn marked_line(source: &Path, marker: &str) -> u32 {
    let text = fs::read_to_string(source).unwrap();
    let index = text.lines().position(|l| l.contains(marker)).unwrap();
    u32::try_from(index + 1).unwrap()
}

/// A running fixture program, killed when dropped.
pub struct Workload {
    child: Child,
    /// The addresses it printed, in order (0 for `(nil)`).
    pub addrs: Vec<u64>,
}

impl Workload {
    /// Starts `program` and reads the addresses it prints.
    pub fn spawn(program: &Path) -> Self {
        let mut child = Command::new(program)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addrs = line
            .split_whitespace()
            .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap_or(0))
            .collect();
        Self { child, addrs }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the program and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.kill();
    }
}
