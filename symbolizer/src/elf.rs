//! ELF and DWARF symbolization through blazesym, with a cache of results.
//!
//! blazesym turns a file offset in an ELF file into a symbol, its source
//! location and the functions inlined at that spot (from DWARF when the file
//! has it, else from the ELF symbol tables), demangling Rust and C++ names.
//! It keeps every file it parsed, per path, until told to forget it. Results
//! are cached by (file, offset), because the same hot addresses come back in
//! every window of a continuous profile and from every process sharing a
//! library.
//!
//! Both caches count toward the symbolizer's memory ceiling: each parsed
//! file and each result has an estimated size and a last use, and the
//! symbolizer evicts the oldest ones when over (see [`crate::budget`]). A
//! file whose debug information alone would take more than a quarter of the
//! ceiling is symbolized from its symbol tables only: function names
//! without file:line, rather than a parse that blows the ceiling.

use std::collections::HashMap;
use std::iter;
use std::mem::size_of;
use std::path::PathBuf;

use blazesym::symbolize::evict::{self, Evict};
use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{CodeInfo, Input, Sym, Symbolized};
use scorch_formats::Line;

use crate::budget::Entry;
use crate::files::{FileId, MappedFile};
use crate::footprint::{lines_bytes, ElfCost};

/// Symbolizes file offsets in ELF files.
#[derive(Debug)]
pub(crate) struct ElfResolver {
    blazesym: blazesym::symbolize::Symbolizer,
    results: HashMap<(FileId, u64), Cached>,
    /// Estimated bytes of `results`.
    results_bytes: u64,
    parsed: HashMap<FileId, Parsed>,
    /// Estimated bytes of the files in `parsed`.
    parsed_bytes: u64,
    /// Most bytes a file may take with its debug information.
    dwarf_limit: u64,
}

/// The frames at one file offset.
#[derive(Debug)]
struct Cached {
    lines: Vec<Line>,
    bytes: u64,
    last_used: u64,
}

/// A file blazesym holds parsed.
#[derive(Debug)]
struct Parsed {
    /// Every path blazesym may know it under.
    paths: [PathBuf; 2],
    /// Whether it is symbolized with its debug information.
    dwarf: bool,
    bytes: u64,
    last_used: u64,
}

/// A cached entry of the resolver, for eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElfEntry {
    /// blazesym's parse of a file.
    Parsed(FileId),
    /// The frames at one offset of a file.
    Result(FileId, u64),
}

impl ElfResolver {
    /// A resolver for a symbolizer whose caches may hold `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            blazesym: blazesym::symbolize::Symbolizer::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                // Our own, which leaves unmangled names alone.
                .enable_demangling(false)
                .build(),
            results: HashMap::new(),
            results_bytes: 0,
            parsed: HashMap::new(),
            parsed_bytes: 0,
            dwarf_limit: limit / 4,
        }
    }

    /// The frames at each file offset of `file`, innermost first; empty when
    /// the offset cannot be symbolized. `tick` is the time of this use.
    pub(crate) fn resolve(
        &mut self,
        file: &MappedFile,
        offsets: &[u64],
        tick: u64,
    ) -> Vec<Vec<Line>> {
        let missing: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|&o| !self.results.contains_key(&(file.id, o)))
            .collect();
        if !missing.is_empty() {
            let path = file.symbolize_path();
            let dwarf = self.parsed(file, &path, tick);
            let mut elf = Elf::new(path);
            elf.debug_syms = dwarf;
            // A file blazesym cannot read at all leaves its offsets unresolved
            // and uncached, to be tried again next time.
            let symbolized = self
                .blazesym
                .symbolize(&Source::Elf(elf), Input::FileOffset(&missing))
                .unwrap_or_default();
            for (&offset, result) in missing.iter().zip(&symbolized) {
                let lines = lines(result);
                let bytes = (size_of::<((FileId, u64), Cached)>() as u64) + lines_bytes(&lines);
                self.results_bytes += bytes;
                self.results.insert(
                    (file.id, offset),
                    Cached {
                        lines,
                        bytes,
                        last_used: tick,
                    },
                );
            }
        }
        offsets
            .iter()
            .map(|&o| match self.results.get_mut(&(file.id, o)) {
                Some(cached) => {
                    cached.last_used = tick;
                    cached.lines.clone()
                }
                None => Vec::new(),
            })
            .collect()
    }

    /// Records that blazesym parses `file` (read at `path`) now, estimating
    /// its size on first sight; returns whether to use its debug information.
    fn parsed(&mut self, file: &MappedFile, path: &std::path::Path, tick: u64) -> bool {
        if let Some(parsed) = self.parsed.get_mut(&file.id) {
            parsed.last_used = tick;
            return parsed.dwarf;
        }
        let cost = ElfCost::of(path, file.build_id().as_deref());
        let dwarf = cost.symbols + cost.dwarf <= self.dwarf_limit;
        let bytes = if dwarf {
            cost.symbols + cost.dwarf
        } else {
            cost.symbols
        };
        self.parsed_bytes += bytes;
        self.parsed.insert(
            file.id,
            Parsed {
                paths: file.paths(),
                dwarf,
                bytes,
                last_used: tick,
            },
        );
        dwarf
    }

    /// Estimated bytes of everything cached.
    pub(crate) fn bytes(&self) -> u64 {
        self.results_bytes + self.parsed_bytes
    }

    /// Every cached entry with its size and last use.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<ElfEntry>> + '_ {
        let parsed = self.parsed.iter().map(|(&id, p)| Entry {
            key: ElfEntry::Parsed(id),
            bytes: p.bytes,
            last_used: p.last_used,
        });
        let results = self.results.iter().map(|(&(id, offset), c)| Entry {
            key: ElfEntry::Result(id, offset),
            bytes: c.bytes,
            last_used: c.last_used,
        });
        parsed.chain(results)
    }

    /// Drops one cached entry; a file evicted is parsed again when next needed.
    pub(crate) fn evict(&mut self, entry: ElfEntry) {
        match entry {
            ElfEntry::Parsed(id) => {
                if let Some(parsed) = self.parsed.remove(&id) {
                    self.parsed_bytes -= parsed.bytes;
                    self.evict_from_blazesym(&parsed.paths);
                }
            }
            ElfEntry::Result(id, offset) => {
                if let Some(cached) = self.results.remove(&(id, offset)) {
                    self.results_bytes -= cached.bytes;
                }
            }
        }
    }

    /// Drops everything known about `file`.
    pub(crate) fn forget(&mut self, file: &MappedFile) {
        let mut freed = 0;
        self.results.retain(|(id, _), cached| {
            let keep = *id != file.id;
            if !keep {
                freed += cached.bytes;
            }
            keep
        });
        self.results_bytes -= freed;
        if let Some(parsed) = self.parsed.remove(&file.id) {
            self.parsed_bytes -= parsed.bytes;
        }
        self.evict_from_blazesym(&file.paths());
    }

    fn evict_from_blazesym(&mut self, paths: &[PathBuf]) {
        for path in paths {
            // Evicting from the in-memory cache does not fail in practice,
            // and if it did the data would only stay cached.
            let _ = self
                .blazesym
                .evict(&Evict::Elf(evict::Elf::new(path.clone())));
        }
    }
}

/// The frames of one result, innermost first.
fn lines(symbolized: &Symbolized) -> Vec<Line> {
    let Symbolized::Sym(sym) = symbolized else {
        return Vec::new();
    };
    let Sym {
        name,
        code_info,
        inlined,
        ..
    } = sym;
    // blazesym lists inlined calls outermost first, each with the location
    // reached inside it; the symbol's own location is that of the call it
    // contains (or of the address itself when nothing is inlined).
    inlined
        .iter()
        .rev()
        .map(|f| line(&f.name, f.code_info.as_ref()))
        .chain(iter::once(line(name, code_info.as_deref())))
        .collect()
}

fn line(function: &str, code_info: Option<&CodeInfo>) -> Line {
    Line {
        function: crate::demangle::demangle(function),
        file: code_info.map(|c| c.to_path().to_string_lossy().into_owned()),
        line: code_info.and_then(|c| c.line),
    }
}
