//! The scorch web server: a JSON API over the profile store and the
//! flame-graph page that uses it.
//!
//! Design constraints:
//! - One router for `scorch agent` (store being written) and `scorch serve`
//!   (store only read); the caller owns the runtime and the listener.
//! - The store is synchronous; handlers hand its calls to the blocking pool.
//! - Bad requests get a 4xx with `{"error": "..."}` before any store work;
//!   nothing a client sends can panic the server.

mod api;
mod auth;
mod error;
mod live;
mod page;
mod params;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use scorch_store::Store;

pub use error::ApiError;
pub use live::LiveProfiler;

/// What handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<Store>,
    live: Option<live::Live>,
}

impl FromRef<AppState> for Arc<Store> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.store)
    }
}

/// The server's routes over `store`; `live` serves `/debug/pprof/profile`;
/// with `token`, every request must carry it.
pub fn router(
    store: Arc<Store>,
    live: Option<Arc<dyn LiveProfiler>>,
    token: Option<String>,
) -> Router {
    let router = Router::new()
        .route("/api/profile", get(api::profile))
        .route("/api/timeline", get(api::timeline))
        .route("/api/labels", get(api::labels))
        .route("/api/label-values", get(api::label_values))
        .route("/debug/pprof/profile", get(live::pprof_profile))
        .route("/", get(page::index))
        .route("/{file}", get(page::asset))
        .with_state(AppState {
            store,
            live: live.map(live::Live::new),
        });
    match token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token),
            auth::require_token,
        )),
        None => router,
    }
}
