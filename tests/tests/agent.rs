//! `scorch agent` end to end: the real sampler, a real store, real HTTP.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

    /// SIGTERM, then the exit status and the log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        (status, log)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP GET; `None` when nothing listens yet.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
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
    std::thread::sleep(Duration::from_millis(3500));
    let stacks = folded_of(&agent.addr, "burn");
    let before = count_containing(&stacks, "main;outer;inner");
    assert!(before >= 10, "{stacks:?}");
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
    std::thread::sleep(Duration::from_millis(1500));
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
    std::thread::sleep(Duration::from_millis(2600));
    let before = count_containing(&folded_of(&agent.addr, "burn"), "outer;inner");
    assert!(before > 0);
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
