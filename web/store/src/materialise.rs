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

use crate::codec::StackRef;
use crate::dict::{self, DictCache};
use crate::error::Error;
use crate::resolved::{Chain, Detail, Resolved};

/// Turns `(trace id, count)` pairs into a profile: traces, then their stacks,
/// locations, mappings and strings, each resolved once.
pub(crate) fn profile(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    traces: &[(i64, u64)],
    meta: Meta,
) -> Result<Profile, Error> {
    let chain = Chain::resolve(tx, cache, traces, Detail::Everything)?;
    let strings = dict::resolve_strings(tx, &mut cache.strings, chain.string_ids())?;
    let mut builder = Assembler {
        profile: Profile {
            meta,
            samples: Vec::with_capacity(traces.len()),
            locations: Vec::with_capacity(chain.locations.len()),
            mappings: Vec::with_capacity(chain.mappings.len()),
        },
        location_index: vec![UNNUMBERED; chain.locations.len()],
        mapping_index: vec![UNNUMBERED; chain.mappings.len()],
        chain: &chain,
        strings: &strings,
    };
    for &(id, count) in traces {
        let Some(trace) = chain.traces.get(id) else {
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
    chain: &'a Chain,
    strings: &'a Resolved<Arc<str>>,
    /// Each location's index in the profile, by its position in the chain;
    /// [`UNNUMBERED`] until first used.
    location_index: Vec<usize>,
    /// Each mapping's index in the profile, the same way.
    mapping_index: Vec<usize>,
}

/// An entry the profile does not hold yet.
const UNNUMBERED: usize = usize::MAX;

impl Assembler<'_> {
    // Every id below was resolved by `materialise`, which fails on a missing
    // entry; the fallbacks only keep this code free of panics.
    fn string(&self, id: i64) -> String {
        self.strings.get(id).map_or_else(
            || scorch_formats::model::UNKNOWN.to_string(),
            |s| s.to_string(),
        )
    }

    fn stack(&mut self, stack: StackRef) -> Stack {
        match stack {
            StackRef::Absent => Stack::Absent,
            StackRef::Missed => Stack::Missed,
            StackRef::Frames(id) => {
                let chain = self.chain;
                let frames = chain.stacks.get(id).map_or(&[][..], |s| s);
                Stack::Frames(frames.iter().map(|&l| self.location(l)).collect())
            }
        }
    }

    fn location(&mut self, id: i64) -> usize {
        let at = self.chain.locations.position(id);
        if let Some(&index) = at.and_then(|at| self.location_index.get(at)) {
            if index != UNNUMBERED {
                return index;
            }
        }
        let index = self.profile.locations.len();
        let location = match at.map(|at| self.chain.locations.at(at)) {
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
        if let Some(at) = at {
            self.location_index[at] = index;
        }
        index
    }

    fn mapping(&mut self, id: i64) -> usize {
        let at = self.chain.mappings.position(id);
        if let Some(&index) = at.and_then(|at| self.mapping_index.get(at)) {
            if index != UNNUMBERED {
                return index;
            }
        }
        let index = self.profile.mappings.len();
        let mapping = match at.map(|at| self.chain.mappings.at(at)) {
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
        if let Some(at) = at {
            self.mapping_index[at] = index;
        }
        index
    }
}
