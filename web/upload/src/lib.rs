//! Pushes scorch's profiles to the profile viewers teams already run.
//!
//! Design constraints: a profiler must never stop profiling because a
//! server is slow, down or refusing; a window the server did not confirm
//! must survive an agent restart; a window must not be stored twice.
//!
//! What you bring: an [`Endpoint`] (validated [`UploadOptions`]: URL,
//! protocol, credentials, headers) and [`Window`]s of per-process
//! profiles. What you get: [`Uploader`] spools each window and delivers it
//! in the background; [`send_now`] delivers a one-shot profile.
//!
//! - [`labels`]: application names (`--app-name` templates) and labels in
//!   Pyroscope's conventions (`service_name`, `__name__="process_cpu"`, …).
//! - [`entry`]: one process's pprof over one window, with a stable id.
//! - [`protocol`]: Pyroscope's Connect push, Pyroscope's `/ingest`, Parca's
//!   gRPC `WriteRaw`.
//! - [`client`]: one attempt over rustls-based HTTP and what its answer means.
//! - [`retry`]: exponential backoff with full jitter and `Retry-After`.
//! - [`spool`]: the bounded on-disk queue.
//! - `spooler`: the hand-over from the caller's thread to the spool.
//! - [`sender`]: the background sender and the one-shot path.
//!
//! Delivery is at least once: a response lost on the way back makes the
//! window go again, with the same id. Exactly once needs the receiver to
//! drop repeated ids, as `scorch serve` does. Parca is spoken as plain gRPC
//! (length-prefixed protobuf over HTTP/2, `grpc-status` trailer) on the
//! same rustls client as the other two, rather than through tonic: one
//! HTTP stack, one set of credentials and timeouts, no protoc.
//!
//! Non-goals: compressing requests beyond pprof's own gzip, and sending to
//! several servers at once.

pub mod client;
pub mod config;
pub mod entry;
mod error;
pub mod labels;
pub mod protocol;
pub mod retry;
pub mod sender;
pub mod spool;
mod spooler;

pub use config::{Endpoint, Protocol, UploadOptions};
pub use entry::{Entry, Series, Window};
pub use error::Error;
pub use labels::AppName;
pub use retry::RetryPolicy;
pub use sender::{send_now, UploadStats, Uploader};
pub use spooler::QUEUE_WINDOWS;
