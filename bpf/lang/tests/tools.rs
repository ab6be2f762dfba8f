//! bpftrace's published tools, run unmodified from /usr/sbin (Debian's
//! bpftrace package installs them), against workloads started here.
//!
//! Each test runs the installed file with [`scorch_lang::run`] in this
//! process, does something the tool reports once the probes are attached
//! (on the harness's `scorch-worker` thread, or in a child process it
//! starts), then stops the run as Ctrl-C does, and checks the rows it
//! caused: pid, comm, arguments and results. The header lines are
//! compared with what bpftrace itself prints for the same file, where it
//! runs here. Tools that need kprobes run in a 6.1 guest instead
//! (tests/tests/guest_tools.rs).
//!
//! Needs root; a test skips, saying why, when its tool is not installed.

// Runs from files only: not every helper of the harness is used.
#[allow(dead_code)]
mod harness;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use harness::{serial, trace_source, Outcome};
use scorch_lang::{RunOptions, SourceFile};

/// The comm of the harness's workload thread.
const WORKER: &str = "scorch-worker";

/// Where bpftrace's tools are installed.
fn tool_path(name: &str) -> PathBuf {
    Path::new("/usr/sbin").join(format!("{name}.bt"))
}

/// Runs the installed tool `name`; `workload` runs once its probes are
/// attached, then the run stops as on Ctrl-C. `None` (and why, on
/// stderr) when the tool is not installed.
fn run_tool(name: &str, workload: impl FnOnce() + Send + 'static) -> Option<Outcome> {
    let path = tool_path(name);
    if !path.exists() {
        eprintln!(
            "skipped {name}: {} is not installed (Debian package bpftrace)",
            path.display()
        );
        return None;
    }
    let bytes = std::fs::read(&path).expect("reading the tool");
    let shown = path.display().to_string();
    let o = trace_source(
        |_| SourceFile::from_bytes(shown, &bytes),
        RunOptions::default(),
        move || {
            workload();
            // SAFETY: signalling our own process; run() handles SIGINT.
            unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        },
    );
    assert_eq!(o.result, Ok(0), "{name}: {}\n{}", o.err, o.out);
    Some(o)
}

/// Whether a line is a tool's event row (they start with a time or a pid).
fn is_row(line: &str) -> bool {
    line.starts_with(|c: char| c.is_ascii_digit())
}

/// The first `n` lines of `out` that are not event rows.
fn header(out: &str, n: usize) -> Vec<String> {
    out.lines()
        .filter(|l| !is_row(l))
        .take(n)
        .map(str::to_string)
        .collect()
}

/// The first `n` non-row lines bpftrace itself prints for tool `name`, or
/// `None` (and why, on stderr) when it cannot run the tool here.
fn bpftrace_header(name: &str, n: usize) -> Option<Vec<String>> {
    let mut child = match Command::new("bpftrace")
        .arg(tool_path(name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("no header check for {name}: cannot run bpftrace: {e}");
            return None;
        }
    };
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.len() < n {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("Attaching ") || is_row(&line) => {}
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    // Ctrl-C, again until it stops: bpftrace misses one sent while it
    // is still attaching.
    for _ in 0..300 {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(100));
        if child.try_wait().expect("bpftrace").is_some() {
            break;
        }
    }
    let _ = child.kill();
    child.wait().expect("bpftrace");
    reader.join().unwrap();
    let errors = errors.join().unwrap();
    if lines.len() < n {
        eprintln!("no header check for {name}: bpftrace cannot run it here: {errors}");
        return None;
    }
    Some(lines)
}

/// Checks that the run's first `n` non-row lines are bpftrace's.
fn check_header(name: &str, o: &Outcome, n: usize) {
    if let Some(expected) = bpftrace_header(name, n) {
        assert_eq!(header(&o.out, n), expected, "{}", o.out);
    }
}

/// The rows of `out` whose fields after the time column (`time_words`
/// words) start with `pid` and `comm`, split on whitespace.
fn rows_of(out: &str, time_words: usize, pid: u32, comm: &str) -> Vec<Vec<String>> {
    let pid = pid.to_string();
    out.lines()
        .filter(|l| is_row(l))
        .map(|l| {
            l.split_whitespace()
                .skip(time_words)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() >= 2 && f[0] == pid && f[1] == comm)
        .collect()
}

/// Whether `word` is a `HH:MM:SS` time.
fn is_time(word: &str) -> bool {
    word.len() == 8
        && word.bytes().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// The buckets and counts of histogram `map` (`@name: ` and its rows),
/// checking each row has bpftrace's shape: the bucket left in 16 columns,
/// the count right in 8, and a bar of 52 between `|`s.
fn histogram(out: &str, map: &str) -> Vec<(String, u64)> {
    let title = format!("{map}: ");
    let mut lines = out.lines().skip_while(|l| *l != title);
    assert!(lines.next().is_some(), "no {title:?} in:\n{out}");
    let rows: Vec<(String, u64)> = lines
        .take_while(|l| l.starts_with('['))
        .map(|l| {
            assert_eq!(l.find(" |"), Some(24), "{l}");
            let bar = &l[25..];
            assert!(
                bar.len() == 54 && bar.starts_with('|') && bar.ends_with('|'),
                "{l}"
            );
            let (bucket, count) = l[..24].split_at(16);
            let count = count.trim().parse().unwrap_or_else(|_| panic!("{l}"));
            (bucket.trim_end().to_string(), count)
        })
        .collect();
    assert!(!rows.is_empty(), "{map} has no rows:\n{out}");
    rows
}

fn total(rows: &[(String, u64)]) -> u64 {
    rows.iter().map(|(_, n)| n).sum()
}

/// Busy on this thread for `ms` milliseconds.
fn spin(ms: u64) {
    let until = std::time::Instant::now() + Duration::from_millis(ms);
    let mut n = 0u64;
    while std::time::Instant::now() < until {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn c_path(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// A folder of this test binary's own under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tools")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn opensnoop_shows_each_open_with_its_fd_or_error() {
    let Some(_serial) = serial() else { return };
    let dir = PathBuf::from(format!("/tmp/scorch-opensnoop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let found = dir.join("found");
    std::fs::write(&found, "x").unwrap();
    let missing = dir.join("missing");
    let (tx, rx) = mpsc::channel();
    let (f, m) = (found.clone(), missing.clone());
    let Some(o) = run_tool("opensnoop", move || {
        for path in [f, m] {
            let out = Command::new("cat").arg(path).output().expect("cat");
            tx.send(out.status).unwrap();
        }
    }) else {
        return;
    };
    let _ = std::fs::remove_dir_all(&dir);
    check_header("opensnoop", &o, 2);
    let statuses: Vec<_> = rx.iter().collect();
    assert!(statuses[0].success() && !statuses[1].success());
    let paths = |path: &Path| -> Vec<Vec<String>> {
        o.out
            .lines()
            .filter(|l| is_row(l) && l.ends_with(&format!(" {}", path.display())))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    // PID COMM FD ERR PATH: cat opened the file as fd 3, and the missing
    // one failed with ENOENT.
    let found_rows = paths(&found);
    assert_eq!(found_rows.len(), 1, "{}", o.out);
    assert_eq!(found_rows[0][1..4], ["cat", "3", "0"], "{}", o.out);
    let missing_rows = paths(&missing);
    assert_eq!(missing_rows.len(), 1, "{}", o.out);
    assert_eq!(missing_rows[0][1..4], ["cat", "-1", "2"], "{}", o.out);
    assert_ne!(found_rows[0][0], missing_rows[0][0], "two processes");
}

#[test]
fn execsnoop_shows_the_command_line_of_each_exec() {
    let Some(_serial) = serial() else { return };
    let word = format!("scorch-execsnoop-{}", std::process::id());
    let (tx, rx) = mpsc::channel();
    let arg = word.clone();
    let Some(o) = run_tool("execsnoop", move || {
        let child = Command::new("/bin/echo")
            .args([arg.as_str(), "second arg"])
            .stdout(Stdio::null())
            .spawn()
            .expect("echo");
        tx.send(child.id()).unwrap();
        child.wait_with_output().unwrap();
    }) else {
        return;
    };
    check_header("execsnoop", &o, 1);
    let pid = rx.recv().unwrap().to_string();
    let rows: Vec<&str> = o.out.lines().filter(|l| l.contains(&word)).collect();
    assert_eq!(rows.len(), 1, "{}", o.out);
    // TIME(ms) PID ARGS: the arguments joined with spaces.
    let fields: Vec<&str> = rows[0].split_whitespace().collect();
    assert!(fields[0].parse::<u64>().is_ok(), "{}", rows[0]);
    assert_eq!(fields[1], pid, "{}", rows[0]);
    assert!(
        rows[0].ends_with(&format!(" /bin/echo {word} second arg")),
        "{}",
        rows[0]
    );
}

#[test]
fn killsnoop_shows_the_signal_target_and_result() {
    let Some(_serial) = serial() else { return };
    let (tx, rx) = mpsc::channel();
    let Some(o) = run_tool("killsnoop", move || {
        let mut child = Command::new("sleep").arg("60").spawn().expect("sleep");
        let pid = child.id() as i32;
        // SAFETY: signalling the child we started; then a pid that is gone.
        let sent = unsafe { libc::kill(pid, libc::SIGUSR1) };
        child.wait().unwrap();
        let gone = unsafe { libc::kill(pid, 0) };
        tx.send((pid, sent, gone)).unwrap();
    }) else {
        return;
    };
    check_header("killsnoop", &o, 2);
    let (target, sent, gone) = rx.recv().unwrap();
    assert_eq!((sent, gone), (0, -1));
    // TIME PID COMM SIG TPID RESULT (the run's own SIGINT is left out).
    let target = target.to_string();
    let kills: Vec<String> = rows_of(&o.out, 1, std::process::id(), WORKER)
        .into_iter()
        .filter(|r| r.get(3) == Some(&target))
        .map(|r| r[2..].join(" "))
        .collect();
    assert_eq!(
        kills,
        [format!("10 {target} 0"), format!("0 {target} -3")],
        "{}",
        o.out
    );
    assert!(
        o.out
            .lines()
            .filter(|l| is_row(l))
            .all(|l| is_time(&l[..8])),
        "{}",
        o.out
    );
}

#[test]
fn syscount_counts_syscalls_by_id_and_process() {
    let Some(_serial) = serial() else { return };
    const CALLS: u64 = 300_000;
    let Some(o) = run_tool("syscount", || {
        for _ in 0..CALLS {
            // SAFETY: getppid has no arguments and no effect.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
    }) else {
        return;
    };
    check_header("syscount", &o, 1);
    let value = |key: &str| -> u64 {
        o.out
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{}", o.out))
            .parse()
            .unwrap()
    };
    assert!(
        value(&format!("@syscall[{}]: ", libc::SYS_getppid)) >= CALLS,
        "{}",
        o.out
    );
    assert!(
        value(&format!("@process[{WORKER}]: ")) >= CALLS,
        "{}",
        o.out
    );
    // Top 10 of each, under the END probe's titles.
    let syscalls = o.out.find("\nTop 10 syscalls IDs:\n").expect("title");
    let processes = o.out.find("\nTop 10 processes:\n").expect("title");
    assert!(syscalls < processes, "{}", o.out);
    let count = |from: usize, prefix: &str| {
        o.out[from..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with(prefix))
            .count()
    };
    assert_eq!(count(syscalls, "@syscall["), 10, "{}", o.out);
    assert!(
        (1..=10).contains(&count(processes, "@process[")),
        "{}",
        o.out
    );
}

#[test]
fn runqlat_histograms_run_queue_latency() {
    let Some(_serial) = serial() else { return };
    let Some(o) = run_tool("runqlat", || {
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }) else {
        return;
    };
    check_header("runqlat", &o, 1);
    // Each of the 50 wakeups waited on a run queue, if only for 0 µs.
    let rows = histogram(&o.out, "@usecs");
    assert!(total(&rows) >= 50, "{}", o.out);
    assert!(!o.out.contains("@qtime"), "END clears @qtime:\n{}", o.out);
}

#[test]
fn runqlen_histograms_run_queue_length() {
    let Some(_serial) = serial() else { return };
    let Some(o) = run_tool("runqlen", || spin(300)) else {
        return;
    };
    check_header("runqlen", &o, 1);
    let rows = histogram(&o.out, "@runqlen");
    assert!(total(&rows) >= 1, "{}", o.out);
    unit_buckets(&rows, &o.out);
}

/// Checks `lhist(x, 0, N, 1)` rows: consecutive one-wide buckets, from the
/// first with a count to the last (bpftrace leaves out the empty ones
/// around them); returns the first bucket's value.
fn unit_buckets(rows: &[(String, u64)], out: &str) -> usize {
    let first = rows
        .first()
        .and_then(|(b, _)| {
            b.strip_prefix('[')?
                .split(',')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no lhist rows:\n{out}"));
    for (i, (bucket, _)) in rows.iter().enumerate() {
        let k = first + i;
        assert_eq!(bucket, &format!("[{k}, {})", k + 1), "{out}");
    }
    first
}

#[test]
fn cpuwalk_histograms_the_cpus_that_run() {
    let Some(_serial) = serial() else { return };
    let Some(o) = run_tool("cpuwalk", || spin(300)) else {
        return;
    };
    check_header("cpuwalk", &o, 1);
    let rows = histogram(&o.out, "@cpu");
    assert!(total(&rows) >= 1, "{}", o.out);
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) } as usize;
    // The CPUs that ran something, CPU 0 not always among them.
    let first = unit_buckets(&rows, &o.out);
    assert!(first + rows.len() <= cpus, "{}", o.out);
}

#[test]
fn naptime_shows_nanosleep_with_parent_and_duration() {
    let Some(_serial) = serial() else { return };
    let Some(o) = run_tool("naptime", || {
        // glibc sleeps with clock_nanosleep; the tool traces nanosleep.
        let nap = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        // SAFETY: a valid timespec, and no remainder wanted.
        unsafe { libc::syscall(libc::SYS_nanosleep, &nap, std::ptr::null::<u8>()) };
    }) else {
        return;
    };
    check_header("naptime", &o, 2);
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    let pcomm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap();
    // TIME PPID PCOMM PID COMM SECONDS
    let rows: Vec<Vec<&str>> = o
        .out
        .lines()
        .filter(|l| is_row(l) && l.contains(&format!(" {WORKER} ")))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let pid = std::process::id().to_string();
    let ppid = ppid.to_string();
    assert_eq!(rows.len(), 1, "{}", o.out);
    assert!(is_time(rows[0][0]), "{}", o.out);
    assert_eq!(
        rows[0][1..],
        [ppid.as_str(), pcomm.trim_end(), &pid, WORKER, "0.020"],
        "{}",
        o.out
    );
}

#[test]
fn pidpersec_counts_new_processes_each_second() {
    let Some(_serial) = serial() else { return };
    let Some(o) = run_tool("pidpersec", || {
        for _ in 0..5 {
            Command::new("true").status().expect("true");
        }
        // The counts print every second.
        std::thread::sleep(Duration::from_millis(2500));
    }) else {
        return;
    };
    check_header("pidpersec", &o, 1);
    let counts: Vec<u64> = o
        .out
        .lines()
        .filter(|l| is_row(l))
        .map(|l| {
            let (time, count) = l.split_once(" PIDs/sec: @: ").expect(l);
            assert!(is_time(time), "{l}");
            count.parse().expect(l)
        })
        .collect();
    assert!(!counts.is_empty(), "{}", o.out);
    assert!(counts.iter().sum::<u64>() >= 5, "{}", o.out);
}

#[test]
fn setuids_shows_each_call_with_its_arguments_and_result() {
    let Some(_serial) = serial() else { return };
    let Some(o) = run_tool("setuids", || {
        // As root, to root: nothing changes. Raw calls act on this thread
        // only (glibc's would change every thread of the test binary).
        // SAFETY: the ids are this thread's own; -1 leaves one unchanged.
        unsafe {
            libc::syscall(libc::SYS_setuid, 0);
            libc::syscall(libc::SYS_setresuid, -1, 0, -1);
            libc::syscall(libc::SYS_setfsuid, 0);
        }
    }) else {
        return;
    };
    check_header("setuids", &o, 2);
    let lines: Vec<&str> = o
        .out
        .lines()
        .filter(|l| is_row(l) && l.contains(&format!(" {WORKER} ")))
        .collect();
    assert_eq!(lines.len(), 3, "{}", o.out);
    // TIME PID COMM UID SYSCALL ARGS (RET)
    let pid = std::process::id().to_string();
    let calls: Vec<String> = lines
        .iter()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            assert!(is_time(fields[0]), "{l}");
            assert_eq!(fields[1..4], [pid.as_str(), WORKER, "0"], "{l}");
            fields[4..].join(" ")
        })
        .collect();
    assert_eq!(
        calls,
        [
            "setuid uid=0 (0)",
            "setresuid ruid=-1 euid=0 suid=-1 (0)",
            "setfsuid uid=0 (prevuid=0)",
        ],
        "{}",
        o.out
    );
}

#[test]
fn statsnoop_shows_each_stat_with_its_error() {
    let Some(_serial) = serial() else { return };
    // Short paths: the tool shows 63 bytes of each.
    let dir = PathBuf::from(format!("/tmp/scorch-statsnoop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing");
    let (d, m) = (c_path(&dir), c_path(&missing));
    let Some(o) = run_tool("statsnoop", move || {
        let mut buf = [0u8; 512];
        let b = buf.as_mut_ptr();
        // SAFETY: NUL-terminated paths and a buffer larger than any of
        // struct stat, statfs and statx.
        unsafe {
            libc::syscall(libc::SYS_stat, m.as_ptr(), b);
            libc::syscall(libc::SYS_lstat, d.as_ptr(), b);
            libc::syscall(libc::SYS_statfs, d.as_ptr(), b);
            libc::syscall(libc::SYS_statx, libc::AT_FDCWD, d.as_ptr(), 0, 0x7ff, b);
        }
    }) else {
        return;
    };
    let _ = std::fs::remove_dir_all(&dir);
    check_header("statsnoop", &o, 2);
    // PID COMM ERR PATH
    let rows = rows_of(&o.out, 0, std::process::id(), WORKER);
    let (missing, dir) = (missing.display().to_string(), dir.display().to_string());
    let expected: Vec<Vec<&str>> = vec![
        vec!["2", &missing],
        vec!["0", &dir],
        vec!["0", &dir],
        vec!["0", &dir],
    ];
    let got: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r[2..].iter().map(String::as_str).collect())
        .collect();
    assert_eq!(got, expected, "{}", o.out);
}

#[test]
fn syncsnoop_shows_each_sync_call_by_probe() {
    let Some(_serial) = serial() else { return };
    let file = scratch("syncsnoop").join("data");
    let Some(o) = run_tool("syncsnoop", move || {
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(b"scorch").unwrap();
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a file we own; a range of zero length means to its end.
        unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }) else {
        return;
    };
    check_header("syncsnoop", &o, 2);
    // TIME PID COMM EVENT
    let events: Vec<String> = rows_of(&o.out, 1, std::process::id(), WORKER)
        .into_iter()
        .map(|r| r[2..].join(" "))
        .collect();
    assert_eq!(
        events,
        [
            "tracepoint:syscalls:sys_enter_fsync",
            "tracepoint:syscalls:sys_enter_fdatasync",
            "tracepoint:syscalls:sys_enter_sync_file_range",
        ],
        "{}",
        o.out
    );
}

/// The block device (`MAJOR:MINOR`) that holds `path`, or `None` when
/// its file system has none (tmpfs, overlay).
fn block_device(path: &Path) -> Option<String> {
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    (major != 0).then(|| format!("{major}:{minor}"))
}

#[test]
fn writeback_shows_the_writeback_a_sync_starts() {
    let Some(_serial) = serial() else { return };
    let dir = scratch("writeback");
    if block_device(&dir).is_none() {
        eprintln!(
            "skipped writeback: {} is on no block device, so nothing is written back",
            dir.display()
        );
        return;
    }
    let file = dir.join("data");
    let Some(o) = run_tool("writeback", move || {
        std::fs::write(&file, vec![7u8; 4 << 20]).unwrap();
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
    }) else {
        return;
    };
    check_header("writeback", &o, 2);
    // TIME DEVICE PAGES REASON ms
    let synced: Vec<Vec<&str>> = o
        .out
        .lines()
        .filter(|l| is_row(l))
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| f.get(3) == Some(&"sync"))
        .collect();
    assert!(!synced.is_empty(), "{}", o.out);
    for row in synced {
        assert_eq!(row.len(), 5, "{row:?}");
        assert!(is_time(row[0]), "{row:?}");
        let (major, minor) = row[1].split_once(':').expect("MAJOR:MINOR");
        assert!(major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok());
        assert!(row[2].parse::<u64>().is_ok(), "{row:?}");
        let (ms, frac) = row[4].split_once('.').expect("ms.µs");
        assert!(ms.parse::<u64>().is_ok() && frac.len() == 3, "{row:?}");
    }
}

#[test]
fn bitesize_histograms_io_sizes_by_process() {
    let Some(_serial) = serial() else { return };
    let dir = scratch("bitesize");
    if block_device(&dir).is_none() {
        eprintln!(
            "skipped bitesize: {} is on no block device, so no block I/O is issued",
            dir.display()
        );
        return;
    }
    let file = dir.join("data");
    let Some(o) = run_tool("bitesize", move || {
        // Direct I/O, so dd issues the block requests itself.
        let status = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", file.display()))
            .args(["bs=1M", "count=4", "oflag=direct"])
            .stderr(Stdio::null())
            .status()
            .expect("dd");
        assert!(status.success());
    }) else {
        return;
    };
    check_header("bitesize", &o, 1);
    assert!(
        o.out.contains("histograms by process name:\n\n@["),
        "{}",
        o.out
    );
    // 4 MiB in requests no larger than the device takes.
    let rows = histogram(&o.out, "@[dd]");
    assert!(total(&rows) >= 4, "{}", o.out);
    for (bucket, n) in rows {
        assert!(n == 0 || !bucket.starts_with("[0]"), "{bucket}");
    }
}

/// The openssl processes of a TLS session: `req` made its certificate.
struct TlsSession {
    req: u32,
    server: u32,
    client: u32,
}

/// Makes a throwaway key and self-signed certificate in `dir`, then runs
/// a TLS session between `openssl s_server` and `openssl s_client` on
/// 127.0.0.1, the client sending `data`; returns once all have exited.
fn openssl_session(dir: &Path, data: &'static [u8]) -> TlsSession {
    let mut req = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-keyout", "k.pem", "-out", "c.pem"])
        .args(["-subj", "/CN=scorch", "-days", "1"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl req");
    let status = wait_bounded(&mut req, "openssl req");
    assert!(status.success(), "openssl req: {status}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Its stdin stays open: s_server shuts down at end of file on it.
    let mut server = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-key", "k.pem", "-cert", "c.pem", "-naccept", "1", "-quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    wait_for_listener(port);
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    // At end of file on its stdin, s_client closes the session.
    client.stdin.take().unwrap().write_all(data).unwrap();
    let client_status = wait_bounded(&mut client, "openssl s_client");
    let server_status = wait_bounded(&mut server, "openssl s_server");
    assert!(client_status.success(), "openssl s_client: {client_status}");
    assert!(server_status.success(), "openssl s_server: {server_status}");
    let received = std::io::read_to_string(server.stdout.take().unwrap()).unwrap();
    assert_eq!(received.as_bytes(), data, "what s_server received");
    TlsSession {
        req: req.id(),
        server: server.id(),
        client: client.id(),
    }
}

/// Waits until something listens on 127.0.0.1:`port` (read from
/// /proc/net/tcp: connecting would use up s_server's one connection).
fn wait_for_listener(port: u16) {
    let local = format!("0100007F:{port:04X}");
    for _ in 0..600 {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let listening = table.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == local && f[3] == "0A"
        });
        if listening {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port} after 30 s");
}

/// Waits up to a minute for `child` to exit, killing it after that.
fn wait_bounded(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("{what} still runs after a minute");
}

/// What the TLS tests' client sends.
const TLS_DATA: &[u8] = b"hello-scorch\n";

#[test]
fn sslsnoop_shows_each_ssl_call_with_its_result() {
    let Some(_serial) = serial() else { return };
    let dir = scratch("sslsnoop");
    let (tx, rx) = mpsc::channel();
    let Some(o) = run_tool("sslsnoop", move || {
        tx.send(openssl_session(&dir, TLS_DATA)).unwrap();
    }) else {
        return;
    };
    check_header("sslsnoop", &o, 2);
    let session = rx.recv().unwrap();
    // TIME(us) TID COMM LAT(us) RET FUNC: each openssl is one thread, so
    // its tid is its pid. Calls as (FUNC, RET).
    let calls = |pid: u32| -> Vec<(String, i64)> {
        rows_of(&o.out, 1, pid, "openssl")
            .into_iter()
            .map(|r| {
                assert_eq!(r.len(), 5, "{r:?}");
                assert!(r[2].parse::<u64>().is_ok(), "{r:?}");
                (r[4].clone(), r[3].parse().expect("RET"))
            })
            .collect()
    };
    let len = TLS_DATA.len() as i64;
    // req signs its certificate with PKCS #1 v1.5, which succeeds.
    assert_eq!(calls(session.req), [("RSA_sign".into(), 1)], "{}", o.out);
    // The server accepts (SSL_accept, untraced, calls SSL_do_handshake),
    // reads the data, then reads 0 at the client's close. SSL_read's -1
    // is "try again"; it may come between.
    let server = calls(session.server);
    assert_eq!(server[0], ("SSL_do_handshake".into(), 1), "{}", o.out);
    let reads: Vec<i64> = server[1..]
        .iter()
        .map(|(func, ret)| {
            assert_eq!(func, "SSL_read", "{}", o.out);
            *ret
        })
        .filter(|ret| *ret != -1)
        .collect();
    assert_eq!(reads, [len, 0], "{}", o.out);
    // The client's first write runs the handshake and writes nothing, the
    // next writes the data; reads of the server's session tickets may
    // come between.
    let writes: Vec<i64> = calls(session.client)
        .into_iter()
        .filter(|(func, ret)| {
            assert!(func == "SSL_write" || func == "SSL_read", "{}", o.out);
            assert!(*ret >= -1, "{}", o.out);
            func == "SSL_write"
        })
        .map(|(_, ret)| ret)
        .collect();
    assert_eq!(writes, [0, len], "{}", o.out);
}

/// The `count` of stats map `map`, e.g. `@stat[SSL_read]`.
fn stats_count(out: &str, map: &str) -> u64 {
    let prefix = format!("{map}: count ");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"));
    let (count, rest) = line.split_once(", average ").expect(line);
    assert!(rest.contains(", total "), "{line}");
    count.parse().expect(line)
}

#[test]
fn ssllatency_histograms_ssl_call_latency_by_function() {
    let Some(_serial) = serial() else { return };
    let dir = scratch("ssllatency");
    let Some(o) = run_tool("ssllatency", move || {
        openssl_session(&dir, TLS_DATA);
    }) else {
        return;
    };
    check_header("ssllatency", &o, 1);
    assert!(
        o.out.contains("\nLatency distribution in microsecond:\n"),
        "{}",
        o.out
    );
    // Successful calls by function (other processes' TLS may add more):
    // req's RSA_sign, the server's handshake and read, the client's write.
    for func in ["RSA_sign", "SSL_do_handshake", "SSL_read", "SSL_write"] {
        let map = format!("@hist[{func}]");
        let rows = histogram(&o.out, &map);
        assert!(total(&rows) >= 1, "{}", o.out);
        for (bucket, _) in &rows {
            let linear = (0..5).any(|i| *bucket == format!("[{}, {})", i * 200, i * 200 + 200));
            assert!(linear || bucket == "[1000, ...)", "{bucket}");
        }
        let count = stats_count(&o.out, &format!("@stat[{func}]"));
        assert_eq!(count, total(&rows), "{}", o.out);
    }
    // The failures: the client's handshaking write returned 0, the
    // server's last read 0 at the close.
    for func in ["SSL_read", "SSL_write"] {
        let rows = histogram(&o.out, &format!("@histF[{func}]"));
        let count = stats_count(&o.out, &format!("@statF[{func}]"));
        assert!(count >= 1 && count == total(&rows), "{}", o.out);
    }
}
