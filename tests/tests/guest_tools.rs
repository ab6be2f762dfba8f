//! bpftrace's published tools that need kprobes or kernel data symbols,
//! run unmodified under `scorch trace` in a Debian 6.1 guest (our
//! development kernel has neither; see tests/tests/guest.rs).
//!
//! Each test copies the installed tool from /usr/sbin into the guest,
//! starts it, runs a busybox workload once the probes are attached, stops
//! it with SIGINT (as Ctrl-C does) and checks the rows the workload
//! caused. A test skips, saying why, when its tool is not installed.

mod common;

use std::path::{Path, PathBuf};

use common::{guest, scorch};

/// What a tool printed in the guest.
struct Run {
    status: String,
    /// What the workload printed as `TOOL: pid N`.
    pids: Vec<String>,
    out: Vec<String>,
    err: Vec<String>,
}

/// The installed tool, or `None` (and why, on stderr).
fn installed(name: &str) -> Option<PathBuf> {
    let path = Path::new("/usr/sbin").join(format!("{name}.bt"));
    if !path.exists() {
        eprintln!(
            "skipped {name}: {} is not installed (Debian package bpftrace)",
            path.display()
        );
        return None;
    }
    Some(path)
}

/// Runs tool `name` under scorch in the guest after `setup`, with
/// `workload` once its probes are attached; `None` when not installed.
fn tool_in_guest(name: &str, setup: &str, workload: &str) -> Option<Run> {
    let tool = installed(name)?;
    let scorch = scorch();
    let script = format!(
        // The first line follows the console's reset sequence: a blank one.
        "echo\n\
         ip link set lo up\n\
         {setup}\n\
         {scorch} trace {tool} > /tmp/out.txt 2> /tmp/err.txt &\n\
         t=$!\n\
         # A background job ignores SIGINT until scorch sets its handler:\n\
         # wait until the probes are attached (or scorch has failed).\n\
         i=0\n\
         while ! grep -q Attached /tmp/err.txt && kill -0 $t 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done\n\
         {workload}\n\
         kill -INT $t\n\
         wait $t\n\
         echo \"TOOL: status $?\"\n\
         sed 's/^/TOOL: out: /' /tmp/out.txt\n\
         sed 's/^/TOOL: err: /' /tmp/err.txt\n",
        scorch = scorch.display(),
        tool = tool.display(),
    );
    let lines = guest(&script, &[&scorch, &tool], "TOOL");
    let take = |prefix: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
            .collect()
    };
    let run = Run {
        status: take("status ").concat(),
        pids: take("pid "),
        out: take("out: "),
        err: take("err: "),
    };
    assert_eq!(run.status, "0", "{name} failed:\n{:#?}", run.err);
    Some(run)
}

/// The text of the tool's first `printf` (its banner), read from the
/// installed file.
fn banner(name: &str) -> String {
    let text = std::fs::read_to_string(Path::new("/usr/sbin").join(format!("{name}.bt"))).unwrap();
    let start = text.find("printf(\"").expect("a printf") + 8;
    let end = start + text[start..].find("\\n\"").expect("a banner line");
    text[start..end].to_string()
}

/// `@[KEY]: N` rows of the output: (KEY, N).
fn counts(out: &[String]) -> Vec<(String, u64)> {
    out.iter()
        .filter_map(|l| {
            let (key, n) = l.strip_prefix("@[")?.split_once("]: ")?;
            Some((key.to_string(), n.parse().ok()?))
        })
        .collect()
}

fn sum(counts: &[(String, u64)], key: &str) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, n)| n)
        .sum()
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

/// Reads /proc/version 20 times with busybox cat.
const READS: &str = "i=0; while [ $i -lt 20 ]; do cat /proc/version > /dev/null; i=$((i+1)); done";

#[test]
fn vfscount_counts_vfs_calls_on_linux_6_1() {
    let Some(run) = tool_in_guest("vfscount", "", READS) else {
        return;
    };
    assert_eq!(run.out[0], banner("vfscount"), "{:#?}", run.out);
    let counts = counts(&run.out);
    assert!(sum(&counts, "vfs_open") >= 20, "{:#?}", run.out);
    assert!(sum(&counts, "vfs_read") >= 20, "{:#?}", run.out);
    assert!(
        counts.iter().all(|(k, _)| k.starts_with("vfs_")),
        "{counts:?}"
    );
}

#[test]
fn vfsstat_counts_key_vfs_calls_each_second_on_linux_6_1() {
    // The counts print every second, and the last second's are cleared.
    let workload = format!("{READS}; sleep 2.5");
    let Some(run) = tool_in_guest("vfsstat", "", &workload) else {
        return;
    };
    assert_eq!(run.out[0], banner("vfsstat"), "{:#?}", run.out);
    assert!(run.out.iter().any(|l| is_time(l)), "{:#?}", run.out);
    let counts = counts(&run.out);
    assert!(sum(&counts, "vfs_open") >= 20, "{:#?}", run.out);
    assert!(sum(&counts, "vfs_read") >= 20, "{:#?}", run.out);
    let keys = [
        "vfs_read",
        "vfs_write",
        "vfs_fsync",
        "vfs_open",
        "vfs_create",
    ];
    assert!(
        counts
            .iter()
            .all(|(k, _)| keys.iter().any(|p| k.starts_with(p))),
        "{counts:?}"
    );
}

#[test]
fn capable_names_the_capability_checked_on_linux_6_1() {
    let Some(run) = tool_in_guest(
        "capable",
        "touch /tmp/owned",
        "chown 1 /tmp/owned & echo \"TOOL: pid $!\"; wait $!",
    ) else {
        return;
    };
    assert_eq!(run.out[0], banner("capable"), "{:#?}", run.out);
    // TIME UID PID COMM CAP NAME AUDIT: changing the owner takes
    // CAP_CHOWN (0). Every row has its name: `begin` filled them in
    // before the probe was attached.
    let rows: Vec<Vec<&str>> = run.out[2..]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter().all(|r| r.len() == 7 && is_time(r[0])),
        "{rows:#?}"
    );
    let chown = run.pids[0].as_str();
    assert!(
        rows.iter()
            .any(|r| r[1..6] == ["0", chown, "chown", "0", "CAP_CHOWN"]),
        "{rows:#?}"
    );
}

#[test]
fn loads_prints_load_averages_on_linux_6_1() {
    // The 6.1 kernel lists data symbols (avenrun); ours does not.
    let Some(run) = tool_in_guest("loads", "", "sleep 2.5") else {
        return;
    };
    assert_eq!(run.out[0], banner("loads"), "{:#?}", run.out);
    let rows: Vec<&String> = run.out[1..].iter().filter(|l| !l.is_empty()).collect();
    assert!(!rows.is_empty(), "{:#?}", run.out);
    for row in rows {
        // HH:MM:SS load averages: 0.123 0.045 0.001
        let (time, loads) = row.split_once(" load averages: ").expect(row);
        assert!(is_time(time), "{row}");
        let loads: Vec<&str> = loads.split(' ').collect();
        assert_eq!(loads.len(), 3, "{row}");
        for load in loads {
            let (whole, frac) = load.split_once('.').expect(row);
            assert!(whole.parse::<u64>().is_ok() && frac.len() == 3, "{row}");
        }
    }
}

/// Starts a busybox listener on loopback `port` that takes one
/// connection.
fn listener(port: u16) -> String {
    format!("nc -l -p {port} > /dev/null &\nsleep 0.5")
}

/// Connects to loopback `port`, sends a line and prints the client's pid.
fn connect(port: u16) -> String {
    format!("echo scorch | nc 127.0.0.1 {port} & echo \"TOOL: pid $!\"; wait $!")
}

#[test]
fn tcpconnect_shows_a_loopback_connection_on_linux_6_1() {
    let Some(run) = tool_in_guest("tcpconnect", &listener(4242), &connect(4242)) else {
        return;
    };
    assert_eq!(run.out[0], banner("tcpconnect"), "{:#?}", run.out);
    // TIME PID COMM SADDR SPORT DADDR DPORT
    let rows: Vec<Vec<&str>> = run.out[2..]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "{:#?}", run.out);
    let row = &rows[0];
    assert!(is_time(row[0]), "{row:?}");
    assert_eq!(row[1..4], [run.pids[0].as_str(), "nc", "127.0.0.1"]);
    assert!(row[4].parse::<u16>().is_ok_and(|p| p != 0), "{row:?}");
    assert_eq!(row[5..], ["127.0.0.1", "4242"]);
}

#[test]
fn tcplife_shows_both_ends_of_a_loopback_connection_on_linux_6_1() {
    let workload = format!("{}; sleep 0.5", connect(4244));
    let Some(run) = tool_in_guest("tcplife", &listener(4244), &workload) else {
        return;
    };
    // PID COMM LADDR LPORT RADDR RPORT TX_KB RX_KB MS: the client's end
    // (to 4244) and the listener's (busybox listens on IPv6 `::`). Each
    // row is two printf()s, and two CPUs' rows can interleave in the
    // one ring buffer: look for each row's first six words in the words.
    let words: Vec<&str> = run.out[1..]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    let client = words
        .windows(6)
        .find(|w| w[1] == "nc" && w[5] == "4244")
        .unwrap_or_else(|| panic!("no client end: {:#?}", run.out));
    assert_eq!(client[0], run.pids[0], "{client:?}");
    assert_eq!((client[2], client[4]), ("127.0.0.1", "127.0.0.1"));
    // The listener's end closes in whichever task runs then (the tool
    // says so): nc or a softirq thread.
    let server = words
        .windows(6)
        .find(|w| w[0].parse::<u32>().is_ok() && w[3] == "4244" && w[5] == client[3])
        .unwrap_or_else(|| panic!("no listener end: {:#?}", run.out));
    assert!(server[2].ends_with("127.0.0.1"), "{server:?}");
}

#[test]
fn dcsnoop_shows_dcache_lookups_on_linux_6_1() {
    // 6.1 has `lookup_fast` and no `lookup_fast.constprop.*`: that
    // attach point is skipped, with a warning.
    let Some(run) = tool_in_guest(
        "dcsnoop",
        "",
        "ls /tmp/scorch-dcsnoop-missing 2> /dev/null & echo \"TOOL: pid $!\"; wait $!",
    ) else {
        return;
    };
    assert_eq!(run.out[0], banner("dcsnoop"), "{:#?}", run.out);
    assert!(
        run.err
            .iter()
            .any(|l| l.contains("skipping this attach point")),
        "{:#?}",
        run.err
    );
    // TIME(ms) PID COMM T FILE: ls looked the missing name up.
    let rows: Vec<Vec<&str>> = run.out[2..]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let pid = run.pids[0].as_str();
    let lookups: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|r| r.len() == 5 && r[1] == pid && r[4] == "scorch-dcsnoop-missing")
        .collect();
    assert!(!lookups.is_empty(), "{rows:#?}");
    assert!(
        lookups
            .iter()
            .all(|r| r[0].parse::<u64>().is_ok() && r[2] == "ls" && ["R", "M"].contains(&r[3])),
        "{lookups:#?}"
    );
}
