//! bpftrace's `-f json` output: one JSON object per line.
//!
//! ```text
//! {"type": "attached_probes", "data": {"probes": 1}}
//! {"type": "printf", "data": "a 5\n"}
//! {"type": "map", "data": {"@x": {"bash,123": 1}}}
//! {"type": "hist", "data": {"@z": {"k": [{"min": 4, "max": 7, "count": 1}]}}}
//! {"type": "stats", "data": {"@s": {"count": 1, "average": 4, "total": 4}}}
//! ```
//!
//! Keys become one string (fields joined by `,`); strings are escaped as
//! bpftrace escapes them. Unlike bpftrace 0.17, no blank lines are printed
//! at exit: every line of the output is a JSON object.

use std::fmt::Write as _;

use super::{text, MapData, Reduced, Value};
use crate::sema::{AggKind, Type};

/// `s` as a JSON string literal, escaped as bpftrace does.
pub fn string(s: &[u8]) -> String {
    let s = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as JSON: numbers bare, strings quoted, tuples as arrays.
pub fn value(v: &Value) -> String {
    match v {
        Value::Str(s) => string(s),
        Value::Ptr(_)
        | Value::Stack(_)
        | Value::Sym(_)
        | Value::Time(_)
        | Value::Buf(_)
        | Value::Inet(_)
        | Value::Mac(_) => string(text::value(v).as_bytes()),
        Value::Tuple(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", items.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(member).collect();
            format!("[{}]", items.join(","))
        }
        Value::Record(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(name, v)| format!("\"{name}\": {}", member(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => text::value(other),
    }
}

/// A member of a struct, or an element of an array in one: pointers are
/// numbers there, as bpftrace prints them.
fn member(v: &Value) -> String {
    match v {
        Value::Ptr(_) => text::member(v),
        _ => value(v),
    }
}

/// A line `{"type": TYPE, "data": DATA}`.
pub fn message(ty: &str, data: &str) -> String {
    format!("{{\"type\": \"{ty}\", \"data\": {data}}}\n")
}

/// The message type of a map: `map`, `hist` or `stats`.
fn kind(value: &Type) -> &'static str {
    match value {
        Type::Agg(AggKind::Hist { .. } | AggKind::Lhist { .. }) => "hist",
        Type::Agg(AggKind::Avg | AggKind::Stats) => "stats",
        Type::Agg(AggKind::Tseries { .. }) => "tseries",
        _ => "map",
    }
}

/// One entry's value as JSON.
fn reduced(ty: &Type, r: &Reduced, div: u32) -> String {
    match (ty, r) {
        (_, Reduced::Series(series)) => {
            let times: Vec<u64> = series.row_times().collect();
            let rows: Vec<String> = series
                .rows
                .iter()
                .enumerate()
                .map(|(i, (_, v))| {
                    let time = series
                        .times
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| times[i].to_string());
                    let v = v.as_ref().map_or_else(|| "null".to_string(), value);
                    format!(
                        "{{\"interval_start\": {}, \"value\": {v}}}",
                        string(time.as_bytes())
                    )
                })
                .collect();
            format!("[{}]", rows.join(", "))
        }
        (Type::Agg(AggKind::Lhist { min, max, step }), Reduced::Buckets(b)) => {
            lhist(b, *min, *max, *step)
        }
        (Type::Agg(AggKind::Hist { bits }), Reduced::Buckets(b)) if *bits > 0 => {
            hist_bits(b, div, *bits)
        }
        (_, Reduced::Buckets(b)) => hist(b, div),
        (Type::Agg(AggKind::Stats), &Reduced::Stats { count, total }) => {
            let average = Reduced::average(count, total);
            format!("{{\"count\": {count}, \"average\": {average}, \"total\": {total}}}")
        }
        (_, &Reduced::Stats { count, total }) => {
            (Reduced::average(count, total) / i64::from(div)).to_string()
        }
        (_, Reduced::Value(Value::Int(i))) => (i / i64::from(div)).to_string(),
        (_, Reduced::Value(Value::Uint(u))) => (u / u64::from(div)).to_string(),
        (_, Reduced::Value(v)) => value(v),
        (_, Reduced::Extreme(x)) => (x / i64::from(div)).to_string(),
    }
}

/// The map as one line, or nothing when it is empty.
pub fn map(data: &MapData, top: u32, div: u32) -> String {
    let shown = data.shown(top);
    if shown.is_empty() {
        return String::new();
    }
    let div = div.max(1);
    let ty = &data.info.value;
    let name = string(format!("@{}", data.info.name).as_bytes());
    let body = if data.info.keys.is_empty() {
        shown
            .iter()
            .map(|e| reduced(ty, &e.value, div))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        let elems: Vec<String> = shown
            .iter()
            .map(|e| {
                let key: Vec<String> = e.key.iter().map(text::key_field).collect();
                format!(
                    "{}: {}",
                    string(key.join(",").as_bytes()),
                    reduced(ty, &e.value, div)
                )
            })
            .collect();
        format!("{{{}}}", elems.join(", "))
    };
    message(kind(ty), &format!("{{{name}: {body}}}"))
}

fn buckets<F: Fn(usize) -> String>(counts: &[u64], bounds: F, div: u64) -> String {
    let Some(first) = counts.iter().position(|&c| c > 0) else {
        return "[]".to_string();
    };
    let last = counts.iter().rposition(|&c| c > 0).unwrap_or(first);
    let elems: Vec<String> = (first..=last)
        .map(|i| format!("{{{}\"count\": {}}}", bounds(i), counts[i] / div))
        .collect();
    format!("[{}]", elems.join(", "))
}

fn hist(counts: &[u64], div: u32) -> String {
    buckets(
        counts,
        |i| match i {
            0 => "\"max\": -1, ".to_string(),
            1 => "\"min\": 0, \"max\": 0, ".to_string(),
            2 => "\"min\": 1, \"max\": 1, ".to_string(),
            _ => {
                let low = 1u64.checked_shl(i as u32 - 2).unwrap_or(0);
                let high = 1u64.checked_shl(i as u32 - 1).unwrap_or(0).wrapping_sub(1);
                format!("\"min\": {low}, \"max\": {high}, ")
            }
        },
        u64::from(div.max(1)),
    )
}

/// `hist(x, bits)` buckets as bpftrace 0.21+ writes them.
fn hist_bits(counts: &[u64], div: u32, bits: u8) -> String {
    let n = 1u64 << bits;
    let start = |i: u64| {
        let power = (i >> bits).saturating_sub(1);
        (1u64 << power.min(63)).wrapping_mul(n + (i & (n - 1)))
    };
    buckets(
        counts,
        |i| {
            let i = i as u64;
            if i == 0 {
                "\"max\": -1, ".to_string()
            } else if i <= 2 << bits {
                format!("\"min\": {0}, \"max\": {0}, ", i - 1)
            } else {
                let low = start(i - 1);
                let high = start(i).wrapping_sub(1);
                format!("\"min\": {low}, \"max\": {high}, ")
            }
        },
        u64::from(div.max(1)),
    )
}

fn lhist(counts: &[u64], min: i64, max: i64, step: i64) -> String {
    let over = ((max - min) / step.max(1)) as usize + 1;
    buckets(
        counts,
        |i| {
            if i == 0 {
                format!("\"max\": {}, ", min - 1)
            } else if i == over {
                format!("\"min\": {max}, ")
            } else {
                let low = (i as i64 - 1) * step + min;
                format!("\"min\": {low}, \"max\": {}, ", low + step - 1)
            }
        },
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_map as data;

    // Expected lines are bpftrace 0.17's `-f json` output for the same data.
    #[test]
    fn pointers_in_structs_and_their_arrays_are_numbers() {
        // `struct { long id; void *ps[2]; }` holding { 11, { 0x10, 0x20 } }.
        let v = Value::Record(vec![
            ("id".into(), Value::Int(11)),
            (
                "ps".into(),
                Value::Array(vec![Value::Ptr(0x10), Value::Ptr(0x20)]),
            ),
        ]);
        assert_eq!(
            message("value", &value(&v)),
            "{\"type\": \"value\", \"data\": { \"id\": 11, \"ps\": [16,32] }}\n"
        );
    }

    #[test]
    fn maps_like_bpftrace() {
        let d = data(
            "x",
            vec![Type::Str(16), Type::U64],
            Type::Agg(AggKind::Count),
            vec![(
                vec![Value::Str(b"bpftrace".to_vec()), Value::Uint(32145)],
                Reduced::Value(Value::Uint(1)),
            )],
        );
        assert_eq!(
            map(&d, 0, 0),
            "{\"type\": \"map\", \"data\": {\"@x\": {\"bpftrace,32145\": 1}}}\n"
        );
        let d = data(
            "y",
            vec![],
            Type::I64,
            vec![(vec![], Reduced::Value(Value::Int(3)))],
        );
        assert_eq!(
            map(&d, 0, 0),
            "{\"type\": \"map\", \"data\": {\"@y\": 3}}\n"
        );
        let d = data(
            "t",
            vec![],
            Type::Tuple(vec![]),
            vec![(
                vec![],
                Reduced::Value(Value::Tuple(vec![
                    Value::Int(1),
                    Value::Str(b"a b".to_vec()),
                ])),
            )],
        );
        assert_eq!(
            map(&d, 0, 0),
            "{\"type\": \"map\", \"data\": {\"@t\": [1,\"a b\"]}}\n"
        );
        let empty = data("e", vec![Type::I64], Type::I64, vec![]);
        assert_eq!(map(&empty, 0, 0), "");
    }

    #[test]
    fn hist_lhist_and_stats() {
        let mut b = vec![0u64; 65];
        b[4] = 1;
        let d = data(
            "z",
            vec![Type::Str(2)],
            Type::Agg(AggKind::Hist { bits: 0 }),
            vec![(vec![Value::Str(b"k".to_vec())], Reduced::Buckets(b))],
        );
        assert_eq!(
            map(&d, 0, 0),
            "{\"type\": \"hist\", \"data\": {\"@z\": {\"k\": [{\"min\": 4, \"max\": 7, \"count\": 1}]}}}\n"
        );
        let d = data(
            "l",
            vec![],
            Type::Agg(AggKind::Lhist {
                min: 0,
                max: 10,
                step: 1,
            }),
            vec![(
                vec![],
                Reduced::Buckets(vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
            )],
        );
        assert_eq!(
            map(&d, 0, 0),
            "{\"type\": \"hist\", \"data\": {\"@l\": [{\"min\": 3, \"max\": 3, \"count\": 1}]}}\n"
        );
        let d = data(
            "s",
            vec![],
            Type::Agg(AggKind::Stats),
            vec![(vec![], Reduced::Stats { count: 1, total: 4 })],
        );
        assert_eq!(
            map(&d, 0, 0),
            "{\"type\": \"stats\", \"data\": {\"@s\": {\"count\": 1, \"average\": 4, \"total\": 4}}}\n"
        );
    }

    #[test]
    fn mac_addresses_are_quoted() {
        // bpftrace 0.17 prints a macaddr() map value bare, which is not
        // JSON; scorch quotes it as it does keys.
        let mac = Value::Mac([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]);
        assert_eq!(value(&mac), "\"00:1B:21:AA:BB:CC\"");
    }

    #[test]
    fn escaping() {
        assert_eq!(string(b"a\"b\\\n\t\x01"), "\"a\\\"b\\\\\\n\\t\\u0001\"");
        assert_eq!(
            message("printf", &string(b"a 5\n")),
            "{\"type\": \"printf\", \"data\": \"a 5\\n\"}\n"
        );
    }
}
