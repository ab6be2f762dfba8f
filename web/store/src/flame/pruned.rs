//! The first paint's tree: the whole tree pruned to a share of its samples,
//! with only the names of the nodes that stay read from the dictionary.
//!
//! Pruning needs every node's total, so every path is written as for the
//! whole tree, but its frames are keyed before any name is read: a
//! dictionary string by its id; any other name (the root's, an
//! unsymbolized address's `module+0xoffset`) by its text, or by the id of
//! the dictionary string with that text when there is one (found through
//! the index on content hashes: one lookup per distinct such text, so a
//! profile of many unsymbolized addresses pays for them). The tree is built
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
    let keys = keys(tx, cache, &chain, &paths.pending)?;
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

/// Each pending name's key (see the module docs).
fn keys(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    chain: &Chain,
    pending: &[Pending],
) -> Result<Vec<Key>, Error> {
    // The files of the mappings of unsymbolized locations, which name them.
    let file_ids = chain.mappings.values().iter().map(|m| m.file);
    let files = dict::resolve_strings(tx, &mut cache.strings, file_ids)?;
    let file = |id: i64| -> &str { files.get(id).map_or(UNKNOWN, |s| s) };
    // Each text looked up in the dictionary once.
    let mut by_text: HashMap<Arc<str>, Key, FastBuild> = HashMap::default();
    pending
        .iter()
        .map(|name| {
            let text: Arc<str> = match name {
                Pending::String(id) => return Ok(Key::String(*id)),
                Pending::Literal(text) => Arc::from(*text),
                Pending::Offset(at) => {
                    Arc::from(offset_name(chain.locations.at(*at), &chain.mappings, file))
                }
            };
            if let Some(key) = by_text.get(&text) {
                return Ok(key.clone());
            }
            let key = match dict::find_string(tx, &text)? {
                Some(id) => Key::String(id),
                None => Key::Text(Arc::clone(&text)),
            };
            by_text.insert(text, key.clone());
            Ok(key)
        })
        .collect()
}
