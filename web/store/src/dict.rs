//! The dictionaries: strings, mappings, locations, stacks and traces,
//! interned by content and looked up by id.
//!
//! A window blob holds only trace ids and counts, so what makes a window
//! cheap to store and a merge cheap to compute is that everything else is
//! stored once, here. The writer interns an entry by its encoded bytes:
//! first in a bounded in-memory cache keyed by fingerprint, then by `hash`
//! in the table, then by inserting it. Each use also raises the entry's
//! `gen` (hour of the window that used it) when older, at most once per
//! entry and hour; garbage collection deletes entries whose `gen` precedes
//! every stored window.
//!
//! The invariant that makes collection safe: an entry's `gen` is never
//! older than the `gen` of anything that refers to it. The writer keeps it
//! by raising an entry's references whenever it raises the entry; a cache
//! hit on an entry already marked with the current generation
//! ([`DictWriter::current`]) can skip its references because they were
//! raised together with it.
//!
//! Readers resolve ids through [`DictCache`], a bounded cache of decoded
//! entries. Entries never change and ids are never reused, so a cached entry
//! is always right, whoever wrote or deleted what since.

use std::sync::Arc;

use rusqlite::Connection;

use crate::cache::{stable_hash, FingerprintKeys, IdBuild, TwoGen};
use crate::codec::{DecodeError, LocationEntry, MappingEntry, TraceEntry};
use crate::error::{Error, SqlContext};
use crate::resolved::Resolved;

/// A dictionary table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String = 0,
    Mapping = 1,
    Location = 2,
    Stack = 3,
    Trace = 4,
}

impl Kind {
    /// The table's name.
    pub(crate) fn table(self) -> &'static str {
        crate::schema::DICT_TABLES[self as usize]
    }
}

/// One statement per dictionary table, in [`Kind`] order.
macro_rules! per_table {
    ($before:literal, $after:literal) => {
        [
            concat!($before, "dict_string", $after),
            concat!($before, "dict_mapping", $after),
            concat!($before, "dict_location", $after),
            concat!($before, "dict_stack", $after),
            concat!($before, "dict_trace", $after),
        ]
    };
}

const FIND: [&str; 5] = per_table!("SELECT id, gen, data FROM ", " WHERE hash = ?1");
const INSERT: [&str; 5] = per_table!("INSERT INTO ", " (hash, gen, data) VALUES (?1, ?2, ?3)");
const TOUCH: [&str; 5] = per_table!("UPDATE ", " SET gen = ?2 WHERE id = ?1 AND gen < ?2");
const GET: [&str; 5] = per_table!("SELECT data FROM ", " WHERE id = ?1");
const RANGE: [&str; 5] = per_table!(
    "SELECT id, data FROM ",
    " WHERE id BETWEEN ?1 AND ?2 ORDER BY id"
);

/// An interned entry as the writer knows it.
#[derive(Debug, Clone, Copy)]
struct Interned {
    id: i64,
    gen: i64,
}

/// The writer's side: content fingerprint → id, per table.
pub(crate) struct DictWriter {
    caches: [TwoGen<u128, Interned>; 5],
    keys: FingerprintKeys,
}

impl DictWriter {
    /// A writer caching up to `capacity` entries per table.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            caches: std::array::from_fn(|_| TwoGen::new(capacity)),
            keys: FingerprintKeys::new(),
        }
    }

    /// The keys fingerprints are made with.
    pub(crate) fn keys(&self) -> &FingerprintKeys {
        &self.keys
    }

    /// The id cached under `fingerprint` if the entry is already marked with
    /// generation `gen` or later: then it and everything it refers to are
    /// known to be up to date, and need no lookup at all.
    pub(crate) fn current(&mut self, kind: Kind, fingerprint: u128, gen: i64) -> Option<i64> {
        self.caches[kind as usize]
            .get(&fingerprint)
            .filter(|entry| entry.gen >= gen)
            .map(|entry| entry.id)
    }

    /// The id of the entry with bytes `data` (identified in the cache by
    /// `fingerprint`), inserted if new; its `gen` is raised to at least `gen`.
    pub(crate) fn intern(
        &mut self,
        conn: &Connection,
        kind: Kind,
        fingerprint: u128,
        data: &[u8],
        gen: i64,
    ) -> Result<i64, Error> {
        let cache = &mut self.caches[kind as usize];
        if let Some(mut entry) = cache.get(&fingerprint) {
            if entry.gen < gen {
                touch(conn, kind, &mut entry, gen)?;
                cache.insert(fingerprint, entry);
            }
            return Ok(entry.id);
        }
        let hash = stable_hash(data);
        let entry = match find(conn, kind, hash, data)? {
            Some(mut entry) => {
                touch(conn, kind, &mut entry, gen)?;
                entry
            }
            None => {
                conn.prepare_cached(INSERT[kind as usize])
                    .and_then(|mut s| s.execute((hash, gen, data)))
                    .ctx("adding a dictionary entry")?;
                Interned {
                    id: conn.last_insert_rowid(),
                    gen,
                }
            }
        };
        cache.insert(fingerprint, entry);
        Ok(entry.id)
    }

    /// Forgets every cached id: after a rolled-back transaction (whose ids
    /// may be handed out again) and after garbage collection.
    pub(crate) fn clear(&mut self) {
        for cache in &mut self.caches {
            cache.clear();
        }
    }
}

/// The entry with bytes `data` (whose [`stable_hash`] is `hash`), if the
/// table holds it: found through the index on `hash`.
fn find(conn: &Connection, kind: Kind, hash: i64, data: &[u8]) -> Result<Option<Interned>, Error> {
    let action = "looking up a dictionary entry";
    let mut stmt = conn.prepare_cached(FIND[kind as usize]).ctx(action)?;
    let mut rows = stmt.query([hash]).ctx(action)?;
    while let Some(row) = rows.next().ctx(action)? {
        let same = row
            .get_ref(2)
            .ctx(action)?
            .as_blob()
            .is_ok_and(|stored| stored == data);
        if same {
            return Ok(Some(Interned {
                id: row.get(0).ctx(action)?,
                gen: row.get(1).ctx(action)?,
            }));
        }
    }
    Ok(None)
}

/// The id of the dictionary string `text`, if there is one.
pub(crate) fn find_string(conn: &Connection, text: &str) -> Result<Option<i64>, Error> {
    let data = text.as_bytes();
    Ok(find(conn, Kind::String, stable_hash(data), data)?.map(|entry| entry.id))
}

/// Raises an entry's `gen` to `gen` if it is older.
fn touch(conn: &Connection, kind: Kind, entry: &mut Interned, gen: i64) -> Result<(), Error> {
    if entry.gen < gen {
        conn.prepare_cached(TOUCH[kind as usize])
            .and_then(|mut s| s.execute((entry.id, gen)))
            .ctx("updating a dictionary entry")?;
        entry.gen = gen;
    }
    Ok(())
}

/// The readers' side: id → decoded entry, per table, shared by all queries.
pub(crate) struct DictCache {
    pub(crate) strings: TwoGen<i64, Arc<str>, IdBuild>,
    pub(crate) mappings: TwoGen<i64, MappingEntry, IdBuild>,
    pub(crate) locations: TwoGen<i64, LocationEntry, IdBuild>,
    pub(crate) stacks: TwoGen<i64, Arc<[i64]>, IdBuild>,
    pub(crate) traces: TwoGen<i64, TraceEntry, IdBuild>,
}

impl DictCache {
    /// A cache of up to `capacity` entries per table.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            strings: TwoGen::new(capacity),
            mappings: TwoGen::new(capacity),
            locations: TwoGen::new(capacity),
            stacks: TwoGen::new(capacity),
            traces: TwoGen::new(capacity),
        }
    }
}

/// Decodes a string entry.
fn decode_string(data: &[u8]) -> Result<Arc<str>, DecodeError> {
    std::str::from_utf8(data)
        .map(Arc::from)
        .map_err(|_| DecodeError("string is not UTF-8"))
}

/// Id ranges up to this size are deduplicated in a bitmap (4 MiB).
const MAX_BITMAP: i64 = 1 << 25;

/// `ids` sorted, each once. A query names each entry many times over (a
/// location once per stack it is in), so this runs before any lookup: in a
/// bitmap over the range of the ids when they are compact (the usual case:
/// ids are handed out in order), else by sorting.
fn distinct(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else {
        return ids;
    };
    let span = match last.checked_sub(first) {
        Some(d) if d < MAX_BITMAP && d < (ids.len() as i64).saturating_mul(8) => d + 1,
        _ => {
            ids.sort_unstable();
            ids.dedup();
            return ids;
        }
    };
    let mut seen = vec![0u64; (span as usize).div_ceil(64)];
    for &id in &ids {
        let bit = (id - first) as usize;
        seen[bit / 64] |= 1 << (bit % 64);
    }
    ids.clear();
    for (word, &bits) in seen.iter().enumerate() {
        let mut bits = bits;
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            ids.push(first + (word * 64 + bit) as i64);
            bits &= bits - 1;
        }
    }
    ids
}

/// Resolves ids of one table: from the cache, else from the database. A
/// missing or undecodable entry is corruption.
pub(crate) fn resolve<V: Clone>(
    conn: &Connection,
    kind: Kind,
    cache: &mut TwoGen<i64, V, IdBuild>,
    ids: impl IntoIterator<Item = i64>,
    decode: fn(&[u8]) -> Result<V, DecodeError>,
) -> Result<Resolved<V>, Error> {
    let ids = distinct(ids);
    let mut values: Vec<Option<V>> = ids.iter().map(|id| cache.get(id)).collect();
    // Positions of the ids the cache lacks, in id order as `ids` are.
    let missing: Vec<usize> = (0..ids.len()).filter(|&at| values[at].is_none()).collect();
    let (Some(&first), Some(&last)) = (missing.first(), missing.last()) else {
        return Ok(Resolved::new(ids, values.into_iter().flatten().collect()));
    };
    let (first, last) = (ids[first], ids[last]);
    cache.reserve(missing.len());
    let action = "reading the dictionary";
    let mut found = |at: usize, data: Option<&[u8]>| -> Result<(), Error> {
        let id = ids[at];
        let value = data
            .map(decode)
            .ok_or_else(|| Error::corrupt(format!("{} entry {id} is not a blob", kind.table())))?
            .map_err(|e| {
                Error::corrupt(format!(
                    "{} entry {id} cannot be decoded: {e}",
                    kind.table()
                ))
            })?;
        cache.insert(id, value.clone());
        values[at] = Some(value);
        Ok(())
    };
    // Dense ids (a cold cache wanting most of a table) are read in one
    // range scan, in file order; sparse ones by point lookups.
    let span = (last - first).saturating_add(1);
    if (missing.len() as i64).saturating_mul(4) >= span {
        let mut stmt = conn.prepare_cached(RANGE[kind as usize]).ctx(action)?;
        let mut rows = stmt.query((first, last)).ctx(action)?;
        let mut wanted = missing.iter().peekable();
        while let Some(row) = rows.next().ctx(action)? {
            let id: i64 = row.get(0).ctx(action)?;
            while wanted.next_if(|&&at| ids[at] < id).is_some() {}
            if let Some(&at) = wanted.next_if(|&&at| ids[at] == id) {
                found(at, row.get_ref(1).ctx(action)?.as_blob().ok())?;
            }
        }
    } else {
        let mut stmt = conn.prepare_cached(GET[kind as usize]).ctx(action)?;
        for &at in &missing {
            let mut rows = stmt.query([ids[at]]).ctx(action)?;
            match rows.next().ctx(action)? {
                Some(row) => found(at, row.get_ref(0).ctx(action)?.as_blob().ok())?,
                None => break,
            }
        }
    }
    if let Some(at) = missing.iter().find(|&&at| values[at].is_none()) {
        return Err(Error::corrupt(format!(
            "{} entry {} is used by a stored window but missing",
            kind.table(),
            ids[*at]
        )));
    }
    Ok(Resolved::new(ids, values.into_iter().flatten().collect()))
}

/// Resolves string ids ([`resolve`] of the string table).
pub(crate) fn resolve_strings(
    conn: &Connection,
    cache: &mut TwoGen<i64, Arc<str>, IdBuild>,
    ids: impl IntoIterator<Item = i64>,
) -> Result<Resolved<Arc<str>>, Error> {
    resolve(conn, Kind::String, cache, ids, decode_string)
}

#[cfg(test)]
mod tests {
    use super::distinct;

    #[test]
    fn distinct_ids_come_sorted_once_each_compact_or_not() {
        let compact = [9, 3, 9, 4, 3, 70, 5, 4, 128, 3];
        assert_eq!(distinct(compact), vec![3, 4, 5, 9, 70, 128]);
        let spread = [i64::MAX, 5, -2, 5, i64::MAX, 1 << 40];
        assert_eq!(distinct(spread), vec![-2, 5, 1 << 40, i64::MAX]);
        assert_eq!(distinct([]), Vec::<i64>::new());
        assert_eq!(distinct([7]), vec![7]);
        let mut many: Vec<i64> = (0..5000).map(|i| (i * 7919) % 1000 + 64).collect();
        many.extend(many.clone());
        assert_eq!(distinct(many), (64..1064).collect::<Vec<i64>>());
    }
}
