//! A compact JSON form of a profile, for the web page.
//!
//! The page draws flame graphs itself, so it needs stacks of names and
//! little else. Names are interned once in `names`; each sample's `stack`
//! holds indices into it, root first: the user frames (root … leaf), then
//! the kernel frames (root … leaf), the order of a folded line without its
//! leading command. `kinds` has one character per stack entry: `u` user,
//! `j` JIT, `k` kernel. Inlined functions are one entry each; a missed
//! stack is one entry named `[Missed User Stack]` / `[Missed Kernel Stack]`.
//!
//! ```json
//! {"meta":{"target":"PID 7","start_unix_ns":0,"duration_ns":2000000000,
//!          "frequency_hz":49,"period_ns":20408163},
//!  "names":["main","work","vfs_read"],
//!  "samples":[{"stack":[0,1,2],"kinds":"uuk","count":3,"pid":7,"tid":7,"comm":"app"}]}
//! ```
//!
//! Optional fields (`frequency_hz`, `sample_period`, `tid`) are left out
//! when unknown; `"off_cpu":true` marks an off-CPU profile, whose counts
//! are nanoseconds (`period_ns` 1). Nanosecond times above 2^53 lose precision in JavaScript
//! numbers; Rust reads them back exactly. The whole profile is written:
//! [`TextOptions`](crate::TextOptions) do not apply.

use std::collections::HashMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::model::{FrameKind, Measure, Profile, Stack};
use crate::text::{MISSED_KERNEL, MISSED_USER};
use crate::Error;

/// A profile as the web page reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonProfile {
    /// What was profiled and when.
    pub meta: JsonMeta,
    /// Every frame name, once.
    pub names: Vec<String>,
    /// The samples.
    pub samples: Vec<JsonSample>,
}

/// [`Meta`](crate::Meta), plus the CPU time one sample stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMeta {
    /// Human description of the target (`PID 1234`, `all threads`).
    pub target: String,
    /// Start of sampling, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Length of sampling, nanoseconds.
    pub duration_ns: u64,
    /// Sampling frequency in Hz, when sampling by frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_hz: Option<u64>,
    /// Events per sample, when sampling by count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_period: Option<u64>,
    /// CPU time one sample stands for, nanoseconds (0 when unknown).
    pub period_ns: u64,
    /// `true` when counts are nanoseconds off CPU rather than CPU samples.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub off_cpu: bool,
}

/// A stack and how often it was sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSample {
    /// Indices into [`JsonProfile::names`], root first.
    pub stack: Vec<usize>,
    /// One of `u`, `j`, `k` per stack entry.
    pub kinds: String,
    /// Number of samples.
    pub count: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// Command name.
    pub comm: String,
}

/// `profile` in its JSON form.
pub fn to_json(profile: &Profile) -> JsonProfile {
    let meta = &profile.meta;
    let mut names = Names::default();
    let samples = profile
        .samples
        .iter()
        .map(|s| {
            let mut stack = Vec::new();
            let mut kinds = String::new();
            for (half, half_kind, missed) in [
                (&s.user, FrameKind::User, MISSED_USER),
                (&s.kernel, FrameKind::Kernel, MISSED_KERNEL),
            ] {
                match half {
                    Stack::Frames(frames) => {
                        for &index in frames.iter().rev() {
                            let kind = profile.locations.get(index).map_or(half_kind, |l| l.kind);
                            for name in profile.location_names(index) {
                                stack.push(names.index(name));
                                kinds.push(kind_char(kind));
                            }
                        }
                    }
                    Stack::Missed => {
                        stack.push(names.index(missed.to_string()));
                        kinds.push(kind_char(half_kind));
                    }
                    Stack::Absent => {}
                }
            }
            JsonSample {
                stack,
                kinds,
                count: s.count,
                pid: s.pid,
                tid: s.tid,
                comm: s.comm.clone(),
            }
        })
        .collect();
    JsonProfile {
        meta: JsonMeta {
            target: meta.target.clone(),
            start_unix_ns: meta.start_unix_ns,
            duration_ns: meta.duration_ns,
            frequency_hz: meta.frequency_hz,
            sample_period: meta.sample_period,
            period_ns: meta.period_ns(),
            off_cpu: meta.measure == Measure::OffCpuNanoseconds,
        },
        names: names.list,
        samples,
    }
}

/// Writes `profile` as compact JSON, followed by a newline.
pub fn write<W: Write>(profile: &Profile, mut writer: W) -> Result<(), Error> {
    let mut bytes = serde_json::to_vec(&to_json(profile))?;
    bytes.push(b'\n');
    writer.write_all(&bytes)?;
    writer.flush()?;
    Ok(())
}

/// Reads the JSON form back.
pub fn read<R: Read>(reader: R) -> Result<JsonProfile, Error> {
    Ok(serde_json::from_reader(reader)?)
}

fn kind_char(kind: FrameKind) -> char {
    match kind {
        FrameKind::User => 'u',
        FrameKind::Jit => 'j',
        FrameKind::Kernel => 'k',
    }
}

/// Interns names in order of first use.
#[derive(Default)]
struct Names {
    list: Vec<String>,
    index: HashMap<String, usize>,
}

impl Names {
    fn index(&mut self, name: String) -> usize {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.list.len();
        self.list.push(name.clone());
        self.index.insert(name, i);
        i
    }
}
