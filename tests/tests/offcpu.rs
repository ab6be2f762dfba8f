//! `scorch profile --off-cpu` end to end: real BPF on `sched_switch`, real
//! workloads that wait in known functions (tests/workloads/sleeper.c).

mod common;

use std::process::Command;
use std::time::Instant;

use common::*;

#[test]
fn sleeping_workload_is_off_cpu_in_sleeper_for_about_the_time_it_slept() {
    require_root();
    let sleeper = Workload::start(&c_workload("sleeper"), &["sleep"]);
    let pid = sleeper.pid().to_string();
    let started = Instant::now();
    let out = run(&["profile", "--off-cpu", "-p", &pid, "2", "-f"]);
    let wall = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        stacks.iter().all(|(s, _)| s.starts_with("sleeper;")),
        "{stacks:?}"
    );
    // The whole chain, through libc (no frame pointers) into the scheduler.
    let chain = count_containing(&stacks, "main;sleeper;usleep;");
    let in_scheduler = stacks
        .iter()
        .filter(|(s, _)| s.contains("main;sleeper;usleep;") && s.ends_with(";schedule;__schedule"))
        .map(|(_, c)| c)
        .sum::<u64>();
    assert_eq!(
        in_scheduler, chain,
        "kernel part not ending in the scheduler: {stacks:?}"
    );
    // It sleeps all the time: off CPU for about the 2 s profiled; the run
    // itself (start-up, symbolization) bounds it from above.
    let slept = chain as f64 / 1e6;
    assert!(
        slept >= 2.0 * 0.5 && slept <= wall * 1.5,
        "{slept:.3} s off CPU in sleeper in a 2 s profile (run took {wall:.3} s): {stacks:?}"
    );
}

#[test]
fn busy_loop_does_not_sleep() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let pid = burn.pid().to_string();
    // Sleeping states only (interruptible, uninterruptible): a busy loop
    // never sleeps, it can only be preempted.
    let out = run(&[
        "profile",
        "--off-cpu",
        "--state",
        "3",
        "-p",
        &pid,
        "1",
        "-f",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(stacks.is_empty(), "a busy loop slept: {stacks:?}");

    // Every state: off CPU only while preempted, so no longer than the
    // time it did not run.
    let cpu_before = burn.cpu_seconds();
    let started = Instant::now();
    let out = run(&["profile", "--off-cpu", "-p", &pid, "1", "-f"]);
    let not_running = started.elapsed().as_secs_f64() - (burn.cpu_seconds() - cpu_before);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    let off = stacks.iter().map(|(_, c)| c).sum::<u64>() as f64 / 1e6;
    // CPU time is counted in clock ticks (10 ms): allow a few.
    assert!(
        off <= not_running + 0.05,
        "{off:.3} s off CPU but only {not_running:.3} s not running: {stacks:?}"
    );
}

#[test]
fn block_time_bounds_keep_only_waits_in_range() {
    require_root();
    let mixed = Workload::start(&c_workload("sleeper"), &["mixed"]);
    let pid = mixed.pid().to_string();
    // At most 50 ms: the 1 ms naps, never a 200 ms one (the thread may be
    // preempted in long_naps, briefly: that wait is kept).
    let out = run(&["profile", "--off-cpu", "-M", "50000", "-p", &pid, "1", "-f"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        count_containing(&stacks, "short_naps;usleep") > 0,
        "{stacks:?}"
    );
    assert_eq!(
        count_containing(&stacks, "long_naps;usleep"),
        0,
        "{stacks:?}"
    );

    // At least 100 ms: the 200 ms naps; a 1 ms nap off CPU that long would
    // take a machine stalled for a tenth of a second, so allow a trace.
    let out = run(&[
        "profile",
        "--off-cpu",
        "-m",
        "100000",
        "-p",
        &pid,
        "2",
        "-f",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    let long = count_containing(&stacks, "long_naps;usleep");
    assert!(long >= 200_000, "{stacks:?}");
    assert!(
        count_containing(&stacks, "short_naps;usleep") * 20 <= long,
        "{stacks:?}"
    );
}

#[test]
fn pprof_is_read_by_go_tool_pprof_as_off_cpu_time() {
    require_root();
    let sleeper = Workload::start(&c_workload("sleeper"), &["sleep"]);
    let pid = sleeper.pid().to_string();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("offcpu-pprof");
    std::fs::create_dir_all(&dir).unwrap();
    let pprof = dir.join("offcpu.pb.gz");
    let svg = dir.join("offcpu.svg");
    let out = run(&[
        "profile",
        "--off-cpu",
        "-p",
        &pid,
        "1",
        "-o",
        pprof.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let top = Command::new("go")
        .args(["tool", "pprof", "-top", pprof.to_str().unwrap()])
        .env("HOME", &dir)
        .env("PPROF_TMPDIR", &dir)
        .output()
        .expect("go tool pprof (Debian package golang-go)");
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&top.stderr)
    );
    assert!(text.contains("Type: off-cpu"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_end().ends_with(" sleeper"))
        .unwrap_or_else(|| panic!("sleeper is not in go tool pprof's table:\n{text}"));
    // flat flat% sum% cum cum% name: all of the waits are under sleeper.
    let cum_pct: f64 = row
        .split_whitespace()
        .nth(4)
        .and_then(|p| p.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no cum% in {row:?}"));
    assert!(cum_pct > 90.0, "{text}");

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("Off-CPU Time Flame Graph"), "no off-CPU title");
    assert!(svg.contains("<title>sleeper ("), "no sleeper frame");
    assert!(svg.contains(" us, "), "frames not counted in us");
}

#[test]
fn a_process_exiting_mid_profile_keeps_its_waits() {
    require_root();
    let sleeper = Workload::start(&c_workload("sleeper"), &["sleep", "1"]);
    let pid = sleeper.pid().to_string();
    let out = run(&["profile", "--off-cpu", "-p", &pid, "5", "-f"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("every target process exited"), "{stderr}");
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        count_containing(&stacks, "main;sleeper;usleep") > 0,
        "{stacks:?}"
    );
}

#[test]
fn bad_off_cpu_arguments_are_refused() {
    require_root();
    let out = run(&["profile", "--off-cpu", "-m", "10", "-M", "5", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--max-block-time 5 is below --min-block-time 10"),
        "{stderr}"
    );
    let out = run(&["profile", "--off-cpu", "-F", "99", "1"]);
    assert!(!out.status.success());
    let out = run(&["profile", "-m", "5", "1"]);
    assert!(!out.status.success(), "-m without --off-cpu was accepted");
}

#[test]
fn offcputime_alias_keeps_user_or_kernel_threads() {
    require_root();
    let sleeper = Workload::start(&c_workload("sleeper"), &["sleep"]);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("offcputime-alias");
    std::fs::create_dir_all(&dir).unwrap();
    let alias = dir.join("offcputime");
    let _ = std::fs::remove_file(&alias);
    std::os::unix::fs::symlink(scorch(), &alias).unwrap();
    let offcputime = |args: &[&str]| {
        let out = Command::new(&alias).args(args).output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        folded(&String::from_utf8_lossy(&out.stdout))
    };
    let comm = "sleeper;";
    // Whole host, user threads: the workload is there, no kernel thread.
    let user = offcputime(&["-u", "1", "-f"]);
    assert!(count_containing(&user, comm) > 0, "{user:?}");
    assert!(
        !user.iter().any(|(s, _)| s.contains(";kthread;")),
        "{user:?}"
    );
    // Kernel threads: all started by the kernel, none is the workload.
    let kernel = offcputime(&["-k", "1", "-f"]);
    assert!(!kernel.is_empty());
    assert!(
        kernel
            .iter()
            .all(|(s, _)| s.contains(";ret_from_fork") || s.contains("[Missed Kernel Stack]")),
        "{kernel:?}"
    );
    assert_eq!(count_containing(&kernel, comm), 0, "{kernel:?}");
    drop(sleeper);
}
