//! ELF and DWARF symbolization through blazesym, with a cache of results.
//!
//! blazesym turns a file offset in an ELF file into a symbol, its source
//! location and the functions inlined at that spot (from DWARF when the file
//! has it, else from the ELF symbol tables), demangling Rust and C++ names.
//! It keeps every file it parsed, per path, until told to forget it; we tell
//! it when the last process mapping a file is dropped. Results are cached by
//! (file, offset), because the same hot addresses come back in every window
//! of a continuous profile and from every process sharing a library.

use std::collections::HashMap;
use std::iter;

use blazesym::symbolize::evict::{self, Evict};
use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{CodeInfo, Input, Sym, Symbolized};
use scorch_formats::Line;

use crate::files::{FileId, MappedFile};

/// Past this many cached results the cache starts over.
const MAX_CACHED_RESULTS: usize = 1 << 16;

/// Symbolizes file offsets in ELF files.
#[derive(Debug)]
pub(crate) struct ElfResolver {
    blazesym: blazesym::symbolize::Symbolizer,
    results: HashMap<(FileId, u64), Vec<Line>>,
}

impl ElfResolver {
    pub(crate) fn new() -> Self {
        Self {
            blazesym: blazesym::symbolize::Symbolizer::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                .enable_demangling(true)
                .build(),
            results: HashMap::new(),
        }
    }

    /// The frames at each file offset of `file`, innermost first; empty when
    /// the offset cannot be symbolized.
    pub(crate) fn resolve(&mut self, file: &MappedFile, offsets: &[u64]) -> Vec<Vec<Line>> {
        let missing: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|&o| !self.results.contains_key(&(file.id, o)))
            .collect();
        if !missing.is_empty() {
            let source = Source::Elf(Elf::new(file.symbolize_path()));
            // A file blazesym cannot read at all leaves its offsets unresolved
            // and uncached, to be tried again next time.
            let symbolized = self
                .blazesym
                .symbolize(&source, Input::FileOffset(&missing))
                .unwrap_or_default();
            let lines: Vec<Vec<Line>> = symbolized.iter().map(lines).collect();
            if self.results.len() + lines.len() > MAX_CACHED_RESULTS {
                self.results.clear();
            }
            self.results
                .extend(missing.iter().map(|&o| (file.id, o)).zip(lines));
        }
        offsets
            .iter()
            .map(|&o| self.results.get(&(file.id, o)).cloned().unwrap_or_default())
            .collect()
    }

    /// Drops everything known about `file`.
    pub(crate) fn forget(&mut self, file: &MappedFile) {
        self.results.retain(|(id, _), _| *id != file.id);
        for path in file.paths() {
            // Evicting from the in-memory cache does not fail in practice,
            // and if it did the data would only stay cached.
            let _ = self.blazesym.evict(&Evict::Elf(evict::Elf::new(path)));
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
        function: function.to_owned(),
        file: code_info.map(|c| c.to_path().to_string_lossy().into_owned()),
        line: code_info.and_then(|c| c.line),
    }
}
