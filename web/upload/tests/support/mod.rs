//! A recording HTTP server on loopback, profiles with known stacks, and waits.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use scorch_formats::{FrameKind, Line, Location, Meta, Profile, ProfileBuilder, Sample, Stack};
use scorch_upload::{Series, Window};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Size of the body.
    pub body_len: usize,
    /// When it arrived.
    pub at: Instant,
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// HTTP version.
    pub version: axum::http::Version,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Recorded {
    /// Query parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Wait before answering.
    pub delay: Duration,
    /// For gRPC: the status code sent as a trailer (or header, when not 0).
    pub grpc: Option<(u32, &'static str)>,
}

impl Reply {
    /// 200 OK.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    /// An empty answer with `status`.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            grpc: None,
        }
    }
}

type Behaviour = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    behaviour: Box<Behaviour>,
    keep_bodies: bool,
}

/// A server on its own runtime: stopping it closes every connection.
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Starts on a free loopback port.
    pub fn start(behaviour: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static) -> Server {
        Self::start_at("127.0.0.1:0".parse().unwrap(), behaviour)
    }

    /// Starts on a free loopback port, recording bodies' sizes but not their bytes.
    pub fn start_forgetful(
        behaviour: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Self::start_with("127.0.0.1:0".parse().unwrap(), false, behaviour)
    }

    /// Starts at `addr` (e.g. the port of a stopped server).
    pub fn start_at(
        addr: SocketAddr,
        behaviour: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Self::start_with(addr, true, behaviour)
    }

    fn start_with(
        addr: SocketAddr,
        keep_bodies: bool,
        behaviour: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            behaviour: Box::new(behaviour),
            keep_bodies,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("binding the test server");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&shared));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Stops listening and drops every connection.
    pub fn stop(mut self) -> Vec<Recorded> {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.requests()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_len = body.len();
    let body = if shared.keep_bodies {
        body
    } else {
        Bytes::new()
    };
    let recorded = Recorded {
        body_len,
        at: Instant::now(),
        method,
        uri,
        version,
        headers,
        body,
    };
    let reply = {
        let mut requests = shared.requests.lock().unwrap();
        let reply = (shared.behaviour)(requests.len(), &recorded);
        requests.push(recorded);
        reply
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    match reply.grpc {
        None => response.body(Body::empty()).unwrap(),
        Some((0, _)) => response
            .header("content-type", "application/grpc")
            .body(Body::new(GrpcBody {
                // An empty WriteRawResponse behind gRPC's 5-byte prefix.
                data: Some(Bytes::from_static(&[0, 0, 0, 0, 0])),
                trailers: Some([("grpc-status", "0")]),
            }))
            .unwrap(),
        Some((code, message)) => response
            .header("content-type", "application/grpc")
            .header("grpc-status", code.to_string())
            .header("grpc-message", message)
            .body(Body::empty())
            .unwrap(),
    }
}

/// A body of one data frame and then trailers, as gRPC answers.
struct GrpcBody {
    data: Option<Bytes>,
    trailers: Option<[(&'static str, &'static str); 1]>,
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        if let Some(trailers) = self.trailers.take() {
            let mut map = HeaderMap::new();
            for (name, value) in trailers {
                map.insert(name, value.parse().unwrap());
            }
            return Poll::Ready(Some(Ok(http_body::Frame::trailers(map))));
        }
        Poll::Ready(None)
    }
}

/// Waits up to `limit` for `done`, polling.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh directory for one test, deleted when dropped.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir()
        .join(format!("scorch-upload-tests-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    TempDir(dir)
}

/// A directory removed with its contents when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(parent) = self.0.parent() {
            // The per-process parent goes with its last test directory.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A profile of `pid` whose user stacks (root first) were sampled `count` times.
pub fn profile(pid: u32, comm: &str, stacks: &[(&[&str], u64)]) -> Profile {
    let mut builder = ProfileBuilder::new(Meta {
        frequency_hz: Some(49),
        ..Meta::default()
    });
    for (frames, count) in stacks {
        let locations: Vec<usize> = frames
            .iter()
            .rev()
            .enumerate()
            .map(|(i, name)| {
                builder.location(Location {
                    address: 0x1000 + i as u64 * 16 + name.len() as u64 * 0x100,
                    mapping: None,
                    kind: FrameKind::User,
                    lines: vec![Line {
                        function: name.to_string(),
                        file: None,
                        line: None,
                    }],
                })
            })
            .collect();
        builder.sample(Sample {
            pid,
            tid: None,
            comm: comm.to_string(),
            user: Stack::Frames(locations),
            kernel: Stack::Absent,
            count: *count,
        });
    }
    builder.build()
}

/// Labels of a series as the agent makes them.
pub fn labels(pid: u32, comm: &str) -> BTreeMap<String, String> {
    [
        ("host", "testhost"),
        ("pid", &pid.to_string()),
        ("comm", comm),
        ("exe", &format!("/usr/bin/{comm}")),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A window starting at `start_s` seconds with the given series.
pub fn window<'a>(start_s: u64, series: &'a [(BTreeMap<String, String>, Profile)]) -> Window<'a> {
    Window {
        start_unix_ns: start_s * 1_000_000_000 + 250_000_000,
        end_unix_ns: (start_s + 10) * 1_000_000_000 + 250_000_000,
        sample_rate_hz: Some(49),
        series: series
            .iter()
            .map(|(labels, profile)| Series { labels, profile })
            .collect(),
    }
}

/// Stacks of a gzipped pprof as `a;b;c` → count.
pub fn folded(pprof: &[u8]) -> BTreeMap<String, i64> {
    let decoded = scorch_formats::pprof::decode(pprof).expect("a pprof profile");
    let mut out = BTreeMap::new();
    for (stack, values) in scorch_formats::pprof::stacks(&decoded).unwrap() {
        *out.entry(stack.join(";")).or_default() += values[0];
    }
    out
}
