//! The JSON API: profiles, timeline and labels over the store.
//!
//! Store calls are synchronous and run on tokio's blocking pool, so a slow
//! query never stalls the server's other connections.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scorch_formats::{Format, TextOptions};
use scorch_store::{Query, Store};
use serde_json::json;

use crate::answers::{AnswerCache, AnswerKey, Source};
use crate::error::ApiError;
use crate::params::{Params, MAX_BUCKETS};

/// Says where a JSON profile's tree came from: `hit` (the answer cache),
/// `miss` (built for this request) or `shared` (built for a request for the
/// same windows running at the same time, which this one waited for).
pub const CACHE_HEADER: &str = "x-scorch-cache";

/// What the profile endpoint needs: the store and the built trees.
#[derive(Clone)]
pub struct Profiles {
    /// The store.
    pub store: Arc<Store>,
    /// Trees already built.
    pub answers: Arc<AnswerCache>,
}

/// Timeline buckets when the request does not say.
const DEFAULT_BUCKETS: u64 = 300;

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    call: impl FnOnce(&Store) -> Result<T, scorch_store::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| ApiError::internal(format!("the query did not finish: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Parses the request's parameters and checks its label keys exist.
async fn query_of(store: &Arc<Store>, raw: Option<String>) -> Result<(Params, Query), ApiError> {
    let params = Params::parse(raw.as_deref(), SystemTime::now())?;
    if !params.labels.is_empty() {
        let keys = blocking(store, |s| s.label_keys()).await?;
        if let Some((unknown, _)) = params.labels.iter().find(|(k, _)| !keys.contains(k)) {
            return Err(ApiError::bad_request(format!(
                "unknown label `{unknown}`; known labels: {}",
                keys.join(", ")
            )));
        }
    }
    let mut query = Query::range(params.from, params.until).measure(params.measure()?);
    for (key, value) in &params.labels {
        query = query.label(key, value);
    }
    Ok((params, query))
}

/// `GET /api/profile`: the merged profile of a range, as JSON (the flame
/// tree, pruned to `min_share` when asked), folded, pprof or SVG.
pub async fn profile(
    State(profiles): State<Profiles>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (params, query) = query_of(&profiles.store, raw).await?;
    let format = match params.get("format").unwrap_or("json") {
        "json" => None,
        "folded" => Some(Format::Folded),
        "pprof" => Some(Format::Pprof),
        "svg" => Some(Format::Svg),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown format `{other}`: use json, folded, pprof or svg"
            )))
        }
    };
    let min_share = params.get("min_share").map(parse_share).transpose()?;
    let Some(format) = format else {
        return flame_json(profiles, params, query, min_share).await;
    };
    if min_share.is_some() {
        return Err(ApiError::bad_request(
            "`min_share` prunes the JSON flame tree only: drop it or use format=json",
        ));
    }
    let mut profile = blocking(&profiles.store, move |s| s.query(&query)).await?;
    profile.meta.start_unix_ns = params.from;
    profile.meta.duration_ns = params.until - params.from;
    let mut body = Vec::new();
    scorch_formats::write(&profile, format, &TextOptions::default(), &mut body)
        .map_err(|e| ApiError::internal(format!("writing the profile: {e}")))?;
    let content_type = match format {
        Format::Pprof => "application/octet-stream",
        Format::Svg => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// `min_share`: a fraction of all samples, in [0, 1].
fn parse_share(text: &str) -> Result<f64, ApiError> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.0..=1.0).contains(s))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`min_share` must be a fraction of the samples between 0 and 1 (e.g. 0.0001), not `{text}`"
            ))
        })
}

/// The flame tree of a query as JSON, from the answer cache when it holds
/// the tree of the same windows, built once for concurrent requests; the
/// `x-scorch-cache` header says where it came from. A pruned tree is cached
/// apart from the whole one, which the page asks for next.
async fn flame_json(
    profiles: Profiles,
    params: Params,
    query: Query,
    min_share: Option<f64>,
) -> Result<Response, ApiError> {
    let Profiles { store, answers } = profiles;
    let (body, source) = blocking(&store, move |s| {
        let key_of = |windows| AnswerKey {
            measure: query.measure,
            ..AnswerKey::new(params.from, params.until, &params.labels, windows)
        };
        let key = key_of(s.window_set(&query)?);
        let (tree, source) = match min_share {
            // Pruned from the whole tree when that is held; else built
            // pruned, reading only the names of the nodes that stay.
            Some(share) => match answers.get(&key) {
                Some(whole) => (Arc::new(whole.pruned(share)), Source::Hit),
                None => answers.answer(&key.pruned(share), || {
                    let (tree, windows) = s.pruned_flame_tree_with_window_set(&query, share)?;
                    Ok((key_of(windows).pruned(share), Arc::new(tree)))
                })?,
            },
            None => answers.answer(&key, || {
                let (tree, windows) = s.flame_tree_with_window_set(&query)?;
                Ok((key_of(windows), Arc::new(tree)))
            })?,
        };
        Ok((serde_json::to_vec(&*tree), source))
    })
    .await?;
    let body = body.map_err(|e| ApiError::internal(format!("encoding the profile: {e}")))?;
    let cache = match source {
        Source::Hit => "hit",
        Source::Built => "miss",
        Source::Shared => "shared",
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (HeaderName::from_static(CACHE_HEADER), cache),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/timeline`: samples per time bucket.
pub async fn timeline(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (params, query) = query_of(&store, raw).await?;
    let span = params.until - params.from;
    let step = match params.get("step") {
        None => span.div_ceil(DEFAULT_BUCKETS).max(1),
        Some(text) => text.parse::<u64>().ok().filter(|&s| s > 0).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`step` must be a positive number of ns, not `{text}`"
            ))
        })?,
    };
    if span.div_ceil(step) > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!(
            "{} buckets asked for; at most {MAX_BUCKETS}: use a larger `step`",
            span.div_ceil(step)
        )));
    }
    let buckets = blocking(&store, move |s| {
        s.timeline(&query, Duration::from_nanos(step))
    })
    .await?;
    let rows: Vec<[u64; 2]> = buckets
        .iter()
        .map(|b| [b.start_unix_ns, b.samples])
        .collect();
    Ok(Json(json!({ "step": step, "buckets": rows })).into_response())
}

/// `GET /api/labels`: every label key in the store.
pub async fn labels(State(store): State<Arc<Store>>) -> Result<Response, ApiError> {
    let keys = blocking(&store, |s| s.label_keys()).await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

/// `GET /api/label-values?key=K`: the values of one label in a range.
pub async fn label_values(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (params, _) = query_of(&store, raw).await?;
    let key = params
        .get("key")
        .ok_or_else(|| ApiError::bad_request("`key` is missing: /api/label-values?key=comm"))?
        .to_string();
    let (from, until) = (params.from, params.until);
    let lookup = key.clone();
    let values = blocking(&store, move |s| s.label_values(&lookup, from, until)).await?;
    Ok(Json(json!({ "key": key, "values": values })).into_response())
}
