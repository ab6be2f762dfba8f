//! Ingest: other profilers push profiles into the store through the two
//! APIs Grafana Pyroscope accepts, so a `scorch serve` can be a small
//! receiver for a team.
//!
//! - [`pyroscope`]: `POST /ingest?name=APP{k=v,…}&from=…&until=…` with a
//!   pprof (raw, gzipped, or the `profile` part of a multipart form) or
//!   folded stacks in the body — what Pyroscope's SDKs send.
//! - [`push`]: `POST /push.v1.PusherService/Push`, the Connect protocol's
//!   unary call with a binary protobuf `PushRequest` — what Grafana Alloy's
//!   `pyroscope.write` sends. Each raw profile's `id` is remembered, so a
//!   client retrying after a lost answer does not store it twice.
//!
//! Every profile becomes one window of one series: its labels are the
//! series (`service_name`, `__name__`, and the client's), its time range
//! the window's. Only CPU profiles are stored (the store counts samples);
//! others are skipped and the answer says so.
//!
//! Untrusted input is bounded before it is looked at, and one budget
//! ([`IngestLimits`]) covers the whole request: the body by `compressed`
//! (413), everything decompressed together by `decompressed` (413,
//! decompression stops there), each pprof's samples, locations, functions
//! and strings, counted on the wire before decoding (413), and stacks cut
//! to `depth` frames. At most `concurrent` requests are decoded at once;
//! more get 429 with `Retry-After`. Bad protobuf, gzip, multipart, folded
//! text or parameters are a 400 with a message, and so is a window older
//! than the store keeps or too far in the future. A request whose `Origin`
//! is another site (a web page posting here) is a 403. The whole request
//! is checked before anything is written, and its windows are written in
//! one transaction: all or nothing.

mod body;
mod budget;
mod multipart;
mod name;
pub(crate) mod push;
pub(crate) mod pyroscope;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use scorch_formats::gunzip::Limits;
use scorch_store::{Store, Upload, WindowId};

use crate::error::ApiError;

/// The label that names the application, as Pyroscope calls it.
pub const SERVICE_NAME: &str = "service_name";
/// The label that names the profile type, as Pyroscope calls it.
pub const PROFILE_TYPE: &str = "__name__";
/// Pyroscope's profile type of CPU profiles.
pub const PROCESS_CPU: &str = "process_cpu";
/// The time range of a profile that says none: the last 10 s.
const DEFAULT_SPAN_NS: u64 = 10_000_000_000;

/// How much one ingest request may cost, and how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Most bytes of a request body as received. Default: 16 MiB.
    pub compressed: u64,
    /// Most bytes after decompression, all of a request's profiles
    /// together. Default: 16 MiB, four times Pyroscope's 4 MiB
    /// `max-profile-size-bytes`.
    pub decompressed: u64,
    /// Most samples of a request. Default: 100 000.
    pub samples: u64,
    /// Most locations, functions or string-table entries of a request,
    /// each. Default: 500 000.
    pub symbols: u64,
    /// Most bytes a request's decoded pprof messages may take. Default:
    /// 128 MiB.
    pub decoded: u64,
    /// Most frames kept of a stack; deeper ones lose their leaf-most
    /// frames. Default: 1000, as Pyroscope.
    pub depth: usize,
    /// Requests decoded at once. Default: the number of CPUs.
    pub concurrent: usize,
    /// Windows that ended longer ago than this are refused (the store's
    /// retention, when it has one). Default: none.
    pub max_age: Option<Duration>,
    /// Windows that end further than this in the future are refused.
    /// Default: 10 minutes.
    pub max_ahead: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        let limits = Limits::default();
        IngestLimits {
            compressed: limits.compressed,
            decompressed: limits.decompressed,
            samples: 100_000,
            symbols: 500_000,
            decoded: 128 << 20,
            depth: 1000,
            concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_age: None,
            max_ahead: Duration::from_secs(600),
        }
    }
}

impl IngestLimits {
    /// The size limits of one body.
    fn gunzip(&self) -> Limits {
        Limits {
            compressed: self.compressed,
            decompressed: self.decompressed,
        }
    }
}

/// Whether a server stores pushed profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestMode {
    /// Stores them, within these limits.
    Accept(IngestLimits),
    /// Answers 503 with this reason.
    Refuse(String),
}

/// The mode and the requests in flight, shared by all handlers.
#[derive(Clone)]
pub(crate) struct Shared(Arc<(IngestMode, AtomicUsize)>);

impl Shared {
    pub(crate) fn new(mode: IngestMode) -> Shared {
        Shared(Arc::new((mode, AtomicUsize::new(0))))
    }
}

/// A slot among [`IngestLimits::concurrent`]; freed when dropped.
pub(crate) struct Permit(Shared);

impl Drop for Permit {
    fn drop(&mut self) {
        (self.0).0 .1.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What ingest handlers share: the store and the mode.
#[derive(Clone)]
pub(crate) struct Ingest {
    pub(crate) store: Arc<Store>,
    pub(crate) shared: Shared,
}

impl Ingest {
    /// Admits a request: the limits and a slot, or the 503 (ingest off),
    /// 403 (another site's page) or 429 (busy) that says why not.
    fn admit(&self, headers: &HeaderMap) -> Result<(IngestLimits, Permit), ApiError> {
        let (mode, busy) = &*self.shared.0;
        let limits = match mode {
            IngestMode::Accept(limits) => *limits,
            IngestMode::Refuse(reason) => {
                return Err(ApiError::unavailable(format!(
                    "{reason}; pushed profiles are not stored"
                )))
            }
        };
        same_origin(headers)?;
        let taken = busy.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(self.shared.clone());
        if taken >= limits.concurrent.max(1) {
            return Err(ApiError::busy(format!(
                "{taken} profiles are being received already, the most this server \
                 decodes at once; retry in {} s",
                crate::error::RETRY_AFTER_SECS
            )));
        }
        Ok((limits, permit))
    }

    /// Writes the uploads in one transaction, on the blocking pool.
    async fn write(&self, uploads: Vec<Upload>) -> Result<Vec<Option<WindowId>>, ApiError> {
        if uploads.is_empty() {
            return Ok(Vec::new());
        }
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.write_uploads(&uploads))
            .await
            .map_err(|e| ApiError::internal(format!("the write did not finish: {e}")))?
            .map_err(ApiError::from_store)
    }
}

/// Refuses a request sent by a web page of another origin: browsers send
/// `Origin` on cross-site POSTs, SDKs and agents send none.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("?");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = ["http://", "https://"]
        .iter()
        .any(|scheme| !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{scheme}{host}")));
    if own {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "profiles pushed from the web page of `{origin}` are refused: only this server's \
         own pages may send an `Origin`; SDKs and agents send none, so push from them"
    )))
}

/// The range of a window ending `until` that says no start: the 10 s before.
fn ending_at(until: u64) -> (u64, u64) {
    (until.saturating_sub(DEFAULT_SPAN_NS), until)
}

/// Refuses a window the store would drop at once (older than `max_age`)
/// or that lies too far ahead (a wrong clock or unit).
fn check_window(start: u64, end: u64, limits: &IngestLimits) -> Result<(), ApiError> {
    let now = now_ns();
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if let Some(age) = limits.max_age {
        if end < now.saturating_sub(ns(age)) {
            return Err(ApiError::bad_request(format!(
                "the profile's time range ends {} s ago, before the {} s this store keeps; \
                 check `from`/`until` (Unix seconds) and the client's clock",
                (now - end) / 1_000_000_000,
                age.as_secs()
            )));
        }
    }
    if start > now.saturating_add(ns(limits.max_ahead)) {
        return Err(ApiError::bad_request(format!(
            "the profile's time range starts {} s in the future, more than the {} s allowed; \
             check `from`/`until` (Unix seconds) and the client's clock",
            (start - now) / 1_000_000_000,
            limits.max_ahead.as_secs()
        )));
    }
    Ok(())
}

/// Runs CPU-heavy decoding on the blocking pool, so a big profile never
/// stalls the server's other connections.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("decoding the profile did not finish: {e}")))?
}

/// Nanoseconds since the Unix epoch, now.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A Unix time in seconds, milliseconds, microseconds or nanoseconds (told
/// apart by magnitude, as clients send all four) as nanoseconds.
fn unix_ns(name: &str, value: &str) -> Result<u64, ApiError> {
    let n: u64 = value.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` must be a Unix time (seconds, ms, µs or ns), not `{value}`"
        ))
    })?;
    let scale = match n {
        0..100_000_000_000 => 1_000_000_000,
        100_000_000_000..100_000_000_000_000 => 1_000_000,
        100_000_000_000_000..100_000_000_000_000_000 => 1_000,
        _ => 1,
    };
    Ok(n.saturating_mul(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_any_unit() {
        let ns = 1_700_000_000_000_000_000;
        for text in [
            "1700000000",
            "1700000000000",
            "1700000000000000",
            "1700000000000000000",
        ] {
            assert_eq!(unix_ns("from", text).unwrap(), ns, "{text}");
        }
        assert!(unix_ns("from", "now-1h")
            .unwrap_err()
            .message
            .contains("`from` must be a Unix time"));
    }
}
