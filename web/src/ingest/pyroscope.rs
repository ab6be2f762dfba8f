//! `POST /ingest`: Pyroscope's HTTP ingest API.
//!
//! Query parameters, as Pyroscope documents them:
//!
//! | parameter | meaning | here |
//! |---|---|---|
//! | `name` | `app{label=value,…}` (required) | `service_name` and labels |
//! | `from`, `until` | the profile's time range, Unix s/ms/µs/ns | the window; default: the pprof's own time, else the last 10 s |
//! | `format` | `folded` (default), `lines`, `pprof` | `trie`, `tree`, `jfr` are refused |
//! | `sampleRate` | Hz (default 100) | the window's frequency |
//! | `spyName` | the client | label `pyroscope_spy` |
//! | `units` | `samples` (default) | anything else is refused: samples only |
//! | `aggregationType` | `sum` (default) | `average` is refused |
//!
//! The body is the profile: folded text, or pprof raw or gzipped; or a
//! `multipart/form-data` form whose `profile` part is the pprof (its
//! `prev_profile` and `sample_type_config` parts matter only for the
//! cumulative memory profiles that scorch does not store). A multipart body
//! means pprof when `format` is not given. `Content-Encoding: gzip` is
//! undone first.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scorch_formats::folded::{self, Counts};
use scorch_formats::gunzip::{maybe_gunzip, Limits};
use scorch_formats::pprof::decode_limited;
use scorch_formats::pprof_import::{self, Defaults};
use scorch_formats::{Meta, Profile};
use scorch_store::{Upload, Window};
use serde_json::json;

use super::body::{self, Encoding};
use super::{
    multipart, name, now_ns, off_thread, unix_ns, Ingest, PROCESS_CPU, PROFILE_TYPE, SERVICE_NAME,
};
use crate::error::ApiError;

/// The label that names the client, as Pyroscope calls it.
pub const SPY_LABEL: &str = "pyroscope_spy";
/// Pyroscope's default `sampleRate`.
const DEFAULT_SAMPLE_RATE: u64 = 100;
/// The time range of a profile that says none: the last 10 s.
const DEFAULT_SPAN_NS: u64 = 10_000_000_000;

/// The body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pprof,
    Folded,
    Lines,
}

/// The query parameters, checked.
struct Request {
    app: String,
    labels: BTreeMap<String, String>,
    from: Option<u64>,
    until: Option<u64>,
    format: Option<Format>,
    sample_rate: u64,
    spy: Option<String>,
}

impl Request {
    fn parse(query: &str) -> Result<Request, ApiError> {
        let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |key: &str| params.get(key).map(String::as_str);
        let name = get("name").ok_or_else(|| {
            ApiError::bad_request("`name` is missing: /ingest?name=my.app{env=prod}&from=…&until=…")
        })?;
        let name = name::parse(name).map_err(ApiError::bad_request)?;
        let from = get("from").map(|v| unix_ns("from", v)).transpose()?;
        let until = get("until").map(|v| unix_ns("until", v)).transpose()?;
        if let (Some(from), Some(until)) = (from, until) {
            if from > until {
                return Err(ApiError::bad_request(format!(
                    "`from` ({from} ns) is after `until` ({until} ns)"
                )));
            }
        }
        let format = match get("format") {
            None => None,
            Some("pprof") => Some(Format::Pprof),
            Some("folded") => Some(Format::Folded),
            Some("lines") => Some(Format::Lines),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`format={other}` is not supported: send pprof, folded or lines"
                )))
            }
        };
        let sample_rate = match get("sampleRate") {
            None => DEFAULT_SAMPLE_RATE,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|&hz| hz > 0)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`sampleRate` must be a positive number of Hz, not `{text}`"
                    ))
                })?,
        };
        if let Some(units) = get("units").filter(|u| !u.is_empty() && *u != "samples") {
            return Err(ApiError::bad_request(format!(
                "`units={units}` is not supported: scorch stores CPU samples (`units=samples`)"
            )));
        }
        // Pyroscope's docs spell it both ways.
        let aggregation = get("aggregationType").or(get("aggregrationType"));
        if let Some(kind) = aggregation.filter(|a| !a.is_empty() && *a != "sum") {
            return Err(ApiError::bad_request(format!(
                "`aggregationType={kind}` is not supported: samples add up (`sum`)"
            )));
        }
        Ok(Request {
            app: name.app,
            labels: name.labels,
            from,
            until,
            format,
            sample_rate,
            spy: get("spyName").filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    /// The series' labels.
    fn series(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert(SERVICE_NAME.into(), self.app.clone());
        labels.insert(PROFILE_TYPE.into(), PROCESS_CPU.into());
        if let Some(spy) = &self.spy {
            labels.insert(SPY_LABEL.into(), spy.clone());
        }
        labels
    }

    /// The window's range: the parameters, else the profile's own, else
    /// the last 10 s.
    fn range(&self, meta: &Meta) -> (u64, u64) {
        let own = (meta.start_unix_ns > 0)
            .then(|| (meta.start_unix_ns, meta.start_unix_ns + meta.duration_ns));
        match (self.from, self.until, own) {
            (Some(from), Some(until), _) => (from, until),
            (Some(from), None, _) => (from, from.max(now_ns())),
            (None, Some(until), _) => (until.saturating_sub(DEFAULT_SPAN_NS), until),
            (None, None, Some(own)) => own,
            (None, None, None) => {
                let now = now_ns();
                (now - DEFAULT_SPAN_NS, now)
            }
        }
    }
}

/// `POST /ingest`.
pub(crate) async fn ingest(
    State(ingest): State<Ingest>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limits = ingest.limits()?;
    let request = Request::parse(query.as_deref().unwrap_or(""))?;
    let encoding = Encoding::of(&headers)?;
    let data = body::read(&headers, body, &limits).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (request, read) = off_thread(move || {
        let data = encoding.decode(data, &limits)?;
        let read = profile_of(&data, &content_type, &request, &limits);
        Ok((request, read))
    })
    .await?;
    let profile = match read? {
        Ok(profile) => profile,
        Err(reason) => {
            return Ok(Json(json!({ "stored": 0, "skipped": 1, "reason": reason })).into_response())
        }
    };
    let (start, end) = request.range(&profile.meta);
    let samples = profile.total_count();
    let window = Window {
        start_unix_ns: start,
        end_unix_ns: end,
        labels: request.series(),
        profile,
    };
    ingest.write(vec![Upload { id: None, window }]).await?;
    Ok(Json(json!({ "stored": 1, "samples": samples })).into_response())
}

/// The profile in the body: `Ok(Err(reason))` when it is not one scorch
/// stores.
fn profile_of(
    data: &[u8],
    content_type: &str,
    request: &Request,
    limits: &Limits,
) -> Result<Result<Profile, String>, ApiError> {
    let (format, bytes) = match multipart::boundary(content_type) {
        Some(boundary) => {
            let boundary = boundary.map_err(ApiError::bad_request)?;
            let parts = multipart::parse(&boundary, data).map_err(ApiError::bad_request)?;
            let part = parts
                .into_iter()
                .find(|p| p.name == "profile")
                .ok_or_else(|| ApiError::bad_request("the multipart form has no `profile` part"))?;
            (request.format.unwrap_or(Format::Pprof), part.body)
        }
        None => (request.format.unwrap_or(Format::Folded), data),
    };
    // The received size is checked: what is left to bound is decompression.
    let inner = Limits {
        compressed: limits.decompressed,
        decompressed: limits.decompressed,
    };
    match read_profile(format, bytes, request, &inner) {
        Ok(profile) => Ok(Ok(profile)),
        Err(e @ scorch_formats::Error::NotCpu(_)) => Ok(Err(e.to_string())),
        Err(e) => Err(ApiError::from_format(e)),
    }
}

/// The profile bytes in `format`.
fn read_profile(
    format: Format,
    bytes: &[u8],
    request: &Request,
    limits: &Limits,
) -> Result<Profile, scorch_formats::Error> {
    match format {
        Format::Pprof => {
            let message = decode_limited(bytes, limits)?;
            let defaults = Defaults {
                comm: request.app.clone(),
                frequency_hz: Some(request.sample_rate),
            };
            pprof_import::to_model(&message, &defaults)
        }
        Format::Folded | Format::Lines => {
            let text = maybe_gunzip("folded profile", bytes, limits)?;
            let text = std::str::from_utf8(&text).map_err(|e| {
                scorch_formats::Error::InvalidFolded(format!(
                    "the body is not UTF-8 text (byte {} is not); \
                     a pprof body needs `format=pprof`",
                    e.valid_up_to()
                ))
            })?;
            let counts = match format {
                Format::Lines => Counts::OnePerLine,
                _ => Counts::Counted,
            };
            let meta = Meta {
                frequency_hz: Some(request.sample_rate),
                ..Meta::default()
            };
            folded::parse(text, counts, &request.app, meta)
        }
    }
}
