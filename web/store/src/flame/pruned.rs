//! The first paint's tree: the whole tree pruned to a share of its samples,
//! with only the names of the nodes that stay read from the dictionary.
//!
//! Pruning needs every node's total, so every path is written as for the
//! whole tree, but its frames are keyed before any name is read: a
//! dictionary string by its id; any other name (the root's, an
//! unsymbolized address's `module+0xoffset`) by its text, or by the id of
//! the dictionary string with that text when there is one (found through
//! the index on content hashes: one lookup per distinct such text; past
//! [`MAX_TEXTS`] of them the whole tree is built and pruned instead). The tree is built
//! and pruned on the keys, and then only the strings of the nodes that stay
//! are read: about a tenth of them for a big profile. A string missing from
//! the dictionary is therefore reported only when its node stays (the
//! whole tree, which the page asks for next, reports it).
//!
//! The result is [`FlameTree::pruned`] of the whole tree, byte for byte,
//! because two keys are equal exactly when their names are: the writer
//! interns strings by content, so no two dictionary strings have one text.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Transaction;
use scorch_formats::flame::prune::{pruned_nodes, KeptName, PRUNED_NAME};
use scorch_formats::flame::FlameTree;
use scorch_formats::model::UNKNOWN;
use scorch_formats::Meta;

use super::{flame_meta, numbered, offset_name, Paths, Pending};
use crate::cache::FastBuild;
use crate::dict::{self, DictCache};
use crate::error::Error;
use crate::resolved::{Chain, Detail};

/// What a frame's name is known by before it is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    String(i64),
    Text(Arc<str>),
}

/// The tree of `(trace id, count)` pairs (sorted by id) covering
/// `from..until`, pruned to `min_share` of its samples.
pub(crate) fn pruned_tree(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    traces: &[(i64, u64)],
    meta: &Meta,
    range: (u64, u64),
    min_share: f64,
) -> Result<FlameTree, Error> {
    let chain = Chain::resolve(tx, cache, traces, Detail::Names)?;
    let paths = Paths::of(&chain, traces);
    let Some(keys) = keys(tx, cache, &chain, &paths.pending)? else {
        // Too many names to look up one by one: the whole tree reads every
        // string in one scan (its entries are cached by now).
        return Ok(super::tree(tx, cache, traces, meta, range)?.pruned(min_share));
    };
    let (index, firsts) = numbered(keys.iter());
    let whole = paths.into_nodes(&index);
    let kept = pruned_nodes(&whole, firsts.len(), min_share);
    let key_of = |name: &KeptName| match *name {
        KeptName::Name(n) => firsts.get(n as usize).map(|&at| &keys[at]),
        KeptName::Pruned => None,
    };
    let string_ids = kept.names.iter().filter_map(|name| match key_of(name) {
        Some(Key::String(id)) => Some(*id),
        _ => None,
    });
    let strings = dict::resolve_strings(tx, &mut cache.strings, string_ids)?;
    let names = kept
        .names
        .iter()
        .map(|name| match (name, key_of(name)) {
            (KeptName::Pruned, _) => Arc::from(PRUNED_NAME),
            (_, Some(Key::String(id))) => strings
                .get(*id)
                .map_or_else(|| Arc::from(UNKNOWN), Arc::clone),
            (_, Some(Key::Text(text))) => Arc::clone(text),
            (_, None) => Arc::from(UNKNOWN),
        })
        .collect();
    Ok(FlameTree {
        meta: flame_meta(&kept.nodes, meta, range, kept.left_out),
        names,
        nodes: kept.nodes,
    })
}

/// Distinct names that are not dictionary strings, each looked up by its
/// text, beyond which reading every string (as the whole tree does) costs
/// less: a few milliseconds' worth of index lookups.
const MAX_TEXTS: usize = 4096;

/// Each pending name's key (see the module docs); `None` when more than
/// [`MAX_TEXTS`] names would have to be looked up by text.
fn keys(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    chain: &Chain,
    pending: &[Pending],
) -> Result<Option<Vec<Key>>, Error> {
    // The files of the mappings of unsymbolized locations, which name them.
    let file_ids = chain.mappings.values().iter().map(|m| m.file);
    let files = dict::resolve_strings(tx, &mut cache.strings, file_ids)?;
    let file = |id: i64| -> &str { files.get(id).map_or(UNKNOWN, |s| s) };
    let mut keys: Vec<Key> = pending
        .iter()
        .map(|name| match name {
            Pending::String(id) => Key::String(*id),
            Pending::Literal(text) => Key::Text(Arc::from(*text)),
            Pending::Offset(at) => Key::Text(Arc::from(offset_name(
                chain.locations.at(*at),
                &chain.mappings,
                file,
            ))),
        })
        .collect();
    // Each distinct text looked up once: the dictionary string with that
    // text, if there is one, stands for it.
    let mut found: HashMap<Arc<str>, Option<i64>, FastBuild> = HashMap::default();
    for key in &keys {
        if let Key::Text(text) = key {
            found.entry(Arc::clone(text)).or_insert(None);
        }
    }
    if found.len() > MAX_TEXTS {
        return Ok(None);
    }
    for (text, id) in found.iter_mut() {
        *id = dict::find_string(tx, text)?;
    }
    for key in &mut keys {
        let id = match key {
            Key::Text(text) => found.get(text).copied().flatten(),
            Key::String(_) => None,
        };
        if let Some(id) = id {
            *key = Key::String(id);
        }
    }
    Ok(Some(keys))
}
