//! `scorch profile` end to end: real BPF on this kernel, real workloads.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Checks that `count` samples at `hz` match the CPU time the workload used
/// while the profiler ran (which includes the profiler's start-up and
/// wind-down, when nothing is sampled: hence the wide lower bound).
fn expect_cpu_time(count: u64, hz: u64, cpu_seconds: f64) {
    assert!(
        cpu_seconds >= 0.2,
        "the workload got only {cpu_seconds:.2} s of CPU: the machine is too loaded to check counts"
    );
    let expected = cpu_seconds * hz as f64;
    assert!(
        count as f64 >= expected * 0.5 && count as f64 <= expected * 1.2 + 5.0,
        "{count} samples for {cpu_seconds:.2} s of CPU at {hz} Hz, expected about {expected:.0}"
    );
}

#[test]
fn c_call_chain_in_folded_output() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let pid = burn.pid().to_string();
    let cpu_before = burn.cpu_seconds();
    let out = run(&["profile", "-F", "99", "-p", &pid, "2", "-f"]);
    let cpu = burn.cpu_seconds() - cpu_before;
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        stacks.iter().all(|(s, _)| s.starts_with("burn;")),
        "{stacks:?}"
    );
    let chain = count_containing(&stacks, "main;outer;inner");
    expect_cpu_time(chain, 99, cpu);
}

/// C functions named like C++ type codes keep their names (a demangler
/// applied to every name turned `a;b;c` into `signed char;bool;char`).
#[test]
fn one_letter_c_function_names_are_not_demangled() {
    require_root();
    let _cpu = cpu_lock();
    let load = Workload::start(&c_workload("short_names"), &[]);
    let pid = load.pid().to_string();
    let out = run(&["profile", "-F", "99", "-U", "-p", &pid, "1", "-f"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let chain = count_containing(&stacks, ";main;a;b;c");
    assert!(total > 0 && chain * 10 >= total * 9, "{stacks:?}");
}

#[test]
fn rust_call_chain_in_folded_output() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&rust_workload("burn_rs"), &[]);
    let pid = burn.pid().to_string();
    let cpu_before = burn.cpu_seconds();
    let out = run(&["profile", "-F", "99", "-p", &pid, "2", "-f"]);
    let cpu = burn.cpu_seconds() - cpu_before;
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    let chain = count_containing(&stacks, "burn_rs::main;burn_rs::outer;burn_rs::inner");
    expect_cpu_time(chain, 99, cpu);
}

#[test]
fn kernel_only_stacks_of_a_syscall_workload() {
    require_root();
    let _cpu = cpu_lock();
    let load = Workload::start(&c_workload("syscalls"), &[]);
    let pid = load.pid().to_string();
    let out = run(&["profile", "-K", "-F", "99", "-p", &pid, "1", "-f", "-a"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    // Every frame after the comm is a kernel frame, annotated.
    for (stack, _) in &stacks {
        let frames: Vec<&str> = stack.split(';').skip(1).collect();
        assert!(
            frames.iter().all(|f| f.ends_with("_[k]")),
            "non-kernel frame in {stack}"
        );
    }
    // The workload splits its time between user and kernel mode; samples in
    // user mode have no kernel stack and show as the bare command name.
    let in_syscalls = count_containing(&stacks, "do_syscall_64_[k]");
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    assert!(
        in_syscalls >= 5 && in_syscalls * 10 >= total * 3,
        "only {in_syscalls} of {total} samples in syscalls: {stacks:?}"
    );
    assert!(
        !stacks.iter().any(|(s, _)| s.contains(";main")),
        "user frames with -K"
    );
}

#[test]
fn pid_filter_excludes_other_busy_processes() {
    require_root();
    let _cpu = cpu_lock();
    let wanted = Workload::start(&c_workload("burn"), &[]);
    let other = Workload::start(&rust_workload("burn_rs"), &[]);
    let pid = wanted.pid().to_string();
    let out = run(&["profile", "-F", "99", "-p", &pid, "1", "-f"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(count_containing(&stacks, "outer;inner") > 0, "{stacks:?}");
    assert!(
        !stacks.iter().any(|(s, _)| s.contains("burn_rs")),
        "{stacks:?}"
    );
    drop(other);
}

#[test]
fn whole_host_profile_sees_every_busy_process() {
    require_root();
    let _cpu = cpu_lock();
    let a = Workload::start(&c_workload("burn"), &[]);
    let b = Workload::start(&rust_workload("burn_rs"), &[]);
    let out = run(&["profile", "-F", "99", "-f", "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(count_containing(&stacks, "burn;") >= 5, "{stacks:?}");
    assert!(
        count_containing(&stacks, "burn_rs::inner") >= 5,
        "{stacks:?}"
    );
    drop((a, b));
}

#[test]
fn jit_frames_resolve_through_the_perf_map() {
    require_root();
    let _cpu = cpu_lock();
    let jit = Workload::start(&c_workload("jit"), &[]);
    let pid = jit.pid();
    let out = run(&["profile", "-F", "99", "-p", &pid.to_string(), "1", "-f"]);
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    let jitted = count_containing(&stacks, "jitted_hot_loop");
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    assert!(
        jitted >= 5 && jitted * 10 >= total * 9,
        "JIT frames not named from the perf map: {stacks:?}"
    );
}

#[test]
fn a_target_that_exits_early_is_still_symbolized() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &["1"]);
    let pid = burn.pid().to_string();
    let started = Instant::now();
    let out = run(&["profile", "-F", "99", "-p", &pid, "3", "-f"]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        took < Duration::from_millis(2800),
        "did not stop when the target exited ({took:?})"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited"), "no word of the exit: {stderr}");
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        count_containing(&stacks, "main;outer;inner") >= 10,
        "{stacks:?}"
    );
}

#[test]
fn default_output_is_bcc_text() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let pid = burn.pid();
    let out = run(&["profile", "-F", "99", "-p", &pid.to_string(), "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let header = format!("Sampling at 99 Hertz of PID {pid} by user + kernel stack for 1 secs.");
    assert_eq!(text.lines().next(), Some(header.as_str()));
    assert!(
        text.contains(&format!("    -                burn ({pid})\n")),
        "{text}"
    );
    // bcc prints user frames leaf first: inner above outer above main.
    let inner = text.find("    inner\n    outer\n    main\n");
    assert!(inner.is_some(), "{text}");
}

#[test]
fn svg_pprof_and_folded_from_one_run() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let dir = tempdir("outputs");
    let svg = dir.join("flame.svg");
    let pprof = dir.join("cpu.pb.gz");
    let fold = dir.join("stacks.folded");
    let pid = burn.pid().to_string();
    let out = run(&[
        "profile",
        "-F",
        "99",
        "-p",
        &pid,
        "1",
        "-o",
        svg.to_str().unwrap(),
        "-o",
        pprof.to_str().unwrap(),
        "-o",
        fold.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "stdout should stay empty with -o");

    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<?xml"), "not an SVG document");
    assert!(
        svg_text.contains("inner") && svg_text.contains("outer"),
        "frames missing from the SVG"
    );
    assert!(
        svg_text.contains(&format!("PID {pid}")),
        "title lacks the target"
    );

    let folded_text = std::fs::read_to_string(&fold).unwrap();
    let total: u64 = folded(&folded_text).iter().map(|(_, c)| c).sum();

    let decoded = scorch_formats::pprof::decode(&std::fs::read(&pprof).unwrap()).unwrap();
    let stacks = scorch_formats::pprof::stacks(&decoded).expect("valid pprof");
    let pprof_total: i64 = stacks.iter().map(|(_, v)| v[0]).sum();
    assert_eq!(
        pprof_total as u64, total,
        "pprof and folded disagree on the sample count"
    );
    assert!(stacks.iter().any(|(s, _)| s.ends_with(&[
        "main".to_string(),
        "outer".into(),
        "inner".into()
    ])));
}

#[test]
fn go_tool_pprof_reads_our_profile() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let dir = tempdir("gopprof");
    let pprof = dir.join("cpu.pprof");
    let pid = burn.pid().to_string();
    let out = run(&[
        "profile",
        "-F",
        "99",
        "-p",
        &pid,
        "1",
        "-o",
        pprof.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    // The flat percentage of `inner` dominates a busy loop in it.
    let flat_pct = go_pprof_flat_percent(
        &["-sample_index=cpu", pprof.to_str().unwrap()],
        &dir,
        "inner",
    );
    assert!(
        flat_pct > 50.0,
        "inner has only {flat_pct}% of a busy loop in it"
    );
}

#[test]
fn ctrl_c_writes_what_was_collected() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let child = Command::new(scorch())
        .args(["profile", "-F", "99", "-f", "-p", &burn.pid().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(count_containing(&stacks, "outer;inner") >= 10, "{stacks:?}");
}

#[test]
fn invoked_as_profile_it_is_bccs_tool() {
    require_root();
    let _cpu = cpu_lock();
    let dir = tempdir("argv0");
    let link = dir.join("profile");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(scorch(), &link).unwrap();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let out = Command::new(&link)
        .args(["-F", "49", "-p", &burn.pid().to_string(), "1", "-f"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(count_containing(&stacks, "outer;inner") >= 5, "{stacks:?}");
}

#[test]
fn a_full_stack_map_is_reported_with_its_fix() {
    require_root();
    let _cpu = cpu_lock();
    let a = Workload::start(&c_workload("burn"), &[]);
    let b = Workload::start(&c_workload("syscalls"), &[]);
    let out = run(&[
        "profile",
        "-F",
        "199",
        "--stack-storage-size",
        "1",
        "-f",
        "1",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "stack traces could not be displayed. Consider increasing --stack-storage-size."
        ),
        "{stderr}"
    );
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        stacks.iter().any(|(s, _)| s.contains("[Missed ")),
        "{stacks:?}"
    );
    drop((a, b));
}

#[test]
fn bad_input_fails_before_attaching() {
    require_root();
    let cases: [(&[&str], &str); 4] = [
        (
            &["profile", "-p", "999999999", "1"],
            "PID 999999999 does not exist",
        ),
        (
            &["profile", "-o", "/nonexistent/dir/out.svg", "1"],
            "cannot write the output file /nonexistent/dir/out.svg",
        ),
        (
            &["profile", "-o", "out.unknown", "1"],
            "cannot tell the format",
        ),
        (&["profile", "-C", "4096", "1"], "CPU 4096 is not online"),
    ];
    for (args, message) in cases {
        let started = Instant::now();
        let out = run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "not a one-line error: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{args:?} did not fail fast"
        );
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn without_privileges_it_says_to_run_as_root() {
    require_root();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(scorch())
        .args(["profile", "1"])
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("need CAP_BPF and CAP_PERFMON"), "{stderr}");
    assert!(stderr.contains("run as root"), "{stderr}");
}

#[test]
fn hardware_cycles_sample_or_explain_the_missing_pmu() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let out = run(&[
        "profile",
        "-e",
        "cycles",
        "-c",
        "10000000",
        "-p",
        &burn.pid().to_string(),
        "1",
        "-f",
    ]);
    // A hardware PMU registers itself as the `cpu` event source.
    if std::path::Path::new("/sys/bus/event_source/devices/cpu").exists() {
        assert!(out.status.success(), "{}", describe(&out));
        let stacks = folded(&String::from_utf8_lossy(&out.stdout));
        assert!(count_containing(&stacks, "outer;inner") > 0, "{stacks:?}");
    } else {
        assert!(!out.status.success(), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no hardware PMU") && stderr.contains("cpu-clock"),
            "{stderr}"
        );
    }
}

#[test]
fn mounts_tracefs_when_it_is_missing() {
    require_root();
    let _cpu = cpu_lock();
    let mounted = || {
        std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/sys/kernel/tracing"))
    };
    if mounted() {
        let status = Command::new("umount")
            .arg("/sys/kernel/tracing")
            .status()
            .unwrap();
        assert!(status.success(), "cannot unmount tracefs for the test");
    }
    let out = run(&["profile", "-f", "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(mounted(), "tracefs was not mounted again");
}

#[test]
fn status_line_on_a_terminal() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    let command = format!(
        "{} profile -F 99 -p {} 2 -o /dev/null --format folded",
        scorch().display(),
        burn.pid()
    );
    // `script` runs the command on a pseudo-terminal, as a person would.
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .output()
        .expect("script (bsdutils)");
    assert!(out.status.success(), "{}", describe(&out));
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains(" / 2s") && tty.contains(" samples ") && tty.contains(" lost"),
        "{tty:?}"
    );
    // Not a terminal: silent.
    let out = run(&[
        "profile",
        "-F",
        "99",
        "-p",
        &burn.pid().to_string(),
        "1",
        "-o",
        "/dev/null",
        "--format",
        "folded",
    ]);
    assert!(out.stderr.is_empty(), "{}", describe(&out));
}

#[test]
fn a_full_disk_fails_one_output_and_keeps_the_others() {
    require_root();
    let _cpu = cpu_lock();
    let tiny = tempdir("tiny-disk");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k", "tmpfs"])
        .arg(&tiny)
        .status()
        .unwrap();
    assert!(mounted.success(), "cannot mount a 4 KiB tmpfs");
    let burn = Workload::start(&c_workload("burn"), &[]);
    let svg = tiny.join("flame.svg");
    let fold = tempdir("outputs-full").join("stacks.folded");
    let out = run(&[
        "profile",
        "-F",
        "99",
        "-p",
        &burn.pid().to_string(),
        "1",
        "-o",
        svg.to_str().unwrap(),
        "-o",
        fold.to_str().unwrap(),
    ]);
    let _ = Command::new("umount").arg(&tiny).status();
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flame.svg") && stderr.contains("No space left on device"),
        "{stderr}"
    );
    let stacks = folded(&std::fs::read_to_string(&fold).unwrap());
    assert!(count_containing(&stacks, "outer;inner") >= 10, "{stacks:?}");
}

#[test]
fn frames_without_symbols_keep_their_module_and_offset() {
    require_root();
    let _cpu = cpu_lock();
    let stripped = tempdir("stripped").join("burn-stripped");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(c_workload("burn"))
        .status()
        .expect("strip (binutils)");
    assert!(status.success());
    let burn = Workload::start(&stripped, &[]);
    let out = run(&[
        "profile",
        "-F",
        "99",
        "-p",
        &burn.pid().to_string(),
        "1",
        "-f",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    // A stripped executable still names its module: `burn-stripped+0x11a9`.
    let unnamed = count_containing(&stacks, ";burn-stripped+0x");
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    assert!(unnamed >= 5 && unnamed * 10 >= total * 9, "{stacks:?}");
}

#[test]
fn thread_filter_event_count_user_only_and_delimiter() {
    require_root();
    let _cpu = cpu_lock();
    let burn = Workload::start(&c_workload("burn"), &[]);
    // The main thread's TID is the PID; a period of 10,000,000 cpu-clock
    // events (ns) is one sample per 10 ms of CPU.
    let tid = burn.pid().to_string();
    let cpu_before = burn.cpu_seconds();
    let out = run(&[
        "profile", "-L", &tid, "-c", "10000000", "-U", "-d", "-f", "2",
    ]);
    let cpu = burn.cpu_seconds() - cpu_before;
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        stacks.iter().all(|(s, _)| s.starts_with("burn;")),
        "{stacks:?}"
    );
    // -U: no kernel frames, so no delimiter either.
    assert!(!stacks.iter().any(|(s, _)| s.contains(";-;")), "{stacks:?}");
    expect_cpu_time(count_containing(&stacks, "main;outer;inner"), 100, cpu);
}

/// Seconds CPU `cpu` has spent idle since boot, from /proc/stat.
fn idle_seconds(cpu: u32) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("cpu{cpu} ")))
        .expect("cpu line in /proc/stat");
    // cpuN user nice system idle ...
    let idle: f64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    idle / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn one_cpu_and_idle_samples() {
    require_root();
    let _cpu = cpu_lock();
    // CPU 0's idle task is `swapper/0`: with -I its samples match the time
    // CPU 0 spent idle, whatever else the machine is doing.
    let idle_before = idle_seconds(0);
    let out = run(&["profile", "-C", "0", "-I", "-K", "-F", "99", "-f", "2"]);
    let idle = idle_seconds(0) - idle_before;
    assert!(out.status.success(), "{}", describe(&out));
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    let swapper = count_containing(&stacks, "swapper/0");
    let expected = idle * 99.0;
    assert!(
        swapper as f64 >= expected * 0.4 - 3.0 && swapper as f64 <= expected * 1.3 + 5.0,
        "{swapper} idle samples for {idle:.2} s idle at 99 Hz: {stacks:?}"
    );
    assert!(
        !stacks.iter().any(|(s, _)| s.starts_with("swapper/1")),
        "-C 0 sampled CPU 1: {stacks:?}"
    );
    let out = run(&["profile", "-C", "0", "-K", "-F", "99", "-f", "1"]);
    let stacks = folded(&String::from_utf8_lossy(&out.stdout));
    assert!(
        !stacks.iter().any(|(s, _)| s.starts_with("swapper/")),
        "idle sampled without -I: {stacks:?}"
    );
}
