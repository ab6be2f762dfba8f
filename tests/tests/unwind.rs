//! `profile --unwind`: a C program built without frame pointers spins in a
//! qsort comparator, called through Debian's libc (no frame pointers
//! either). With `--unwind dwarf` the folded stacks reach `main`; with
//! `--unwind fp` they stop in libc. Code without tables is reported. C++
//! through libstdc++, a chain mixing code with and without frame pointers,
//! and a process started while the whole host is profiled unwind too, as
//! the whole host does by default.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_one_warning_about_missing_tables, assert_qsort_mostly_complete, chains, count, cpu_lock,
    deep_nofp, describe, folded, mixed_fp_nofp, once_new_spin_nofp, qsort_spin_nocfi,
    qsort_spin_nofp, require_root, run, rust_workload_without_frame_pointers, Workload,
};

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

#[test]
fn dwarf_reaches_main_through_libc_and_fp_does_not() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&qsort_spin_nofp(), &[]);

    // The tables are loaded before sampling starts: every stack is
    // complete, through libc, down to _start. (Loaded after, the first
    // samples of a second walk frame pointers: 4-15% bare stacks.)
    for mode in ["dwarf", "auto"] {
        let (stacks, stderr) = profile_with_stderr(workload.pid(), mode);
        let total = count(&stacks, |_| true);
        let full = count(&stacks, chains::qsort_complete);
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
    assert!(count(&fp, chains::qsort_leaf) * 10 >= total * 9, "{fp:?}");
    assert!(
        count(&fp, chains::reaches_main) * 10 < total,
        "frame pointers reached main: the test proves nothing: {fp:?}"
    );
}

#[test]
fn code_without_unwind_tables_is_reported() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&qsort_spin_nocfi(), &[]);
    let (stacks, stderr) = profile_with_stderr(workload.pid(), "dwarf");
    assert!(count(&stacks, |_| true) >= 50, "{stacks:?}");
    // compare has no row: every stack falls back to frame pointers there.
    assert_one_warning_about_missing_tables(&stderr);
}

#[test]
fn dwarf_walks_through_a_signal_frame_to_main() {
    require_root();
    let _cpu = cpu_lock();
    // compare raises SIGUSR1 and the handler spins: handler -> __restore_rt
    // -> raise (libc) -> compare -> qsort (libc) -> sort_all -> main.
    let workload = Workload::start(&qsort_spin_nofp(), &["signal"]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let through = count(&stacks, chains::signal_complete);
    assert!(
        total >= 50 && through * 100 >= total * 99,
        "{through} of {total} stacks from the handler through the signal frame to _start: {stacks:?}"
    );
}

#[test]
fn dwarf_keeps_127_frames_of_a_deep_recursion() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&deep_nofp(), &[]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    // 200 calls of descend under spin: the walk keeps the innermost 127
    // frames (the kernel's default depth), spin and 126 of descend.
    let full_depth = count(&stacks, chains::deep_127_frames);
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
    let complete = count(&stacks, chains::rust_complete);
    assert!(
        total >= 50 && complete * 100 >= total * 99,
        "{complete} of {total} stacks reach _start: {stacks:?}"
    );
}

#[test]
fn dwarf_reaches_main_through_libstdcxx_and_fp_does_not() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&once_new_spin_nofp(), &[]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let full = count(&stacks, chains::once_new_complete);
    assert!(
        total >= 50 && full * 100 >= total * 99,
        "{full} complete of {total}: {stacks:?}"
    );

    let fp = profile(workload.pid(), "fp");
    let total = count(&fp, |_| true);
    assert!(
        count(&fp, chains::once_new_leaf) * 10 >= total * 9,
        "{fp:?}"
    );
    assert!(
        count(&fp, chains::reaches_main) * 10 < total,
        "frame pointers reached main: the test proves nothing: {fp:?}"
    );
}

#[test]
fn dwarf_walks_a_chain_mixing_frame_pointers_and_tables() {
    require_root();
    let _cpu = cpu_lock();
    let workload = Workload::start(&mixed_fp_nofp(), &[]);
    let (stacks, _) = profile_with_stderr(workload.pid(), "dwarf");
    let total = count(&stacks, |_| true);
    let whole = count(&stacks, chains::mixed_complete);
    assert!(
        total >= 50 && whole * 100 >= total * 99,
        "{whole} of {total} stacks hold the whole chain: {stacks:?}"
    );

    // Frame pointers go wrong at spin_nofp and skip second_fp and main.
    let fp = profile(workload.pid(), "fp");
    let total = count(&fp, |_| true);
    let skipping = count(&fp, chains::mixed_fp_skipping);
    assert!(
        total >= 50 && skipping * 10 >= total * 9,
        "{skipping} of {total} frame-pointer stacks skip second_fp and main: {fp:?}"
    );
}

/// Whether process `pid` has a perf event open: scorch opens its sampling
/// events once its maps and program are ready.
fn sampling(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:[perf_event]")
    })
}

/// `qsort_spin_nofp` copied under `name`, so that its stacks stand apart
/// when every process on the host is sampled.
fn qsort_spin_named(name: &str) -> std::path::PathBuf {
    let exe = qsort_spin_nofp().with_file_name(name);
    std::fs::copy(qsort_spin_nofp(), &exe).expect("copy of qsort_spin_nofp");
    exe
}

#[test]
fn dwarf_loads_the_tables_of_a_process_started_during_a_host_profile() {
    require_root();
    let _cpu = cpu_lock();
    let late = qsort_spin_named("qsort_spin_late");
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
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert_qsort_mostly_complete(&stacks, "qsort_spin_late", &describe(&out));
}

#[test]
fn a_whole_host_profile_unwinds_with_tables_by_default() {
    require_root();
    let _cpu = cpu_lock();
    let exe = qsort_spin_named("qsort_spin_host");
    let workload = Workload::start(&exe, &[]);
    let out = run(&["profile", "-F", "199", "-U", "-f", "2"]);
    drop(workload);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert_qsort_mostly_complete(&stacks, "qsort_spin_host", &describe(&out));
}
