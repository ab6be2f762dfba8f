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
//! Untrusted input is bounded before it is looked at: the body by
//! [`Limits::compressed`] (413), anything gzipped by
//! [`Limits::decompressed`] (413, decompression stops there), and bad
//! protobuf, gzip, multipart, folded text or parameters are a 400 with a
//! message. The whole request is checked before anything is written, and
//! its windows are written in one transaction: all or nothing.

mod body;
mod multipart;
mod name;
pub(crate) mod push;
pub(crate) mod pyroscope;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use scorch_formats::gunzip::Limits;
use scorch_store::{Store, Upload, WindowId};

use crate::error::ApiError;

/// The label that names the application, as Pyroscope calls it.
pub const SERVICE_NAME: &str = "service_name";
/// The label that names the profile type, as Pyroscope calls it.
pub const PROFILE_TYPE: &str = "__name__";
/// Pyroscope's profile type of CPU profiles.
pub const PROCESS_CPU: &str = "process_cpu";

/// What ingest handlers share: the store and the limits, or `None` when
/// ingest is off.
#[derive(Clone)]
pub(crate) struct Ingest {
    pub(crate) store: Arc<Store>,
    pub(crate) limits: Option<Limits>,
}

impl Ingest {
    /// The limits, or the 503 that says ingest is off.
    fn limits(&self) -> Result<Limits, ApiError> {
        self.limits.ok_or_else(|| {
            ApiError::unavailable(
                "this server does not accept profiles: run `scorch serve` without \
                 `--no-ingest`, on a store no agent is writing",
            )
        })
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
