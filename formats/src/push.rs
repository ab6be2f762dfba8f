//! Wire messages that carry pprof profiles to profile viewers.
//!
//! Two servers take whole pprof profiles with labels beside them, and both
//! wrap them in the same shape: a request holds series, a series holds its
//! labels and one or more raw (gzipped) pprof profiles.
//!
//! - [`pyroscope`]: Grafana Pyroscope's Connect/gRPC `push.v1.PusherService/
//!   Push`, the API Grafana Alloy uses. Labels follow Pyroscope's
//!   conventions (`service_name`, `__name__`, ...); each raw sample carries
//!   an id the server may use to drop duplicates.
//! - [`parca`]: Parca's gRPC `parca.profilestore.v1alpha1.ProfileStoreService/
//!   WriteRaw`.
//!
//! The messages are written by hand with prost's derive macros, field
//! numbers as the servers' published `.proto` files give them, so no protoc
//! is needed. Encoding and decoding are prost's `Message::encode_to_vec` and
//! `Message::decode`. Pyroscope's push messages also read from proto3's
//! JSON form (Connect's `application/json`): lowerCamelCase or original
//! field names, bytes in base64, unknown fields ignored.

/// `push.v1` and `types.v1` messages of Grafana Pyroscope.
pub mod pyroscope {
    /// The Connect/gRPC path of the push method.
    pub const PUSH_PATH: &str = "/push.v1.PusherService/Push";

    use serde::{Deserialize, Deserializer};

    /// `push.v1.PushRequest`: profiles to store, grouped by label set.
    #[derive(Clone, PartialEq, ::prost::Message, Deserialize)]
    #[serde(default)]
    pub struct PushRequest {
        /// Profiles with their labels.
        #[prost(message, repeated, tag = "1")]
        pub series: Vec<RawProfileSeries>,
    }

    /// `push.v1.PushResponse`: empty.
    #[derive(Clone, PartialEq, ::prost::Message, Deserialize)]
    pub struct PushResponse {}

    /// `push.v1.RawProfileSeries`: one label set and its profiles.
    #[derive(Clone, PartialEq, ::prost::Message, Deserialize)]
    #[serde(default)]
    pub struct RawProfileSeries {
        /// The labels that name the series (`service_name`, `__name__`, ...).
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<LabelPair>,
        /// The profiles.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<RawSample>,
    }

    /// `types.v1.LabelPair`.
    #[derive(Clone, PartialEq, Eq, ::prost::Message, Deserialize)]
    #[serde(default)]
    pub struct LabelPair {
        /// Label name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Label value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `push.v1.RawSample`: one pprof profile, gzipped or not.
    #[derive(Clone, PartialEq, ::prost::Message, Deserialize)]
    #[serde(default)]
    pub struct RawSample {
        /// The serialized `profile.proto`.
        #[prost(bytes = "vec", tag = "1")]
        #[serde(alias = "rawProfile", deserialize_with = "base64")]
        pub raw_profile: Vec<u8>,
        /// A unique id of this profile (a UUID in Pyroscope's clients); its
        /// proto3 JSON name is `ID`, as push.proto spells the field.
        #[prost(string, tag = "2")]
        #[serde(alias = "ID")]
        pub id: String,
    }

    /// proto3 JSON bytes: base64, standard or URL-safe, padded or not.
    fn base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::push::decode_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// Decodes base64, standard or URL-safe alphabet, with or without padding
/// (proto3 JSON bytes, HTTP basic credentials).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for (i, c) in digits.bytes().enumerate() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => {
                return Err(format!(
                    "invalid base64: `{}` at position {}",
                    c.escape_ascii(),
                    i + 1
                ))
            }
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("invalid base64: its length is not possible".into());
    }
    Ok(out)
}

/// `parca.profilestore.v1alpha1` messages of Parca.
pub mod parca {
    /// The gRPC path of the write method.
    pub const WRITE_RAW_PATH: &str = "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw";

    /// `WriteRawRequest`: profiles to store, grouped by label set.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct WriteRawRequest {
        /// Deprecated by Parca; left empty.
        #[prost(string, tag = "1")]
        pub tenant: String,
        /// Profiles with their labels.
        #[prost(message, repeated, tag = "2")]
        pub series: Vec<RawProfileSeries>,
        /// Whether the profiles' addresses are already normalized (file
        /// offsets rather than virtual addresses).
        #[prost(bool, tag = "3")]
        pub normalized: bool,
    }

    /// `WriteRawResponse`: empty.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct WriteRawResponse {}

    /// `RawProfileSeries`: one label set and its profiles.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct RawProfileSeries {
        /// The labels that name the series.
        #[prost(message, optional, tag = "1")]
        pub labels: Option<LabelSet>,
        /// The profiles.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<RawSample>,
    }

    /// `LabelSet`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct LabelSet {
        /// The labels.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
    }

    /// `Label`.
    #[derive(Clone, PartialEq, Eq, ::prost::Message)]
    pub struct Label {
        /// Label name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Label value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `RawSample`: one serialized pprof profile.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct RawSample {
        /// The serialized `profile.proto`, gzipped or not.
        #[prost(bytes = "vec", tag = "1")]
        pub raw_profile: Vec<u8>,
    }
}

#[cfg(test)]
mod tests {
    use super::pyroscope::*;
    use super::*;

    #[test]
    fn base64_in_every_form() {
        for text in ["aGVsbG8/Pz8+", "aGVsbG8_Pz8-", "aGVsbG8/Pz8+=="] {
            assert_eq!(decode_base64(text).unwrap(), b"hello???>", "{text}");
        }
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a").is_err());
        assert!(decode_base64("aG!k")
            .unwrap_err()
            .contains("`!` at position 3"));
    }

    #[test]
    fn push_request_from_proto3_json() {
        let json = r#"{
            "series": [{
                "labels": [{"name": "service_name", "value": "app"}, {"name": "__name__"}],
                "samples": [
                    {"rawProfile": "AQID", "id": "u1"},
                    {"raw_profile": "BA==", "ID": "u2"}
                ],
                "unknownField": 1
            }]
        }"#;
        let request: PushRequest = serde_json::from_str(json).unwrap();
        let series = &request.series[0];
        assert_eq!(series.labels[0].value, "app");
        assert_eq!(series.labels[1].value, "");
        assert_eq!(series.samples[0].raw_profile, [1, 2, 3]);
        assert_eq!(series.samples[0].id, "u1");
        assert_eq!(series.samples[1].raw_profile, [4]);
        assert_eq!(series.samples[1].id, "u2");
        assert_eq!(
            serde_json::from_str::<PushRequest>("{}").unwrap(),
            PushRequest::default()
        );
    }
}
