//! TEMPORARY: the builder before streaming, kept only to compare its rows with the streamed ones.
#![allow(missing_docs)]

use crate::row::{Cfa, Rbp, Row};

/// The growing, sorted, merged row list.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<Row>,
    /// End of the last FDE, where a [`Cfa::Missing`] row is owed unless the
    /// next FDE starts right there.
    open_end: Option<u64>,
}

impl Rows {
    /// Starts an FDE covering `[start, end)`; false when it overlaps the previous one.
    pub(crate) fn begin_fde(&mut self, start: u64, end: u64) -> bool {
        if start >= end {
            return false;
        }
        if let Some(prev_end) = self.open_end {
            if start < prev_end {
                return false;
            }
            if start > prev_end {
                self.push(Row {
                    pc: prev_end,
                    cfa: Cfa::Missing,
                    rbp: Rbp::Same,
                });
            }
        }
        self.open_end = Some(end);
        true
    }

    /// Adds a row of the current FDE.
    pub(crate) fn push(&mut self, row: Row) {
        match self.rows.last_mut() {
            Some(last) if last.same_rules(&row) => {}
            // A row at the same address as the last replaces it (an FDE
            // whose first row is at its start, after a `Missing` gap row
            // that turned out empty).
            Some(last) if last.pc == row.pc => {
                *last = row;
                let len = self.rows.len();
                if len >= 2 && self.rows[len - 2].same_rules(&row) {
                    self.rows.pop();
                }
            }
            _ => self.rows.push(row),
        }
    }

    /// The finished rows, ending with a [`Cfa::Missing`] row after the last FDE.
    pub(crate) fn finish(mut self) -> Vec<Row> {
        if let Some(end) = self.open_end.take() {
            self.push(Row {
                pc: end,
                cfa: Cfa::Missing,
                rbp: Rbp::Same,
            });
        }
        self.rows.shrink_to_fit();
        self.rows
    }
}

use std::collections::HashMap;
use std::path::Path;

use gimli::{
    BaseAddresses, CieOrFde, CommonInformationEntry, DebugFrame, EhFrame, EhFrameHdr, EndianSlice,
    LittleEndian, UnwindContext, UnwindSection,
};

use crate::cfi;
use crate::debuglink;
use crate::elf::{ElfInfo, Section};
use crate::error::{Error, Result};
use crate::table::{FileKey, Table};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Which section an FDE is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    EhFrame,
    DebugFrame,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::EhFrame => ".eh_frame",
            Source::DebugFrame => ".debug_frame",
        }
    }
}

/// One FDE of the index: start address, section, offset in the section.
type FdeRef = (u64, Source, usize);

/// Builds the unwind table of the ELF file at `path`.
pub fn build(path: &Path) -> Result<Table> {
    let info = ElfInfo::read(path)?;
    let debug_frame = match &info.debug_frame {
        Some(section) => Some(section.clone()),
        // A separate debug file that cannot be read is as good as none.
        None => debuglink::find(path, &info)
            .and_then(|debug| ElfInfo::read(&debug).ok())
            .and_then(|debug| debug.debug_frame),
    };
    from_parts(info, debug_frame, path)
}

/// Builds the unwind table of an ELF image in memory (a process's vDSO),
/// named `name` in errors; it must have a build id, its identity.
#[allow(dead_code)]
fn build_image(bytes: &[u8], name: &Path) -> Result<Table> {
    let info = ElfInfo::parse_image(bytes, name)?;
    let debug_frame = info.debug_frame.clone();
    from_parts(info, debug_frame, name)
}

/// The table of a file's parts and the `.debug_frame` found for it.
fn from_parts(info: ElfInfo, debug_frame: Option<Section>, path: &Path) -> Result<Table> {
    // The build id, else (files only) the inode.
    let Some(key) = info
        .build_id
        .clone()
        .map(FileKey::BuildId)
        .or(info.inode.clone())
    else {
        return Err(Error::NotElf {
            path: path.to_owned(),
            reason: "an image in memory without a build id".to_owned(),
        });
    };
    if info.eh_frame.is_none() && debug_frame.is_none() {
        return Err(Error::NoUnwindInfo {
            path: path.to_owned(),
        });
    }
    let cfi_error = |source: Source, offset: usize| {
        move |e: gimli::Error| Error::Cfi {
            path: path.to_owned(),
            section: source.name(),
            offset: offset as u64,
            source: e,
        }
    };

    let empty = Section::default();
    let eh_section = info.eh_frame.as_ref().unwrap_or(&empty);
    let eh_frame = EhFrame::new(&eh_section.data, LittleEndian);
    let mut eh_bases = BaseAddresses::default()
        .set_eh_frame(eh_section.address)
        .set_text(info.text)
        .set_got(info.got);
    let debug_section = debug_frame.as_ref().unwrap_or(&empty);
    let mut debug_frame = DebugFrame::new(&debug_section.data, LittleEndian);
    debug_frame.set_address_size(8);
    let debug_bases = BaseAddresses::default();

    let mut index = Vec::new();
    if info.eh_frame.is_some() {
        // The header's search table saves parsing every FDE's header; a
        // file without one (or with a bad one) is scanned instead.
        let from_hdr = match &info.eh_frame_hdr {
            Some(hdr) => {
                eh_bases = eh_bases.set_eh_frame_hdr(hdr.address);
                let indexed = index_hdr(hdr, &eh_bases, &mut index).unwrap_or(false);
                if !indexed {
                    index.clear();
                }
                indexed
            }
            None => false,
        };
        if !from_hdr {
            index_scan(&eh_frame, &eh_bases, Source::EhFrame, &mut index)
                .map_err(|(offset, e)| cfi_error(Source::EhFrame, offset)(e))?;
        }
    }
    index_scan(&debug_frame, &debug_bases, Source::DebugFrame, &mut index)
        .map_err(|(offset, e)| cfi_error(Source::DebugFrame, offset)(e))?;
    index.sort_unstable();

    let mut rows = Rows::default();
    let mut ctx = Box::new(UnwindContext::new());
    let mut eh_cies = HashMap::new();
    let mut debug_cies = HashMap::new();
    let mut fde_rows = Vec::new();
    let (mut skipped_fdes, mut first_error) = (0, None);
    let fdes = index.len();
    for (_, source, offset) in index {
        let walked = match source {
            Source::EhFrame => walk(
                &eh_frame,
                &eh_bases,
                offset,
                &mut ctx,
                &mut eh_cies,
                &mut fde_rows,
            ),
            Source::DebugFrame => walk(
                &debug_frame,
                &debug_bases,
                offset,
                &mut ctx,
                &mut debug_cies,
                &mut fde_rows,
            ),
        };
        match walked {
            Ok(Some((start, end))) => {
                if rows.begin_fde(start, end) {
                    fde_rows.drain(..).for_each(|row| rows.push(row));
                }
            }
            Ok(None) => {}
            // One bad FDE leaves its range without rows (frame pointers
            // there); the file's other functions keep theirs.
            Err(e) => {
                skipped_fdes += 1;
                first_error.get_or_insert_with(|| cfi_error(source, offset)(e));
            }
        }
        fde_rows.clear();
    }
    // Nothing usable at all: the section is broken, not one entry.
    if let Some(error) = first_error.filter(|_| skipped_fdes == fdes) {
        return Err(error);
    }
    Ok(Table {
        key,
        rows: rows.finish(),
        segments: info.segments,
        skipped_fdes,
    })
}

/// Adds every FDE of `.eh_frame_hdr`'s search table to `index`; false when it has none.
fn index_hdr(hdr: &Section, bases: &BaseAddresses, index: &mut Vec<FdeRef>) -> gimli::Result<bool> {
    let parsed = EhFrameHdr::new(&hdr.data, LittleEndian).parse(bases, 8)?;
    let Some(table) = parsed.table() else {
        return Ok(false);
    };
    let mut entries = table.iter(bases);
    while let Some((start, fde)) = entries.next()? {
        let offset = table.pointer_to_offset(fde)?;
        index.push((start.pointer(), Source::EhFrame, offset.0));
    }
    Ok(true)
}

/// Adds every FDE found by walking `section` to `index`; errors carry the entry's offset.
fn index_scan<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    source: Source,
    index: &mut Vec<FdeRef>,
) -> std::result::Result<(), (usize, gimli::Error)>
where
    S: UnwindSection<Slice<'a>>,
    S::Offset: gimli::UnwindOffset<usize>,
{
    let mut entries = section.entries(bases);
    // Offset of the next entry, for error messages (4-byte length fields;
    // 64-bit DWARF makes it approximate, which is fine for a message).
    let mut at = 0;
    loop {
        match entries.next() {
            Ok(None) => return Ok(()),
            Ok(Some(CieOrFde::Cie(cie))) => at = cie.offset() + cie.entry_len() + 4,
            Ok(Some(CieOrFde::Fde(partial))) => {
                at = partial.offset();
                let fde = partial.parse(S::cie_from_offset).map_err(|e| (at, e))?;
                index.push((fde.initial_address(), source, fde.offset()));
                at += fde.entry_len() + 4;
            }
            Err(e) => return Err((at, e)),
        }
    }
}

/// Runs the CFI of the FDE at `offset` into `out`; returns the range it
/// covers, or `None` for an FDE of unlinked code. On an error `out` may hold
/// part of the FDE's rows.
fn walk<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    offset: usize,
    ctx: &mut UnwindContext<usize>,
    cies: &mut HashMap<usize, CommonInformationEntry<Slice<'a>>>,
    out: &mut Vec<Row>,
) -> gimli::Result<Option<(u64, u64)>>
where
    S: UnwindSection<Slice<'a>>,
{
    let fde = section.fde_from_offset(bases, S::Offset::from(offset), |s, b, o| {
        let key = gimli::UnwindOffset::into(o);
        if let Some(cie) = cies.get(&key) {
            return Ok(cie.clone());
        }
        let cie = s.cie_from_offset(b, o)?;
        cies.insert(key, cie.clone());
        Ok(cie)
    })?;
    let start = fde.initial_address();
    // Unlinked code (discarded sections) keeps FDEs at 0 or at tombstones.
    let Some(end) = start.checked_add(fde.len()).filter(|_| start != 0) else {
        return Ok(None);
    };
    let signal = fde.is_signal_trampoline();
    let mut table = fde.rows(section, bases, ctx)?;
    while let Some(row) = table.next_row()? {
        let (cfa, rbp) = cfi::rules(row, section, signal);
        out.push(Row {
            pc: row.start_address(),
            cfa,
            rbp,
        });
    }
    Ok(Some((start, end)))
}
