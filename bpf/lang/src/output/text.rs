//! bpftrace's text output.
//!
//! Byte for byte what bpftrace 0.17 prints (the version installed beside
//! scorch, and the layout every later release kept for these forms):
//!
//! ```text
//! @[bash]: 12                      count/sum/min/max/plain: one line each,
//! @[sshd]: 30                      sorted by value; then a newline
//!
//! @bytes:                          hist/lhist: name, then one row per
//! [4, 8)        1 |@@@@@@@@@@@@|   bucket from the first to the last
//!                                  non-empty one; a blank line between keys
//! @s: count 2, average 15, total 30   stats/avg: followed by a blank line
//! ```
//!
//! Rows are `format!("{:<16}{:>8} |{:<52}|")` of the bucket label, its
//! count and a bar scaled to the largest bucket.

use super::{MapData, Reduced, Value};
use crate::sema::{AggKind, Type};

/// Width of a histogram bar at its longest.
const BAR: usize = 52;

/// A value as bpftrace prints it in text.
pub fn value(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Uint(u) => u.to_string(),
        Value::Ptr(p) => format!("{p:#x}"),
        Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
        Value::Tuple(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("({})", items.join(", "))
        }
        Value::Stack(stack) => stack.render(VALUE_INDENT),
        Value::Sym(sym) => match &sym.name {
            Some(name) => name.clone(),
            // C++'s `(void *)0` prints as `0`.
            None if sym.addr == 0 => "0".to_string(),
            None => format!("{:#x}", sym.addr),
        },
        Value::Inet(text) => text.clone(),
        Value::Mac(b) => format!(
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        ),
        Value::Buf(bytes) => crate::printf::escape_bytes(bytes, false),
        Value::Time(t) => t.text.clone().unwrap_or_else(|| t.nsecs.to_string()),
        Value::Record(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(name, v)| format!(".{name} = {}", member(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => array(items, member),
    }
}

/// A member of a record printed as a value: pointers as signed numbers,
/// as bpftrace does.
pub fn member(v: &Value) -> String {
    match v {
        Value::Ptr(p) => (*p as i64).to_string(),
        other => value(other),
    }
}

/// `[a,b,c]`, as bpftrace prints arrays.
fn array(items: &[Value], show: fn(&Value) -> String) -> String {
    let items: Vec<String> = items.iter().map(show).collect();
    format!("[{}]", items.join(","))
}

/// Indent of stack frames in `printf`, `print` and map values.
pub const VALUE_INDENT: usize = 8;
/// Indent of stack frames in map keys (`@[\n    f+1\n]: 3`).
pub const KEY_INDENT: usize = 4;

/// A map key field as bpftrace prints it.
pub fn key_field(v: &Value) -> String {
    match v {
        Value::Stack(stack) => stack.render(KEY_INDENT),
        // Records in keys print without spaces.
        Value::Record(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(name, v)| format!(".{name}={}", key_field(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => array(items, key_field),
        other => value(other),
    }
}

/// `@name[k1, k2]`, or `@name` without keys.
fn key(name: &str, key: &[Value]) -> String {
    if key.is_empty() {
        format!("@{name}")
    } else {
        let fields: Vec<String> = key.iter().map(key_field).collect();
        format!("@{name}[{}]", fields.join(", "))
    }
}

fn divide(v: &Value, div: u32) -> String {
    let div = div.max(1);
    match v {
        Value::Int(i) => (i / i64::from(div)).to_string(),
        Value::Uint(u) => (u / u64::from(div)).to_string(),
        other => value(other),
    }
}

/// The whole map as `print(@m, top, div)` and the end of a run print it.
pub fn map(data: &MapData, top: u32, div: u32) -> String {
    let name = &data.info.name;
    let shown = data.shown(top);
    let div = div.max(1);
    match &data.info.value {
        // A chart per key, each followed by a blank line; bpftrace
        // ignores `top` and `div` here.
        Type::Agg(AggKind::Tseries { .. }) => data
            .entries
            .iter()
            .map(|e| match &e.value {
                Reduced::Series(series) => {
                    format!(
                        "{}:\n{}\n",
                        key(name, &e.key),
                        super::tseries::chart(series)
                    )
                }
                _ => String::new(),
            })
            .collect(),
        Type::Agg(kind) if kind.is_histogram() => {
            let elems: Vec<String> = shown
                .iter()
                .map(|e| {
                    let rows = match (&e.value, kind) {
                        (Reduced::Buckets(b), AggKind::Lhist { min, max, step }) => {
                            lhist(b, *min, *max, *step)
                        }
                        (Reduced::Buckets(b), AggKind::Hist { bits }) if *bits > 0 => {
                            hist_bits(b, div, *bits)
                        }
                        (Reduced::Buckets(b), _) => hist(b, div),
                        _ => String::new(),
                    };
                    format!("{}: \n{rows}", key(name, &e.key))
                })
                .collect();
            format!("{}\n", elems.join("\n"))
        }
        Type::Agg(kind @ (AggKind::Avg | AggKind::Stats)) => {
            let elems: Vec<String> = shown
                .iter()
                .map(|e| {
                    let Reduced::Stats { count, total } = e.value else {
                        return String::new();
                    };
                    let average = Reduced::average(count, total);
                    let text = if *kind == AggKind::Stats {
                        format!("count {count}, average {average}, total {total}")
                    } else {
                        (average / i64::from(div)).to_string()
                    };
                    format!("{}: {text}", key(name, &e.key))
                })
                .collect();
            format!("{}\n\n", elems.join("\n"))
        }
        _ => {
            let elems: Vec<String> = shown
                .iter()
                .map(|e| {
                    let text = match &e.value {
                        Reduced::Value(v) => divide(v, div),
                        Reduced::Extreme(x) => (x / i64::from(div)).to_string(),
                        _ => String::new(),
                    };
                    format!("{}: {text}", key(name, &e.key))
                })
                .collect();
            format!("{}\n", elems.join("\n"))
        }
    }
}

/// One histogram row.
fn row(label: &str, count: u64, bucket: u64, max: u64) -> String {
    let width = (bucket as f32 / max as f32 * BAR as f32) as usize;
    let bar = "@".repeat(width.min(BAR));
    format!("{label:<16}{count:>8} |{bar:<BAR$}|\n")
}

/// `2^power` with a K/M/G/T suffix, as hist labels show it.
fn power_label(power: u32) -> String {
    let (suffix, rest) = match power {
        40.. => ("T", power - 40),
        30.. => ("G", power - 30),
        20.. => ("M", power - 20),
        10.. => ("K", power - 10),
        _ => ("", power),
    };
    format!("{}{suffix}", 1u64.checked_shl(rest).unwrap_or(0))
}

/// The rows of a `hist()`: `(..., 0)`, `[0]`, `[1]`, `[2, 4)`, …
pub fn hist(buckets: &[u64], div: u32) -> String {
    let Some(first) = buckets.iter().position(|&c| c > 0) else {
        return String::new();
    };
    let last = buckets.iter().rposition(|&c| c > 0).unwrap_or(first);
    let max = buckets.iter().copied().max().unwrap_or(1);
    let mut out = String::new();
    for (i, &count) in buckets.iter().enumerate().take(last + 1).skip(first) {
        let label = match i {
            0 => "(..., 0)".to_string(),
            1 => "[0]".to_string(),
            2 => "[1]".to_string(),
            _ => format!(
                "[{}, {})",
                power_label(i as u32 - 2),
                power_label(i as u32 - 1)
            ),
        };
        out.push_str(&row(&label, count / u64::from(div.max(1)), count, max));
    }
    out
}

/// The lower bound of bucket `index - 1` of `hist(x, bits)`: each power
/// of two `2^p` is split in `n = 2^bits` intervals of `2^(p - bits)`.
/// With a K/M/G/T/P/E suffix for the largest power of 1024, as
/// bpftrace's `hist_index_label`.
fn hist_bits_label(index: u32, bits: u8) -> String {
    let n = 1u64 << bits;
    let interval = u64::from(index) & (n - 1);
    let mut power = (index >> bits).saturating_sub(1);
    let decade = power / 10;
    let suffix = ["", "K", "M", "G", "T", "P", "E"]
        .get(decade as usize)
        .copied()
        .unwrap_or("");
    power -= 10 * decade;
    format!("{}{suffix}", (1u64 << power) * (n + interval))
}

/// The rows of a `hist(x, bits)` with `bits > 0` (bpftrace 0.21+):
/// `(..., 0)`, single values `[v]` below `2^(bits + 1)`, then
/// `[lo, hi)` sub-intervals.
pub fn hist_bits(buckets: &[u64], div: u32, bits: u8) -> String {
    let Some(first) = buckets.iter().position(|&c| c > 0) else {
        return String::new();
    };
    let last = buckets.iter().rposition(|&c| c > 0).unwrap_or(first);
    let max = buckets.iter().copied().max().unwrap_or(1);
    let mut out = String::new();
    for (i, &count) in buckets.iter().enumerate().take(last + 1).skip(first) {
        let i32_ = i as u32;
        let label = if i == 0 {
            "(..., 0)".to_string()
        } else if i32_ <= (2 << bits) {
            format!("[{}]", i - 1)
        } else {
            format!(
                "[{}, {})",
                hist_bits_label(i32_ - 1, bits),
                hist_bits_label(i32_, bits)
            )
        };
        out.push_str(&row(&label, count / u64::from(div.max(1)), count, max));
    }
    out
}

/// A linear bucket bound, with K or M when it is a round multiple.
fn linear_label(n: i64) -> String {
    const KILO: i64 = 1024;
    const MEGA: i64 = 1024 * 1024;
    if n == 0 {
        "0".to_string()
    } else if n % MEGA == 0 {
        format!("{}M", n / MEGA)
    } else if n % KILO == 0 {
        format!("{}K", n / KILO)
    } else {
        n.to_string()
    }
}

/// The rows of an `lhist()`: `(..., min)`, `[a, b)`, …, `[max, ...)`.
pub fn lhist(buckets: &[u64], min: i64, max: i64, step: i64) -> String {
    let Some(first) = buckets.iter().position(|&c| c > 0) else {
        return String::new();
    };
    let last = buckets.iter().rposition(|&c| c > 0).unwrap_or(first);
    let top = buckets.iter().copied().max().unwrap_or(1);
    let over = ((max - min) / step.max(1)) as usize + 1;
    let mut out = String::new();
    for (i, &count) in buckets.iter().enumerate().take(last + 1).skip(first) {
        let label = if i == 0 {
            format!("(..., {})", linear_label(min))
        } else if i == over {
            format!("[{}, ...)", linear_label(max))
        } else {
            let lo = (i as i64 - 1) * step + min;
            format!("[{}, {})", linear_label(lo), linear_label(lo + step))
        };
        out.push_str(&row(&label, count, count, top));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_map as data;

    // Expected texts are bpftrace 0.17's output for the same data.
    #[test]
    fn plain_maps() {
        let d = data(
            "b",
            vec![Type::I64],
            Type::I64,
            vec![
                (vec![Value::Int(2)], Reduced::Value(Value::Int(3))),
                (vec![Value::Int(1)], Reduced::Value(Value::Int(5))),
            ],
        );
        assert_eq!(map(&d, 0, 0), "@b[2]: 3\n@b[1]: 5\n");
        let d = data(
            "a",
            vec![],
            Type::Agg(AggKind::Count),
            vec![(vec![], Reduced::Value(Value::Uint(1)))],
        );
        assert_eq!(map(&d, 0, 0), "@a: 1\n");
        let d = data(
            "c",
            vec![Type::I64, Type::Str(2)],
            Type::Tuple(vec![Type::I64, Type::Str(4)]),
            vec![(
                vec![Value::Int(1), Value::Str(b"x".to_vec())],
                Reduced::Value(Value::Tuple(vec![
                    Value::Int(2),
                    Value::Str(b"q\"z".to_vec()),
                ])),
            )],
        );
        assert_eq!(map(&d, 0, 0), "@c[1, x]: (2, q\"z)\n");
        let empty = data("e", vec![Type::I64], Type::I64, vec![]);
        assert_eq!(map(&empty, 0, 0), "\n");
    }

    #[test]
    fn stats_and_avg_end_with_a_blank_line() {
        let d = data(
            "s",
            vec![],
            Type::Agg(AggKind::Stats),
            vec![(
                vec![],
                Reduced::Stats {
                    count: 2,
                    total: 30,
                },
            )],
        );
        assert_eq!(map(&d, 0, 0), "@s: count 2, average 15, total 30\n\n");
        let d = data(
            "av",
            vec![Type::Str(2)],
            Type::Agg(AggKind::Avg),
            vec![
                (
                    vec![Value::Str(b"b".to_vec())],
                    Reduced::Stats { count: 1, total: 1 },
                ),
                (
                    vec![Value::Str(b"a".to_vec())],
                    Reduced::Stats { count: 1, total: 3 },
                ),
            ],
        );
        assert_eq!(map(&d, 0, 0), "@av[b]: 1\n@av[a]: 3\n\n");
    }

    #[test]
    fn hist_rows_and_labels() {
        let mut b = vec![0u64; 65];
        b[8] = 1; // [64, 128)
        b[12] = 1; // [1K, 2K)
        let d = data(
            "h",
            vec![],
            Type::Agg(AggKind::Hist { bits: 0 }),
            vec![(vec![], Reduced::Buckets(b))],
        );
        let bar = "@".repeat(52);
        let blank = " ".repeat(52);
        assert_eq!(
            map(&d, 0, 0),
            format!(
                "@h: \n[64, 128)              1 |{bar}|\n[128, 256)             0 |{blank}|\n\
                 [256, 512)             0 |{blank}|\n[512, 1K)              0 |{blank}|\n\
                 [1K, 2K)               1 |{bar}|\n\n"
            )
        );
        let mut b = vec![0u64; 65];
        b[0] = 1;
        b[1] = 1;
        b[2] = 1;
        assert_eq!(
            hist(&b, 1),
            format!("(..., 0)               1 |{bar}|\n[0]                    1 |{bar}|\n[1]                    1 |{bar}|\n")
        );
        assert_eq!(power_label(23), "8M");
        assert_eq!(power_label(41), "2T");
    }

    #[test]
    fn hist_sub_bucket_labels() {
        // bpftrace's own example: k = 2, index 27 starts at 224.
        assert_eq!(hist_bits_label(27, 2), "224");
        assert_eq!(hist_bits_label(8, 2), "8");
        // 2^20 with k = 1 starts at index (20 << 1); the suffix follows
        // the interval size (2^19), so bpftrace says `1024K`, not `1M`.
        assert_eq!(hist_bits_label(20 << 1, 1), "1024K");
        assert_eq!(hist_bits_label((20 << 1) + 1, 1), "1536K");
        let mut b = vec![0u64; crate::output::hist_buckets(1)];
        b[3] = 1; // [2]
        b[6] = 2; // [6, 8)
        let half = format!("{:<52}", "@".repeat(26));
        let empty = " ".repeat(52);
        let full = "@".repeat(52);
        let want = format!(
            "[2]                    1 |{half}|\n[3]                    0 |{empty}|\n\
             [4, 6)                 0 |{empty}|\n[6, 8)                 2 |{full}|\n"
        );
        assert_eq!(hist_bits(&b, 1, 1), want);
    }

    #[test]
    fn stacks_print_as_bpftrace_does() {
        use crate::output::Stack;
        use crate::sema::{StackMode, StackType};
        let stack = |mode| Stack {
            ty: StackType {
                user: false,
                mode,
                limit: 2,
            },
            raw: 7,
            frames: Some(vec![
                (0xffff_ffff_8100_0010, "a+16".into()),
                (0xffff_ffff_8100_0020, "b+32".into()),
                (0xffff_ffff_8100_0030, "c+48".into()),
            ]),
        };
        assert_eq!(
            value(&Value::Stack(stack(StackMode::Bpftrace))),
            "\n        a+16\n        b+32\n"
        );
        assert_eq!(
            key_field(&Value::Stack(stack(StackMode::Bpftrace))),
            "\n    a+16\n    b+32\n"
        );
        assert_eq!(
            value(&Value::Stack(stack(StackMode::Perf))),
            "\n\tffffffff81000010 a+16\n\tffffffff81000020 b+32\n"
        );
        assert_eq!(
            value(&Value::Stack(stack(StackMode::Raw))),
            "\nffffffff81000010\nffffffff81000020\n"
        );
        let unread = Stack {
            frames: None,
            ..stack(StackMode::Bpftrace)
        };
        assert_eq!(value(&Value::Stack(unread)), "");
    }

    #[test]
    fn lhist_rows_and_labels() {
        // lhist(x, 0, 10, 3) after 15, -1, 4, 9.
        let b = vec![1, 0, 1, 0, 2];
        let half = format!("{:<52}", "@".repeat(26));
        let full = "@".repeat(52);
        let blank = " ".repeat(52);
        assert_eq!(
            lhist(&b, 0, 10, 3),
            format!(
                "(..., 0)               1 |{half}|\n[0, 3)                 0 |{blank}|\n\
                 [3, 6)                 1 |{half}|\n[6, 9)                 0 |{blank}|\n\
                 [10, ...)              2 |{full}|\n"
            )
        );
        assert_eq!(linear_label(2048), "2K");
        assert_eq!(linear_label(3 * 1024 * 1024), "3M");
        assert_eq!(linear_label(1000), "1000");
    }

    #[test]
    fn keys_and_values_print_without_quotes() {
        assert_eq!(
            value(&Value::Tuple(vec![
                Value::Uint(1),
                Value::Str(b"a b".to_vec())
            ])),
            "(1, a b)"
        );
        assert_eq!(value(&Value::Ptr(4096)), "0x1000");
    }
}
