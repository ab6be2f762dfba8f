//! `POST /push.v1.PusherService/Push`: Pyroscope's push API over the
//! Connect protocol, as Grafana Alloy's `pyroscope.write` and connect-go
//! clients call it.
//!
//! A unary Connect call is a plain HTTP POST: the body is the binary
//! protobuf `PushRequest` (`Content-Type: application/proto`, gzipped when
//! `Content-Encoding: gzip`), the answer a binary `PushResponse` (empty)
//! with status 200. Errors are Connect's JSON, `{"code": "invalid_argument",
//! "message": "…"}`, with the HTTP status the Connect protocol gives the
//! code. A request past a size limit is `invalid_argument` (413), not
//! `resource_exhausted`, which clients retry; an encoding or content type
//! we do not read is `internal` with 415, as Connect answers an
//! unsupported codec. Connect's JSON encoding (`application/json`, proto3
//! JSON with the profile in base64) works too, answered with `{}`. gRPC
//! (`application/grpc`, HTTP/2 only) is refused with 415 and a message.
//!
//! Each series' labels are its window's labels, as sent (`service_name`,
//! `__name__`, …). Each raw sample is one pprof profile and one window; its
//! `id`, when not empty, is stored with it, and a sample whose id is
//! already stored is skipped: a retry stores nothing twice. The answer's
//! headers count what happened: `X-Scorch-Stored`, `X-Scorch-Duplicates`,
//! `X-Scorch-Skipped` (profiles that are not CPU profiles).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prost::Message;
use scorch_formats::pprof_import::{self, Defaults};
use scorch_formats::push::pyroscope::{PushRequest, PushResponse, RawProfileSeries};
use scorch_store::{Upload, Window};

use super::body::{self, Encoding};
use super::budget::Budget;
use super::{check_window, ending_at, now_ns, off_thread, Ingest, IngestLimits, SERVICE_NAME};
use crate::error::ApiError;

/// The content type of Connect's binary protobuf encoding.
pub const CONNECT_PROTO: &str = "application/proto";
/// The content type of Connect's JSON encoding.
const CONNECT_JSON: &str = "application/json";

/// An error answered the Connect way.
pub(crate) struct ConnectError(ApiError);

impl From<ApiError> for ConnectError {
    fn from(error: ApiError) -> Self {
        ConnectError(error)
    }
}

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        let code = match self.0.status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => "invalid_argument",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "internal",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "permission_denied",
            StatusCode::TOO_MANY_REQUESTS => "unavailable",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        };
        let body = serde_json::json!({ "code": code, "message": self.0.message });
        let mut response = (self.0.status, Json(body)).into_response();
        if self.0.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, crate::error::RETRY_AFTER_SECS.into());
        }
        response
    }
}

/// `POST /push.v1.PusherService/Push`.
pub(crate) async fn push(
    State(ingest): State<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ConnectError> {
    let (limits, _permit) = ingest.admit(&headers)?;
    let codec = Codec::of(&headers)?;
    let encoding = Encoding::of(&headers)?;
    let data = body::read(&headers, body, &limits.gunzip()).await?;
    let (uploads, skipped) = off_thread(move || {
        let data = encoding.decode(data, &limits.gunzip())?;
        let request = codec.decode(&data)?;
        drop(data);
        uploads(&request, &limits)
    })
    .await?;
    let written = ingest.write(uploads).await?;
    let stored = written.iter().filter(|w| w.is_some()).count();
    let duplicates = written.len() - stored;
    let (content_type, answer) = match codec {
        Codec::Proto => (CONNECT_PROTO, PushResponse {}.encode_to_vec()),
        Codec::Json => (CONNECT_JSON, b"{}".to_vec()),
    };
    Ok((
        [
            (header::CONTENT_TYPE.as_str(), content_type.to_string()),
            ("x-scorch-stored", stored.to_string()),
            ("x-scorch-duplicates", duplicates.to_string()),
            ("x-scorch-skipped", skipped.to_string()),
        ],
        answer,
    )
        .into_response())
}

/// The windows of a request, and how many profiles were skipped for not
/// being CPU profiles.
fn uploads(request: &PushRequest, limits: &IngestLimits) -> Result<(Vec<Upload>, usize), ApiError> {
    let mut budget = Budget::new(limits);
    let mut uploads = Vec::new();
    let mut skipped = 0;
    for (index, series) in request.series.iter().enumerate() {
        let labels = labels(series, index)?;
        let comm = labels
            .get(SERVICE_NAME)
            .cloned()
            .unwrap_or_else(|| "unknown_service".into());
        for (sample_index, sample) in series.samples.iter().enumerate() {
            let at = || format!("series {index}, sample {sample_index}");
            let message = budget
                .pprof(&sample.raw_profile)
                .map_err(|e| with_place(e, &at()))?;
            let defaults = Defaults {
                comm: comm.clone(),
                frequency_hz: None,
                max_depth: Some(budget.depth()),
            };
            let profile = match pprof_import::to_model(&message, &defaults) {
                Ok(profile) => profile,
                Err(scorch_formats::Error::NotCpu(_)) => {
                    skipped += 1;
                    continue;
                }
                Err(e) => return Err(with_place(ApiError::from_format(e), &at())),
            };
            let meta = &profile.meta;
            let (start, end) = if meta.start_unix_ns > 0 {
                (
                    meta.start_unix_ns,
                    meta.start_unix_ns.saturating_add(meta.duration_ns),
                )
            } else if meta.duration_ns > 0 {
                let now = now_ns();
                (now.saturating_sub(meta.duration_ns), now)
            } else {
                ending_at(now_ns())
            };
            check_window(start, end, limits).map_err(|e| with_place(e, &at()))?;
            uploads.push(Upload {
                id: Some(sample.id.clone()).filter(|id| !id.is_empty()),
                window: Window {
                    start_unix_ns: start,
                    end_unix_ns: end,
                    labels: labels.clone(),
                    profile,
                },
            });
        }
    }
    Ok((uploads, skipped))
}

/// How the request and the answer are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    /// Binary protobuf, `application/proto`.
    Proto,
    /// proto3 JSON, `application/json`.
    Json,
}

impl Codec {
    /// The request's codec; 415 for gRPC and anything else.
    fn of(headers: &HeaderMap) -> Result<Codec, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            CONNECT_PROTO => Ok(Codec::Proto),
            CONNECT_JSON => Ok(Codec::Json),
            m if m.starts_with("application/grpc") => Err(ApiError::unsupported(
                "gRPC is not served here: call Push with the Connect protocol \
                 (`Content-Type: application/proto`), the default of connect-go clients \
                 such as Grafana Alloy's pyroscope.write",
            )),
            "" => Err(ApiError::unsupported(
                "`Content-Type` is missing: send the PushRequest as `application/proto`",
            )),
            other => Err(ApiError::unsupported(format!(
                "`Content-Type: {other}` is not supported: send the PushRequest as binary \
                 protobuf (`application/proto`) or JSON (`application/json`)"
            ))),
        }
    }

    /// The request in `data`.
    fn decode(self, data: &[u8]) -> Result<PushRequest, ApiError> {
        match self {
            Codec::Proto => PushRequest::decode(data).map_err(|e| {
                ApiError::bad_request(format!("cannot decode the push.v1.PushRequest: {e}"))
            }),
            Codec::Json => serde_json::from_slice(data).map_err(|e| {
                ApiError::bad_request(format!("cannot read the push.v1.PushRequest JSON: {e}"))
            }),
        }
    }
}

/// A series' labels; empty or repeated names are errors, and a label with
/// an empty value is absent, as Prometheus-style labels are.
fn labels(series: &RawProfileSeries, index: usize) -> Result<BTreeMap<String, String>, ApiError> {
    let mut labels = BTreeMap::new();
    for pair in series.labels.iter().filter(|p| !p.value.is_empty()) {
        if pair.name.is_empty() {
            return Err(ApiError::bad_request(format!(
                "series {index} has a label with an empty name"
            )));
        }
        if labels
            .insert(pair.name.clone(), pair.value.clone())
            .is_some()
        {
            return Err(ApiError::bad_request(format!(
                "series {index} has label `{}` twice",
                pair.name
            )));
        }
    }
    Ok(labels)
}

/// `error` with the place in the request it is about.
fn with_place(error: ApiError, place: &str) -> ApiError {
    ApiError {
        message: format!("{place}: {}", error.message),
        ..error
    }
}
