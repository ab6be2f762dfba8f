//! `scorch serve` as a receiver, end to end: the real binary, pushes with
//! the real curl, the store read back over HTTP, limits, restart, and the
//! read-only fallbacks. Needs no root.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use scorch_formats::{FrameKind, Line, Location, Meta, ProfileBuilder, Sample, Stack};

/// A running `scorch serve`, killed when dropped.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(data_dir: &Path, extra: &[&str]) -> Serve {
        // A free port is found by binding port 0 and letting it go; another
        // process may take it in between, so a serve that cannot listen is
        // started again on another port.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let child = Command::new(scorch())
                .args(["serve", "--listen", &addr])
                .arg("--data-dir")
                .arg(data_dir)
                .args(extra)
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting scorch serve");
            let mut serve = Serve { child, addr };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if get(&serve.addr, "/api/labels").is_some() {
                    return serve;
                }
                if let Some(status) = serve.child.try_wait().unwrap() {
                    let mut log = String::new();
                    let _ = serve.child.stderr.take().unwrap().read_to_string(&mut log);
                    assert!(
                        log.contains("cannot listen"),
                        "scorch serve exited ({status}): {log}"
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "scorch serve did not start serving"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("scorch serve found no free port in 5 tries")
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

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -sS -w '\n%{http_code}' ARGS`: the body and the status.
fn curl(args: &[&str]) -> (u16, String) {
    let out: Output = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (Debian: apt-get install curl)");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

fn data_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve-ingest")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn folded_of(addr: &str, service: &str) -> String {
    let (status, body) = get(
        addr,
        &format!("/api/profile?format=folded&label=service_name:{service}"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn serve_receives_pushes_and_keeps_them() {
    let dir = data_dir("receive");
    let serve = Serve::start(&dir, &["--max-ingest-size", "64KiB"]);
    let t = now();
    let ingest = |name: &str, rest: &str| {
        format!(
            "http://{}/ingest?name={name}&from={}&until={t}{rest}",
            serve.addr,
            t - 10
        )
    };

    // Folded, as the README's curl example sends it.
    let (status, body) = curl(&[
        "--data-binary",
        "main;handle;parse 100\nmain;handle;write 200\n",
        &ingest("my.app.cpu%7Benv%3Dprod%7D", ""),
    ]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        folded_of(&serve.addr, "my.app"),
        "my.app;main;handle;parse 100\nmy.app;main;handle;write 200\n"
    );

    // pprof as a multipart form file, as Pyroscope's SDKs send it.
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(99),
        start_unix_ns: (t - 5) * 1_000_000_000,
        duration_ns: 5_000_000_000,
        ..Meta::default()
    });
    let main = b.location(Location {
        address: 0x1000,
        mapping: None,
        kind: FrameKind::User,
        lines: vec![Line {
            function: "main".into(),
            file: None,
            line: None,
        }],
    });
    b.sample(Sample {
        pid: 42,
        tid: None,
        comm: "sdkapp".into(),
        user: Stack::Frames(vec![main]),
        kernel: Stack::Absent,
        count: 12,
    });
    let file = dir.with_extension("pb.gz");
    std::fs::write(&file, scorch_formats::pprof::encode(&b.build())).unwrap();
    let form = format!("profile=@{}", file.display());
    let url = format!("http://{}/ingest?name=sdk&spyName=gospy", serve.addr);
    let (status, body) = curl(&["-F", &form, &url]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(folded_of(&serve.addr, "sdk"), "sdkapp;main 12\n");

    // Over the limit: 413 with a JSON error, and the server goes on.
    let big = "x;y 1\n".repeat(20_000);
    let (status, body) = curl(&["--data-binary", &big, &ingest("big", "")]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("more than the limit of 64 KiB"), "{body}");
    let (status, body) = curl(&[
        "--data-binary",
        "not protobuf",
        &ingest("bad", "&format=pprof"),
    ]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let (status, _) = curl(&["--data-binary", "a 1\n", &ingest("after", "")]);
    assert_eq!(status, 200);

    // A second serve on the same store cannot write it: read-only, and it
    // says why.
    let second = Serve::start(&dir, &[]);
    let (status, body) = curl(&[
        "--data-binary",
        "a 1\n",
        &format!("http://{}/ingest?name=x", second.addr),
    ]);
    assert_eq!(status, 503, "{body}");
    assert_eq!(folded_of(&second.addr, "my.app").lines().count(), 2);
    let (status, log) = second.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("serves it read-only"), "{log}");

    // What was received survives a restart.
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
    let serve = Serve::start(&dir, &["--no-ingest"]);
    assert_eq!(folded_of(&serve.addr, "sdk"), "sdkapp;main 12\n");
    let (status, body) = curl(&[
        "--data-binary",
        "a 1\n",
        &format!("http://{}/ingest?name=x", serve.addr),
    ]);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("--no-ingest"), "{body}");
}

/// Posts folded stacks of `name` for the 10 s ending `until` (Unix s).
fn post_folded(addr: &str, name: &str, until: u64) -> (u16, String) {
    curl(&[
        "--data-binary",
        "old;stack 1\n",
        &format!(
            "http://{addr}/ingest?name={name}&from={}&until={until}",
            until - 10
        ),
    ])
}

#[test]
fn serve_deletes_history_only_when_told_to() {
    let dir = data_dir("retention");
    let twenty_days_ago = now() - 20 * 86400;
    // Without --retention or --max-disk serve keeps everything, however
    // old: an agent's store kept for 30 days loses nothing.
    let serve = Serve::start(&dir, &[]);
    let (status, body) = post_folded(&serve.addr, "old", twenty_days_ago);
    assert_eq!(status, 200, "{body}");
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("keeping all history"), "{log}");
    let serve = Serve::start(&dir, &[]);
    let old = |addr: &str| {
        get(
            addr,
            &format!(
                "/api/profile?format=folded&from={}&until={}&label=service_name:old",
                twenty_days_ago - 60,
                twenty_days_ago + 60
            ),
        )
        .unwrap()
        .1
    };
    assert_eq!(old(&serve.addr), "old;old;stack 1\n");
    serve.stop();

    // With --retention, what is older goes (retention runs at start), and
    // windows older than the retention are refused.
    let serve = Serve::start(&dir, &["--retention", "7d"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Once its series is gone the label is unknown: an error, no stacks.
        let left = old(&serve.addr);
        if !left.contains("old;stack") {
            break;
        }
        if Instant::now() > deadline {
            let (_, log) = serve.stop();
            panic!("retention did not run: {left:?} is still there; {log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = post_folded(&serve.addr, "old", twenty_days_ago);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("before the 604800 s this store keeps"),
        "{body}"
    );
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("retention Some(604800s)"), "{log}");
}

/// Unmounts the bind mount at its path when dropped.
struct BindMount(PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn serve_on_a_read_only_file_system_serves_read_only() {
    let dir = data_dir("read-only-source");
    let serve = Serve::start(&dir, &[]);
    let (status, body) = post_folded(&serve.addr, "kept", now());
    assert_eq!(status, 200, "{body}");
    serve.stop();
    let ro = data_dir("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(&dir)
        .arg(&ro)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot bind-mount (needs root and mount(8))");
        return;
    }
    let mount = BindMount(ro.clone());
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&mount.0)
        .status()
        .is_ok_and(|s| s.success());
    assert!(remounted, "cannot remount the bind mount read-only");
    let serve = Serve::start(&ro, &[]);
    let (status, body) = post_folded(&serve.addr, "x", now());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("read-only file system"), "{body}");
    let (status, body) = get(
        &serve.addr,
        "/api/profile?format=folded&label=service_name:kept",
    )
    .unwrap();
    assert_eq!((status, body.as_str()), (200, "kept;old;stack 1\n"));
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("read-only at http://"), "{log}");
}

/// The flame tree of the last hour of `service` and where it came from:
/// (samples, `x-scorch-cache`).
fn cached_tree(addr: &str, service: &str, until: u64) -> (u64, String) {
    // The last -w counts: this one writes the status too, as curl() reads it.
    let (status, text) = curl(&[
        "-w",
        "\n%header{x-scorch-cache}\n%{http_code}",
        &format!(
            "http://{addr}/api/profile?from={}&until={until}&label=service_name:{service}",
            until - 3600
        ),
    ]);
    assert_eq!(status, 200, "{text}");
    let (body, cache) = text.rsplit_once('\n').unwrap();
    // `"meta":{…,"samples":N,…}`: the only `samples` key of the tree.
    let samples = body
        .split_once("\"samples\":")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no samples in {body}"));
    (samples, cache.to_string())
}

#[test]
fn serve_answers_repeated_requests_from_its_cache_until_a_push_lands() {
    let dir = data_dir("answer-cache");
    let serve = Serve::start(&dir, &[]);
    let t = now();
    let push = |stacks: &str, until: u64| {
        let (status, body) = curl(&[
            "--data-binary",
            stacks,
            &format!(
                "http://{}/ingest?name=app&from={}&until={until}",
                serve.addr,
                until - 10
            ),
        ]);
        assert_eq!(status, 200, "{body}");
    };
    push("main;work 5\n", t - 20);
    let until = t + 1;
    assert_eq!(cached_tree(&serve.addr, "app", until), (5, "miss".into()));
    assert_eq!(cached_tree(&serve.addr, "app", until), (5, "hit".into()));
    // A pushed window in the range: built anew, with it.
    push("main;idle 3\n", t - 5);
    assert_eq!(cached_tree(&serve.addr, "app", until), (8, "miss".into()));
    assert_eq!(cached_tree(&serve.addr, "app", until), (8, "hit".into()));
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");

    // --answer-cache-size 0 turns the cache off.
    let serve = Serve::start(&dir, &["--answer-cache-size", "0"]);
    for _ in 0..2 {
        assert_eq!(cached_tree(&serve.addr, "app", until), (8, "miss".into()));
    }
    drop(serve);
    let out = run(&["serve", "--answer-cache-size", "lots"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a size"),
        "{}",
        describe(&out)
    );
}
