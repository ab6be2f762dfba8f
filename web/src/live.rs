//! `GET /debug/pprof/profile?seconds=N[&pid=P]`: a CPU profile of the next
//! N seconds, as Go's net/http/pprof serves it, so `go tool pprof URL`
//! works against scorch as against a Go service.
//!
//! The server does not sample itself: whoever owns a sampler (the agent)
//! hands in a [`LiveProfiler`]. One live profile runs at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use scorch_formats::Profile;

use crate::error::ApiError;
use crate::AppState;

/// Go's default profile length.
const DEFAULT_SECONDS: u64 = 30;
/// The longest profile one request may ask for.
const MAX_SECONDS: u64 = 300;

/// Something that can profile the host (or one process) for a while.
pub trait LiveProfiler: Send + Sync + 'static {
    /// Samples for `duration` and returns the symbolized profile.
    fn profile(&self, duration: Duration, pid: Option<u32>) -> Result<Profile, String>;
}

/// The profiler and the guard that lets one request use it at a time.
#[derive(Clone)]
pub(crate) struct Live {
    profiler: Arc<dyn LiveProfiler>,
    busy: Arc<Mutex<()>>,
}

impl Live {
    pub(crate) fn new(profiler: Arc<dyn LiveProfiler>) -> Self {
        Self {
            profiler,
            busy: Arc::new(Mutex::new(())),
        }
    }
}

/// The handler.
pub(crate) async fn pprof_profile(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let Some(live) = state.live.clone() else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message:
                "this server only serves stored profiles; live profiles come from `scorch agent`"
                    .into(),
        });
    };
    let (seconds, pid) = parse(raw.as_deref())?;
    let profile = tokio::task::spawn_blocking(move || {
        let Ok(_guard) = live.busy.try_lock() else {
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "a live profile is already being taken; try again when it ends".into(),
            });
        };
        live.profiler
            .profile(Duration::from_secs(seconds), pid)
            .map_err(ApiError::internal)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the profile did not finish: {e}")))??;
    let body = scorch_formats::pprof::encode(&profile);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"profile\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `seconds` (1..=300, default 30) and `pid`.
fn parse(raw: Option<&str>) -> Result<(u64, Option<u32>), ApiError> {
    let mut seconds = DEFAULT_SECONDS;
    let mut pid = None;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "seconds" => {
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=MAX_SECONDS).contains(s))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`seconds` must be 1 to {MAX_SECONDS}, not `{value}`"
                        ))
                    })?
            }
            "pid" => {
                pid = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(format!("`pid` must be a process id, not `{value}`"))
                })?)
            }
            _ => {}
        }
    }
    Ok((seconds, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_pid() {
        assert_eq!(parse(None).unwrap(), (30, None));
        assert_eq!(parse(Some("seconds=5&pid=42")).unwrap(), (5, Some(42)));
        assert!(parse(Some("seconds=0"))
            .unwrap_err()
            .message
            .contains("1 to 300"));
        assert!(parse(Some("seconds=999")).is_err());
        assert!(parse(Some("pid=me")).unwrap_err().message.contains("`pid`"));
    }
}
