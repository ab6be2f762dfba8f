//! The three wire formats: what each request looks like.
//!
//! - [`push`]: Pyroscope's Connect unary call, a `PushRequest` protobuf
//!   posted as `application/proto`; several entries per request.
//! - [`ingest`]: Pyroscope's `/ingest`, one entry per request, metadata in
//!   the query string and the pprof as the multipart file field `profile`.
//! - [`parca`]: Parca's gRPC `WriteRaw`, a length-prefixed
//!   `WriteRawRequest` over HTTP/2 whose outcome is the `grpc-status` trailer.

pub mod ingest;
pub mod parca;
pub mod push;

use crate::config::Protocol;
use crate::entry::Entry;

/// One request's path, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Path under the base URL, with its query string.
    pub path: String,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The request that carries `entries` (a single entry for `/ingest`).
pub fn request(protocol: Protocol, entries: &[Entry]) -> Request {
    match protocol {
        Protocol::Push => push::request(entries),
        Protocol::Ingest => ingest::request(&entries[0]),
        Protocol::Parca => parca::request(entries),
    }
}
