//! `profile --unwind`: a C program built without frame pointers spins in a
//! qsort comparator, called through Debian's libc (no frame pointers
//! either). With `--unwind dwarf` the folded stacks reach `main`; with
//! `--unwind fp` they stop in libc. Code without tables is reported. C++
//! through libstdc++, a chain mixing code with and without frame pointers,
//! and a process started while the whole host is profiled unwind too.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    c_workload_without_frame_pointers, cpu_lock, describe, folded, require_root, run,
    rust_workload_without_frame_pointers, Workload,
};

/// `tests/workloads/qsort_spin.c` built with `-O2 -fomit-frame-pointer`.
fn qsort_spin() -> PathBuf {
    c_workload_without_frame_pointers("qsort_spin", "qsort_spin_nofp", &["-g"])
}

/// The same without call frame information for its own code: only crt's
/// and libc's have tables.
fn qsort_spin_without_cfi() -> PathBuf {
    c_workload_without_frame_pointers(
        "qsort_spin",
        "qsort_spin_nocfi",
        &["-fno-asynchronous-unwind-tables", "-fno-unwind-tables"],
    )
}

/// Runs `compiler ARGS -o NAME` in `tests/workloads/` and returns the
/// output, which lands in this test binary's build directory.
fn compile(compiler: &str, args: &[&str], name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads");
    std::fs::create_dir_all(&dir).expect("workload build dir");
    let out = dir.join(name);
    let status = Command::new(compiler)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads"))
        .args(args)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler} for {name}: {e}"));
    assert!(status.success(), "building workload {name} failed");
    out
}

/// Folded user stacks of a one-second profile of `pid` with `--unwind mode`.
fn profile(pid: u32, mode: &str) -> Vec<(String, u64)> {
    let (stacks, _) = profile_with_stderr(pid, mode);
    stacks
}

/// [`profile`], and what scorch printed on stderr.
fn profile_with_stderr(pid: u32, mode: &str) -> (Vec<(String, u64)>, String) {
    let pid = pid.to_string();
    let out = run(&[
        "profile", "-F", "199", "-U", "-p", &pid, "1", "-f", "--unwind", mode,
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    (
        folded(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Samples whose stack satisfies `pred`.
fn count(stacks: &[(String, u64)], pred: impl Fn(&str) -> bool) -> u64 {
    stacks.iter().filter(|(s, _)| pred(s)).map(|(_, c)| c).sum()
}

#[test]
fn dwarf_reaches_main_through_libc_and_fp_does_not() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&qsort_spin(), &[]);

    // The tables are loaded before sampling starts: every stack is
    // complete, through libc, down to _start. (Loaded after, the first
    // samples of a second walk frame pointers: 4-15% bare stacks.)
    let complete = |s: &str| {
        s.contains(";_start;")
            && s.contains("qsort_r;")
            && s.contains(";main;sort_all")
            && s.ends_with(";compare")
    };
    for mode in ["dwarf", "auto"] {
        let (stacks, stderr) = profile_with_stderr(workload.pid(), mode);
        let total = count(&stacks, |_| true);
        let full = count(&stacks, complete);
        assert!(
            total >= 50 && full * 100 >= total * 99,
            "--unwind {mode}: {full} complete of {total}: {stacks:?}"
        );
        assert!(
            !stderr.contains("frame pointers"),
            "--unwind {mode} warned about frame pointers: {stderr}"
        );
    }

    let fp = profile(workload.pid(), "fp");
    let total = count(&fp, |_| true);
    assert!(
        count(&fp, |s| s.ends_with(";compare")) * 10 >= total * 9,
        "{fp:?}"
    );
    assert!(
        count(&fp, |s| s.contains(";main;")) * 10 < total,
        "frame pointers reached main: the test proves nothing: {fp:?}"
    );
}

#[test]
fn code_without_unwind_tables_is_reported() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&qsort_spin_without_cfi(), &[]);
    let (stacks, stderr) = profile_with_stderr(workload.pid(), "dwarf");
    assert!(count(&stacks, |_| true) >= 50, "{stacks:?}");
    // compare has no row: every stack falls back to frame pointers there.
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

#[test]
fn dwarf_walks_through_a_signal_frame_to_main() {
    require_root();
    let _cpu = cpu_lock();
    // compare raises SIGUSR1 and the handler spins: handler -> __restore_rt
    // -> raise (libc) -> compare -> qsort (libc) -> sort_all -> main.
    let workload = Workload::start(&qsort_spin(), &["signal"]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let through = count(&stacks, |s| {
        s.contains(";_start;")
            && s.contains(";main;sort_all")
            && s.contains(";compare;")
            && s.ends_with(";handler")
    });
    assert!(
        total >= 50 && through * 100 >= total * 99,
        "{through} of {total} stacks from the handler through the signal frame to _start: {stacks:?}"
    );
}

#[test]
fn dwarf_keeps_127_frames_of_a_deep_recursion() {
    require_root();
    let _cpu = cpu_lock();
    let deep = c_workload_without_frame_pointers("deep", "deep_nofp", &[]);
    let workload = Workload::start(&deep, &[]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    // 200 calls of descend under spin: the walk keeps the innermost 127
    // frames (the kernel's default depth), spin and 126 of descend.
    let full_depth = count(&stacks, |s| {
        s.ends_with(";descend;spin") && s.matches(";descend").count() == 126
    });
    assert!(
        total >= 50 && full_depth * 100 >= total * 99,
        "{full_depth} of {total} stacks are 127 frames deep: {stacks:?}"
    );
}

#[test]
fn dwarf_reaches_start_in_a_rust_release_build() {
    require_root();
    let _cpu = cpu_lock();
    // burn_rs::main -> outer -> inner under std's lang_start and libc's
    // __libc_start_main, none with frame pointers.
    let burn = rust_workload_without_frame_pointers("burn_rs");
    let workload = Workload::start(&burn, &[]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let complete = count(&stacks, |s| {
        s.contains(";_start;") && s.contains(";burn_rs::main;") && s.ends_with(";burn_rs::inner")
    });
    assert!(
        total >= 50 && complete * 100 >= total * 99,
        "{complete} of {total} stacks reach _start: {stacks:?}"
    );
}

#[test]
fn dwarf_reaches_main_through_libstdcxx_and_fp_does_not() {
    require_root();
    let _cpu = cpu_lock();
    let once_new_spin = compile(
        "g++",
        &["-O2", "-fomit-frame-pointer", "once_new_spin.cpp"],
        "once_new_spin_nofp",
    );
    let workload = Workload::start(&once_new_spin, &[]);
    // main -> std::call_once (inlined; pthread_once in libc) -> the once
    // lambda -> allocate_everything -> operator new (libstdc++) -> spin,
    // the new handler; demangled, with their parameters.
    let complete = |s: &str| {
        s.contains(";_start;")
            && s.contains(";main;__pthread_once_slow;")
            && s.contains("std::call_once<")
            && s.ends_with(";work::allocate_everything();operator new(unsigned long);work::spin()")
    };
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let full = count(&stacks, complete);
    assert!(
        total >= 50 && full * 100 >= total * 99,
        "{full} complete of {total}: {stacks:?}"
    );

    let fp = profile(workload.pid(), "fp");
    let total = count(&fp, |_| true);
    assert!(
        count(&fp, |s| s.ends_with(";work::spin()")) * 10 >= total * 9,
        "{fp:?}"
    );
    assert!(
        count(&fp, |s| s.contains(";main;")) * 10 < total,
        "frame pointers reached main: the test proves nothing: {fp:?}"
    );
}

/// `tests/workloads/mixed_*.c`: one call chain main -> first_nofp ->
/// second_fp -> spin_nofp, main and second_fp built with frame pointers,
/// the others without.
fn mixed() -> PathBuf {
    let with = compile(
        "gcc",
        &["-O2", "-fno-omit-frame-pointer", "-c", "mixed_fp.c"],
        "mixed_fp.o",
    );
    let without = compile(
        "gcc",
        &["-O2", "-fomit-frame-pointer", "-c", "mixed_nofp.c"],
        "mixed_nofp.o",
    );
    compile(
        "gcc",
        &[with.to_str().unwrap(), without.to_str().unwrap()],
        "mixed",
    )
}

#[test]
fn dwarf_walks_a_chain_mixing_frame_pointers_and_tables() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&mixed(), &[]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let whole = count(&stacks, |s| {
        s.contains(";_start;") && s.ends_with(";main;first_nofp;second_fp;spin_nofp")
    });
    assert!(
        total >= 50 && whole * 100 >= total * 99,
        "{whole} of {total} stacks hold the whole chain: {stacks:?}"
    );

    // Frame pointers go wrong at spin_nofp: it keeps second_fp's frame
    // pointer, whose frame holds the return into first_nofp, so second_fp
    // is skipped; first_nofp keeps main's, so main is skipped as well.
    let fp = profile(workload.pid(), "fp");
    let total = count(&fp, |_| true);
    let skipping = count(&fp, |s| {
        s.ends_with(";first_nofp;spin_nofp") && !s.contains(";main;")
    });
    assert!(
        total >= 50 && skipping * 10 >= total * 9,
        "{skipping} of {total} frame-pointer stacks skip second_fp and main: {fp:?}"
    );
}

/// Whether process `pid` has a perf event open: scorch opens its sampling
/// events once the tables of the processes already running are loaded.
fn sampling(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:[perf_event]")
    })
}

#[test]
fn dwarf_loads_the_tables_of_a_process_started_during_a_host_profile() {
    require_root();
    let _cpu = cpu_lock();
    // A copy under a name of its own: every process on the host is sampled.
    let late = qsort_spin().with_file_name("qsort_spin_late");
    std::fs::copy(qsort_spin(), &late).expect("copy of qsort_spin_nofp");
    let mut profiler = Command::new(common::scorch())
        .args([
            "profile", "-F", "199", "-U", "-q", "-f", "--unwind", "dwarf", "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running scorch");
    let waiting = Instant::now();
    while !sampling(profiler.id()) {
        let exited = profiler.try_wait().expect("scorch status");
        assert!(
            exited.is_none() && waiting.elapsed() < Duration::from_secs(120),
            "scorch did not start sampling ({exited:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Started after the tables were loaded: its own load when first sampled.
    let workload = Workload::start(&late, &[]);
    let out = profiler.wait_with_output().expect("scorch output");
    drop(workload);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks: Vec<(String, u64)> = folded(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|(s, _)| s.starts_with("qsort_spin_late;"))
        .collect();
    // Its first samples walk frame pointers (cut short at compare) until its
    // tables are loaded, a tick after it is first sampled; then the rest.
    let total = count(&stacks, |_| true);
    let complete = count(&stacks, |s| {
        s.contains(";_start;")
            && s.contains("qsort_r;")
            && s.contains(";main;sort_all")
            && s.ends_with(";compare")
    });
    assert!(
        total >= 100 && complete * 4 >= total * 3,
        "{complete} of {total} stacks reach main: {stacks:?}\n{}",
        describe(&out)
    );
}
