//! Parca's `parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw` over gRPC.
//!
//! A gRPC unary call is an HTTP/2 POST with `Content-Type: application/grpc`
//! and `TE: trailers`; the body is one message behind a 5-byte prefix (a
//! compression flag, then the length as a big-endian u32). The outcome is
//! the `grpc-status` trailer (or header, for a response with no body): 0 is
//! success. Labels are those of the push API; the pprof keeps absolute
//! addresses, so `normalized` is false.

use std::collections::BTreeMap;

use prost::Message;
use scorch_formats::push::parca::{
    Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest, WRITE_RAW_PATH,
};

use super::Request;
use crate::client::Outcome;
use crate::entry::Entry;
use crate::labels::series_labels;

/// Content type of a gRPC call with protobuf messages.
pub const CONTENT_TYPE: &str = "application/grpc";

/// The `WriteRaw` call carrying `entries`.
pub fn request(entries: &[Entry]) -> Request {
    Request {
        path: WRITE_RAW_PATH.to_string(),
        content_type: CONTENT_TYPE.to_string(),
        body: frame(&write_raw_request(entries).encode_to_vec()),
    }
}

/// `entries` as a `WriteRawRequest`: one series per label set.
pub fn write_raw_request(entries: &[Entry]) -> WriteRawRequest {
    let mut series: BTreeMap<Vec<(String, String)>, Vec<RawSample>> = BTreeMap::new();
    for entry in entries {
        let labels = series_labels(&entry.app, &entry.label_map());
        series.entry(labels).or_default().push(RawSample {
            raw_profile: entry.pprof.clone(),
        });
    }
    WriteRawRequest {
        tenant: String::new(),
        series: series
            .into_iter()
            .map(|(labels, samples)| RawProfileSeries {
                labels: Some(LabelSet {
                    labels: labels
                        .into_iter()
                        .map(|(name, value)| Label { name, value })
                        .collect(),
                }),
                samples,
            })
            .collect(),
        normalized: false,
    }
}

/// `message` behind gRPC's length prefix, uncompressed.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// What a non-zero gRPC status `code` with `message` means for the
/// entries sent; `reason` is for the log.
pub fn outcome(code: u32, message: &str, reason: String) -> Outcome {
    match code {
        // UNAUTHENTICATED, PERMISSION_DENIED: the credentials, not the entries.
        16 | 7 => Outcome::Unauthorized(reason),
        // RESOURCE_EXHAUSTED from grpc-go's size check: "received message
        // larger than max (N vs. M)"; otherwise a quota that may pass later.
        8 if message.contains("larger than max") => Outcome::TooLarge(reason),
        // UNKNOWN, INTERNAL: the server failed on these entries.
        2 | 13 => Outcome::ServerError(reason),
        // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE.
        1 | 4 | 8 | 10 | 14 => Outcome::Retry {
            reason,
            after: None,
        },
        _ => Outcome::Rejected(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_statuses_are_classified() {
        let of = |code, message: &str| outcome(code, message, String::new());
        assert_eq!(of(16, ""), Outcome::Unauthorized(String::new()));
        assert_eq!(of(7, ""), Outcome::Unauthorized(String::new()));
        assert_eq!(
            of(
                8,
                "grpc: received message larger than max (5000000 vs. 4194304)"
            ),
            Outcome::TooLarge(String::new())
        );
        assert!(matches!(of(8, "quota exceeded"), Outcome::Retry { .. }));
        assert!(matches!(of(14, ""), Outcome::Retry { .. }));
        assert_eq!(of(13, ""), Outcome::ServerError(String::new()));
        assert_eq!(of(2, ""), Outcome::ServerError(String::new()));
        assert_eq!(of(3, ""), Outcome::Rejected(String::new()));
        assert_eq!(of(12, ""), Outcome::Rejected(String::new()));
    }
}
