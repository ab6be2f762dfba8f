//! What cached state costs in memory, estimated.
//!
//! The symbolizer keeps state across calls (process snapshots, parsed ELF
//! files, resolved addresses) under a memory ceiling, so each kind of entry
//! needs a size. Heap entries count their structs and the bytes of their
//! strings. A parsed ELF file is the larger part and not ours to measure:
//! blazesym maps the file and reads its symbol tables (indexing every
//! symbol by address) and, when symbolizing with debug information, its
//! DWARF sections and those of a separate debug file. So a file is
//! estimated by the sizes of the sections that are read, taken from its
//! section headers; its code and data, never touched, cost nothing.

use std::fs::File;
use std::mem::size_of;
use std::os::unix::fs::FileExt;
use std::path::Path;

use scorch_formats::Line;

/// Where separate debug files live, by build-id (Debian's `-dbg` packages).
const BUILD_ID_DEBUG_DIR: &str = "/usr/lib/debug/.build-id";

/// Section types that hold symbol tables.
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
/// Flag of a section stored compressed, behind an `Elf64_Chdr`.
const SHF_COMPRESSED: u64 = 0x800;
/// Size of one `Elf64_Sym`.
const SYMBOL_SIZE: u64 = 24;
/// Bytes blazesym's by-address index spends per symbol.
const INDEX_BYTES_PER_SYMBOL: u64 = size_of::<usize>() as u64;

/// The estimated memory of one ELF file once blazesym has parsed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ElfCost {
    /// Symbol tables, their strings and the index over them.
    pub(crate) symbols: u64,
    /// DWARF sections, in the file and in its separate debug file.
    pub(crate) dwarf: u64,
}

impl ElfCost {
    /// Estimates the file at `path`; `build_id` (hex) finds a separate
    /// debug file. An unreadable or non-ELF64 file costs nothing.
    pub(crate) fn of(path: &Path, build_id: Option<&str>) -> Self {
        let mut cost = sections(path).unwrap_or_default();
        if let Some(id) = build_id.filter(|id| id.len() > 2) {
            let debug = Path::new(BUILD_ID_DEBUG_DIR)
                .join(&id[..2])
                .join(format!("{}.debug", &id[2..]));
            cost.dwarf += sections(&debug).map_or(0, |c| c.dwarf);
        }
        cost
    }
}

/// Heap bytes held by a list of frames.
pub(crate) fn lines_bytes(lines: &[Line]) -> u64 {
    lines
        .iter()
        .map(|l| size_of::<Line>() + l.function.len() + l.file.as_ref().map_or(0, String::len))
        .sum::<usize>() as u64
}

/// The symbol and DWARF section sizes of an ELF64 little-endian file.
fn sections(path: &Path) -> Option<ElfCost> {
    let file = File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).ok()?;
    // ELF magic, 64-bit class, little-endian data.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let shoff = u64_at(&header, 0x28);
    let entsize = u64::from(u16_at(&header, 0x3a));
    let count = u64::from(u16_at(&header, 0x3c));
    let names_index = usize::from(u16_at(&header, 0x3e));
    if entsize < 64 || count == 0 {
        return None;
    }
    let mut table = vec![0u8; usize::try_from(entsize * count).ok()?];
    file.read_exact_at(&mut table, shoff).ok()?;
    let headers: Vec<&[u8]> = table.chunks_exact(entsize as usize).collect();
    let names = headers.get(names_index).and_then(|h| {
        let mut bytes = vec![0u8; usize::try_from(u64_at(h, 0x20)).ok()?.min(1 << 20)];
        file.read_exact_at(&mut bytes, u64_at(h, 0x18)).ok()?;
        Some(bytes)
    })?;
    let mut cost = ElfCost::default();
    for h in &headers {
        let kind = u32_at(h, 0x04);
        let flags = u64_at(h, 0x08);
        let size = u64_at(h, 0x20);
        if kind == SHT_SYMTAB || kind == SHT_DYNSYM {
            let strings = headers
                .get(u32_at(h, 0x28) as usize)
                .map_or(0, |s| u64_at(s, 0x20));
            cost.symbols += size + strings + size / SYMBOL_SIZE * INDEX_BYTES_PER_SYMBOL;
            continue;
        }
        let name = names
            .get(u32_at(h, 0x00) as usize..)
            .and_then(|n| n.split(|&b| b == 0).next())
            .unwrap_or_default();
        if name.starts_with(b".debug_") || name.starts_with(b".zdebug_") {
            cost.dwarf += if flags & SHF_COMPRESSED != 0 {
                // Decompressed into memory: ch_size of the Elf64_Chdr.
                let mut chdr = [0u8; 16];
                file.read_exact_at(&mut chdr, u64_at(h, 0x18))
                    .map_or(size, |()| u64_at(&chdr, 0x08))
            } else {
                size
            };
        }
    }
    Some(cost)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_built_with_dwarf_has_symbols_and_dwarf() {
        let exe = crate::test_binary::build();
        let cost = ElfCost::of(&exe, None);
        let size = std::fs::metadata(&exe).unwrap().len();
        assert!(cost.symbols > 0, "{cost:?}");
        assert!(cost.dwarf > 0, "{cost:?}");
        assert!(cost.symbols + cost.dwarf < size * 2, "{cost:?} of {size}");
    }

    #[test]
    fn non_elf_files_cost_nothing() {
        let dir = std::env::temp_dir().join(format!("scorch-footprint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("text");
        std::fs::write(
            &text,
            b"hello, not an ELF file at all, but long enough ................................",
        )
        .unwrap();
        assert_eq!(ElfCost::of(&text, None), ElfCost::default());
        let truncated = dir.join("truncated");
        std::fs::write(&truncated, b"\x7fELF\x02\x01").unwrap();
        assert_eq!(ElfCost::of(&truncated, None), ElfCost::default());
        assert_eq!(ElfCost::of(&dir.join("missing"), None), ElfCost::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn frames_count_their_strings() {
        let line = |f: &str, file: Option<&str>| Line {
            function: f.into(),
            file: file.map(Into::into),
            line: None,
        };
        let short = lines_bytes(&[line("f", None)]);
        let long = lines_bytes(&[line("f", Some("/src/a_rather_long_path.c"))]);
        assert_eq!(long - short, 25);
        assert_eq!(lines_bytes(&[]), 0);
    }
}
