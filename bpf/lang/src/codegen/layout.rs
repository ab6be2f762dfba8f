//! Byte layouts shared by the generated code and the runtime.
//!
//! The BPF side writes map keys, map values and ring-buffer events; user
//! space reads them back. Both sides compute offsets with the functions in
//! this file, so they cannot disagree:
//!
//! - **Map keys**: the key fields laid out as a tuple (integers as 8
//!   bytes, strings in place), padded to a multiple of 8 and always zeroed
//!   first. A map without keys uses one zero `u64`. `hist` and `lhist` maps
//!   append the bucket number as a `u64`.
//! - **Map values**: 8 bytes for integers, `count`, `sum` and histogram
//!   buckets; 16 for `min`/`max` (value, "has a value" flag) and for
//!   `avg`/`stats` (count, total); strings and tuples in place.
//! - **Events** start with a `u64` header, [`EventKind`] in the low half
//!   and an id in the high half, followed by a payload.

use crate::sema::types::{tuple_layout, Type};
use crate::sema::{AggKind, MapInfo};

/// Size of an event header.
pub const HEADER: u32 = 8;

/// What a ring-buffer event asks user space to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Format and print `printfs[id]` with the arguments that follow.
    Printf = 1,
    /// Stop: run `end` probes, print maps. A `u64` exit code follows.
    Exit = 2,
    /// Print map `id`; `u32` top and `u32` div follow.
    PrintMap = 3,
    /// Remove every entry of map `id`.
    ClearMap = 4,
    /// Set every value of map `id` to zero.
    ZeroMap = 5,
    /// Print the time with `time_formats[id]`.
    Time = 6,
    /// Print a value of type `value_prints[id]`, which follows.
    PrintValue = 7,
    /// Print the strings that follow ([`JOIN_ARGS`] slots of
    /// [`JOIN_ARG_SIZE`] bytes, an empty one ending the list) joined by
    /// `join_delims[id]`.
    Join = 8,
    /// Format `printfs[id]` like `Printf`, then run the text as a shell
    /// command (`system()`).
    System = 9,
    /// Format `printfs[id]` like `Printf`, then print the file so named
    /// (`cat()`).
    Cat = 10,
}

/// Most strings `join()` prints, as in bpftrace.
pub const JOIN_ARGS: u32 = 16;
/// Bytes read for each string `join()` prints (NUL included), as in
/// bpftrace.
pub const JOIN_ARG_SIZE: u32 = 1024;

impl EventKind {
    /// The kind with this number.
    pub fn from_raw(raw: u32) -> Option<EventKind> {
        Some(match raw {
            1 => EventKind::Printf,
            2 => EventKind::Exit,
            3 => EventKind::PrintMap,
            4 => EventKind::ClearMap,
            5 => EventKind::ZeroMap,
            6 => EventKind::Time,
            7 => EventKind::PrintValue,
            8 => EventKind::Join,
            9 => EventKind::System,
            10 => EventKind::Cat,
            _ => return None,
        })
    }
}

/// The header word of an event.
pub fn header(kind: EventKind, id: u32) -> u64 {
    kind as u64 | (u64::from(id) << 32)
}

/// `n` rounded up to a multiple of 8.
pub fn round8(n: u32) -> u32 {
    n.div_ceil(8) * 8
}

/// Where the fields of a key (or any tuple of stored values) live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// Each field's offset and type.
    pub fields: Vec<(u32, Type)>,
    /// Total size, a multiple of 8 and at least 8.
    pub size: u32,
}

/// The layout of stored values of `types`, one after the other.
pub fn fields(types: &[Type]) -> Fields {
    let types: Vec<Type> = types.iter().map(Type::widened).collect();
    let (offsets, size) = tuple_layout(&types);
    Fields {
        fields: offsets.into_iter().zip(types).collect(),
        size: size.max(8),
    }
}

/// The user part of a map's key.
pub fn key(info: &MapInfo) -> Fields {
    fields(&info.keys)
}

/// Whether the map's key ends with a bucket number.
pub fn has_bucket(info: &MapInfo) -> bool {
    matches!(info.value, Type::Agg(kind) if kind.is_histogram())
}

/// The whole key size of a map, bucket included.
pub fn key_size(info: &MapInfo) -> u32 {
    key(info).size + if has_bucket(info) { 8 } else { 0 }
}

/// The size of a map's value.
pub fn value_size(value: &Type) -> u32 {
    match value {
        Type::Agg(AggKind::Min | AggKind::Max | AggKind::Avg | AggKind::Stats) => 16,
        Type::Agg(AggKind::Tseries { .. }) => 24,
        Type::Agg(_) => 8,
        other => round8(other.widened().size()).max(8),
    }
}

/// Whether the map keeps one value per CPU (aggregations do).
pub fn per_cpu(info: &MapInfo) -> bool {
    matches!(info.value, Type::Agg(_))
}

/// Offsets of event arguments after the header (each 8-byte aligned) and
/// the event's total size.
pub fn record(args: &[Type]) -> (Vec<u32>, u32) {
    let mut offsets = Vec::with_capacity(args.len());
    let mut at = HEADER;
    for arg in args {
        offsets.push(at);
        at += round8(arg.widened().size()).max(8);
    }
    (offsets, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sema::IntType;

    fn map(keys: Vec<Type>, value: Type) -> MapInfo {
        MapInfo {
            name: "m".into(),
            keys,
            value,
            max_entries: None,
        }
    }

    #[test]
    fn keys_are_padded_and_buckets_appended() {
        let m = map(vec![], Type::Agg(AggKind::Count));
        assert_eq!((key(&m).size, key_size(&m)), (8, 8));
        let m = map(
            vec![Type::Int(IntType::U32), Type::Str(16)],
            Type::Agg(AggKind::Hist { bits: 0 }),
        );
        let k = key(&m);
        assert_eq!(k.fields[0], (0, Type::U64));
        assert_eq!(k.fields[1].0, 8);
        assert_eq!((k.size, key_size(&m)), (24, 32));
        let m = map(vec![Type::Str(3)], Type::Str(5));
        assert_eq!((key_size(&m), value_size(&m.value)), (8, 8));
    }

    #[test]
    fn values_and_records() {
        assert_eq!(value_size(&Type::Agg(AggKind::Stats)), 16);
        assert_eq!(value_size(&Type::Agg(AggKind::Count)), 8);
        assert_eq!(value_size(&Type::Str(64)), 64);
        assert_eq!(
            record(&[Type::Str(16), Type::Int(IntType::U32), Type::Str(3)]),
            (vec![8, 24, 32], 40)
        );
        assert_eq!(header(EventKind::Printf, 3), 0x3_0000_0001);
        assert_eq!(EventKind::from_raw(7), Some(EventKind::PrintValue));
        assert_eq!(EventKind::from_raw(0), None);
    }
}
