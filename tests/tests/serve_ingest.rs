//! `scorch serve` as a receiver, end to end: the real binary, pushes with
//! the real curl, the store read back over HTTP, limits, restart, and the
//! read-only fallbacks. Needs no root.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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
        let serve = Serve { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&serve.addr, "/api/labels").is_none() {
            assert!(
                Instant::now() < deadline,
                "scorch serve did not start serving"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        serve
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
        &ingest("my.app%7Benv%3Dprod%7D", ""),
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
    assert!(log.contains("serving it read-only"), "{log}");

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
