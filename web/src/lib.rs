//! The scorch web server: a JSON API over the profile store and the
//! flame-graph page that uses it, and the ingest endpoints through which
//! other profilers push profiles into the store (see `ingest`).
//!
//! Design constraints:
//! - One router for `scorch agent` (store being written) and `scorch serve`
//!   (store only read); the caller owns the runtime and the listener.
//! - The store is synchronous; handlers hand its calls to the blocking pool.
//! - Bad requests get a 4xx with `{"error": "..."}` before any store work;
//!   nothing a client sends can panic the server.

mod answers;
mod api;
mod auth;
// Used by the build script (which includes the file); here for its tests.
#[cfg(test)]
mod bundle;
mod error;
mod ingest;
mod live;
mod page;
mod params;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use scorch_store::Store;

pub use answers::{tree_bytes as answer_bytes, DEFAULT_ANSWER_CACHE_BYTES};
pub use api::CACHE_HEADER;
pub use error::ApiError;
pub use ingest::push::CONNECT_PROTO;
pub use ingest::pyroscope::SPY_LABEL;
pub use ingest::{IngestLimits, IngestMode};
pub use ingest::{PROCESS_CPU, PROFILE_TYPE, SERVICE_NAME};
pub use live::LiveProfiler;
pub use scorch_formats::push::pyroscope::PUSH_PATH;

/// What handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<Store>,
    /// Flame trees already built, for repeated requests.
    answers: Arc<answers::AnswerCache>,
    live: Option<live::Live>,
    /// Whether pushed profiles are stored, within which limits.
    ingest: ingest::Shared,
}

impl FromRef<AppState> for Arc<Store> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.store)
    }
}

impl FromRef<AppState> for api::Profiles {
    fn from_ref(state: &AppState) -> Self {
        api::Profiles {
            store: Arc::clone(&state.store),
            answers: Arc::clone(&state.answers),
        }
    }
}

impl FromRef<AppState> for ingest::Ingest {
    fn from_ref(state: &AppState) -> Self {
        ingest::Ingest {
            store: Arc::clone(&state.store),
            shared: state.ingest.clone(),
        }
    }
}

/// The server's routes over `store`; `live` serves `/debug/pprof/profile`;
/// with `token`, every request must carry it. Ingest is off: its endpoints
/// answer 503. Built flame trees are cached in
/// [`DEFAULT_ANSWER_CACHE_BYTES`].
pub fn router(
    store: Arc<Store>,
    live: Option<Arc<dyn LiveProfiler>>,
    token: Option<String>,
) -> Router {
    let off = IngestMode::Refuse("this server does not accept profiles".into());
    router_with_ingest(store, live, token, off, DEFAULT_ANSWER_CACHE_BYTES)
}

/// [`router`] whose `/ingest` and [`PUSH_PATH`] store the profiles clients
/// push when `ingest` accepts them (`store` must be open for writing), or
/// answer 503 with its reason; built flame trees are cached in at most
/// `answer_cache_bytes` (0: not cached).
pub fn router_with_ingest(
    store: Arc<Store>,
    live: Option<Arc<dyn LiveProfiler>>,
    token: Option<String>,
    ingest: IngestMode,
    answer_cache_bytes: u64,
) -> Router {
    let router = Router::new()
        .route("/api/profile", get(api::profile))
        .route("/api/timeline", get(api::timeline))
        .route("/api/labels", get(api::labels))
        .route("/api/label-values", get(api::label_values))
        .route("/debug/pprof/profile", get(live::pprof_profile))
        .route("/ingest", post(ingest::pyroscope::ingest))
        .route(PUSH_PATH, post(ingest::push::push))
        .route("/", get(page::index))
        .route("/{file}", get(page::asset))
        .with_state(AppState {
            store,
            answers: Arc::new(answers::AnswerCache::new(answer_cache_bytes)),
            live: live.map(live::Live::new),
            ingest: ingest::Shared::new(ingest),
        });
    match token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token),
            auth::require_token,
        )),
        None => router,
    }
}
