//! Builtin functions: the ones scorch compiles and the ones it only knows.
//!
//! Functions fall into families, as in ply: aggregations that only make
//! sense assigned to a map (`count`, `hist`, …), map operations (`delete`,
//! `clear`, `zero`, `print`), output (`printf`, `time`), strings (`str`)
//! and flow (`exit`). The checks for each family live in `check.rs`; this
//! file names them and keeps the list used for "did you mean" hints.

/// A function scorch compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `count()`
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `stats(x)`
    Stats,
    /// `hist(x)`
    Hist,
    /// `lhist(x, min, max, step)`
    Lhist,
    /// `delete(@m[k])` or `delete(@m, k)`
    Delete,
    /// `clear(@m)`
    Clear,
    /// `zero(@m)`
    Zero,
    /// `print(@m[, top[, div]])` or `print(value)`
    Print,
    /// `printf(fmt, …)`
    Printf,
    /// `time([fmt])`
    Time,
    /// `str(p[, len])`
    Str,
    /// `exit([code])`
    Exit,
    /// `has_key(@m, k)`
    HasKey,
    /// `kstack([mode][, limit])`
    Kstack,
    /// `ustack([mode][, limit])`
    Ustack,
    /// `ksym(addr)`
    Ksym,
    /// `usym(addr)`
    Usym,
    /// `kaddr("name")`
    Kaddr,
    /// `uaddr("name")`: a symbol's address in the probed binary.
    Uaddr,
    /// `join(argv[, delim])`
    Join,
    /// `strftime(fmt, nsecs)`
    Strftime,
    /// `system(fmt, …)`: runs a shell command (needs `--unsafe`).
    System,
    /// `cat(fmt, …)`: prints a file.
    Cat,
    /// `signal(SIG)`: signals the current process (needs `--unsafe`).
    Signal,
    /// `override(rc)`: never compiles here; see its error.
    Override,
    /// `buf(p[, len])`
    Buf,
    /// `ntop([af, ]addr)`
    Ntop,
    /// `len(@map)`
    Len,
    /// `cgroupid("/sys/fs/cgroup/…")`: the cgroup's id, found at compile time.
    Cgroupid,
    /// `kptr(x)`: `x` as a kernel pointer.
    Kptr,
    /// `uptr(x)`: `x` as a user pointer.
    Uptr,
    /// `strncmp(s1, s2, n)`: 0 when the first `n` bytes are equal.
    Strncmp,
    /// `strcontains(haystack, needle)`: 1 when `needle` occurs in `haystack`.
    Strcontains,
    /// `macaddr(addr)`: 6 bytes printed as a MAC address.
    Macaddr,
    /// `bswap(n)`: `n` with its bytes reversed, by the size of its type.
    Bswap,
    /// `path(p[, size])`: the full path of a `struct path`.
    Path,
    /// `tseries(x, interval, intervals[, agg])`
    Tseries,
}

impl Function {
    /// Whether the function may only run with `--unsafe`.
    pub fn is_unsafe(self) -> bool {
        matches!(
            self,
            Function::System | Function::Signal | Function::Override
        )
    }
}

impl Function {
    /// Whether the function's value can only be assigned to a map.
    pub fn is_aggregation(self) -> bool {
        matches!(
            self,
            Function::Count
                | Function::Sum
                | Function::Avg
                | Function::Min
                | Function::Max
                | Function::Stats
                | Function::Hist
                | Function::Lhist
                | Function::Tseries
        )
    }
}

/// Every function bpftrace documents, for suggestions and "not yet" errors.
const ALL: &[&str] = &[
    "avg",
    "buf",
    "cat",
    "cgroupid",
    "cgroup_path",
    "clear",
    "count",
    "delete",
    "exit",
    "has_key",
    "hist",
    "join",
    "kaddr",
    "kptr",
    "ksym",
    "len",
    "lhist",
    "macaddr",
    "max",
    "min",
    "ntop",
    "offsetof",
    "override",
    "path",
    "percpu_kaddr",
    "printf",
    "print",
    "pton",
    "reg",
    "signal",
    "sizeof",
    "skboutput",
    "stats",
    "str",
    "strerror",
    "strftime",
    "strncmp",
    "strcontains",
    "sum",
    "system",
    "time",
    "uaddr",
    "uptr",
    "usym",
    "zero",
    "debugf",
    "errorf",
    "warnf",
    "bswap",
    "nsecs",
    "kstack",
    "ustack",
    "tseries",
    "unwatch",
    "socket_cookie",
    "pid",
    "tid",
];

/// What is known about a function name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Compiled by scorch.
    Known(Function),
    /// A bpftrace function scorch does not compile yet.
    NotSupported,
    /// Not a function; maybe a near name.
    Unknown(Option<&'static str>),
}

/// What `name` is.
pub fn lookup(name: &str) -> Lookup {
    let f = match name {
        "count" => Function::Count,
        "sum" => Function::Sum,
        "avg" => Function::Avg,
        "min" => Function::Min,
        "max" => Function::Max,
        "stats" => Function::Stats,
        "hist" => Function::Hist,
        "lhist" => Function::Lhist,
        "delete" => Function::Delete,
        "clear" => Function::Clear,
        "zero" => Function::Zero,
        "print" => Function::Print,
        "printf" => Function::Printf,
        "time" => Function::Time,
        "str" => Function::Str,
        "exit" => Function::Exit,
        "has_key" => Function::HasKey,
        "kstack" => Function::Kstack,
        "ustack" => Function::Ustack,
        "ksym" => Function::Ksym,
        "usym" => Function::Usym,
        "kaddr" => Function::Kaddr,
        "uaddr" => Function::Uaddr,
        "join" => Function::Join,
        "strftime" => Function::Strftime,
        "system" => Function::System,
        "cat" => Function::Cat,
        "signal" => Function::Signal,
        "override" => Function::Override,
        "buf" => Function::Buf,
        "ntop" => Function::Ntop,
        "len" => Function::Len,
        "cgroupid" => Function::Cgroupid,
        "kptr" => Function::Kptr,
        "uptr" => Function::Uptr,
        "strncmp" => Function::Strncmp,
        "strcontains" => Function::Strcontains,
        "macaddr" => Function::Macaddr,
        "bswap" => Function::Bswap,
        "path" => Function::Path,
        "tseries" => Function::Tseries,
        _ if ALL.contains(&name) => return Lookup::NotSupported,
        _ => return Lookup::Unknown(crate::suggest::closest(name, ALL.iter().copied())),
    };
    Lookup::Known(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(lookup("count"), Lookup::Known(Function::Count));
        assert_eq!(lookup("ksym"), Lookup::Known(Function::Ksym));
        assert_eq!(lookup("uaddr"), Lookup::Known(Function::Uaddr));
        assert_eq!(lookup("bswap"), Lookup::Known(Function::Bswap));
        assert_eq!(lookup("prinft"), Lookup::Unknown(Some("printf")));
        assert_eq!(lookup("cuont"), Lookup::Unknown(Some("count")));
        assert!(Function::Hist.is_aggregation());
        assert!(!Function::Print.is_aggregation());
    }
}
