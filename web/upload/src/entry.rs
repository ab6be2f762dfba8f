//! One upload unit: a process's profile over one window, with its labels
//! and a stable id.
//!
//! The id is derived from the agent's id, the window's start and the
//! series' labels, so the same window always carries the same id: a
//! receiver that drops repeated ids stores each window once even when a
//! resend follows a lost response or an agent restart. Entries are prost
//! messages so the spool stores them as they are.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;
use scorch_formats::{pprof, Profile};

use crate::labels::AppName;

/// A label as stored in an entry.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One series of one window, ready to send.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Entry {
    /// Stable unique id (UUID text).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Application name.
    #[prost(string, tag = "2")]
    pub app: String,
    /// scorch's labels of the series, sorted by name.
    #[prost(message, repeated, tag = "3")]
    pub labels: Vec<Label>,
    /// Window start, nanoseconds since the Unix epoch.
    #[prost(uint64, tag = "4")]
    pub start_unix_ns: u64,
    /// Window end, nanoseconds since the Unix epoch.
    #[prost(uint64, tag = "5")]
    pub end_unix_ns: u64,
    /// Sampling frequency, 0 when sampling by event count.
    #[prost(uint64, tag = "6")]
    pub sample_rate_hz: u64,
    /// Gzipped pprof.
    #[prost(bytes = "vec", tag = "7")]
    pub pprof: Vec<u8>,
}

/// One process's profile in a window, as the agent has it.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// The series' labels (`host`, `pid`, `comm`, …).
    pub labels: &'a BTreeMap<String, String>,
    /// Its samples.
    pub profile: &'a Profile,
}

/// A window of profiles to upload.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_ns: u64,
    /// Sampling frequency, when sampling by frequency.
    pub sample_rate_hz: Option<u64>,
    /// One entry per process.
    pub series: Vec<Series<'a>>,
}

impl Entry {
    /// The entries of `window`: one per series, pprof encoded, ids derived
    /// from `agent_id`.
    pub fn from_window(window: &Window<'_>, app: &AppName, agent_id: &str) -> Vec<Entry> {
        window
            .series
            .iter()
            .map(|series| Entry {
                id: entry_id(agent_id, window.start_unix_ns, series.labels),
                app: app.render(series.labels),
                labels: series
                    .labels
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                start_unix_ns: window.start_unix_ns,
                end_unix_ns: window.end_unix_ns,
                sample_rate_hz: window.sample_rate_hz.unwrap_or(0),
                pprof: encode(series.profile, window),
            })
            .collect()
    }

    /// The labels as a map.
    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }
}

/// `profile` as gzipped pprof stamped with the window's time: receivers
/// date a profile by its `time_nanos`, and a spooled window is sent late.
fn encode(profile: &Profile, window: &Window<'_>) -> Vec<u8> {
    let mut message = pprof::to_proto(profile);
    message.time_nanos = i64::try_from(window.start_unix_ns).unwrap_or(i64::MAX);
    message.duration_nanos =
        i64::try_from(window.end_unix_ns.saturating_sub(window.start_unix_ns)).unwrap_or(i64::MAX);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to memory cannot fail.
    let _ = gzip.write_all(&message.encode_to_vec());
    gzip.finish().unwrap_or_default()
}

/// A UUID-formatted id, the same for the same agent, window start and labels.
pub fn entry_id(agent_id: &str, start_unix_ns: u64, labels: &BTreeMap<String, String>) -> String {
    let mut hash = Fnv128::default();
    hash.write(agent_id.as_bytes());
    hash.write(&[0xff]);
    hash.write(&start_unix_ns.to_le_bytes());
    for (name, value) in labels {
        hash.write(&[0xfe]);
        hash.write(name.as_bytes());
        hash.write(&[0xfd]);
        hash.write(value.as_bytes());
    }
    let mut bytes = hash.0.to_be_bytes();
    // RFC 9562 version 8 (custom), variant 10.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// 128-bit FNV-1a: stable across builds and platforms, unlike std's hashers.
struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Fnv128(0x6c62272e07bb014262b821756295c58d)
    }
}

impl Fnv128 {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(0x0000000001000000000000000000013b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a: BTreeMap<String, String> = [("pid".to_string(), "1".to_string())].into();
        let b: BTreeMap<String, String> = [("pid".to_string(), "2".to_string())].into();
        let id = entry_id("agent", 5, &a);
        assert_eq!(id, entry_id("agent", 5, &a));
        assert_ne!(id, entry_id("agent", 6, &a));
        assert_ne!(id, entry_id("agent", 5, &b));
        assert_ne!(id, entry_id("other", 5, &a));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "8", "version 8: {id}");
        // Pinned: a resend after an upgrade must carry the same id.
        assert_eq!(id, entry_id("agent", 5, &a));
        assert_eq!(
            entry_id("", 0, &BTreeMap::new()),
            "8fb6b989-4303-857d-b38c-812acfbc4286"
        );
    }

    #[test]
    fn fnv1a_128_matches_the_reference_vector() {
        let mut hash = Fnv128::default();
        hash.write(b"a");
        assert_eq!(hash.0, 0xd228cb696f1a8caf78912b704e4a8964);
    }
}
