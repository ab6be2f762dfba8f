//! Output: map contents and values as bpftrace prints them.
//!
//! This module is pure: it takes the bytes the kernel holds — map entries
//! with one value per CPU for aggregations, event payloads — and the
//! types semantic analysis gave them, and produces bpftrace's text
//! ([`text`]) or NDJSON ([`json`]) byte for byte. Reading the maps and
//! events is the runtime's job.
//!
//! The model in between: a [`Value`] is a decoded key or plain value; a
//! [`MapData`] is a map reduced over CPUs and sorted the way bpftrace
//! prints it (by value, by average, by total count or by key, depending
//! on what the map holds).

pub mod json;
mod records;
pub mod text;
pub mod tseries;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::codegen::layout;
use crate::sema::{AggKind, MapInfo, StackMode, StackType, Type};

/// A decoded integer, string or tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A pointer, printed in hex.
    Ptr(u64),
    /// A string's bytes up to its NUL.
    Str(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A `kstack` or `ustack`.
    Stack(Stack),
    /// A `ksym()` or `usym()`.
    Sym(Sym),
    /// A `strftime()` timestamp.
    Time(Timestamp),
    /// A `buf()`: the bytes read.
    Buf(Vec<u8>),
    /// An `ntop()` address, already as text.
    Inet(String),
    /// A `macaddr()`: its six bytes.
    Mac([u8; 6]),
    /// A struct or union stored whole: its members' names and values.
    Record(Vec<(String, Value)>),
    /// An array inside a record.
    Array(Vec<Value>),
}

/// A boot-time timestamp to print as wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// Nanoseconds since boot.
    pub nsecs: u64,
    /// Its format, an index into the program's `strftime` formats.
    pub format: u32,
    /// The formatted time once resolved.
    pub text: Option<String>,
}

/// An address to print as the name of its symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sym {
    /// A user address (`usym`).
    pub user: bool,
    /// The address.
    pub addr: u64,
    /// For user addresses, the process.
    pub pid: u32,
    /// The symbol's name once resolved; `0x…` when there is none.
    pub name: Option<String>,
}

/// A stack as stored, and its frames once user space has resolved them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Which stack and how it prints.
    pub ty: StackType,
    /// The stored word: the stack id, and for user stacks the pid above it.
    pub raw: u64,
    /// Each frame's address and name, innermost first; `None` until
    /// resolved, and when the id names no stack (bpftrace prints nothing).
    pub frames: Option<Vec<(u64, String)>>,
}

impl Stack {
    /// The id in the stack-trace map (negative ids are errors).
    pub fn id(&self) -> i32 {
        self.raw as u32 as i32
    }

    /// The process a user stack belongs to.
    pub fn pid(&self) -> u32 {
        (self.raw >> 32) as u32
    }

    /// bpftrace's text: a newline, then one line per frame — `name+off`
    /// after `indent` spaces, `\tADDR name+off` in perf mode, bare hex
    /// in raw mode. Empty when the stack could not be read.
    pub fn render(&self, indent: usize) -> String {
        use std::fmt::Write as _;
        let Some(frames) = &self.frames else {
            return String::new();
        };
        let mut out = String::from("\n");
        let limit = self.ty.limit as usize;
        for (addr, name) in frames.iter().take(limit) {
            let _ = match self.ty.mode {
                StackMode::Bpftrace => writeln!(out, "{:indent$}{name}", ""),
                StackMode::Perf => writeln!(out, "\t{addr:x} {name}"),
                StackMode::Raw => writeln!(out, "{addr:x}"),
            };
        }
        out
    }
}

impl Value {
    /// Decodes a stored value of type `ty` (integers are 8 bytes).
    pub fn decode(bytes: &[u8], ty: &Type) -> Value {
        let word = || {
            let mut w = [0u8; 8];
            let n = bytes.len().min(8);
            w[..n].copy_from_slice(&bytes[..n]);
            u64::from_ne_bytes(w)
        };
        match ty {
            Type::Int(int) if int.signed => Value::Int(word() as i64),
            Type::Ptr { .. } => Value::Ptr(word()),
            Type::Ksym | Type::Usym => Value::Sym(Sym {
                user: *ty == Type::Usym,
                addr: word(),
                pid: bytes
                    .get(8..12)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_ne_bytes),
                name: None,
            }),
            Type::Inet => Value::Inet(inet(word(), bytes.get(8..24).unwrap_or(&[]))),
            Type::Mac => Value::Mac(word().to_ne_bytes()[..6].try_into().unwrap_or_default()),
            Type::Buf(cap) => {
                let len = (word() as usize).min(*cap as usize);
                Value::Buf(bytes.get(8..8 + len).unwrap_or(&[]).to_vec())
            }
            Type::Strftime(format) => Value::Time(Timestamp {
                nsecs: word(),
                format: *format,
                text: None,
            }),
            Type::Stack(ty) => Value::Stack(Stack {
                ty: *ty,
                raw: word(),
                frames: None,
            }),
            Type::Str(size) => {
                let end = (*size as usize).min(bytes.len());
                let s = &bytes[..end];
                let nul = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                Value::Str(s[..nul].to_vec())
            }
            Type::Record(r) => records::decode(bytes, r),
            Type::Tuple(items) => {
                let fields = layout::fields(items);
                Value::Tuple(
                    fields
                        .fields
                        .iter()
                        .map(|(off, t)| Value::decode(bytes.get(*off as usize..).unwrap_or(&[]), t))
                        .collect(),
                )
            }
            _ => Value::Uint(word()),
        }
    }

    /// How bpftrace orders keys: numbers numerically, strings bytewise.
    fn order(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Uint(a) | Value::Ptr(a), Value::Uint(b) | Value::Ptr(b)) => a.cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Stack(a), Value::Stack(b)) => a.raw.cmp(&b.raw),
            (Value::Sym(a), Value::Sym(b)) => (a.addr, a.pid).cmp(&(b.addr, b.pid)),
            (Value::Time(a), Value::Time(b)) => a.nsecs.cmp(&b.nsecs),
            (Value::Buf(a), Value::Buf(b)) => a.cmp(b),
            (Value::Inet(a), Value::Inet(b)) => a.cmp(b),
            (Value::Mac(a), Value::Mac(b)) => a.cmp(b),
            (Value::Tuple(a), Value::Tuple(b)) => a
                .iter()
                .zip(b)
                .map(|(x, y)| x.order(y))
                .find(|o| o.is_ne())
                .unwrap_or(a.len().cmp(&b.len())),
            _ => Ordering::Equal,
        }
    }
}

/// An address of family `af` as `inet_ntop` prints it; empty for other
/// families.
fn inet(af: u64, bytes: &[u8]) -> String {
    let af = i32::try_from(af).unwrap_or(-1);
    if af == libc::AF_INET {
        if let Ok(b) = <[u8; 4]>::try_from(bytes.get(..4).unwrap_or(&[])) {
            return std::net::Ipv4Addr::from(b).to_string();
        }
    } else if af == libc::AF_INET6 {
        if let Ok(b) = <[u8; 16]>::try_from(bytes.get(..16).unwrap_or(&[])) {
            return std::net::Ipv6Addr::from(b).to_string();
        }
    }
    String::new()
}

/// How many buckets `hist(x, bits)` has: one for negatives, then
/// `2^bits` per power of two up to `2^63`.
pub fn hist_buckets(bits: u8) -> usize {
    ((64 - usize::from(bits)) << bits) + 1
}

/// What one key of a map holds, reduced over CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reduced {
    /// A plain value (`@m = comm`), a `count()` or a `sum()`.
    Value(Value),
    /// `min()` or `max()`.
    Extreme(i64),
    /// `avg()` and `stats()`: count and total.
    Stats {
        /// Number of values.
        count: i64,
        /// Their sum.
        total: i64,
    },
    /// `hist()` and `lhist()` bucket counts, by bucket index.
    Buckets(Vec<u64>),
    /// `tseries()`: a value per interval.
    Series(tseries::Series),
}

impl Reduced {
    fn average(count: i64, total: i64) -> i64 {
        if count == 0 {
            0
        } else {
            total.wrapping_div(count)
        }
    }
}

/// One key of a map and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key fields (none for a map without keys).
    pub key: Vec<Value>,
    /// The raw key bytes, for a stable order among equals.
    pub raw_key: Vec<u8>,
    /// The reduced value.
    pub value: Reduced,
}

/// A map's contents, in the order bpftrace prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapData {
    /// The map's name and types.
    pub info: MapInfo,
    /// Its entries, sorted.
    pub entries: Vec<Entry>,
}

/// Raw map contents: each key with its value on every CPU (one value for
/// maps that are not per-CPU).
pub type RawEntries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

pub(crate) fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        w.copy_from_slice(src);
    }
    u64::from_ne_bytes(w)
}

impl MapData {
    /// Reduces and sorts the raw entries of the map described by `info`.
    pub fn new(info: &MapInfo, raw: RawEntries) -> MapData {
        let key_fields = layout::key(info);
        let decode_key = |bytes: &[u8]| -> Vec<Value> {
            key_fields
                .fields
                .iter()
                .map(|(off, t)| Value::decode(bytes.get(*off as usize..).unwrap_or(&[]), t))
                .collect()
        };
        let mut entries: Vec<Entry> = Vec::new();
        match &info.value {
            &Type::Agg(AggKind::Tseries {
                interval_ns,
                intervals,
                agg,
                signed,
            }) => {
                let user = key_fields.size as usize;
                // The points of each user key (the key before the slot).
                let mut by_key: BTreeMap<Vec<u8>, BTreeMap<u64, Value>> = BTreeMap::new();
                for (key, values) in raw {
                    let prefix = key.get(..user).unwrap_or(&key).to_vec();
                    let points = by_key.entry(prefix).or_default();
                    if let Some((epoch, v)) = tseries::reduce_slot(&values, agg, signed) {
                        points.insert(epoch, tseries::value(v, signed));
                    }
                }
                let last = by_key
                    .values()
                    .filter_map(|points| points.keys().next_back())
                    .max()
                    .copied()
                    .unwrap_or(0);
                for (prefix, points) in by_key {
                    entries.push(Entry {
                        key: decode_key(&prefix),
                        raw_key: prefix,
                        value: Reduced::Series(tseries::Series {
                            rows: tseries::window(&points, last, intervals),
                            interval_ns,
                            times: Vec::new(),
                        }),
                    });
                }
            }
            Type::Agg(kind) if kind.is_histogram() => {
                let user = key_fields.size as usize;
                let width = match kind {
                    AggKind::Lhist { min, max, step } => ((max - min) / step).max(0) as usize + 2,
                    AggKind::Hist { bits } => hist_buckets(*bits),
                    _ => 65,
                };
                for (key, values) in raw {
                    let bucket = u64_at(&key, user) as usize;
                    let prefix = key.get(..user).unwrap_or(&key).to_vec();
                    let count: u64 = values
                        .iter()
                        .map(|v| u64_at(v, 0))
                        .fold(0, u64::wrapping_add);
                    let index = match entries.iter().position(|e| e.raw_key == prefix) {
                        Some(i) => i,
                        None => {
                            entries.push(Entry {
                                key: decode_key(&prefix),
                                raw_key: prefix,
                                value: Reduced::Buckets(vec![0; width]),
                            });
                            entries.len() - 1
                        }
                    };
                    if let Reduced::Buckets(b) = &mut entries[index].value {
                        if let Some(slot) = b.get_mut(bucket) {
                            *slot = slot.wrapping_add(count);
                        }
                    }
                }
            }
            value_ty => {
                for (key, values) in raw {
                    let value = reduce(value_ty, &values);
                    if let Some(value) = value {
                        entries.push(Entry {
                            key: decode_key(&key),
                            raw_key: key,
                            value,
                        });
                    }
                }
            }
        }
        let mut data = MapData {
            info: info.clone(),
            entries,
        };
        data.sort();
        data
    }

    fn sort(&mut self) {
        if matches!(self.info.value, Type::Agg(AggKind::Tseries { .. })) {
            // As bpftrace: by the key's bytes.
            self.entries.sort_by(|a, b| a.raw_key.cmp(&b.raw_key));
            return;
        }
        let sort_key = |e: &Entry| -> Option<i128> {
            Some(match &e.value {
                Reduced::Value(Value::Int(v)) | Reduced::Extreme(v) => i128::from(*v),
                Reduced::Value(Value::Uint(v)) => i128::from(*v),
                Reduced::Stats { count, total } => i128::from(Reduced::average(*count, *total)),
                Reduced::Buckets(b) => b.iter().map(|&c| i128::from(c)).sum(),
                _ => return None,
            })
        };
        self.entries
            .sort_by(|a, b| match (sort_key(a), sort_key(b)) {
                (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.raw_key.cmp(&b.raw_key)),
                _ => key_order(&a.key, &b.key),
            });
    }

    /// The entries `print(@m, top)` shows: the last `top` (all when 0).
    /// bpftrace ignores `top` for `stats()` maps.
    pub fn shown(&self, top: u32) -> &[Entry] {
        let top = top as usize;
        let stats = matches!(self.info.value, Type::Agg(AggKind::Stats));
        if top == 0 || stats || self.entries.len() <= top {
            &self.entries
        } else {
            &self.entries[self.entries.len() - top..]
        }
    }
}

fn key_order(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.order(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Combines the per-CPU values of one key; `None` for a `min`/`max` that
/// no CPU has set.
fn reduce(ty: &Type, values: &[Vec<u8>]) -> Option<Reduced> {
    let sum = |off: usize| {
        values
            .iter()
            .map(|v| u64_at(v, off))
            .fold(0u64, u64::wrapping_add)
    };
    Some(match ty {
        Type::Agg(AggKind::Count) => Reduced::Value(Value::Uint(sum(0))),
        Type::Agg(AggKind::Sum { signed: true }) => Reduced::Value(Value::Int(sum(0) as i64)),
        Type::Agg(AggKind::Sum { signed: false }) => Reduced::Value(Value::Uint(sum(0))),
        Type::Agg(AggKind::Min | AggKind::Max) => {
            let set = values
                .iter()
                .filter(|v| u64_at(v, 8) != 0)
                .map(|v| u64_at(v, 0) as i64);
            let best = if matches!(ty, Type::Agg(AggKind::Min)) {
                set.min()
            } else {
                set.max()
            };
            // A zeroed map keeps its keys with no value: print 0.
            Reduced::Extreme(best.unwrap_or(0))
        }
        Type::Agg(AggKind::Avg | AggKind::Stats) => Reduced::Stats {
            count: sum(0) as i64,
            total: sum(8) as i64,
        },
        other => Reduced::Value(Value::decode(values.first()?, other)),
    })
}

/// A map with `entries`, for the writers' tests.
#[cfg(test)]
pub(crate) fn test_map(
    name: &str,
    keys: Vec<Type>,
    value: Type,
    entries: Vec<(Vec<Value>, Reduced)>,
) -> MapData {
    MapData {
        info: MapInfo {
            name: name.into(),
            keys,
            value,
            max_entries: None,
        },
        entries: entries
            .into_iter()
            .map(|(key, value)| Entry {
                key,
                raw_key: Vec::new(),
                value,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sema::IntType;

    fn info(keys: Vec<Type>, value: Type) -> MapInfo {
        MapInfo {
            name: "m".into(),
            keys,
            value,
            max_entries: None,
        }
    }

    fn word(v: i64) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }

    #[test]
    fn per_cpu_counts_add_up_and_sort_by_value() {
        let m = info(vec![Type::I64], Type::Agg(AggKind::Count));
        let raw = vec![
            (word(1), vec![word(3), word(4)]),
            (word(2), vec![word(1), word(0)]),
        ];
        let data = MapData::new(&m, raw);
        assert_eq!(data.entries[0].key, [Value::Int(2)]);
        assert_eq!(data.entries[1].value, Reduced::Value(Value::Uint(7)));
        assert_eq!(data.shown(1).len(), 1);
        assert_eq!(data.shown(1)[0].key, [Value::Int(1)]);
    }

    #[test]
    fn histograms_group_buckets_by_key() {
        let m = info(
            vec![Type::Int(IntType::U32)],
            Type::Agg(AggKind::Hist { bits: 0 }),
        );
        let key = |k: i64, b: i64| [word(k), word(b)].concat();
        let raw = vec![
            (key(1, 3), vec![word(2)]),
            (key(1, 4), vec![word(1)]),
            (key(2, 3), vec![word(1)]),
        ];
        let data = MapData::new(&m, raw);
        assert_eq!(data.entries.len(), 2);
        assert_eq!(data.entries[0].key, [Value::Uint(2)]);
        let Reduced::Buckets(b) = &data.entries[1].value else {
            panic!()
        };
        assert_eq!((b.len(), b[3], b[4]), (65, 2, 1));
    }

    #[test]
    fn min_ignores_cpus_without_a_value() {
        let m = info(vec![], Type::Agg(AggKind::Min));
        let v = |x: i64, set: i64| [word(x), word(set)].concat();
        let data = MapData::new(&m, vec![(word(0), vec![v(0, 0), v(-5, 1), v(3, 1)])]);
        assert_eq!(data.entries[0].value, Reduced::Extreme(-5));
    }

    #[test]
    fn strings_and_tuples_decode() {
        let ty = Type::Tuple(vec![Type::I64, Type::Str(4)]);
        let bytes = [word(-2), b"ab\0\0".to_vec(), vec![0; 4]].concat();
        assert_eq!(
            Value::decode(&bytes, &ty),
            Value::Tuple(vec![Value::Int(-2), Value::Str(b"ab".to_vec())])
        );
    }
}
