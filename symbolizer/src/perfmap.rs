//! JIT symbols from perf maps (`/tmp/perf-PID.map`).
//!
//! A JIT (V8, the JVM with perf-map-agent, LuaJIT, .NET, Python 3.12) writes
//! one line per compiled function: `START SIZE NAME`, START and SIZE in hex
//! (with or without `0x`), NAME the rest of the line, spaces included. The
//! file grows while the process runs and is usually left behind when it
//! exits. A process in another PID namespace writes it under its own `/tmp`
//! with its own pid, so a live process is read through
//! `/proc/PID/root/tmp/perf-NSPID.map`, an exited one through our
//! `/tmp/perf-PID.map`. When entries overlap, the one starting last before
//! an address wins, and of two at the same start the later line.

use std::fs;
use std::mem::size_of;
use std::path::PathBuf;

/// The perf map of one process, as read at one moment.
#[derive(Debug)]
pub(crate) struct PerfMap {
    /// Where it was read from.
    path: PathBuf,
    /// Its size when read, to notice that it grew.
    len: u64,
    /// Entries sorted by start, one per start.
    entries: Vec<Entry>,
    /// Estimated heap bytes of `entries`.
    bytes: u64,
}

/// One JIT-compiled function.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    start: u64,
    end: u64,
    name: Box<str>,
}

impl PerfMap {
    /// Reads the perf map of process `pid`, if it has one.
    pub(crate) fn load(pid: u32) -> Option<Self> {
        let own_namespace = PathBuf::from(format!("/tmp/perf-{pid}.map"));
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok();
        let in_process = status
            .as_deref()
            .and_then(namespace_pid)
            .map(|nspid| PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{nspid}.map")));
        in_process
            .into_iter()
            .chain([own_namespace])
            .find_map(Self::read)
    }

    /// Whether the file changed size (or vanished) since it was read.
    pub(crate) fn changed(&self) -> bool {
        fs::metadata(&self.path).map_or(true, |m| m.len() != self.len)
    }

    /// The name of the JIT function containing `address`.
    pub(crate) fn lookup(&self, address: u64) -> Option<&str> {
        let after = self.entries.partition_point(|e| e.start <= address);
        let entry = self.entries.get(after.checked_sub(1)?)?;
        (address < entry.end).then_some(&*entry.name)
    }

    /// Estimated bytes held, entries and their names included.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn read(path: PathBuf) -> Option<Self> {
        let text = fs::read(&path).ok()?;
        let entries = parse(&String::from_utf8_lossy(&text));
        Some(Self::new(path, text.len() as u64, entries))
    }

    fn new(path: PathBuf, len: u64, entries: Vec<Entry>) -> Self {
        let names: usize = entries.iter().map(|e| e.name.len()).sum();
        let bytes = (size_of::<Self>()
            + path.as_os_str().len()
            + entries.capacity() * size_of::<Entry>()
            + names) as u64;
        Self {
            path,
            len,
            entries,
            bytes,
        }
    }
}

/// Parses the text of a perf map, skipping malformed lines.
fn parse(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = text.lines().filter_map(parse_line).collect();
    // Stable sort, then keep the last line for each start: the newest code.
    entries.sort_by_key(|e| e.start);
    entries.reverse();
    entries.dedup_by_key(|e| e.start);
    entries.reverse();
    entries
}

/// Parses `START SIZE NAME`; `None` for lines to skip.
fn parse_line(line: &str) -> Option<Entry> {
    let (start, rest) = line.trim_start().split_once(char::is_whitespace)?;
    let (size, name) = rest.trim_start().split_once(char::is_whitespace)?;
    let name = name.trim();
    let start = hex(start)?;
    let size = hex(size)?;
    if size == 0 || name.is_empty() {
        return None;
    }
    Some(Entry {
        start,
        end: start.checked_add(size)?,
        name: name.into(),
    })
}

fn hex(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    u64::from_str_radix(digits, 16).ok()
}

/// The pid a process has in its own PID namespace, from `/proc/PID/status`.
fn namespace_pid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_ascii_whitespace().next_back()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> PerfMap {
        PerfMap::new(PathBuf::new(), 0, parse(text))
    }

    #[test]
    fn names_keep_spaces() {
        let m = map("7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n\
                     0x7f0000002000 0x10 Interpreter [stub]  \r\n");
        assert_eq!(
            m.lookup(0x7f0000001000),
            Some("LazyCompile:*fib /app/fib.js:3")
        );
        assert_eq!(
            m.lookup(0x7f000000103f),
            Some("LazyCompile:*fib /app/fib.js:3")
        );
        assert_eq!(m.lookup(0x7f0000001040), None);
        assert_eq!(m.lookup(0x7f000000200f), Some("Interpreter [stub]"));
        assert_eq!(m.lookup(0x7f0000000fff), None);
    }

    #[test]
    fn later_lines_replace_earlier_ones_at_the_same_start() {
        let m = map("3000 10 new\n1000 10 old\n1000 20 recompiled\n");
        assert_eq!(m.lookup(0x1018), Some("recompiled"));
        assert_eq!(m.lookup(0x3000), Some("new"));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let m = map("\n\
                     nonsense\n\
                     1000\n\
                     1000 10\n\
                     1000 10   \n\
                     zz 10 bad_start\n\
                     1000 zz bad_size\n\
                     1000 0 empty\n\
                     ffffffffffffffff 10 overflow\n\
                     10000000000000000 1 too_big\n\
                     \u{0}\u{fffd} \u{1} x\n\
                     2000 8 good\n");
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.lookup(0x2004), Some("good"));
        assert_eq!(map("").lookup(0), None);
    }

    #[test]
    fn size_grows_with_entries_and_names() {
        let one = map("1000 10 a\n").bytes();
        let text: String = (0..100)
            .map(|i| format!("{:x} 10 function_{i}\n", 0x1000 + i * 0x10))
            .collect();
        let many = map(&text).bytes();
        assert!(
            many >= one + 99 * (size_of::<Entry>() as u64 + 10),
            "{one} {many}"
        );
    }

    #[test]
    fn namespace_pid_is_the_innermost() {
        assert_eq!(
            namespace_pid("Name:\tnode\nNSpid:\t4242\t7\nNSsid:\t1\n"),
            Some(7)
        );
        assert_eq!(namespace_pid("NSpid:\t4242\n"), Some(4242));
        assert_eq!(namespace_pid("Name:\tx\n"), None);
        assert_eq!(namespace_pid("NSpid:\t\n"), None);
        assert_eq!(namespace_pid("NSpid:\tabc\n"), None);
    }
}
