//! A real server on a loopback socket and a small blocking HTTP/1.1 client,
//! for the ingest tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scorch_store::{Store, StoreOptions};
use scorch_web::{IngestLimits, IngestMode};

/// 2023-11-14T22:13:20Z in Unix seconds: the tests' time.
pub const T0_SECS: u64 = 1_700_000_000;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("scorch-web-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server over a fresh store, listening on a loopback port.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store.
    pub store: Arc<Store>,
    /// The directory of the store.
    pub dir: TempDir,
}

/// Starts a server with ingest on (`limits`) or off (`None`), and a token.
pub fn serve(limits: Option<IngestLimits>, token: Option<&str>) -> Server {
    let dir = TempDir::new("ingest");
    let store = Arc::new(
        Store::open(
            &dir.path().join("store"),
            StoreOptions::new(Duration::from_secs(100 * 365 * 86400), 1 << 30),
        )
        .unwrap(),
    );
    let app = match limits {
        Some(limits) => scorch_web::router_with_ingest(
            Arc::clone(&store),
            None,
            token.map(str::to_string),
            IngestMode::Accept(limits),
            scorch_web::DEFAULT_ANSWER_CACHE_BYTES,
        ),
        None => scorch_web::router(Arc::clone(&store), None, token.map(str::to_string)),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    Server { addr, store, dir }
}

/// The default limits: 16 MiB received, 16 MiB decompressed.
pub fn default_limits() -> Option<IngestLimits> {
    Some(IngestLimits::default())
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// The `error` message of a JSON error answer.
    pub fn error(&self) -> String {
        let json = self.json();
        // scorch's `{"error"}`, or Connect's `{"code", "message"}`.
        json["error"]
            .as_str()
            .or(json["message"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends one request on a new connection and reads the whole answer.
/// With `chunked`, the body goes with `Transfer-Encoding: chunked`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    chunked: bool,
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and stop reading before the body ends.
    let _ = if chunked {
        body.chunks(16 << 10)
            .try_for_each(|chunk| {
                stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                stream.write_all(chunk)?;
                stream.write_all(b"\r\n")
            })
            .and_then(|_| stream.write_all(b"0\r\n\r\n"))
    } else {
        stream.write_all(body)
    };
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer to {method} {path}: {e}"),
        }
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line + 2..line + 2 + size]);
        data = &data[line + 4 + size..];
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"", false)
}

/// `POST path` with a content type.
pub fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Response {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", content_type)],
        body,
        false,
    )
}

/// The stored folded stacks of `service_name` over the tests' day.
pub fn folded_of(addr: SocketAddr, service: &str) -> String {
    let r = get(
        addr,
        &format!(
            "/api/profile?format=folded&from={}&until={}&label=service_name:{service}",
            T0_SECS - 86400,
            T0_SECS + 86400
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// `data` gzipped.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// `megabytes` MiB of zeros as gzip, about 1 KiB per MiB: one member of
/// 1 MiB repeated (readers take concatenated members as one stream).
pub fn gzip_bomb(megabytes: usize) -> Vec<u8> {
    gzip(&vec![0u8; 1 << 20]).repeat(megabytes)
}

/// A multipart/form-data body and its content type.
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "scorch-test-7d3f1a";
    let mut body = Vec::new();
    for (name, content) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Runs `go` with `args`, or `None` when Go is not installed.
pub fn go(args: &[&str], dir: &Path) -> Option<std::process::Output> {
    match Command::new("go").args(args).current_dir(dir).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running go: {e}"),
    }
}
