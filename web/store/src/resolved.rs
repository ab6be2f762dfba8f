//! What a query's merged traces resolve to in the dictionaries, level by
//! level, held in arrays rather than maps.
//!
//! [`Resolved`] is one table's entries for one query: every id the query
//! named, sorted, beside its entry. Ids are handed out in order, so the ids
//! a query names are usually a compact range, and an id is found through an
//! array indexed by `id - first`; otherwise by binary search. Each entry
//! also has a *position* (its place in id order), which callers use to keep
//! per-entry state in a plain `Vec` instead of a map keyed by id.
//!
//! [`Chain`] resolves traces, their stacks, the locations of those and the
//! mappings of those locations, one table after the other (each level's
//! ids come from the level before). Strings are left to the caller, who
//! may need them all ([`Chain::string_ids`]) or only some.

use std::sync::Arc;

use rusqlite::Transaction;

use crate::codec::{self, LocationEntry, MappingEntry, StackRef, TraceEntry};
use crate::dict::{self, DictCache, Kind};
use crate::error::Error;

/// Id spans up to this size get an index array (16 MiB).
const MAX_DENSE: i64 = 1 << 22;

/// A position not taken, in [`Index::Dense`].
const NONE: u32 = u32::MAX;

/// The entries of one table a query named, by id (see the module docs).
pub(crate) struct Resolved<V> {
    ids: Vec<i64>,
    values: Vec<V>,
    index: Index,
}

/// How an id is turned into its position.
enum Index {
    /// `position[id - first]`, or [`NONE`].
    Dense { first: i64, position: Vec<u32> },
    /// Binary search over the sorted ids.
    Sorted,
}

impl<V> Resolved<V> {
    /// `values[i]` is the entry of `ids[i]`; `ids` are sorted and distinct.
    pub(crate) fn new(ids: Vec<i64>, values: Vec<V>) -> Self {
        debug_assert_eq!(ids.len(), values.len());
        let dense = match (ids.first(), ids.last()) {
            (Some(&first), Some(&last)) => last
                .checked_sub(first)
                .filter(|&span| span < MAX_DENSE && span < (ids.len() as i64).saturating_mul(8))
                .map(|span| (first, span)),
            _ => None,
        };
        let index = match dense {
            Some((first, span)) if ids.len() < NONE as usize => {
                let mut position = vec![NONE; span as usize + 1];
                for (at, &id) in ids.iter().enumerate() {
                    position[(id - first) as usize] = at as u32;
                }
                Index::Dense { first, position }
            }
            _ => Index::Sorted,
        };
        Self { ids, values, index }
    }

    /// The position of `id`, if the query named it.
    #[inline]
    pub(crate) fn position(&self, id: i64) -> Option<usize> {
        match &self.index {
            Index::Dense { first, position } => usize::try_from(id.wrapping_sub(*first))
                .ok()
                .and_then(|i| position.get(i))
                .filter(|&&at| at != NONE)
                .map(|&at| at as usize),
            Index::Sorted => self.ids.binary_search(&id).ok(),
        }
    }

    /// The entry of `id`, if the query named it.
    #[inline]
    pub(crate) fn get(&self, id: i64) -> Option<&V> {
        self.position(id).map(|at| &self.values[at])
    }

    /// The entry at `position`.
    #[inline]
    pub(crate) fn at(&self, position: usize) -> &V {
        &self.values[position]
    }

    /// The entries, in id order.
    pub(crate) fn values(&self) -> &[V] {
        &self.values
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// What a [`Chain`] is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Everything: a whole profile.
    Everything,
    /// The names of frames and commands only (a flame tree): mappings
    /// only of locations without lines, which are named after them
    /// (`module+0xoffset`); no source files or build ids.
    Names,
}

/// The entries merged traces refer to, except strings.
pub(crate) struct Chain {
    pub(crate) traces: Resolved<TraceEntry>,
    pub(crate) stacks: Resolved<Arc<[i64]>>,
    pub(crate) locations: Resolved<LocationEntry>,
    pub(crate) mappings: Resolved<MappingEntry>,
    detail: Detail,
}

impl Chain {
    /// Resolves the traces of `traces` (`(trace id, count)` pairs) and what
    /// they refer to, each entry once.
    pub(crate) fn resolve(
        tx: &Transaction<'_>,
        cache: &mut DictCache,
        traces: &[(i64, u64)],
        detail: Detail,
    ) -> Result<Self, Error> {
        let traces = dict::resolve(
            tx,
            Kind::Trace,
            &mut cache.traces,
            traces.iter().map(|&(id, _)| id),
            TraceEntry::decode,
        )?;
        let stack_ids = traces
            .values()
            .iter()
            .flat_map(|t| [t.user, t.kernel])
            .filter_map(|s| match s {
                StackRef::Frames(id) => Some(id),
                _ => None,
            });
        let stacks = dict::resolve(
            tx,
            Kind::Stack,
            &mut cache.stacks,
            stack_ids,
            codec::decode_stack,
        )?;
        let location_ids = stacks.values().iter().flat_map(|s| s.iter().copied());
        let locations = dict::resolve(
            tx,
            Kind::Location,
            &mut cache.locations,
            location_ids,
            LocationEntry::decode,
        )?;
        let mapping_ids = locations
            .values()
            .iter()
            .filter(|l| detail == Detail::Everything || l.lines.is_empty())
            .filter_map(|l| l.mapping);
        let mappings = dict::resolve(
            tx,
            Kind::Mapping,
            &mut cache.mappings,
            mapping_ids,
            MappingEntry::decode,
        )?;
        Ok(Chain {
            traces,
            stacks,
            locations,
            mappings,
            detail,
        })
    }

    /// The strings the chain's entries name, as far as its [`Detail`]
    /// goes: commands, functions and mapped files; and with everything,
    /// source files and build ids.
    pub(crate) fn string_ids(&self) -> impl Iterator<Item = i64> + '_ {
        let everything = self.detail == Detail::Everything;
        let comms = self.traces.values().iter().map(|t| t.comm);
        let lines = self.locations.values().iter().flat_map(|l| l.lines.iter());
        let functions =
            lines.flat_map(move |line| [Some(line.function), line.file.filter(|_| everything)]);
        let files = self
            .mappings
            .values()
            .iter()
            .flat_map(move |m| [Some(m.file), m.build_id.filter(|_| everything)]);
        comms.chain(functions.chain(files).flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::Resolved;

    #[test]
    fn ids_are_found_whether_compact_or_spread() {
        let compact = Resolved::new(vec![3, 4, 7, 9], vec!['a', 'b', 'c', 'd']);
        let spread = Resolved::new(vec![-5, 2, 1 << 40, i64::MAX], vec!['a', 'b', 'c', 'd']);
        for (resolved, ids) in [
            (&compact, [3, 4, 7, 9]),
            (&spread, [-5, 2, 1 << 40, i64::MAX]),
        ] {
            for (at, id) in ids.into_iter().enumerate() {
                assert_eq!(resolved.position(id), Some(at));
                assert_eq!(resolved.get(id), Some(resolved.at(at)));
            }
            for absent in [i64::MIN, -1, 0, 5, 8, 10, 1 << 39, i64::MAX - 1] {
                assert_eq!(resolved.position(absent), None, "{absent}");
            }
        }
        assert_eq!(compact.values(), &['a', 'b', 'c', 'd']);
        let empty: Resolved<char> = Resolved::new(Vec::new(), Vec::new());
        assert_eq!((empty.len(), empty.position(0)), (0, None));
    }
}
