//! Pyroscope's HTTP `/ingest` with a pprof body.
//!
//! `POST /ingest?name=APP{k=v,…}&from=UNIX&until=UNIX&sampleRate=HZ&spyName=scorch&format=pprof`,
//! the profile as the file field `profile` of a `multipart/form-data` body
//! (RFC 7578). For pprof the server treats `name` as a prefix and appends
//! the profile type (`APP.cpu{…}`); our pprof's sample types are those of
//! Go's CPU profile (`samples/count`, `cpu/nanoseconds`), which Pyroscope
//! maps without a `sample_type_config`.

use super::Request;
use crate::entry::Entry;
use crate::labels::{ingest_name, SPY_NAME};

/// The `/ingest` request carrying `entry`.
pub fn request(entry: &Entry) -> Request {
    let boundary = boundary(&entry.pprof);
    Request {
        path: format!("/ingest?{}", query(entry)),
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body: multipart(&boundary, &entry.pprof),
    }
}

/// The query string, every value percent-encoded.
pub fn query(entry: &Entry) -> String {
    let from = entry.start_unix_ns / 1_000_000_000;
    let until = entry.end_unix_ns.div_ceil(1_000_000_000).max(from + 1);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("name", &ingest_name(&entry.app, &entry.label_map()))
        .append_pair("from", &from.to_string())
        .append_pair("until", &until.to_string());
    if entry.sample_rate_hz > 0 {
        query.append_pair("sampleRate", &entry.sample_rate_hz.to_string());
    }
    query
        .append_pair("spyName", SPY_NAME)
        .append_pair("format", "pprof");
    // form_urlencoded writes spaces as `+`, which Go's query parser reads back as spaces.
    query.finish()
}

/// A multipart body with one file field, `profile`.
pub fn multipart(boundary: &str, pprof: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(pprof.len() + 256);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        b"Content-Disposition: form-data; name=\"profile\"; filename=\"profile.pb.gz\"\r\n",
    );
    body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(pprof);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// A boundary that does not occur in `data`.
fn boundary(data: &[u8]) -> String {
    loop {
        let candidate = format!(
            "scorch-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if !data
            .windows(candidate.len())
            .any(|w| w == candidate.as_bytes())
        {
            return candidate;
        }
    }
}
