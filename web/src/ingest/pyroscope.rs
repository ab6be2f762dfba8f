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
//! | `units` | `samples` (default) | text formats: other units are skipped |
//! | `aggregationType` | `sum` (default) | text formats: `average` is skipped |
//!
//! For text formats the name's last `.` segment is the profile type, as in
//! Pyroscope (see [`name::ProfileType`]): `app.cpu` and `app.itimer` are
//! stored as application `app`, other known types are skipped, unknown
//! ones are a 400. A pprof body says its own type, so its name is the
//! application as given. A `service_name` label in the braces names the
//! application instead (the name is then kept as `app_name`).
//!
//! The body is the profile: folded text, or pprof raw or gzipped; or a
//! `multipart/form-data` form whose `profile` part is the pprof (its
//! `prev_profile` and `sample_type_config` parts matter only for the
//! cumulative memory profiles that scorch does not store). A multipart body
//! means pprof when `format` is not given. `Content-Encoding: gzip` is
//! undone first.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scorch_formats::folded::{self, Counts};
use scorch_formats::pprof_import::{self, Defaults};
use scorch_formats::{Meta, Profile};
use scorch_store::{Upload, Window};
use serde_json::json;

use super::body::{self, Encoding};
use super::budget::Budget;
use super::name::ProfileType;
use super::{
    check_window, ending_at, multipart, name, now_ns, off_thread, unix_ns, Ingest, IngestLimits,
    PROCESS_CPU, PROFILE_TYPE, SERVICE_NAME,
};
use crate::error::ApiError;

/// The label that names the client, as Pyroscope calls it.
pub const SPY_LABEL: &str = "pyroscope_spy";
/// The label that keeps the `name` when a `service_name` label is given.
const APP_NAME: &str = "app_name";
/// Pyroscope's default `sampleRate`.
const DEFAULT_SAMPLE_RATE: u64 = 100;

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
    units: Option<String>,
    aggregation: Option<String>,
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
        let given = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_string);
        Ok(Request {
            app: name.app,
            labels: name.labels,
            from,
            until,
            format,
            sample_rate,
            spy: given(get("spyName")),
            units: given(get("units")),
            // Pyroscope's docs spell it both ways.
            aggregation: given(get("aggregationType").or(get("aggregrationType"))),
        })
    }

    /// Why a text profile is not stored: not CPU samples by its name,
    /// units or aggregation. An unknown profile type is a 400.
    fn text_skipped(&self) -> Result<Option<String>, ApiError> {
        let (_, kind) = ProfileType::of(&self.app).map_err(ApiError::bad_request)?;
        if let ProfileType::Other(kind) = kind {
            return Ok(Some(format!(
                "`name={}` is a `{kind}` profile; scorch stores CPU samples \
                 (names ending in `.cpu` or `.itimer`)",
                self.app
            )));
        }
        if let Some(units) = self.units.as_deref().filter(|u| *u != "samples") {
            return Ok(Some(format!(
                "`units={units}`: scorch stores CPU samples (`units=samples`)"
            )));
        }
        if let Some(kind) = self.aggregation.as_deref().filter(|a| *a != "sum") {
            return Ok(Some(format!(
                "`aggregationType={kind}`: scorch stores CPU samples, which add up (`sum`)"
            )));
        }
        Ok(None)
    }

    /// The series' labels; `text` strips the profile type from the name.
    fn series(&self, text: bool) -> BTreeMap<String, String> {
        let app = match ProfileType::of(&self.app) {
            Ok((service, _)) if text => service,
            _ => self.app.clone(),
        };
        let mut labels = self.labels.clone();
        if labels.contains_key(SERVICE_NAME) {
            labels.entry(APP_NAME.into()).or_insert(app);
        } else {
            labels.insert(SERVICE_NAME.into(), app);
        }
        labels.insert(PROFILE_TYPE.into(), PROCESS_CPU.into());
        if let Some(spy) = &self.spy {
            labels.insert(SPY_LABEL.into(), spy.clone());
        }
        labels
    }

    /// The window's range: the parameters, else the profile's own, else
    /// the last 10 s.
    fn range(&self, meta: &Meta) -> (u64, u64) {
        let own = (meta.start_unix_ns > 0).then(|| {
            (
                meta.start_unix_ns,
                meta.start_unix_ns.saturating_add(meta.duration_ns),
            )
        });
        match (self.from, self.until, own) {
            (Some(from), Some(until), _) => (from, until),
            (Some(from), None, _) => (from, from.max(now_ns())),
            (None, Some(until), _) => ending_at(until),
            (None, None, Some(own)) => own,
            (None, None, None) => ending_at(now_ns()),
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
    let (limits, _permit) = ingest.admit(&headers)?;
    let request = Request::parse(query.as_deref().unwrap_or(""))?;
    let encoding = Encoding::of(&headers)?;
    let data = body::read(&headers, body, &limits.gunzip()).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (request, read) = off_thread(move || {
        let data = encoding.decode(data, &limits.gunzip())?;
        let read = profile_of(data, &content_type, &request, &limits);
        Ok((request, read))
    })
    .await?;
    let (profile, text) = match read? {
        Ok(read) => read,
        Err(reason) => {
            return Ok(Json(json!({ "stored": 0, "skipped": 1, "reason": reason })).into_response())
        }
    };
    let (start, end) = request.range(&profile.meta);
    check_window(start, end, &limits)?;
    let samples = profile.total_count();
    let window = Window {
        start_unix_ns: start,
        end_unix_ns: end,
        labels: request.series(text),
        profile,
    };
    ingest.write(vec![Upload { id: None, window }]).await?;
    Ok(Json(json!({ "stored": 1, "samples": samples })).into_response())
}

/// The profile in the body and whether it was text: `Ok(Err(reason))`
/// when it is not one scorch stores.
fn profile_of(
    data: Bytes,
    content_type: &str,
    request: &Request,
    limits: &IngestLimits,
) -> Result<Result<(Profile, bool), String>, ApiError> {
    let (format, bytes) = match multipart::boundary(content_type) {
        Some(boundary) => {
            let boundary = boundary.map_err(ApiError::bad_request)?;
            let parts = multipart::parse(&boundary, &data).map_err(ApiError::bad_request)?;
            let part = parts
                .into_iter()
                .find(|p| p.name == "profile")
                .ok_or_else(|| ApiError::bad_request("the multipart form has no `profile` part"))?;
            let start = part.body.as_ptr() as usize - data.as_ptr() as usize;
            let profile = data.slice(start..start + part.body.len());
            (request.format.unwrap_or(Format::Pprof), profile)
        }
        None => (request.format.unwrap_or(Format::Folded), data),
    };
    let text = format != Format::Pprof;
    if text {
        if let Some(reason) = request.text_skipped()? {
            return Ok(Err(reason));
        }
    }
    let mut budget = Budget::new(limits);
    match read_profile(format, &bytes, request, &mut budget) {
        Ok(profile) => Ok(Ok((profile, text))),
        Err(Read::Format(e @ scorch_formats::Error::NotCpu(_))) => Ok(Err(e.to_string())),
        Err(Read::Format(e)) => Err(ApiError::from_format(e)),
        Err(Read::Api(e)) => Err(e),
    }
}

/// Why a profile could not be read.
enum Read {
    Format(scorch_formats::Error),
    Api(ApiError),
}

/// The profile bytes in `format`.
fn read_profile(
    format: Format,
    bytes: &[u8],
    request: &Request,
    budget: &mut Budget,
) -> Result<Profile, Read> {
    match format {
        Format::Pprof => {
            let message = budget.pprof(bytes).map_err(Read::Api)?;
            let defaults = Defaults {
                comm: request.app.clone(),
                frequency_hz: Some(request.sample_rate),
                max_depth: Some(budget.depth()),
            };
            pprof_import::to_model(&message, &defaults).map_err(Read::Format)
        }
        Format::Folded | Format::Lines => {
            let text = budget
                .bytes("folded profile", bytes)
                .map_err(Read::Format)?;
            let text = std::str::from_utf8(&text).map_err(|e| {
                Read::Format(scorch_formats::Error::InvalidFolded(format!(
                    "the body is not UTF-8 text (byte {} is not); \
                     a pprof body needs `format=pprof`",
                    e.valid_up_to()
                )))
            })?;
            budget
                .draw_samples(text.lines().count() as u64)
                .map_err(Read::Api)?;
            let counts = match format {
                Format::Lines => Counts::OnePerLine,
                _ => Counts::Counted,
            };
            let meta = Meta {
                frequency_hz: Some(request.sample_rate),
                ..Meta::default()
            };
            let comm = request.series(true)[SERVICE_NAME].clone();
            folded::parse(text, counts, &comm, meta).map_err(Read::Format)
        }
    }
}
