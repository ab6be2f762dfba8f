//! Kernel symbols from `/proc/kallsyms`.
//!
//! The kernel lists every symbol as `ADDRESS TYPE NAME [\tMODULE]`, without
//! sizes. A text symbol (`t`, `T`, `w`, `W`) is taken to extend up to the
//! next symbol of any type, so data symbols and the `_etext` marker bound the
//! last function before them; an address below the first symbol or past the
//! last one stays unresolved. Frames carry the bare function name, as bcc's
//! ksym does. Without privilege the kernel shows every address as zero; those
//! lines are skipped, which leaves an empty table and unresolved frames.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::ops::Range;
use std::path::Path;

use crate::error::Error;

/// Where the kernel publishes its symbols.
const KALLSYMS: &str = "/proc/kallsyms";

/// Text-typed symbols that mark the end of a region rather than a function.
const END_MARKERS: [&str; 1] = ["_etext"];

/// A sorted table of kernel symbols.
#[derive(Debug, Default)]
pub(crate) struct Kallsyms {
    /// One entry per distinct address, sorted by address.
    symbols: Vec<Symbol>,
    /// Every function name, one after the other.
    names: String,
}

/// One address of the table: a function start, or only a boundary.
#[derive(Debug)]
struct Symbol {
    address: u64,
    /// Where the function name lies in [`Kallsyms::names`]; empty for data
    /// symbols and end markers.
    name: Range<u32>,
}

impl Kallsyms {
    /// Reads the running kernel's symbols.
    pub(crate) fn load() -> Result<Self, Error> {
        let file = fs::File::open(KALLSYMS).map_err(|e| Error::read(Path::new(KALLSYMS), e))?;
        Self::parse(BufReader::new(file)).map_err(|e| Error::read(Path::new(KALLSYMS), e))
    }

    /// Builds the table from kallsyms text, line by line: the file is several
    /// megabytes and is never held whole.
    pub(crate) fn parse(mut reader: impl BufRead) -> io::Result<Self> {
        let mut names = String::new();
        let mut symbols = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let Some((address, name)) = parse_line(&text) else {
                continue;
            };
            let start = names.len();
            names.push_str(name.unwrap_or_default());
            let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(names.len())) else {
                break;
            };
            symbols.push(Symbol {
                address,
                name: start..end,
            });
        }
        symbols.sort_by_key(|s| (s.address, s.name.is_empty()));
        symbols.dedup_by_key(|s| s.address);
        symbols.shrink_to_fit();
        names.shrink_to_fit();
        Ok(Self { symbols, names })
    }

    /// Bytes held by the table.
    pub(crate) fn bytes(&self) -> u64 {
        (self.symbols.capacity() * std::mem::size_of::<Symbol>() + self.names.capacity()) as u64
    }

    /// The name of the kernel function containing `address`.
    pub(crate) fn lookup(&self, address: u64) -> Option<&str> {
        let after = self.symbols.partition_point(|s| s.address <= address);
        let symbol = self.symbols.get(after.checked_sub(1)?)?;
        if after == self.symbols.len() && address != symbol.address {
            return None;
        }
        let name = self
            .names
            .get(symbol.name.start as usize..symbol.name.end as usize)?;
        (!name.is_empty()).then_some(name)
    }
}

/// Names `addrs` in one pass over kallsyms text, keeping only what those
/// addresses need: the same answers as [`Kallsyms::lookup`] on the whole
/// table, for a fraction of its memory. For a run that symbolizes once.
pub(crate) fn resolve_once(addrs: &[u64]) -> Result<Vec<Option<String>>, Error> {
    let file = fs::File::open(KALLSYMS).map_err(|e| Error::read(Path::new(KALLSYMS), e))?;
    resolve_stream(BufReader::new(file), addrs).map_err(|e| Error::read(Path::new(KALLSYMS), e))
}

/// [`resolve_once`] over any reader.
pub(crate) fn resolve_stream(
    mut reader: impl BufRead,
    addrs: &[u64],
) -> io::Result<Vec<Option<String>>> {
    let mut queries: Vec<(u64, usize)> = addrs.iter().copied().zip(0..).collect();
    queries.sort_unstable();
    // candidate[j]: the best symbol at an address in (queries[j-1], queries[j]].
    let mut candidate: Vec<Option<(u64, Option<String>)>> = vec![None; queries.len()];
    let mut last_symbol = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let Some((address, name)) = parse_line(&text) else {
            continue;
        };
        last_symbol = last_symbol.max(Some(address));
        let j = queries.partition_point(|&(q, _)| q < address);
        let Some(slot) = candidate.get_mut(j) else {
            continue;
        };
        // Higher addresses win; at one address a function beats data, and
        // the first function listed stays.
        let better = match slot {
            None => true,
            Some((a, held)) => address > *a || (address == *a && held.is_none() && name.is_some()),
        };
        if better {
            *slot = Some((address, name.map(str::to_string)));
        }
    }
    let mut names = vec![None; addrs.len()];
    let mut best: Option<&(u64, Option<String>)> = None;
    for (&(query, index), held) in queries.iter().zip(&candidate) {
        if held.is_some() {
            best = held.as_ref();
        }
        names[index] = match best {
            Some((address, name)) if Some(*address) != last_symbol || query == *address => {
                name.clone()
            }
            _ => None,
        };
    }
    Ok(names)
}

/// Parses `ADDRESS TYPE NAME [\tMODULE]` into the address and, for a
/// function, its name; `None` for lines to skip.
fn parse_line(line: &str) -> Option<(u64, Option<&str>)> {
    let mut fields = line.split_ascii_whitespace();
    let address = u64::from_str_radix(fields.next()?, 16).ok()?;
    let kind = fields.next()?;
    let name = fields.next()?;
    if address == 0 || kind.eq_ignore_ascii_case("a") {
        return None;
    }
    let text = matches!(kind, "t" | "T" | "w" | "W") && !END_MARKERS.contains(&name);
    Some((address, text.then_some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T srso_alias_untrain_ret
ffffffff81000000 T _stext
ffffffff81000100 t helper
ffffffff81000200 T schedule
ffffffff81000300 D some_data
ffffffff81000400 T _etext
ffffffffc0001000 t mod_fn\t[my_module]
ffffffffc0002000 d mod_data\t[my_module]
";

    #[test]
    fn addresses_resolve_to_the_enclosing_function() {
        let k = Kallsyms::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(k.lookup(0xffffffff81000000), Some("srso_alias_untrain_ret"));
        assert_eq!(k.lookup(0xffffffff810000ff), Some("srso_alias_untrain_ret"));
        assert_eq!(k.lookup(0xffffffff81000100), Some("helper"));
        assert_eq!(k.lookup(0xffffffff81000234), Some("schedule"));
        assert_eq!(k.lookup(0xffffffffc0001010), Some("mod_fn"));
    }

    #[test]
    fn boundaries_and_edges_are_unresolved() {
        let k = Kallsyms::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(k.lookup(0), None);
        assert_eq!(k.lookup(0xffffffff80ffffff), None);
        assert_eq!(k.lookup(0xffffffff81000300), None, "data symbol");
        assert_eq!(k.lookup(0xffffffff81000500), None, "past _etext");
        assert_eq!(k.lookup(0xffffffffc0002000), None, "module data");
        assert_eq!(k.lookup(u64::MAX), None, "past the last symbol");
    }

    #[test]
    fn one_pass_resolution_matches_the_table() {
        let table = Kallsyms::parse(SAMPLE.as_bytes()).unwrap();
        let mut addrs: Vec<u64> = (0xffffffff80fffff0..0xffffffff81000520)
            .step_by(7)
            .collect();
        addrs.extend([
            0,
            u64::MAX,
            0xffffffffc0001010,
            0xffffffffc0002000,
            0xffffffff81000100,
        ]);
        addrs.push(0xffffffff81000100); // duplicates too
        let once = resolve_stream(SAMPLE.as_bytes(), &addrs).unwrap();
        for (addr, name) in addrs.iter().zip(&once) {
            assert_eq!(name.as_deref(), table.lookup(*addr), "{addr:#x}");
        }
        let last = resolve_stream(
            "1000 T first\n2000 T last\n".as_bytes(),
            &[0x2000, 0x2001, 0x1fff],
        )
        .unwrap();
        assert_eq!(last, [Some("last".into()), None, Some("first".into())]);
    }

    #[test]
    fn last_symbol_resolves_only_at_its_address() {
        let k = Kallsyms::parse("1000 T first\n2000 T last\n".as_bytes()).unwrap();
        assert_eq!(k.lookup(0x2000), Some("last"));
        assert_eq!(k.lookup(0x2001), None);
    }

    #[test]
    fn hidden_and_malformed_lines_are_skipped() {
        let text = "0000000000000000 T hidden\n\
                    \n\
                    xyz T bad_address\n\
                    ffffffff81000000\n\
                    ffffffff81000000 T\n\
                    0000000000001000 A absolute\n\
                    10000000000000000 T too_big\n\
                    ffffffff81000000 T good\n";
        let k = Kallsyms::parse(text.as_bytes()).unwrap();
        assert_eq!(k.symbols.len(), 1);
        assert_eq!(k.lookup(0xffffffff81000000), Some("good"));
        assert_eq!(Kallsyms::parse("".as_bytes()).unwrap().lookup(1), None);
    }
}
