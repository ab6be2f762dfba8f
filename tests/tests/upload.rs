//! `--upload` end to end: a real agent, and a real `profile` run, pushing
//! to a real `scorch serve` on loopback through outages and restarts.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A scorch process, killed when dropped.
struct Scorch {
    child: Child,
    addr: String,
}

impl Scorch {
    /// `scorch ARGS --listen 127.0.0.1:PORT`, once it answers HTTP.
    fn start(port: u16, args: &[&str]) -> Scorch {
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(scorch())
            .args(args)
            .args(["--listen", &addr])
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting scorch");
        let scorch = Scorch { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&scorch.addr, "/api/labels").is_none() {
            assert!(
                Instant::now() < deadline,
                "scorch {args:?} did not start serving"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        scorch
    }

    fn serve(dir: &Path, port: u16) -> Scorch {
        Scorch::start(port, &["serve", "--data-dir", dir.to_str().unwrap()])
    }

    fn agent(dir: &Path, upload: &str) -> Scorch {
        let args = [
            "agent",
            "-F",
            "49",
            "--window",
            "1s",
            "--upload",
            upload,
            "--data-dir",
        ];
        let mut all: Vec<&str> = args.to_vec();
        all.push(dir.to_str().unwrap());
        Scorch::start(free_port(), &all)
    }

    /// SIGTERM, then the exit status and the log (without colours).
    fn stop(mut self) -> (ExitStatus, String) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log).unwrap();
        }
        (status, plain(&log))
    }
}

impl Drop for Scorch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` without ANSI colour sequences (ESC [ … final byte).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Folded stacks of `comm` stored in the last hour.
fn stored(addr: &str, comm: &str) -> Vec<(String, u64)> {
    let (status, body) = get(
        addr,
        &format!("/api/profile?format=folded&label=comm:{comm}"),
    )
    .expect("scorch answers");
    assert_eq!(status, 200, "{body}");
    folded(&body)
}

fn total(stacks: &[(String, u64)]) -> u64 {
    stacks.iter().map(|(_, c)| c).sum()
}

fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("upload")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn agent_windows_reach_serve_once_through_an_outage_and_a_restart() {
    require_root();
    let _cpu = cpu_lock();
    let (server_dir, agent_dir) = (dir("outage-server"), dir("outage-agent"));
    let port = free_port();
    let upload = format!("http://127.0.0.1:{port}");
    let burn = Workload::start(&c_workload("burn"), &[]);

    let server = Scorch::serve(&server_dir, port);
    let agent = Scorch::agent(&agent_dir, &upload);
    std::thread::sleep(Duration::from_millis(2500));
    // The server dies; the agent keeps profiling into its spool.
    drop(server);
    std::thread::sleep(Duration::from_millis(2500));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("upload failed"), "{log}");
    let spooled = std::fs::read_dir(agent_dir.join("upload-spool"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".window")
        })
        .count();
    assert!(spooled > 0, "nothing spooled while the server was down");

    // Both come back: the spool goes first, then new windows.
    let server = Scorch::serve(&server_dir, port);
    let agent = Scorch::agent(&agent_dir, &upload);
    std::thread::sleep(Duration::from_millis(2500));
    drop(burn);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("resending profiles spooled by an earlier run"),
        "{log}"
    );
    assert!(log.contains("still_spooled=0"), "{log}");

    // Every window the agent stored, the server stored once: same stacks,
    // same counts.
    let received = stored(&server.addr, "burn");
    let own = Scorch::start(
        free_port(),
        &[
            "serve",
            "--no-ingest",
            "--data-dir",
            agent_dir.to_str().unwrap(),
        ],
    );
    let sampled = stored(&own.addr, "burn");
    assert!(
        count_containing(&sampled, "main;outer;inner") >= 100,
        "{sampled:?}"
    );
    assert_eq!(total(&received), total(&sampled), "lost or doubled windows");
    assert_eq!(
        count_containing(&received, "main;outer;inner"),
        count_containing(&sampled, "main;outer;inner")
    );
    page_shows(&server.addr, &["burn", "outer", "inner"]);
}

/// Opens the page served at `addr` in headless Chromium (web/e2e/shows.mjs)
/// and checks that `frames` are drawn.
fn page_shows(addr: &str, frames: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/e2e/shows.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(frames)
        .env("SCORCH_URL", format!("http://{addr}/"))
        .output()
        .expect("node (installed by .ci/run, with `npm ci` in web/e2e)");
    assert!(
        out.status.success(),
        "the page does not show {frames:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn profile_upload_sends_the_run_or_fails_clearly_after_writing_outputs() {
    require_root();
    let _cpu = cpu_lock();
    let work = dir("profile");
    std::fs::create_dir_all(&work).unwrap();
    let server = Scorch::serve(&work.join("server"), free_port());
    let burn = Workload::start(&c_workload("burn"), &[]);
    let pid = burn.pid().to_string();

    let out = work.join("run.folded");
    let run = Command::new(scorch())
        .args(["profile", "-F", "99", "-p", &pid, "-q", "-o"])
        .arg(&out)
        .args([
            "--upload",
            &format!("http://{}", server.addr),
            "--app-name",
            "burner",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let written = folded(&std::fs::read_to_string(&out).unwrap());
    let received = stored(&server.addr, "burn");
    assert!(
        count_containing(&written, "main;outer;inner") >= 50,
        "{written:?}"
    );
    assert_eq!(total(&received), total(&written), "{received:?}");
    let (_, services) = get(&server.addr, "/api/label-values?key=service_name").unwrap();
    assert!(services.contains("burner"), "{services}");

    // The same through Pyroscope's HTTP /ingest (multipart pprof).
    let server = Scorch::serve(&work.join("ingest-server"), free_port());
    let out = work.join("ingest.folded");
    let run = Command::new(scorch())
        .args(["profile", "-F", "99", "-p", &pid, "-q", "-o"])
        .arg(&out)
        .args(["--upload", &format!("http://{}", server.addr)])
        .args(["--upload-protocol", "ingest", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let written = folded(&std::fs::read_to_string(&out).unwrap());
    let received = stored(&server.addr, "burn");
    assert!(
        count_containing(&received, "main;outer;inner") >= 50,
        "{received:?}"
    );
    assert_eq!(total(&received), total(&written), "{received:?}");

    // Nobody listens: the outputs are written, then the run fails and says why.
    let out = work.join("unsent.folded");
    let run = Command::new(scorch())
        .args(["profile", "-F", "99", "-p", &pid, "-q", "-o"])
        .arg(&out)
        .args([
            "--upload",
            &format!("http://127.0.0.1:{}", free_port()),
            "1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("uploading the profile"), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!folded(&std::fs::read_to_string(&out).unwrap()).is_empty());
}

#[test]
fn bad_upload_settings_fail_before_profiling() {
    let cases: [(&[&str], &str); 4] = [
        (&["--upload", "pyroscope:4040"], "invalid upload URL"),
        (
            &["--upload", "http://h", "--upload-header", "nocolon"],
            "invalid upload header",
        ),
        (
            &["--upload", "http://h", "--app-name", "{comm"],
            "invalid --app-name template",
        ),
        (
            &[
                "--upload",
                "http://h",
                "--upload-token-file",
                "/nonexistent/token",
            ],
            "cannot read the upload token file",
        ),
    ];
    for (args, message) in cases {
        let run = Command::new(scorch())
            .args(["profile", "-f"])
            .args(args)
            .arg("1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // Upload options without --upload are mistakes, not silently ignored.
    let without_url: [&[&str]; 3] = [
        &["profile", "--upload-protocol", "parca", "1"],
        &["profile", "--upload-timeout", "5s", "1"],
        &["agent", "--spool-size", "1MiB"],
    ];
    for args in without_url {
        let run = Command::new(scorch()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert!(stderr.contains("--upload"), "{args:?}: {stderr}");
    }
}
