//! The profile model: what was sampled, independent of how it was collected
//! or how it will be written.
//!
//! A [`Profile`] holds interned [`Mapping`]s and [`Location`]s, and
//! [`Sample`]s that point at locations by index. This is pprof's shape, so
//! every writer can be derived from it without losing information: a
//! location is one address, and its [`Line`]s are the function it is in plus
//! any functions inlined at that address (innermost first).

use std::collections::{BTreeMap, HashMap};

/// The name of a frame nothing is known about, as bcc prints it.
pub const UNKNOWN: &str = "[unknown]";

/// Which address space a location belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Kernel text (resolved from kallsyms).
    Kernel,
    /// A user-space binary or library mapped from a file.
    User,
    /// JIT-compiled code, resolved from a `/tmp/perf-PID.map`.
    Jit,
}

/// A memory mapping of a binary, as pprof describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// First address of the mapping.
    pub start: u64,
    /// One past the last address of the mapping.
    pub limit: u64,
    /// File offset at which the mapping starts.
    pub offset: u64,
    /// Path of the mapped file (`[kernel.kallsyms]` for the kernel).
    pub file: String,
    /// GNU build-id as lowercase hex, when the file has one.
    pub build_id: Option<String>,
}

impl Mapping {
    /// How an unsymbolized address in this mapping is shown:
    /// `module+0xoffset`, the offset being the address's file offset.
    pub fn offset_name(&self, address: u64) -> String {
        offset_name(&self.file, self.start, self.offset, address)
    }
}

/// `module+0xoffset` for `address` in a mapping of `file` that starts at
/// `start` with file offset `offset`.
pub(crate) fn offset_name(file: &str, start: u64, offset: u64, address: u64) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let offset = address.wrapping_sub(start).wrapping_add(offset);
    format!("{base}+{offset:#x}")
}

/// One source-level frame at a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    /// Function name, demangled.
    pub function: String,
    /// Source file, when debug info has it.
    pub file: Option<String>,
    /// Source line, when debug info has it.
    pub line: Option<u32>,
}

/// One address in a stack, with what is known about it.
///
/// An empty `lines` means the address could not be symbolized; it is still
/// shown, as `module+0xoffset` when its mapping is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Absolute address (the sampled instruction pointer or return address).
    pub address: u64,
    /// Index into [`Profile::mappings`], when the address is in a known mapping.
    pub mapping: Option<usize>,
    /// Address space of the location.
    pub kind: FrameKind,
    /// Functions at this address, innermost (inlined callee) first.
    pub lines: Vec<Line>,
}

/// One half (kernel or user) of a sampled stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stack {
    /// Indices into [`Profile::locations`], leaf first.
    Frames(Vec<usize>),
    /// The stack was wanted but could not be recorded (stack map full or a
    /// hash collision); shown as bcc shows it, `[Missed User Stack]`.
    Missed,
    /// There is no such stack (a kernel thread has no user stack, a sample in
    /// user mode has no kernel stack) or it was not collected (`-U`, `-K`).
    Absent,
}

/// A distinct (process, thread, stack) and how often it was sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id, when samples were kept per thread.
    pub tid: Option<u32>,
    /// Thread command name at the time of the sample.
    pub comm: String,
    /// User-space part of the stack.
    pub user: Stack,
    /// Kernel part of the stack.
    pub kernel: Stack,
    /// Number of samples.
    pub count: u64,
}

/// What a sample's count measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Samples taken on CPU, each standing for [`Meta::period_ns`] of CPU time.
    #[default]
    OnCpuSamples,
    /// Nanoseconds threads spent off CPU (blocked or waiting to run),
    /// summed per stack.
    OffCpuNanoseconds,
}

/// What was profiled, when, and how often.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Human description of the target (e.g. `PID 1234`, `all threads`).
    pub target: String,
    /// Wall-clock start of sampling, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Length of the sampling, nanoseconds.
    pub duration_ns: u64,
    /// Sampling frequency in Hz, when sampling by frequency.
    pub frequency_hz: Option<u64>,
    /// Sample every N events, when sampling by count (`-c`).
    pub sample_period: Option<u64>,
    /// What the samples' counts measure.
    pub measure: Measure,
}

impl Meta {
    /// CPU time one sample stands for, in nanoseconds (0 when unknown; 1
    /// for off-CPU profiles, whose counts are nanoseconds).
    pub fn period_ns(&self) -> u64 {
        if self.measure == Measure::OffCpuNanoseconds {
            return 1;
        }
        match (self.frequency_hz, self.sample_period) {
            (Some(hz), _) if hz > 0 => 1_000_000_000 / hz,
            // cpu-clock counts nanoseconds, so a period of N events is N ns.
            (_, Some(period)) => period,
            _ => 0,
        }
    }
}

/// A whole profile: metadata, interned mappings and locations, samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// What was profiled and when.
    pub meta: Meta,
    /// Interned mappings, referred to by [`Location::mapping`].
    pub mappings: Vec<Mapping>,
    /// Interned locations, referred to by [`Stack::Frames`].
    pub locations: Vec<Location>,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Profile {
    /// Total number of samples (saturating at `u64::MAX`).
    pub fn total_count(&self) -> u64 {
        self.samples
            .iter()
            .fold(0u64, |total, s| total.saturating_add(s.count))
    }

    /// The name a location shows under in flat outputs: its outermost
    /// function, else `module+0xoffset`, else `[unknown]` (also for an index
    /// that points at no location).
    pub fn location_name(&self, index: usize) -> String {
        let Some(location) = self.locations.get(index) else {
            return UNKNOWN.to_string();
        };
        if let Some(line) = location.lines.last() {
            return line.function.clone();
        }
        match location.mapping.and_then(|m| self.mappings.get(m)) {
            Some(m) => m.offset_name(location.address),
            None => UNKNOWN.to_string(),
        }
    }

    /// Every function name at a location, outermost first (the caller, then
    /// functions inlined into it), as flat outputs print them root first.
    pub fn location_names(&self, index: usize) -> Vec<String> {
        let Some(location) = self.locations.get(index) else {
            return vec![UNKNOWN.to_string()];
        };
        if location.lines.is_empty() {
            return vec![self.location_name(index)];
        }
        location
            .lines
            .iter()
            .rev()
            .map(|l| l.function.clone())
            .collect()
    }
}

/// Builds a [`Profile`], interning mappings and locations.
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    profile: Profile,
    mapping_index: HashMap<Mapping, usize>,
    location_index: HashMap<Location, usize>,
}

impl Profile {
    /// Splits the profile into one profile per key of its samples (e.g. per
    /// process), each with only the locations and mappings it uses.
    pub fn split_by<K: Ord>(&self, key: impl Fn(&Sample) -> K) -> BTreeMap<K, Profile> {
        let mut parts: BTreeMap<K, (ProfileBuilder, HashMap<usize, usize>)> = BTreeMap::new();
        for sample in &self.samples {
            let (builder, moved) = parts
                .entry(key(sample))
                .or_insert_with(|| (ProfileBuilder::new(self.meta.clone()), HashMap::new()));
            let mut remap = |stack: &Stack| match stack {
                Stack::Frames(frames) => Stack::Frames(
                    frames
                        .iter()
                        .filter_map(|&old| {
                            if let Some(&new) = moved.get(&old) {
                                return Some(new);
                            }
                            let mut location = self.locations.get(old)?.clone();
                            location.mapping = location
                                .mapping
                                .and_then(|m| self.mappings.get(m))
                                .map(|m| builder.mapping(m.clone()));
                            let new = builder.location(location);
                            moved.insert(old, new);
                            Some(new)
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            let user = remap(&sample.user);
            let kernel = remap(&sample.kernel);
            builder.sample(Sample {
                user,
                kernel,
                ..sample.clone()
            });
        }
        parts
            .into_iter()
            .map(|(k, (builder, _))| (k, builder.build()))
            .collect()
    }
}

impl ProfileBuilder {
    /// Starts a profile with the given metadata.
    pub fn new(meta: Meta) -> Self {
        Self {
            profile: Profile {
                meta,
                ..Profile::default()
            },
            ..Self::default()
        }
    }

    /// Interns a mapping and returns its index.
    pub fn mapping(&mut self, mapping: Mapping) -> usize {
        if let Some(&i) = self.mapping_index.get(&mapping) {
            return i;
        }
        let i = self.profile.mappings.len();
        self.profile.mappings.push(mapping.clone());
        self.mapping_index.insert(mapping, i);
        i
    }

    /// Interns a location and returns its index.
    pub fn location(&mut self, location: Location) -> usize {
        if let Some(&i) = self.location_index.get(&location) {
            return i;
        }
        let i = self.profile.locations.len();
        self.profile.locations.push(location.clone());
        self.location_index.insert(location, i);
        i
    }

    /// Adds a sample; identical samples are merged by [`Self::build`].
    pub fn sample(&mut self, sample: Sample) {
        self.profile.samples.push(sample);
    }

    /// Finishes the profile, merging samples with identical keys.
    pub fn build(mut self) -> Profile {
        let mut merged: Vec<Sample> = Vec::with_capacity(self.profile.samples.len());
        let mut index: HashMap<(u32, Option<u32>, String, Stack, Stack), usize> = HashMap::new();
        for s in self.profile.samples.drain(..) {
            let key = (
                s.pid,
                s.tid,
                s.comm.clone(),
                s.user.clone(),
                s.kernel.clone(),
            );
            match index.get(&key) {
                Some(&i) => merged[i].count = merged[i].count.saturating_add(s.count),
                None => {
                    index.insert(key, merged.len());
                    merged.push(s);
                }
            }
        }
        self.profile.samples = merged;
        self.profile
    }
}
