//! Materialising: turning merged `(trace id, count)` pairs back into a
//! [`Profile`].
//!
//! Each dictionary level is resolved once for the whole result, in order:
//! traces, then the stacks they use, the locations of those stacks, their
//! mappings, and every string any of them names. Only then is the profile
//! assembled, numbering locations and mappings in first-use order. The cost
//! is proportional to the distinct stacks of the result, not to the number
//! of windows merged.

use std::sync::Arc;

use rusqlite::Transaction;
use scorch_formats::{Line, Location, Mapping, Meta, Profile, Sample, Stack};

use crate::cache::IdMap;
use crate::codec::{LocationEntry, MappingEntry, StackRef, TraceEntry};
use crate::dict::{self, DictCache, Kind};
use crate::error::Error;

/// Turns `(trace id, count)` pairs into a profile: traces, then their stacks,
/// locations, mappings and strings, each resolved once.
pub(crate) fn profile(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    traces: &[(i64, u64)],
    meta: Meta,
) -> Result<Profile, Error> {
    let trace_entries: IdMap<TraceEntry> = dict::resolve(
        tx,
        Kind::Trace,
        &mut cache.traces,
        traces.iter().map(|&(id, _)| id),
        TraceEntry::decode,
    )?;
    let stack_ids = trace_entries.values().flat_map(|t| {
        [t.user, t.kernel].into_iter().filter_map(|s| match s {
            StackRef::Frames(id) => Some(id),
            _ => None,
        })
    });
    let stacks: IdMap<Arc<[i64]>> = dict::resolve(
        tx,
        Kind::Stack,
        &mut cache.stacks,
        stack_ids.collect::<Vec<_>>(),
        dict::decode_stack,
    )?;
    let locations: IdMap<Arc<LocationEntry>> = dict::resolve(
        tx,
        Kind::Location,
        &mut cache.locations,
        stacks
            .values()
            .flat_map(|s| s.iter().copied())
            .collect::<Vec<_>>(),
        dict::decode_location,
    )?;
    let mappings: IdMap<MappingEntry> = dict::resolve(
        tx,
        Kind::Mapping,
        &mut cache.mappings,
        locations
            .values()
            .filter_map(|l| l.mapping)
            .collect::<Vec<_>>(),
        MappingEntry::decode,
    )?;
    let string_ids: Vec<i64> = trace_entries
        .values()
        .map(|t| t.comm)
        .chain(
            locations
                .values()
                .flat_map(|l| {
                    l.lines
                        .iter()
                        .flat_map(|line| [Some(line.function), line.file])
                })
                .flatten(),
        )
        .chain(
            mappings
                .values()
                .flat_map(|m| [Some(m.file), m.build_id])
                .flatten(),
        )
        .collect();
    let strings: IdMap<Arc<str>> = dict::resolve(
        tx,
        Kind::String,
        &mut cache.strings,
        string_ids,
        dict::decode_string,
    )?;
    let mut builder = Assembler {
        profile: Profile {
            meta,
            samples: Vec::with_capacity(traces.len()),
            locations: Vec::with_capacity(locations.len()),
            mappings: Vec::with_capacity(mappings.len()),
        },
        stacks: &stacks,
        locations: &locations,
        mappings: &mappings,
        strings: &strings,
        location_index: Numbering::for_ids(locations.keys().copied()),
        mapping_index: IdMap::default(),
    };
    for &(id, count) in traces {
        let Some(trace) = trace_entries.get(&id) else {
            continue;
        };
        let sample = Sample {
            pid: trace.pid,
            tid: trace.tid,
            comm: builder.string(trace.comm),
            user: builder.stack(trace.user),
            kernel: builder.stack(trace.kernel),
            count,
        };
        builder.profile.samples.push(sample);
    }
    Ok(builder.profile)
}

/// Builds the profile from resolved entries, numbering locations and
/// mappings in first-use order.
struct Assembler<'a> {
    profile: Profile,
    stacks: &'a IdMap<Arc<[i64]>>,
    locations: &'a IdMap<Arc<LocationEntry>>,
    mappings: &'a IdMap<MappingEntry>,
    strings: &'a IdMap<Arc<str>>,
    location_index: Numbering,
    mapping_index: IdMap<usize>,
}

/// Id ranges up to this size are numbered in a dense array (16 MiB).
const MAX_DENSE: i64 = 1 << 22;

/// The index given to each dictionary id, looked up once per frame of
/// every stack: in an array indexed by id when the ids are a compact range
/// (the usual case: ids are handed out in order), else in a hash map.
pub(crate) enum Numbering {
    Dense { first: i64, index: Vec<u32> },
    Sparse(IdMap<usize>),
}

/// An id not numbered yet, in [`Numbering::Dense`].
const UNNUMBERED: u32 = u32::MAX;

impl Numbering {
    /// A numbering for (at most) the ids of `ids`.
    pub(crate) fn for_ids(ids: impl Iterator<Item = i64>) -> Self {
        let (mut first, mut last, mut count) = (i64::MAX, i64::MIN, 0i64);
        for id in ids {
            first = first.min(id);
            last = last.max(id);
            count += 1;
        }
        match last.checked_sub(first) {
            Some(span) if span < MAX_DENSE && span < count.saturating_mul(8) => Numbering::Dense {
                first,
                index: vec![UNNUMBERED; (span + 1) as usize],
            },
            _ => Numbering::Sparse(IdMap::default()),
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: i64) -> Option<usize> {
        match self {
            Numbering::Dense { first, index } => usize::try_from(id - first)
                .ok()
                .and_then(|i| index.get(i))
                .filter(|&&n| n != UNNUMBERED)
                .map(|&n| n as usize),
            Numbering::Sparse(map) => map.get(&id).copied(),
        }
    }

    pub(crate) fn insert(&mut self, id: i64, n: usize) {
        if let Numbering::Dense { first, index } = self {
            let slot = usize::try_from(id - *first)
                .ok()
                .and_then(|i| index.get_mut(i));
            match (slot, u32::try_from(n)) {
                (Some(slot), Ok(n)) if n != UNNUMBERED => {
                    *slot = n;
                    return;
                }
                // Outside the range (an id that was not resolved) or too
                // many entries: number everything in a map from now on.
                _ => *self = Numbering::Sparse(self.entries()),
            }
        }
        if let Numbering::Sparse(map) = self {
            map.insert(id, n);
        }
    }

    /// Every id numbered so far, with its number.
    fn entries(&self) -> IdMap<usize> {
        match self {
            Numbering::Dense { first, index } => index
                .iter()
                .zip(*first..)
                .filter(|(&n, _)| n != UNNUMBERED)
                .map(|(&n, id)| (id, n as usize))
                .collect(),
            Numbering::Sparse(map) => map.clone(),
        }
    }
}

impl Assembler<'_> {
    // Every id below was resolved by `materialise`, which fails on a missing
    // entry; the fallbacks only keep this code free of panics.
    fn string(&self, id: i64) -> String {
        self.strings.get(&id).map_or_else(
            || scorch_formats::model::UNKNOWN.to_string(),
            |s| s.to_string(),
        )
    }

    fn stack(&mut self, stack: StackRef) -> Stack {
        match stack {
            StackRef::Absent => Stack::Absent,
            StackRef::Missed => Stack::Missed,
            StackRef::Frames(id) => {
                let frames = self
                    .stacks
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from([]));
                Stack::Frames(frames.iter().map(|&l| self.location(l)).collect())
            }
        }
    }

    fn location(&mut self, id: i64) -> usize {
        if let Some(index) = self.location_index.get(id) {
            return index;
        }
        let index = self.profile.locations.len();
        let location = match self.locations.get(&id) {
            Some(entry) => Location {
                address: entry.address,
                mapping: entry.mapping.map(|m| self.mapping(m)),
                kind: entry.kind,
                lines: entry
                    .lines
                    .iter()
                    .map(|l| Line {
                        function: self.string(l.function),
                        file: l.file.map(|f| self.string(f)),
                        line: l.line,
                    })
                    .collect(),
            },
            None => Location {
                address: 0,
                mapping: None,
                kind: scorch_formats::FrameKind::User,
                lines: Vec::new(),
            },
        };
        self.profile.locations.push(location);
        self.location_index.insert(id, index);
        index
    }

    fn mapping(&mut self, id: i64) -> usize {
        if let Some(&index) = self.mapping_index.get(&id) {
            return index;
        }
        let index = self.profile.mappings.len();
        let mapping = match self.mappings.get(&id) {
            Some(m) => Mapping {
                start: m.start,
                limit: m.limit,
                offset: m.offset,
                file: self.string(m.file),
                build_id: m.build_id.map(|b| self.string(b)),
            },
            None => Mapping {
                start: 0,
                limit: 0,
                offset: 0,
                file: scorch_formats::model::UNKNOWN.to_string(),
                build_id: None,
            },
        };
        self.profile.mappings.push(mapping);
        self.mapping_index.insert(id, index);
        index
    }
}
