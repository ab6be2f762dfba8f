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
//! `Message::decode`.

/// `push.v1` and `types.v1` messages of Grafana Pyroscope.
pub mod pyroscope {
    /// The Connect/gRPC path of the push method.
    pub const PUSH_PATH: &str = "/push.v1.PusherService/Push";

    /// `push.v1.PushRequest`: profiles to store, grouped by label set.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PushRequest {
        /// Profiles with their labels.
        #[prost(message, repeated, tag = "1")]
        pub series: Vec<RawProfileSeries>,
    }

    /// `push.v1.PushResponse`: empty.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PushResponse {}

    /// `push.v1.RawProfileSeries`: one label set and its profiles.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct RawProfileSeries {
        /// The labels that name the series (`service_name`, `__name__`, ...).
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<LabelPair>,
        /// The profiles.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<RawSample>,
    }

    /// `types.v1.LabelPair`.
    #[derive(Clone, PartialEq, Eq, ::prost::Message)]
    pub struct LabelPair {
        /// Label name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Label value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `push.v1.RawSample`: one pprof profile, gzipped or not.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct RawSample {
        /// The serialized `profile.proto`.
        #[prost(bytes = "vec", tag = "1")]
        pub raw_profile: Vec<u8>,
        /// A unique id of this profile (a UUID in Pyroscope's clients).
        #[prost(string, tag = "2")]
        pub id: String,
    }
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
