//! `scorch agent` end to end: the real sampler, a real store, real HTTP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// A running agent, killed when dropped.
struct Agent {
    child: Child,
    addr: String,
}

impl Agent {
    fn start(data_dir: &Path) -> Agent {
        Self::start_with(data_dir, "127.0.0.1", &[])
    }

    /// An agent listening on `host` at a free port, with `extra` arguments.
    fn start_with(data_dir: &Path, host: &str, extra: &[&str]) -> Agent {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("{host}:{port}");
        let child = Command::new(scorch())
            .args(["agent", "-F", "49", "--window", "1s", "--listen", &listen])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the agent");
        let agent = Agent {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&agent.addr, "/api/labels").is_none() {
            assert!(Instant::now() < deadline, "the agent did not start serving");
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    /// Waits until the first window is stored: it reads the kernel's
    /// symbols and parses every binary running on the host, for seconds in
    /// a debug build on a loaded host, and captures none meanwhile.
    fn wait_first_window(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(&self.addr, "/api/profile?format=folded").is_none_or(|(_, b)| b.is_empty()) {
            assert!(Instant::now() < deadline, "no window written in 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until at least `min` samples of `comm` with `needle` in their
    /// stack are stored, and returns how many there are.
    fn wait_stored(&self, comm: &str, needle: &str, min: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let count = stored(&self.addr, comm, needle);
            if count >= min {
                return count;
            }
            assert!(
                Instant::now() < deadline,
                "only {count} samples of {comm} with {needle:?} after 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then the exit status and the log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log).unwrap();
        }
        (status, log)
    }

    /// The log so far, read on a thread of its own from now on (`stop`
    /// then returns no log; join the thread for the rest).
    fn follow_log(&mut self) -> (Arc<Mutex<String>>, JoinHandle<()>) {
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(self.child.stderr.take().unwrap());
        let sink = Arc::clone(&log);
        let thread = std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        (log, thread)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Folded stacks of `comm` over the last `minutes`.
fn folded_of(addr: &str, comm: &str) -> Vec<(String, u64)> {
    let (status, body) = get(
        addr,
        &format!("/api/profile?format=folded&label=comm:{comm}"),
    )
    .expect("agent answers");
    assert_eq!(status, 200, "{body}");
    folded(&body)
}

fn data_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("agent")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn profiles_the_host_serves_it_and_keeps_it_across_restarts() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("restart");
    let burn = Workload::start(&c_workload("burn"), &[]);
    let agent = Agent::start(&dir);
    let before = agent.wait_stored("burn", "main;outer;inner", 10);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("the last window is written"), "{log}");
    drop(burn);

    // History survives: a new agent on the same directory serves it.
    let agent = Agent::start(&dir);
    let after = count_containing(&folded_of(&agent.addr, "burn"), "main;outer;inner");
    assert!(
        after >= before,
        "history lost across a restart: {before} then {after}"
    );
    let (_, body) = get(&agent.addr, "/api/label-values?key=exe").unwrap();
    assert!(body.contains("/burn"), "exe label missing: {body}");
}

#[test]
fn short_lived_processes_are_symbolized() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("short-lived");
    let agent = Agent::start(&dir);
    agent.wait_first_window();
    let burn = c_workload("burn");
    // Twenty processes of 150 ms each, each gone long before its window is written.
    for _ in 0..20 {
        let status = Command::new(&burn)
            .arg("0.15")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    agent.wait_stored("burn", "", 10);
    let stacks = folded_of(&agent.addr, "burn");
    let named = count_containing(&stacks, "main;outer;inner");
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    assert!(total >= 10, "{stacks:?}");
    assert!(
        named * 10 >= total * 8,
        "only {named} of {total} samples symbolized: {stacks:?}"
    );
}

#[test]
fn survives_kill_9_and_keeps_committed_windows() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("kill9");
    let burn = Workload::start(&c_workload("burn"), &[]);
    let mut agent = Agent::start(&dir);
    let before = agent.wait_stored("burn", "outer;inner", 1);
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    drop(burn);
    let agent = Agent::start(&dir);
    let after = count_containing(&folded_of(&agent.addr, "burn"), "outer;inner");
    assert!(
        after >= before,
        "committed windows lost: {before} then {after}"
    );
}

#[test]
fn a_corrupt_store_is_set_aside_and_the_agent_runs() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("store.db"), vec![0x5a; 64 * 1024]).unwrap();
    let agent = Agent::start(&dir);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, _) = get(&agent.addr, "/api/profile?format=json").unwrap();
    assert_eq!(status, 200);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("damaged"), "{log}");
}

#[test]
fn go_tool_pprof_pulls_a_live_profile_from_the_agent() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("pull");
    let burn = Workload::start(&c_workload("burn"), &[]);
    let agent = Agent::start(&dir);
    let home = data_dir("pull-home");
    std::fs::create_dir_all(&home).unwrap();
    let url = format!(
        "http://{}/debug/pprof/profile?seconds=2&pid={}",
        agent.addr,
        burn.pid()
    );
    let flat_pct = go_pprof_flat_percent(&[&url], &home, "inner");
    assert!(
        flat_pct > 50.0,
        "inner has only {flat_pct}% of a busy loop in it"
    );
    // Bad requests are refused with a message, and the agent keeps serving.
    let (status, body) = get(&agent.addr, "/debug/pprof/profile?seconds=0").unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`seconds`"), "{body}");
}

#[test]
fn a_token_guards_the_server_and_open_listening_is_warned_about() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("token");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let agent = Agent::start_with(
        &dir.join("store"),
        "127.0.0.1",
        &["--auth-token-file", token_file.to_str().unwrap()],
    );
    let (status, body) = get(&agent.addr, "/api/labels").unwrap();
    assert_eq!(status, 401, "{body}");
    let (status, _) = get(&agent.addr, "/api/labels?token=s3cret").unwrap();
    assert_eq!(status, 200);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("without --auth-token-file"), "{log}");

    let agent = Agent::start_with(&data_dir("open"), "0.0.0.0", &[]);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("without --auth-token-file"),
        "no warning for 0.0.0.0: {log}"
    );
}

/// Peak resident memory of process `pid` so far, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib << 10
}

/// Whether no user frame of a folded stack (`comm;user…;kernel…`) is named:
/// its frames after the command are `[unknown]` up to the end or to the
/// kernel's entry (`entry_…`, `asm_…`).
fn user_frames_unknown(stack: &str) -> bool {
    let mut frames = stack.split(';').skip(1).skip_while(|f| *f == "[unknown]");
    stack.contains(";[unknown]")
        && frames
            .next()
            .is_none_or(|f| f.starts_with("entry_") || f.starts_with("asm_"))
}

#[test]
fn memory_stays_bounded_under_thousands_of_short_processes() {
    require_root();
    let _cpu = cpu_lock();
    const MIB: u64 = 1 << 20;
    /// The symbol cache ceiling given to the agent: above what one window
    /// needs on a host that also runs rustc (librustc_driver's symbol
    /// tables alone are about 28 MiB), so that files are not parsed again
    /// every window, which a debug build cannot afford.
    const CEILING: u64 = 128 * MIB;
    /// The rest of the agent: its binary (a debug build here), the store,
    /// the server, and the working set of the window being symbolized,
    /// which is kept until the window ends.
    const MARGIN: u64 = 64 * MIB;
    let dir = data_dir("short-lived-memory");
    let agent = Agent::start_with(
        &dir,
        "127.0.0.1",
        &["--max-symbol-cache", "128MiB", "--log-format", "json"],
    );
    agent.wait_first_window();
    // 3000 processes, 48 at a time, each alive for 1 s (15 ms of it on
    // CPU, at its start) and each holding a perf map of 2500 JIT
    // functions: unbounded, their snapshots alone would take about 600 MiB.
    // A second of life leaves a debug-build agent on a loaded host the time
    // to capture each one.
    let out = Command::new(c_workload("spawner"))
        .args(["3000", "48", "15", "1000", "2500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "spawner failed: {}", describe(&out));
    let done = stdout
        .lines()
        .find_map(|l| l.strip_prefix("done "))
        .unwrap();
    let (children, perf_map_bytes) = done.split_once(' ').unwrap();
    assert_eq!(children, "3000", "{stdout}");
    let perf_map_bytes: u64 = perf_map_bytes.parse().unwrap();
    assert!(
        perf_map_bytes > 2 * (CEILING + MARGIN),
        "the workload must hold far more than the bound: {perf_map_bytes}"
    );
    // Two more windows, so the last children's samples are written.
    std::thread::sleep(Duration::from_millis(2500));

    let stacks = folded_of(&agent.addr, "shortlived");
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    let named = count_containing(&stacks, "short_task;spin");
    let unresolved: u64 = stacks
        .iter()
        .filter(|(s, _)| user_frames_unknown(s))
        .map(|(_, c)| c)
        .sum();
    let peak = peak_rss(agent.child.id());
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    println!(
        "peak RSS {:.1} MiB (ceiling {} MiB + margin {} MiB); of {total} samples of short-lived \
         processes, {named} in short_task and {unresolved} with no user frame named; their perf \
         maps held {:.0} MiB",
        peak as f64 / MIB as f64,
        CEILING / MIB,
        MARGIN / MIB,
        perf_map_bytes as f64 / MIB as f64
    );
    // 3000 × 15 ms at 49 Hz is about 2200 samples in short_task, more while
    // writing the perf maps (in libc, whose frames end the stack there: it
    // has no frame pointers). On a loaded host the agent captures many
    // children too late, after they exited (their samples stay unnamed), so
    // only assert that short-lived processes are named at all.
    assert!(total >= 300, "too few samples of the children: {stacks:?}");
    assert!(
        named >= 20,
        "short_task is named in only {named} samples: {stacks:?}"
    );
    assert!(
        log.matches("window written").count() >= 10,
        "windows written: {log}"
    );
    assert!(
        peak < CEILING + MARGIN,
        "peak RSS {peak} over the ceiling {CEILING} plus the margin {MARGIN}"
    );
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `24m`) at `dir`.
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(out.status.success(), "mount -t tmpfs: {}", describe(&out));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::ENOSPC),
                    "filling {path:?}: {e}"
                );
                break;
            }
        }
    }
    let _ = file.sync_all();
    written
}

/// Samples of `comm` whose stack holds `needle`, stored so far; 0 before
/// the first window names `comm` (the API refuses an unknown label).
fn stored(addr: &str, comm: &str, needle: &str) -> u64 {
    let path = format!("/api/profile?format=folded&label=comm:{comm}");
    match get(addr, &path) {
        Some((200, body)) => count_containing(&folded(&body), needle),
        Some((400, body)) if body.contains("unknown label") => 0,
        other => panic!("the agent does not answer {path}: {other:?}"),
    }
}

#[test]
fn a_full_disk_is_logged_and_the_agent_resumes_writing_when_space_is_freed() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("disk-full");
    let mount = Tmpfs::mount(&dir, "24m");
    let burn = Workload::start(&c_workload("burn"), &[]);
    let mut agent = Agent::start(&mount.0.join("store"));
    let (log, reader) = agent.follow_log();
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: {}", log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    agent.wait_stored("burn", "outer;inner", 1);

    let filler = mount.0.join("filler");
    assert!(
        fill(&filler) > 0,
        "nothing could be written to fill the tmpfs"
    );
    wait_for("the full disk was not logged", &|| {
        log.lock()
            .unwrap()
            .contains("no space left for the store database")
    });
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent exited on a full disk"
    );
    let during = stored(&agent.addr, "burn", "outer;inner");

    std::fs::remove_file(&filler).unwrap();
    let freed_at = log.lock().unwrap().len();
    wait_for("no window written after space was freed", &|| {
        log.lock().unwrap()[freed_at..].contains("window written")
    });
    let after = stored(&agent.addr, "burn", "outer;inner");
    assert!(
        after > during,
        "no new samples stored: {during} then {after}"
    );
    drop(burn);
    let (status, _) = agent.stop();
    reader.join().unwrap();
    assert!(status.success(), "{}", log.lock().unwrap());
}

#[test]
fn log_level_hides_less_severe_lines() {
    require_root();
    let _cpu = cpu_lock();
    let agent = Agent::start_with(
        &data_dir("log-level"),
        "127.0.0.1",
        &["--log-level", "warn"],
    );
    agent.wait_first_window();
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("window written"), "info lines at warn: {log}");

    let out = run(&["agent", "--log-level", "loud"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid value 'loud' for '--log-level"),
        "{}",
        describe(&out)
    );
}

/// `tests/workloads/qsort_spin.c` built with `-O2 -fomit-frame-pointer`:
/// only unwind tables reach `main` through libc's qsort.
fn qsort_nofp() -> PathBuf {
    c_workload_without_frame_pointers("qsort_spin", "qsort_nofp", &[])
}

/// The value of `field=N` in the last log line with `message` in it.
fn last_logged(log: &str, message: &str, field: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains(message))?;
    let at = line.find(&format!("{field}="))? + field.len() + 1;
    line[at..]
        .trim_start_matches('"')
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Samples of `comm` whose stack reaches `main` through libc's qsort, and all its samples.
fn complete_qsort_stacks(addr: &str, comm: &str) -> (u64, u64) {
    let stacks = folded_of(addr, comm);
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    let complete = stacks
        .iter()
        .filter(|(s, _)| {
            s.contains(";main;sort_all") && s.contains("qsort") && s.ends_with(";compare")
        })
        .map(|(_, c)| c)
        .sum();
    (complete, total)
}

/// Waits until `comm` has 100 samples stored and most have complete stacks.
fn wait_complete_qsort_stacks(agent: &Agent, comm: &str) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (complete, total) = complete_qsort_stacks(&agent.addr, comm);
        // The first samples, before the tables are in, walk frame pointers.
        if total >= 100 && complete * 10 >= total * 7 {
            return (complete, total);
        }
        assert!(
            Instant::now() < deadline,
            "{complete} complete stacks of {total} after 90 s: {:?}",
            folded_of(&agent.addr, comm)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn unwind_dwarf_reaches_main_in_a_process_started_after_the_agent() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("unwind-dwarf");
    let mut agent = Agent::start_with(&dir, "127.0.0.1", &["--unwind", "dwarf"]);
    let (log, reader) = agent.follow_log();
    agent.wait_first_window();
    let workload = Workload::start(&qsort_nofp(), &[]);
    let (complete, total) = wait_complete_qsort_stacks(&agent, "qsort_nofp");
    assert!(complete >= 70, "{complete} of {total}");
    drop(workload);
    let (status, _) = agent.stop();
    let _ = reader.join();
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "{log}");
    assert!(
        last_logged(&log, "unwind tables", "samples_without_tables_percent").is_some(),
        "the fallback share is not logged: {log}"
    );
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn unwind_fp_stops_in_libc() {
    require_root();
    let _cpu = cpu_lock();
    let dir = data_dir("unwind-fp");
    let agent = Agent::start_with(&dir, "127.0.0.1", &["--unwind", "fp"]);
    agent.wait_first_window();
    let _workload = Workload::start(&qsort_nofp(), &[]);
    agent.wait_stored("qsort_nofp", "compare", 100);
    let (complete, total) = complete_qsort_stacks(&agent.addr, "qsort_nofp");
    assert!(
        complete * 10 < total,
        "frame pointers reached main: the dwarf test proves nothing ({complete} of {total})"
    );
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("unwind tables"), "fp loads no tables: {log}");
}

/// Total count of `measure` in the series of process `pid`, and its stacks.
fn measured(addr: &str, measure: &str, pid: u32) -> (u64, Vec<(String, u64)>) {
    let path = format!("/api/profile?format=folded&measure={measure}&label=pid:{pid}");
    let stacks = match get(addr, &path) {
        Some((200, body)) => folded(&body),
        Some((400, body)) if body.contains("unknown label") => Vec::new(),
        other => panic!("the agent does not answer {path}: {other:?}"),
    };
    (stacks.iter().map(|(_, c)| c).sum(), stacks)
}

#[test]
fn off_cpu_stores_the_time_a_sleeping_process_waits_apart_from_its_cpu_samples() {
    require_root();
    let dir = data_dir("off-cpu");
    let home = data_dir("off-cpu-home");
    std::fs::create_dir_all(&home).unwrap();
    // Sleeps 20 ms at a time, forever: off CPU nearly all the time.
    let sleeper = Workload::start(&c_workload("sleeper"), &["sleep"]);
    let pid = sleeper.pid();
    let started = Instant::now();
    let agent = Agent::start_with(&dir, "127.0.0.1", &["--off-cpu"]);
    // Folded off-CPU counts are microseconds.
    let want_us = 3_000_000;
    let deadline = Instant::now() + Duration::from_secs(90);
    let (off_us, stacks) = loop {
        let (off_us, stacks) = measured(&agent.addr, "off-cpu", pid);
        // It cannot have waited longer than the agent ran.
        let ran_us = started.elapsed().as_micros() as u64;
        assert!(
            off_us <= ran_us + ran_us / 20,
            "{off_us} us off CPU stored after {ran_us} us: {stacks:?}"
        );
        if off_us >= want_us {
            break (off_us, stacks);
        }
        assert!(
            Instant::now() < deadline,
            "only {off_us} us off CPU of the sleeper stored after 90 s: {stacks:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        stacks.iter().all(|(s, _)| s.starts_with("sleeper;")),
        "{stacks:?}"
    );
    // Its waits are in the scheduler.
    let scheduled = count_containing(&stacks, ";__schedule");
    assert!(scheduled * 10 >= off_us * 9, "{stacks:?}");

    // On CPU it is a handful of samples at most (it wakes for microseconds
    // every 20 ms): the nanoseconds above are not among them.
    let ran_s = started.elapsed().as_secs() + 1;
    let (cpu_samples, cpu_stacks) = measured(&agent.addr, "cpu", pid);
    assert!(cpu_samples <= 49 * ran_s, "{cpu_stacks:?}");
    let (status, body) = get(&agent.addr, "/api/profile?measure=offcpu").unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown measure"), "{body}");

    // go tool pprof reads the off-CPU pprof: nanoseconds, leaves in the scheduler.
    let url = format!(
        "http://{}/api/profile?format=pprof&measure=off-cpu&label=pid:{pid}",
        agent.addr
    );
    let flat_pct = go_pprof_flat_percent(&[&url], &home, "__schedule");
    assert!(
        flat_pct > 90.0,
        "__schedule has only {flat_pct}% of the waits"
    );
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("off_cpu=true"), "{log}");
}

/// Off CPU, user stacks walk the CPU sampler's unwind tables: a sleeper
/// built without frame pointers, waiting in libc's `usleep` (no frame
/// pointers either), is stored with its whole chain from `_start` once
/// its tables are loaded (it is handed to the loader when first seen
/// waiting). At -O2, `sleeper()` tail-calls `usleep`: no frame of its own.
#[test]
fn off_cpu_stacks_walk_the_unwind_tables_through_libc() {
    require_root();
    let dir = data_dir("off-cpu-dwarf");
    let agent = Agent::start_with(&dir, "127.0.0.1", &["--off-cpu", "--unwind", "dwarf"]);
    let sleeper = Workload::start(
        &c_workload_without_frame_pointers("sleeper", "sleeper_nofp", &[]),
        &["sleep"],
    );
    let pid = sleeper.pid();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, stacks) = measured(&agent.addr, "off-cpu", pid);
        let whole_us = count_containing(&stacks, ";main;usleep;");
        // A second of waits walked through libc to main.
        if whole_us >= 1_000_000 {
            let (whole, _) = stacks
                .iter()
                .find(|(s, _)| s.contains(";main;usleep;"))
                .unwrap();
            assert!(whole.starts_with("sleeper_nofp;_start;"), "{stacks:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no waits of the sleeper walked to main after 90 s: {stacks:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn bad_off_cpu_arguments_are_refused_before_anything_starts() {
    let dir = data_dir("off-cpu-bad");
    let dir = dir.to_str().unwrap();
    let out = run(&[
        "agent",
        "--off-cpu",
        "--min-block-time",
        "10",
        "--max-block-time",
        "5",
        "--data-dir",
        dir,
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-block-time 5 is below --min-block-time 10"),
        "{err}"
    );
    // The bounds mean nothing without --off-cpu.
    let out = run(&["agent", "--min-block-time", "10", "--data-dir", dir]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--off-cpu"), "{err}");
}
