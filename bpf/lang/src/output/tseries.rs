//! `tseries()` maps: the per-CPU slots reduced to one value per interval,
//! and the chart current bpftrace prints:
//!
//! ```text
//! @:
//!              -5                                                  5
//! hh:mm:ss.ms  |___________________________________________________|
//! 10:39:49.300 *                         .                         | -5
//! 10:39:49.400 |    *                    .                         | -4
//! 10:39:49.500 |                         .                         | -
//!              v___________________________________________________v
//!              -5                                                  5
//! ```
//!
//! One row per interval, from the entry's first interval in the window (the
//! last `intervals` intervals before the map's latest) to the window's
//! end; `-` where nothing was recorded. The point sits at
//! `52 * (v - min) / (max - min)` (in `f32`, truncated), a `.` marks zero
//! when the range crosses it, and a range of one value is widened by one
//! on each side. Times are local wall-clock time, with as many decimals
//! as the interval's unit needs.

use std::collections::BTreeMap;

use super::{u64_at, Value};
use crate::sema::TseriesAgg;

/// Width of the chart, its two borders included.
const WIDTH: usize = 53;
/// Width of the column of the lower bound in the scale lines.
const PAD: usize = 21;

/// One entry's series over the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Each interval's epoch (TAI time / interval) and value.
    pub rows: Vec<(u64, Option<Value>)>,
    /// Length of an interval in nanoseconds.
    pub interval_ns: u64,
    /// Each row's time as printed; filled by the runtime, which knows the
    /// clocks (empty: the TAI nanoseconds are printed).
    pub times: Vec<String>,
}

/// The unit rows are labelled in: decimals shown and scale, as bpftrace
/// picks it from the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Its name in the header (`ms`); empty for whole seconds.
    pub name: &'static str,
    /// Decimals after the seconds.
    pub digits: usize,
    /// Nanoseconds per printed digit step.
    pub scale: u64,
}

impl Series {
    /// The unit the rows' times are printed in.
    pub fn unit(&self) -> Unit {
        // bpftrace divides the span by the number of gaps: 0 for one row.
        let step = if self.rows.len() > 1 {
            self.interval_ns
        } else {
            0
        };
        match step {
            s if s >= 1_000_000_000 => Unit {
                name: "",
                digits: 0,
                scale: 1_000_000_000,
            },
            s if s >= 1_000_000 => Unit {
                name: "ms",
                digits: 3,
                scale: 1_000_000,
            },
            s if s >= 1_000 => Unit {
                name: "μs",
                digits: 6,
                scale: 1_000,
            },
            _ => Unit {
                name: "ns",
                digits: 9,
                scale: 1,
            },
        }
    }

    /// TAI nanoseconds at the start of each row.
    pub fn row_times(&self) -> impl Iterator<Item = u64> + '_ {
        self.rows
            .iter()
            .map(|(epoch, _)| epoch.saturating_mul(self.interval_ns))
    }
}

/// The (epoch, value) one key's slot holds, from its per-CPU copies of
/// `{ value, meta, epoch }`: the latest epoch wins, and CPUs that wrote
/// that epoch combine as `agg` says.
pub(super) fn reduce_slot(
    values: &[Vec<u8>],
    agg: TseriesAgg,
    signed: bool,
) -> Option<(u64, i128)> {
    let mut by_epoch: BTreeMap<u64, (i128, u64)> = BTreeMap::new();
    for v in values {
        let epoch = u64_at(v, 16);
        if epoch == 0 {
            continue;
        }
        let raw = u64_at(v, 0);
        let value = if signed {
            i128::from(raw as i64)
        } else {
            i128::from(raw)
        };
        let meta = u64_at(v, 8);
        let Some(current) = by_epoch.get_mut(&epoch) else {
            by_epoch.insert(epoch, (value, meta));
            continue;
        };
        match agg {
            TseriesAgg::Last => {
                if meta > current.1 {
                    *current = (value, meta);
                }
            }
            TseriesAgg::Avg => {
                current.0 += value;
                current.1 = current.1.wrapping_add(meta);
            }
            TseriesAgg::Sum => current.0 += value,
            TseriesAgg::Max => current.0 = current.0.max(value),
            TseriesAgg::Min => current.0 = current.0.min(value),
        }
    }
    let (&epoch, &(value, meta)) = by_epoch.iter().next_back()?;
    let value = match agg {
        TseriesAgg::Avg if meta > 0 => value / i128::from(meta),
        _ => value,
    };
    Some((epoch, value))
}

/// The value as the map's integer type prints it (wrapping like C).
pub(super) fn value(v: i128, signed: bool) -> Value {
    if signed {
        Value::Int(v as i64)
    } else {
        Value::Uint(v as u64)
    }
}

/// The rows of one entry's `points` in the window ending at `last`.
pub(super) fn window(
    points: &BTreeMap<u64, Value>,
    last: u64,
    intervals: u64,
) -> Vec<(u64, Option<Value>)> {
    let start = last.saturating_sub(intervals.saturating_sub(1));
    let first = points
        .range(start..)
        .next()
        .map_or(last, |(e, _)| *e)
        .min(last);
    (first..=last)
        .map(|epoch| (epoch, points.get(&epoch).cloned()))
        .collect()
}

fn number(v: &Option<Value>) -> Option<i128> {
    match v {
        Some(Value::Int(i)) => Some(i128::from(*i)),
        Some(Value::Uint(u)) => Some(i128::from(*u)),
        _ => None,
    }
}

fn shown(v: &Option<Value>) -> String {
    match v {
        Some(v) => super::text::value(v),
        None => "null".to_string(),
    }
}

/// `s` padded with spaces to `width` bytes, as C++ streams pad.
fn pad_bytes(s: &str, width: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(s.len())))
}

/// The chart of one series, each line ending in a newline.
pub fn chart(s: &Series) -> String {
    if s.rows.is_empty() {
        return "<no data>".to_string();
    }
    // The bounds come from the intervals that hold a value; a window with
    // none is drawn around 0.
    let values = || {
        s.rows
            .iter()
            .map(|(_, v)| v)
            .filter(|v| number(v).is_some())
    };
    let mut low = values()
        .min_by_key(|v| number(v))
        .cloned()
        .unwrap_or(Some(Value::Int(0)));
    let mut high = values()
        .max_by_key(|v| number(v))
        .cloned()
        .unwrap_or(Some(Value::Int(0)));
    if low == high {
        low = step(&low, -1);
        high = step(&high, 1);
    }
    let unit = s.unit();
    let time_size = if unit.digits > 0 { 9 + unit.digits } else { 8 };
    let header = if unit.name.is_empty() {
        "hh:mm:ss".to_string()
    } else {
        format!("hh:mm:ss.{}", unit.name)
    };
    let scale = format!(
        "{:<PAD$}{:>right$}\n",
        shown(&low),
        shown(&high),
        right = WIDTH - PAD
    );
    let mut out = String::new();
    out.push_str(&" ".repeat(time_size + 1));
    out.push_str(&scale);
    out.push_str(&pad_bytes(&header, time_size + 1));
    out.push_str(&format!("|{}|\n", "_".repeat(WIDTH - 2)));
    let (l, h) = (number(&low), number(&high));
    let zero = match (l, h) {
        (Some(l), Some(h)) if l < 0 && h > 0 => {
            (WIDTH as f32 * (-l) as f32 / (h - l) as f32) as usize
        }
        _ => 0,
    };
    let times: Vec<u64> = s.row_times().collect();
    for (i, (_, v)) in s.rows.iter().enumerate() {
        let time = s
            .times
            .get(i)
            .cloned()
            .unwrap_or_else(|| times[i].to_string());
        let mut line = vec![b' '; WIDTH];
        line[0] = b'|';
        line[WIDTH - 1] = b'|';
        if zero > 0 && zero < WIDTH {
            line[zero] = b'.';
        }
        out.push_str(&time);
        out.push(' ');
        match (number(v), l, h) {
            (Some(n), Some(l), Some(h)) => {
                let at = if l != h {
                    ((WIDTH - 1) as f32 * (n - l) as f32 / (h - l) as f32) as i64
                } else {
                    (WIDTH / 2) as i64
                };
                line[at.clamp(0, WIDTH as i64 - 1) as usize] = b'*';
                out.push_str(&String::from_utf8_lossy(&line));
                out.push(' ');
                out.push_str(&shown(v));
            }
            _ => {
                out.push_str(&String::from_utf8_lossy(&line));
                out.push_str(" -");
            }
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(time_size + 1));
    out.push_str(&format!("v{}v\n", "_".repeat(WIDTH - 2)));
    out.push_str(&" ".repeat(time_size + 1));
    out.push_str(&scale);
    out
}

/// `v` moved by one, unless that leaves its type's range.
fn step(v: &Option<Value>, by: i64) -> Option<Value> {
    match v {
        Some(Value::Int(i)) => Some(Value::Int(i.checked_add(by).unwrap_or(*i))),
        Some(Value::Uint(u)) => Some(Value::Uint(u.checked_add_signed(by).unwrap_or(*u))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(first: u64, values: &[Option<i64>], interval_ns: u64, times: &[&str]) -> Series {
        Series {
            rows: values
                .iter()
                .enumerate()
                .map(|(i, v)| (first + i as u64, v.map(Value::Int)))
                .collect(),
            interval_ns,
            times: times.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// bpftrace's documented zigzag (`tseries(@c, 100ms, 20)`), first rows.
    #[test]
    fn zigzag_marks_zero_and_scales_points() {
        let s = series(
            1,
            &[Some(-5), Some(-4), Some(0), Some(1), Some(5)],
            100_000_000,
            &[
                "10:39:49.300",
                "10:39:49.400",
                "10:39:49.800",
                "10:39:49.900",
                "10:39:50.300",
            ],
        );
        let expected = "             -5                                                  5
hh:mm:ss.ms  |___________________________________________________|
10:39:49.300 *                         .                         | -5
10:39:49.400 |    *                    .                         | -4
10:39:49.800 |                         *                         | 0
10:39:49.900 |                         .    *                    | 1
10:39:50.300 |                         .                         * 5
             v___________________________________________________v
             -5                                                  5
";
        assert_eq!(chart(&s), expected);
    }

    /// bpftrace's unit test `print_tseries_map`: a window of five 1 ms
    /// intervals in which the last one has no value.
    #[test]
    fn missing_intervals_print_a_dash() {
        let mut points = BTreeMap::new();
        for (epoch, v) in [(1u64, 1i64), (2, 2), (3, 3), (4, 4), (5, 5)] {
            points.insert(epoch, Value::Int(v));
        }
        let rows = window(&points, 6, 5);
        assert_eq!(rows.first().map(|r| r.0), Some(2));
        assert_eq!(rows.len(), 5);
        let s = Series {
            rows,
            interval_ns: 1_000_000,
            times: ["22.612", "22.613", "22.614", "22.615", "22.616"]
                .iter()
                .map(|t| format!("%H:%M:{t}"))
                .collect(),
        };
        let expected = "             2                                                   5
hh:mm:ss.ms  |___________________________________________________|
%H:%M:22.612 *                                                   | 2
%H:%M:22.613 |                *                                  | 3
%H:%M:22.614 |                                 *                 | 4
%H:%M:22.615 |                                                   * 5
%H:%M:22.616 |                                                   | -
             v___________________________________________________v
             2                                                   5
";
        assert_eq!(chart(&s), expected);
    }

    /// Bounds come from the intervals with a value, whichever come first;
    /// a window with no value at all is drawn around 0.
    #[test]
    fn empty_intervals_never_make_the_bounds() {
        let times = ["10:00:00", "10:00:01", "10:00:02"];
        let s = series(7, &[None, Some(3), None], 1_000_000_000, &times);
        let expected = "         2                                                   4
hh:mm:ss |___________________________________________________|
10:00:00 |                                                   | -
10:00:01 |                         *                         | 3
10:00:02 |                                                   | -
         v___________________________________________________v
         2                                                   4
";
        assert_eq!(chart(&s), expected);
        let s = series(7, &[None, None], 1_000_000_000, &times[..2]);
        let expected = "         -1                                                  1
hh:mm:ss |___________________________________________________|
10:00:00 |                         .                         | -
10:00:01 |                         .                         | -
         v___________________________________________________v
         -1                                                  1
";
        assert_eq!(chart(&s), expected);
    }

    /// One value is widened to a range of three; whole-second intervals
    /// print no decimals.
    #[test]
    fn one_value_sits_in_the_middle() {
        let s = series(
            7,
            &[Some(9), Some(9)],
            1_000_000_000,
            &["10:00:00", "10:00:01"],
        );
        let expected = "         8                                                  10
hh:mm:ss |___________________________________________________|
10:00:00 |                         *                         | 9
10:00:01 |                         *                         | 9
         v___________________________________________________v
         8                                                  10
";
        assert_eq!(chart(&s), expected);
    }

    #[test]
    fn slots_reduce_across_cpus_by_aggregation() {
        let slot = |value: i64, meta: u64, epoch: u64| {
            let mut v = Vec::new();
            for word in [value as u64, meta, epoch] {
                v.extend_from_slice(&word.to_ne_bytes());
            }
            v
        };
        let cpus = vec![slot(10, 2, 5), slot(4, 1, 5), slot(99, 9, 4), vec![0; 24]];
        assert_eq!(reduce_slot(&cpus, TseriesAgg::Avg, true), Some((5, 4)));
        assert_eq!(reduce_slot(&cpus, TseriesAgg::Sum, true), Some((5, 14)));
        assert_eq!(reduce_slot(&cpus, TseriesAgg::Min, true), Some((5, 4)));
        assert_eq!(reduce_slot(&cpus, TseriesAgg::Max, true), Some((5, 10)));
        // The last value: the write with the latest timestamp.
        assert_eq!(reduce_slot(&cpus, TseriesAgg::Last, true), Some((5, 10)));
        assert_eq!(reduce_slot(&[vec![0; 24]], TseriesAgg::Last, true), None);
    }
}
