//! `profile --unwind`: a C program built without frame pointers spins in a
//! qsort comparator, called through Debian's libc (no frame pointers
//! either). With `--unwind dwarf` the folded stacks reach `main`; with
//! `--unwind fp` they stop in libc. Code without tables is reported.

mod common;

use std::path::PathBuf;

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
