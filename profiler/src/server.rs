//! The web server on a small tokio runtime of its own, so the sampling
//! thread stays a plain thread.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use scorch_store::Store;
use scorch_web::{IngestMode, LiveProfiler};
use tokio::sync::oneshot;

/// A running server; [`Server::stop`] shuts it down gracefully.
pub struct Server {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// Where and how to serve.
pub struct Listen {
    /// Address to bind.
    pub addr: SocketAddr,
    /// File holding the token every request must carry.
    pub token_file: Option<PathBuf>,
    /// Most bytes the answer cache may hold (0: no cache).
    pub answer_cache_bytes: u64,
}

/// Binds the address (so a taken port fails here, at start) and serves
/// `store`, and live profiles when `live` is given.
pub fn spawn(
    store: Arc<Store>,
    live: Option<Arc<dyn LiveProfiler>>,
    listen: &Listen,
) -> anyhow::Result<Server> {
    let off = IngestMode::Refuse("this server does not accept profiles".into());
    spawn_with_ingest(store, live, listen, off)
}

/// [`spawn`], also storing the profiles clients push when `ingest`
/// accepts them (the store must be open for writing).
pub fn spawn_with_ingest(
    store: Arc<Store>,
    live: Option<Arc<dyn LiveProfiler>>,
    listen: &Listen,
    ingest: IngestMode,
) -> anyhow::Result<Server> {
    let token = match &listen.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?
                .trim()
                .to_string();
            anyhow::ensure!(
                !token.is_empty(),
                "the token file {} is empty",
                path.display()
            );
            Some(token)
        }
        None => None,
    };
    if token.is_none() && !listen.addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {} without --auth-token-file: anyone who can reach it can read every profile",
            listen.addr
        );
    }
    let addr = listen.addr;
    let answer_cache_bytes = listen.answer_cache_bytes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .context("starting the web server's runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| {
            format!("cannot listen on {addr}; is another scorch running? choose another --listen")
        })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("scorch-web".into())
        .spawn(move || {
            let app =
                scorch_web::router_with_ingest(store, live, token, ingest, answer_cache_bytes);
            let result = runtime.block_on(
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .into_future(),
            );
            if let Err(err) = result {
                tracing::error!(%err, "the web server stopped");
            }
        })
        .context("starting the web server thread")?;
    Ok(Server { stop, thread })
}

impl Server {
    /// Stops accepting requests, finishes the ones in flight, and joins.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
