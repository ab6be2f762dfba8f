//! The types of bpftrace values, as the compiler sees them.
//!
//! Every value has a fixed size known at compile time, because it has to
//! fit in a BPF register, a stack slot or a map entry:
//!
//! - **Integers** of 1, 2, 4 or 8 bytes, signed or not. Arithmetic is done
//!   on 64 bits; the size matters where values are loaded and printed.
//! - **Strings** are NUL-terminated buffers of a fixed size (`string[16]`
//!   for `comm`, `string[64]` for `str()` by default).
//! - **Tuples** group values: `(pid, comm)`.
//! - **Pointers** come from the kernel (a `char *` tracepoint field,
//!   `curtask`) and are only read through helpers: by `str()`, or member
//!   by member with `->` when their C type is known.
//! - **Structs and arrays in memory** (`curtask->se`) are held as their
//!   address until a member or element is read.
//! - **`args`** is the record of a tracepoint's fields.
//! - **Aggregations** (`count()`, `hist()`, …) are what a map holds when an
//!   aggregating function is assigned to it; they are never plain values.
//!
//! Maps store every integer as 8 bytes, like bpftrace; see [`Type::widened`].

use std::fmt;
use std::sync::Arc;

use super::ctypes::CTypeId;
use super::records::Record;

/// An integer type: its size in bytes (1, 2, 4 or 8) and signedness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntType {
    /// Size in bytes.
    pub size: u8,
    /// Whether the value is two's-complement signed.
    pub signed: bool,
}

impl IntType {
    /// `int64`, the type of integer literals and most arithmetic.
    pub const I64: IntType = IntType {
        size: 8,
        signed: true,
    };
    /// `uint64`.
    pub const U64: IntType = IntType {
        size: 8,
        signed: false,
    };
    /// `uint32`.
    pub const U32: IntType = IntType {
        size: 4,
        signed: false,
    };
    /// `int32`.
    pub const I32: IntType = IntType {
        size: 4,
        signed: true,
    };

    /// The result type of arithmetic on `self` and `other`: C's usual
    /// arithmetic conversions, computed on 64 bits.
    pub fn arith(self, other: IntType) -> IntType {
        let signed = match (self.signed, other.signed) {
            (true, true) => true,
            (false, false) => false,
            // An unsigned operand smaller than the signed one converts to it.
            (true, false) => other.size < self.size,
            (false, true) => self.size < other.size,
        };
        IntType { size: 8, signed }
    }
}

/// What an aggregating function leaves in a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggKind {
    /// `count()`
    Count,
    /// `sum(x)`; signed when `x` is.
    Sum {
        /// Whether the sum is printed as signed.
        signed: bool,
    },
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `stats(x)`: count, average and total.
    Stats,
    /// `hist(x[, bits])`: power-of-two buckets, each split in `2^bits`.
    Hist {
        /// Sub-buckets per power of two, as a power of two (0 to 5).
        bits: u8,
    },
    /// `tseries(x, interval, intervals[, agg])`: the value of each of the
    /// last `intervals` intervals of time.
    Tseries {
        /// Length of one interval in nanoseconds.
        interval_ns: u64,
        /// How many intervals are kept.
        intervals: u64,
        /// How the values of one interval combine.
        agg: TseriesAgg,
        /// Whether the values print as signed.
        signed: bool,
    },
    /// `lhist(x, min, max, step)`: linear buckets.
    Lhist {
        /// Lower bound of the first bucket.
        min: i64,
        /// Upper bound of the last bucket.
        max: i64,
        /// Width of each bucket.
        step: i64,
    },
}

impl AggKind {
    /// The function that produces this aggregation.
    pub fn function(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum { .. } => "sum",
            AggKind::Avg => "avg",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Stats => "stats",
            AggKind::Hist { .. } => "hist",
            AggKind::Lhist { .. } => "lhist",
            AggKind::Tseries { .. } => "tseries",
        }
    }

    /// Whether the map is indexed by a bucket number after the user's key
    /// (a histogram's bucket, a time series' interval slot).
    pub fn is_histogram(self) -> bool {
        matches!(
            self,
            AggKind::Hist { .. } | AggKind::Lhist { .. } | AggKind::Tseries { .. }
        )
    }
}

/// How `tseries()` combines the values recorded in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TseriesAgg {
    /// The last value recorded (the default).
    Last,
    /// `"avg"`: their average.
    Avg,
    /// `"max"`
    Max,
    /// `"min"`
    Min,
    /// `"sum"`
    Sum,
}

/// Which address space a pointer points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrSpace {
    /// Kernel memory: read with `probe_read_kernel`.
    Kernel,
    /// User memory: read with `probe_read_user`.
    User,
}

/// How a stack is printed: `kstack(perf)`, `kstack(raw)`, or bpftrace's
/// own layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StackMode {
    /// `name+offset`, indented, one frame per line.
    Bpftrace,
    /// `\tADDR name+offset`, as `perf script` prints.
    Perf,
    /// Bare hex addresses.
    Raw,
}

/// A `kstack` or `ustack`: which stack, how deep, how printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StackType {
    /// A user-space stack (`ustack`).
    pub user: bool,
    /// How it prints.
    pub mode: StackMode,
    /// Most frames kept (127 by default, as bpftrace).
    pub limit: u32,
}

impl StackType {
    /// Most frames a stack may have: the kernel's `perf_event_max_stack`.
    pub const MAX_LIMIT: u32 = 127;
}

/// The type of a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// No value: statements and calls such as `printf()`.
    Void,
    /// An integer.
    Int(IntType),
    /// A NUL-terminated string in a buffer of this many bytes.
    Str(u32),
    /// A tuple of values.
    Tuple(Vec<Type>),
    /// A pointer; `target` is the C type it points to, for messages.
    Ptr {
        /// What it points to, as C spells it (`const char`).
        target: String,
        /// Where it points.
        space: AddrSpace,
        /// The pointed-to C type, when known: what `->` and `*` read.
        to: Option<CTypeId>,
    },
    /// A struct, union or (non-`char`) array in kernel or user memory,
    /// held as its address: `curtask->se`. Members and elements are read
    /// from it; it is not copied whole.
    Mem {
        /// Its C type.
        id: CTypeId,
        /// As C spells it.
        name: String,
        /// Its size in bytes.
        size: u32,
        /// Where it lies.
        space: AddrSpace,
        /// Where the pointers in it point: `space`, except in a copy of a
        /// struct read from user memory.
        pointers: AddrSpace,
    },
    /// The `args` record of a tracepoint.
    Args,
    /// The contents of an aggregation map.
    Agg(AggKind),
    /// A stack: its id in a stack-trace map (and, for user stacks, the
    /// process id in the high 32 bits), as bpftrace stores it.
    Stack(StackType),
    /// `ksym(addr)`: a kernel address printed as its symbol's name.
    Ksym,
    /// `usym(addr)`: a user address and the pid it belongs to (16 bytes),
    /// printed as its symbol's name.
    Usym,
    /// `strftime(fmt, nsecs)`: a boot-time timestamp in nanoseconds,
    /// printed as wall-clock time with `strftime_formats[id]`.
    Strftime(u32),
    /// `buf(p, len)`: up to this many bytes, stored after a `u64` count
    /// of the bytes read.
    Buf(u32),
    /// `ntop([af, ]addr)`: an address family (`u64`) and 16 bytes of
    /// address, printed as `inet_ntop` does.
    Inet,
    /// `macaddr(addr)`: 6 bytes (and 2 of zeroed padding), printed as
    /// `AA:BB:CC:DD:EE:FF`.
    Mac,
    /// A copy of a struct or union's bytes, stored whole.
    Record(Arc<Record>),
}

impl Type {
    /// `int64`.
    pub const I64: Type = Type::Int(IntType::I64);
    /// `uint64`.
    pub const U64: Type = Type::Int(IntType::U64);

    /// The integer type, if this is one.
    pub fn as_int(&self) -> Option<IntType> {
        match self {
            Type::Int(int) => Some(*int),
            _ => None,
        }
    }

    /// Whether this is an integer.
    pub fn is_int(&self) -> bool {
        matches!(self, Type::Int(_))
    }

    /// Whether this is a string.
    pub fn is_str(&self) -> bool {
        matches!(self, Type::Str(_))
    }

    /// Whether an integer or a pointer: a value that fits in a register.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Type::Int(_) | Type::Ptr { .. } | Type::Stack(_) | Type::Ksym | Type::Strftime(_)
        )
    }

    /// Whether values of this type can be stored in a map, a variable or a
    /// tuple.
    pub fn is_storable(&self) -> bool {
        match self {
            Type::Int(_)
            | Type::Str(_)
            | Type::Ptr { .. }
            | Type::Stack(_)
            | Type::Ksym
            | Type::Usym
            | Type::Strftime(_)
            | Type::Buf(_)
            | Type::Inet
            | Type::Mac
            | Type::Record(_) => true,
            Type::Tuple(items) => items.iter().all(Type::is_storable),
            Type::Void | Type::Args | Type::Agg(_) | Type::Mem { .. } => false,
        }
    }

    /// The type as stored in a map: integers widened to 8 bytes (also
    /// inside tuples), as bpftrace does.
    pub fn widened(&self) -> Type {
        match self {
            Type::Int(int) => Type::Int(IntType {
                size: 8,
                signed: int.signed,
            }),
            Type::Tuple(items) => Type::Tuple(items.iter().map(Type::widened).collect()),
            other => other.clone(),
        }
    }

    /// The type both `self` and `other` fit in, if they are compatible:
    /// integers widen, strings take the larger size, tuples go element by
    /// element.
    pub fn unify(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Int(a), Type::Int(b)) => Some(Type::Int(IntType {
                size: a.size.max(b.size),
                signed: a.signed || b.signed,
            })),
            (Type::Str(a), Type::Str(b)) => Some(Type::Str(*a.max(b))),
            (Type::Tuple(a), Type::Tuple(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .map(|(x, y)| x.unify(y))
                .collect::<Option<Vec<_>>>()
                .map(Type::Tuple),
            (Type::Ptr { space: a, .. }, Type::Ptr { space: b, .. }) if a == b => {
                Some(self.clone())
            }
            (Type::Agg(a), Type::Agg(b)) => match (a, b) {
                (AggKind::Sum { signed: x }, AggKind::Sum { signed: y }) => {
                    Some(Type::Agg(AggKind::Sum { signed: *x || *y }))
                }
                (
                    AggKind::Tseries {
                        interval_ns,
                        intervals,
                        agg,
                        signed: x,
                    },
                    AggKind::Tseries { signed: y, .. },
                ) if tseries_difference(a, b).is_none() => Some(Type::Agg(AggKind::Tseries {
                    interval_ns: *interval_ns,
                    intervals: *intervals,
                    agg: *agg,
                    signed: *x || *y,
                })),
                _ if a == b => Some(self.clone()),
                _ => None,
            },
            _ if self == other => Some(self.clone()),
            _ => None,
        }
    }

    /// Size in bytes when stored, with tuple fields aligned to their size.
    pub fn size(&self) -> u32 {
        match self {
            Type::Void | Type::Args | Type::Agg(_) => 0,
            Type::Mem { size, .. } => *size,
            Type::Int(int) => u32::from(int.size),
            Type::Str(size) => *size,
            Type::Ptr { .. } | Type::Stack(_) | Type::Ksym | Type::Strftime(_) => 8,
            Type::Usym => 16,
            Type::Buf(n) => 8 + *n,
            Type::Inet => 24,
            Type::Mac => 8,
            Type::Record(r) => r.size,
            Type::Tuple(items) => tuple_layout(items).1,
        }
    }

    /// Alignment when stored in a tuple.
    pub fn align(&self) -> u32 {
        match self {
            Type::Int(int) => u32::from(int.size),
            Type::Ptr { .. }
            | Type::Stack(_)
            | Type::Ksym
            | Type::Usym
            | Type::Strftime(_)
            | Type::Buf(_)
            | Type::Inet
            | Type::Mac
            | Type::Record(_) => 8,
            Type::Tuple(items) => items.iter().map(Type::align).max().unwrap_or(1),
            _ => 1,
        }
    }
}

/// What makes time series `a` and `b` different, other than signedness
/// (`interval 1000000000 ns, not 2000000000 ns`), if anything.
pub fn tseries_difference(a: &AggKind, b: &AggKind) -> Option<String> {
    let (
        AggKind::Tseries {
            interval_ns: i,
            intervals: n,
            agg: g,
            ..
        },
        AggKind::Tseries {
            interval_ns: j,
            intervals: m,
            agg: h,
            ..
        },
    ) = (a, b)
    else {
        return None;
    };
    if i != j {
        Some(format!("interval {i} ns, not {j} ns"))
    } else if n != m {
        Some(format!("{n} intervals, not {m}"))
    } else if g != h {
        Some(format!("aggregation {g:?}, not {h:?}").to_lowercase())
    } else {
        None
    }
}

/// Offsets of `items` laid out in order with natural alignment, and the
/// total size rounded up to a multiple of 8 (so padding is explicit and
/// zeroed, never left to chance).
pub fn tuple_layout(items: &[Type]) -> (Vec<u32>, u32) {
    let mut offsets = Vec::with_capacity(items.len());
    let mut at = 0u32;
    for item in items {
        let align = item.align().max(1);
        at = at.div_ceil(align) * align;
        offsets.push(at);
        at = at.saturating_add(item.size());
    }
    (offsets, at.div_ceil(8) * 8)
}

impl fmt::Display for IntType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.signed { "int" } else { "uint" };
        write!(f, "{prefix}{}", u32::from(self.size) * 8)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Void => f.write_str("none"),
            Type::Int(int) => int.fmt(f),
            Type::Str(size) => write!(f, "string[{size}]"),
            Type::Tuple(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str(")")
            }
            Type::Ptr { target, .. } => write!(f, "{target} *"),
            Type::Args => f.write_str("args"),
            Type::Mem { name, .. } => f.write_str(name),
            Type::Agg(kind) => write!(f, "{}_t", kind.function()),
            Type::Stack(st) => f.write_str(if st.user { "ustack" } else { "kstack" }),
            Type::Ksym => f.write_str("ksym"),
            Type::Usym => f.write_str("usym"),
            Type::Strftime(_) => f.write_str("timestamp"),
            Type::Buf(n) => write!(f, "buffer[{n}]"),
            Type::Inet => f.write_str("inet"),
            Type::Mac => f.write_str("macaddr"),
            Type::Record(r) => f.write_str(&r.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_arithmetic_conversions() {
        let u8t = IntType {
            size: 1,
            signed: false,
        };
        assert_eq!(IntType::U32.arith(IntType::I64), IntType::I64);
        assert_eq!(IntType::U64.arith(IntType::I64), IntType::U64);
        assert_eq!(IntType::I32.arith(IntType::I64), IntType::I64);
        assert_eq!(u8t.arith(IntType::I32), IntType::I64);
        assert_eq!(IntType::U32.arith(IntType::I32), IntType::U64);
    }

    #[test]
    fn unification() {
        assert_eq!(Type::Str(16).unify(&Type::Str(64)), Some(Type::Str(64)));
        assert_eq!(
            Type::Int(IntType::U32).unify(&Type::I64),
            Some(Type::Int(IntType::I64))
        );
        assert_eq!(Type::Str(16).unify(&Type::I64), None);
        assert_eq!(
            Type::Tuple(vec![Type::I64, Type::Str(4)])
                .unify(&Type::Tuple(vec![Type::U64, Type::Str(8)])),
            Some(Type::Tuple(vec![Type::I64, Type::Str(8)]))
        );
        assert_eq!(
            Type::Agg(AggKind::Count).unify(&Type::Agg(AggKind::Hist { bits: 0 })),
            None
        );
        let l = |max| {
            Type::Agg(AggKind::Lhist {
                min: 0,
                max,
                step: 1,
            })
        };
        assert_eq!(l(10).unify(&l(20)), None);
    }

    #[test]
    fn tuple_layout_aligns_and_pads() {
        let items = [Type::Int(IntType::U32), Type::Str(3), Type::I64];
        assert_eq!(tuple_layout(&items), (vec![0, 4, 8], 16));
        assert_eq!(Type::Tuple(items.to_vec()).size(), 16);
        assert_eq!(
            Type::Tuple(vec![Type::I64, Type::Str(16)]).to_string(),
            "(int64, string[16])"
        );
    }
}
