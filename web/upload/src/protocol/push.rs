//! Pyroscope's `push.v1.PusherService/Push` over the Connect protocol.
//!
//! A Connect unary call is a plain HTTP POST to `/SERVICE/METHOD` whose
//! body is the protobuf request (`Content-Type: application/proto`); the
//! answer is the protobuf response on 200, or an HTTP error status with a
//! JSON error. Entries with the same labels share one series.

use std::collections::BTreeMap;

use prost::Message;
use scorch_formats::push::pyroscope::{
    LabelPair, PushRequest, RawProfileSeries, RawSample, PUSH_PATH,
};

use super::Request;
use crate::entry::Entry;
use crate::labels::pyroscope_labels;

/// Content type of a Connect unary call with a binary protobuf body.
pub const CONTENT_TYPE: &str = "application/proto";

/// The push request carrying `entries`.
pub fn request(entries: &[Entry]) -> Request {
    Request {
        path: PUSH_PATH.to_string(),
        content_type: CONTENT_TYPE.to_string(),
        body: push_request(entries).encode_to_vec(),
    }
}

/// `entries` as a `PushRequest`: one series per label set, one raw sample per entry.
pub fn push_request(entries: &[Entry]) -> PushRequest {
    let mut series: BTreeMap<Vec<(String, String)>, Vec<RawSample>> = BTreeMap::new();
    for entry in entries {
        let labels = pyroscope_labels(&entry.app, &entry.label_map());
        series.entry(labels).or_default().push(RawSample {
            raw_profile: entry.pprof.clone(),
            id: entry.id.clone(),
        });
    }
    PushRequest {
        series: series
            .into_iter()
            .map(|(labels, samples)| RawProfileSeries {
                labels: labels
                    .into_iter()
                    .map(|(name, value)| LabelPair { name, value })
                    .collect(),
                samples,
            })
            .collect(),
    }
}
