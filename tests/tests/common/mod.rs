//! Shared helpers for end-to-end tests: the scorch binary, workloads built
//! from `tests/workloads/`, and output parsers.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The scorch binary built by this `cargo test` run.
pub fn scorch() -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/scorch
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("scorch"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Panics with advice unless running as root: every test here loads BPF.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests load BPF programs: run them as root (sudo)"
    );
}

/// Serializes tests that measure CPU, so they do not steal each other's cores.
pub fn cpu_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn workloads_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads")
}

fn build_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads");
    std::fs::create_dir_all(&dir).expect("workload build dir");
    dir
}

/// Builds `tests/workloads/NAME.c` (once per test binary) and returns the executable.
///
/// `-O0`: gcc omits the frame pointer of leaf functions at -O1 and above even
/// with `-fno-omit-frame-pointer`, which hides the leaf's caller from a
/// frame-pointer unwinder.
pub fn c_workload(name: &str) -> PathBuf {
    build_once(name, |out| {
        let src = workloads_src().join(format!("{name}.c"));
        Command::new("gcc")
            .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
            .arg(out)
            .arg(&src)
            .status()
    })
}

/// Builds `tests/workloads/NAME.rs` with frame pointers and returns the executable.
pub fn rust_workload(name: &str) -> PathBuf {
    build_once(name, |out| {
        let src = workloads_src().join(format!("{name}.rs"));
        Command::new("rustc")
            .args([
                "-C",
                "opt-level=2",
                "-C",
                "force-frame-pointers=yes",
                "-g",
                "-o",
            ])
            .arg(out)
            .arg(&src)
            .status()
    })
}

/// Builds `tests/workloads/SRC.c` as `name` with `-O2 -fomit-frame-pointer`
/// and `flags` (once per test binary): code a frame-pointer walk cannot
/// cross, for the unwinder's tests.
pub fn c_workload_without_frame_pointers(src: &str, name: &str, flags: &[&str]) -> PathBuf {
    build_once(name, |out| {
        Command::new("gcc")
            .args(["-O2", "-fomit-frame-pointer"])
            .args(flags)
            .arg("-o")
            .arg(out)
            .arg(workloads_src().join(format!("{src}.c")))
            .status()
    })
}

/// Builds `tests/workloads/NAME.rs` as a release build without frame
/// pointers (as the prebuilt std is), named `NAME_nofp`.
pub fn rust_workload_without_frame_pointers(name: &str) -> PathBuf {
    build_once(&format!("{name}_nofp"), |out| {
        Command::new("rustc")
            .args(["-C", "opt-level=3", "-o"])
            .arg(out)
            .arg(workloads_src().join(format!("{name}.rs")))
            .status()
    })
}

/// `tests/workloads/qsort_spin.c` without frame pointers, with `-g`:
/// main -> sort_all -> qsort (libc) -> ... -> compare, which spins (or,
/// given `signal`, raises SIGUSR1 and its handler spins).
pub fn qsort_spin_nofp() -> PathBuf {
    c_workload_without_frame_pointers("qsort_spin", "qsort_spin_nofp", &["-g"])
}

/// qsort_spin without call frame information for its own code either: only
/// crt's and libc's have tables.
pub fn qsort_spin_nocfi() -> PathBuf {
    c_workload_without_frame_pointers(
        "qsort_spin",
        "qsort_spin_nocfi",
        &["-fno-asynchronous-unwind-tables", "-fno-unwind-tables"],
    )
}

/// `tests/workloads/deep.c` without frame pointers: main -> descend x 200 -> spin.
pub fn deep_nofp() -> PathBuf {
    c_workload_without_frame_pointers("deep", "deep_nofp", &[])
}

/// `tests/workloads/once_new_spin.cpp` built with `g++ -O2
/// -fomit-frame-pointer`: a chain through libstdc++ and libc.
pub fn once_new_spin_nofp() -> PathBuf {
    build_once("once_new_spin_nofp", |out| {
        Command::new("g++")
            .args(["-O2", "-fomit-frame-pointer", "-o"])
            .arg(out)
            .arg(workloads_src().join("once_new_spin.cpp"))
            .status()
    })
}

/// `tests/workloads/mixed_*.c`: one call chain main -> first_nofp ->
/// second_fp -> spin_nofp, main and second_fp built with frame pointers,
/// the others without.
pub fn mixed_fp_nofp() -> PathBuf {
    let object = |src: &str, frame_pointer: &str| {
        build_once(&format!("{src}.o"), |out| {
            Command::new("gcc")
                .args(["-O2", frame_pointer, "-c", "-o"])
                .arg(out)
                .arg(workloads_src().join(format!("{src}.c")))
                .status()
        })
    };
    let with = object("mixed_fp", "-fno-omit-frame-pointer");
    let without = object("mixed_nofp", "-fomit-frame-pointer");
    build_once("mixed", |out| {
        Command::new("gcc")
            .arg("-o")
            .arg(out)
            .arg(with)
            .arg(without)
            .status()
    })
}

/// Complete stacks of the unwinding workloads, one predicate per chain: the
/// host's tests (unwind.rs) and the 6.1 guest's (guest.rs) assert the same.
pub mod chains {
    /// qsort_spin's spinning comparator, through libc's qsort, down to `_start`.
    pub fn qsort_complete(s: &str) -> bool {
        s.contains(";_start;")
            && s.contains("qsort_r;")
            && s.contains(";main;sort_all")
            && s.ends_with(";compare")
    }

    /// qsort_spin's comparator, wherever the stack starts.
    pub fn qsort_leaf(s: &str) -> bool {
        s.ends_with(";compare")
    }

    /// qsort_spin's signal handler, through the signal frame and libc's
    /// raise and qsort, down to `_start`.
    pub fn signal_complete(s: &str) -> bool {
        s.contains(";_start;")
            && s.contains(";main;sort_all")
            && s.contains(";compare;")
            && s.ends_with(";handler")
    }

    /// deep's innermost 127 frames (the kernel's default depth): spin and
    /// 126 of descend.
    pub fn deep_127_frames(s: &str) -> bool {
        s.ends_with(";descend;spin") && s.matches(";descend").count() == 126
    }

    /// burn_rs::main -> outer -> inner under std's lang_start and libc's
    /// `__libc_start_main`, down to `_start`.
    pub fn rust_complete(s: &str) -> bool {
        s.contains(";_start;") && s.contains(";burn_rs::main;") && s.ends_with(";burn_rs::inner")
    }

    /// main -> std::call_once (inlined; pthread_once in libc) -> the once
    /// lambda -> allocate_everything -> operator new (libstdc++) -> spin,
    /// the new handler; demangled, with their parameters.
    pub fn once_new_complete(s: &str) -> bool {
        s.contains(";_start;")
            && s.contains(";main;__pthread_once_slow;")
            && s.contains("std::call_once<")
            && s.ends_with(";work::allocate_everything();operator new(unsigned long);work::spin()")
    }

    /// once_new_spin's new handler, wherever the stack starts.
    pub fn once_new_leaf(s: &str) -> bool {
        s.ends_with(";work::spin()")
    }

    /// mixed's whole chain down to `_start`.
    pub fn mixed_complete(s: &str) -> bool {
        s.contains(";_start;") && s.ends_with(";main;first_nofp;second_fp;spin_nofp")
    }

    /// What frame pointers make of mixed's chain: spin_nofp keeps
    /// second_fp's frame pointer, whose frame holds the return into
    /// first_nofp, so second_fp is skipped; first_nofp keeps main's, so main
    /// is skipped as well.
    pub fn mixed_fp_skipping(s: &str) -> bool {
        s.ends_with(";first_nofp;spin_nofp") && !s.contains(";main;")
    }

    /// Stacks that reach `main`, which frame pointers alone must not through libraries.
    pub fn reaches_main(s: &str) -> bool {
        s.contains(";main;")
    }
}

/// Panics unless `stderr` holds one warning line about code without
/// tables walked with frame pointers, saying why and what to do.
pub fn assert_one_warning_about_missing_tables(stderr: &str) {
    let warning: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("frame pointers"))
        .collect();
    assert_eq!(warning.len(), 1, "one warning line expected: {stderr}");
    assert!(
        warning[0].contains("call frame information")
            && warning[0].contains("-fno-omit-frame-pointer"),
        "the warning says neither why nor what to do: {stderr}"
    );
}

/// Asserts that `comm`'s folded stacks among `stacks` are at least 100
/// samples, three quarters of them through libc's qsort down to `_start`:
/// a process whose tables load when it is first sampled, its samples of
/// that first tick walking frame pointers (cut short at compare).
pub fn assert_qsort_mostly_complete(stacks: &[(String, u64)], comm: &str, context: &str) {
    let prefix = format!("{comm};");
    let own: Vec<(String, u64)> = stacks
        .iter()
        .filter(|(s, _)| s.starts_with(&prefix))
        .cloned()
        .collect();
    let total = count(&own, |_| true);
    let complete = count(&own, chains::qsort_complete);
    assert!(
        total >= 100 && complete * 4 >= total * 3,
        "{complete} of {total} stacks of {comm} reach main: {own:?}\n{context}"
    );
}

/// Samples whose stack satisfies `pred`.
pub fn count(stacks: &[(String, u64)], pred: impl Fn(&str) -> bool) -> u64 {
    stacks.iter().filter(|(s, _)| pred(s)).map(|(_, c)| c).sum()
}

fn build_once(
    name: &str,
    build: impl FnOnce(&Path) -> std::io::Result<std::process::ExitStatus>,
) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let out = build_dir().join(name);
    let status = build(&out).unwrap_or_else(|e| panic!("cannot run the compiler for {name}: {e}"));
    assert!(status.success(), "building workload {name} failed");
    built.insert(name.to_string(), out.clone());
    out
}

/// A running workload, killed when dropped.
pub struct Workload {
    pub child: Child,
}

impl Workload {
    /// Starts `exe` with `args` and waits for it to print `ready`.
    pub fn start(exe: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("workload output");
        assert_eq!(
            line.trim(),
            "ready",
            "workload {} did not start",
            exe.display()
        );
        Workload { child }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the workload has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("workload stat");
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .expect("stat format")
            .1
            .split(' ')
            .collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs scorch with `args` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(scorch())
        .args(args)
        .output()
        .expect("running scorch")
}

/// stdout and stderr of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parses folded lines into (stack, count).
pub fn folded(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (stack, count) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a folded line: {l:?}"));
            (
                stack.to_string(),
                count
                    .parse()
                    .unwrap_or_else(|_| panic!("bad count in {l:?}")),
            )
        })
        .collect()
}

/// Total count of folded stacks that contain `needle`.
pub fn count_containing(stacks: &[(String, u64)], needle: &str) -> u64 {
    stacks
        .iter()
        .filter(|(s, _)| s.contains(needle))
        .map(|(_, c)| c)
        .sum()
}

/// Runs `go tool pprof -top ARGS` (Debian's golang-go) with a private HOME,
/// and returns the flat percentage of `function` in its table.
pub fn go_pprof_flat_percent(args: &[&str], home: &Path, function: &str) -> f64 {
    let top = Command::new("go")
        .args(["tool", "pprof", "-top"])
        .args(args)
        .env("HOME", home)
        .env("PPROF_TMPDIR", home)
        .output()
        .expect("go tool pprof (Debian package golang-go)");
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "go tool pprof failed: {text}\n{}",
        String::from_utf8_lossy(&top.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.trim_end().ends_with(&format!(" {function}")))
        .unwrap_or_else(|| panic!("{function} is not in go tool pprof's table:\n{text}"));
    // flat  flat%  sum%  cum  cum%  name
    row.split_whitespace()
        .nth(1)
        .and_then(|pct| pct.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no flat% in {row:?}"))
}

/// A minimal HTTP GET of `path` on `addr`: status and body; `None` when
/// nothing listens (yet).
pub fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Runs `script` as root in a Debian 6.1 guest (tests/guest/boot.sh) with
/// `files` copied in; returns the console lines that start with
/// `prefix: `, without the prefix.
pub fn guest(script: &str, files: &[&Path], prefix: &str) -> Vec<String> {
    require_root();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // One file per test: tests run at once, and wait for the guest in turn.
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    let path = dir.join(format!("guest-{test}.sh"));
    std::fs::write(&path, script).expect("guest script");
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/boot.sh");
    let out = Command::new("bash")
        .arg(boot)
        .arg(&path)
        .args(files)
        .output()
        .expect("running tests/guest/boot.sh");
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "the guest script failed ({:?}):\n{console}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let marker = format!("{prefix}: ");
    console
        .lines()
        // What a terminal shows: scorch's status line (on the console, a
        // terminal) ends by erasing itself with no newline of its own.
        .filter_map(|line| line.rsplit("\x1b[2K").next())
        .filter_map(|line| line.strip_prefix(&marker).map(str::to_string))
        .collect()
}
