//! Building a file's table from its call frame information, one FDE at a
//! time, its rows streamed out in chunks.
//!
//! 1. Open ([`TableSource`]): read the call frame sections and find the
//!    order of the FDEs by start address ([`crate::fdes`]) — from
//!    `.eh_frame_hdr`'s search table when there is one, else by scanning
//!    `.eh_frame`; and from `.debug_frame` (in the file or its separate
//!    debug file), for code `.eh_frame` does not describe.
//! 2. Walk the FDEs in address order; for each run gimli's CFI
//!    interpreter, translate each row ([`crate::cfi`]) and hand it to a
//!    [`Merger`], which merges equal neighbours, marks gaps and hands the
//!    rows on in chunks.
//!
//! A walk holds one FDE's rows and one chunk, never the file's rows. Where
//! they go decides the rest: [`build`] collects them into a [`Table`] (the
//! reference unwinder's); a BPF row map needs a file's rows contiguous, so
//! its loader first walks to count them ([`TableSource::count`], storing
//! nothing), reserves that many and walks again to write them
//! ([`CountedTable::write`]). At the same address, `.eh_frame` wins.
//!
//! An FDE gimli cannot read is skipped and counted
//! ([`Table::skipped_fdes`]): its range has no rows. Only a file none of
//! whose FDEs can be read is an error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use gimli::{
    BaseAddresses, CommonInformationEntry, DebugFrame, EhFrame, EndianSlice, LittleEndian,
    UnwindContext, UnwindSection,
};

use crate::cfi;
use crate::debuglink;
use crate::elf::{ElfInfo, Section, Segment};
use crate::error::{Error, Result};
use crate::fdes::{self, FdeRef, HdrOrder, Source};
use crate::row::Row;
use crate::rows::Merger;
use crate::table::{FileKey, Table};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Rows [`build`] and [`TableSource::count`] take from the merger at a time.
const CHUNK_ROWS: usize = 4096;

/// Builds the unwind table of the ELF file at `path`, its rows in memory.
pub fn build(path: &Path) -> Result<Table> {
    TableSource::open(path)?.collect()
}

/// Builds the unwind table of an ELF image in memory (a process's vDSO),
/// named `name` in errors; it must have a build id, its identity.
pub fn build_image(bytes: &[u8], name: &Path) -> Result<Table> {
    TableSource::image(bytes, name)?.collect()
}

/// A file's call frame information, ready to be walked for its rows.
///
/// Holds the call frame sections (and, when `.eh_frame_hdr` cannot give
/// the FDEs' order, an index of them): what the walks read.
#[derive(Debug)]
pub struct TableSource {
    path: PathBuf,
    key: FileKey,
    segments: Vec<Segment>,
    eh_frame: Option<Section>,
    /// Address of `.eh_frame_hdr`, a base of its pointer encodings.
    hdr_address: Option<u64>,
    /// `.eh_frame_hdr`, kept when its search table gives the FDEs' order.
    sorted_hdr: Option<Section>,
    debug_frame: Option<Section>,
    text: u64,
    got: u64,
    /// FDEs not in `sorted_hdr`, sorted.
    index: Vec<FdeRef>,
}

/// What one walk over a file's FDEs found.
struct Walked {
    rows: usize,
    fdes: usize,
    skipped_fdes: usize,
    first_error: Option<Error>,
}

impl TableSource {
    /// Opens the ELF file at `path` (and the separate debug file its debug
    /// link names, for `.debug_frame`).
    pub fn open(path: &Path) -> Result<Self> {
        let mut info = ElfInfo::read(path)?;
        // A separate debug file that cannot be read is as good as none.
        let debug_frame = info.debug_frame.take().or_else(|| {
            debuglink::find(path, &info)
                .and_then(|debug| ElfInfo::read(&debug).ok())
                .and_then(|debug| debug.debug_frame)
        });
        Self::from_parts(info, debug_frame, path)
    }

    /// Opens an ELF image in memory (a process's vDSO), named `name` in
    /// errors; it must have a build id, its identity.
    pub fn image(bytes: &[u8], name: &Path) -> Result<Self> {
        let mut info = ElfInfo::parse_image(bytes, name)?;
        let debug_frame = info.debug_frame.take();
        Self::from_parts(info, debug_frame, name)
    }

    /// The file's identity: a table of the same content need not be built again.
    pub fn key(&self) -> &FileKey {
        &self.key
    }

    /// Walks the FDEs to count the table's rows, storing none; fails when no FDE can be read.
    pub fn count(self) -> Result<CountedTable> {
        let walked = self.walk(CHUNK_ROWS, &mut |_| Ok::<_, Infallible>(()));
        let Ok(walked) = walked;
        let walked = usable(walked)?;
        Ok(CountedTable {
            rows: walked.rows,
            skipped_fdes: walked.skipped_fdes,
            source: self,
        })
    }

    /// Walks the FDEs once, keeping the rows: the whole table.
    fn collect(self) -> Result<Table> {
        let mut rows = Vec::new();
        let walked = self.walk(CHUNK_ROWS, &mut |chunk| {
            rows.extend_from_slice(chunk);
            Ok::<_, Infallible>(())
        });
        let Ok(walked) = walked;
        let walked = usable(walked)?;
        rows.shrink_to_fit();
        Ok(Table {
            key: self.key,
            rows,
            segments: self.segments,
            skipped_fdes: walked.skipped_fdes,
        })
    }

    /// The source of a file's parts and the `.debug_frame` found for it.
    fn from_parts(info: ElfInfo, debug_frame: Option<Section>, path: &Path) -> Result<Self> {
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
        let mut source = TableSource {
            path: path.to_owned(),
            key,
            segments: info.segments,
            eh_frame: None,
            hdr_address: info.eh_frame_hdr.as_ref().map(|hdr| hdr.address),
            sorted_hdr: None,
            debug_frame: None,
            text: info.text,
            got: info.got,
            index: Vec::new(),
        };
        let eh_bases = source.eh_bases_at(info.eh_frame.as_ref().map_or(0, |s| s.address));
        if let Some(eh_section) = &info.eh_frame {
            // The header's search table saves parsing every FDE's header; a
            // file without one (or with a bad one) is scanned instead.
            let order = match &info.eh_frame_hdr {
                Some(hdr) => fdes::hdr_order(&hdr.data, &eh_bases),
                None => HdrOrder::Unusable,
            };
            match (order, info.eh_frame_hdr) {
                (HdrOrder::Sorted, hdr) => source.sorted_hdr = hdr,
                (HdrOrder::Unsorted, Some(hdr)) => {
                    fdes::index_hdr(&hdr.data, &eh_bases, &mut source.index)
                }
                _ => {
                    let eh_frame = EhFrame::new(&eh_section.data, LittleEndian);
                    fdes::index_scan(&eh_frame, &eh_bases, Source::EhFrame, &mut source.index)
                        .map_err(|(offset, e)| source.cfi_error(Source::EhFrame, offset, e))?;
                }
            }
        }
        if let Some(debug_section) = &debug_frame {
            fdes::index_scan(
                &debug_frame_of(debug_section),
                &BaseAddresses::default(),
                Source::DebugFrame,
                &mut source.index,
            )
            .map_err(|(offset, e)| source.cfi_error(Source::DebugFrame, offset, e))?;
        }
        source.index.sort_unstable();
        source.index.shrink_to_fit();
        source.eh_frame = info.eh_frame;
        source.debug_frame = debug_frame;
        Ok(source)
    }

    /// The bases of `.eh_frame`'s pointer encodings.
    fn eh_bases(&self) -> BaseAddresses {
        self.eh_bases_at(self.eh_frame.as_ref().map_or(0, |s| s.address))
    }

    /// The bases of the pointer encodings of an `.eh_frame` at `address`.
    fn eh_bases_at(&self, address: u64) -> BaseAddresses {
        let bases = BaseAddresses::default()
            .set_eh_frame(address)
            .set_text(self.text)
            .set_got(self.got);
        match self.hdr_address {
            Some(address) => bases.set_eh_frame_hdr(address),
            None => bases,
        }
    }

    fn cfi_error(&self, source: Source, offset: usize, e: gimli::Error) -> Error {
        Error::Cfi {
            path: self.path.clone(),
            section: source.name(),
            offset: offset as u64,
            source: e,
        }
    }

    /// Walks every FDE in address order, handing the merged rows to `sink`
    /// `chunk_rows` at a time; stops at the sink's first error.
    fn walk<E>(
        &self,
        chunk_rows: usize,
        sink: &mut dyn FnMut(&[Row]) -> std::result::Result<(), E>,
    ) -> std::result::Result<Walked, E> {
        let empty = Section::default();
        let eh_frame = EhFrame::new(&self.eh_frame.as_ref().unwrap_or(&empty).data, LittleEndian);
        let eh_bases = self.eh_bases();
        let debug_frame = debug_frame_of(self.debug_frame.as_ref().unwrap_or(&empty));
        let debug_bases = BaseAddresses::default();
        let hdr = self
            .sorted_hdr
            .as_ref()
            .and_then(|hdr| fdes::parse_hdr(&hdr.data, &eh_bases));
        let hdr_table = hdr.as_ref().and_then(|hdr| hdr.table());
        let from_hdr = hdr_table
            .as_ref()
            .map(|table| fdes::hdr_fdes(table, &eh_bases));
        let order = fdes::merged(from_hdr.into_iter().flatten(), self.index.iter().copied());

        let mut merger = Merger::new(chunk_rows, sink);
        let mut ctx = Box::new(UnwindContext::new());
        let mut eh_cies = HashMap::new();
        let mut debug_cies = HashMap::new();
        let mut fde_rows = Vec::new();
        let (mut fdes, mut skipped_fdes, mut first_error) = (0, 0, None);
        for (_, source, offset) in order {
            fdes += 1;
            let walked = match source {
                Source::EhFrame => walk_fde(
                    &eh_frame,
                    &eh_bases,
                    offset,
                    &mut ctx,
                    &mut eh_cies,
                    &mut fde_rows,
                ),
                Source::DebugFrame => walk_fde(
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
                    if merger.begin_fde(start, end)? {
                        for row in fde_rows.drain(..) {
                            merger.push(row)?;
                        }
                    }
                }
                Ok(None) => {}
                // One bad FDE leaves its range without rows (frame pointers
                // there); the file's other functions keep theirs.
                Err(e) => {
                    skipped_fdes += 1;
                    first_error.get_or_insert_with(|| self.cfi_error(source, offset, e));
                }
            }
            fde_rows.clear();
        }
        Ok(Walked {
            rows: merger.finish()?,
            fdes,
            skipped_fdes,
            first_error,
        })
    }
}

/// A walk's result, unless no FDE at all could be read: then the section
/// is broken, not one entry.
fn usable(walked: Walked) -> Result<Walked> {
    match walked.first_error {
        Some(error) if walked.skipped_fdes == walked.fdes => Err(error),
        _ => Ok(walked),
    }
}

/// `.debug_frame` of 64-bit code.
fn debug_frame_of(section: &Section) -> DebugFrame<Slice<'_>> {
    let mut debug_frame = DebugFrame::new(&section.data, LittleEndian);
    debug_frame.set_address_size(8);
    debug_frame
}

/// A file whose rows are counted, to be written where they fit.
#[derive(Debug)]
pub struct CountedTable {
    source: TableSource,
    rows: usize,
    skipped_fdes: usize,
}

impl CountedTable {
    /// The file's identity.
    pub fn key(&self) -> &FileKey {
        self.source.key()
    }

    /// Rows of the table.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Walks the FDEs again, handing the rows to `sink` in address order,
    /// `chunk_rows` at a time; stops at the sink's first error.
    ///
    /// Both walks read the same bytes the same way, so `sink` gets exactly
    /// [`Self::rows`] rows; it never gets more (the rows of another file
    /// may follow the room reserved for them).
    pub fn write<E>(
        &self,
        chunk_rows: usize,
        mut sink: impl FnMut(&[Row]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut left = self.rows;
        self.source.walk(chunk_rows, &mut |chunk| {
            let chunk = &chunk[..chunk.len().min(left)];
            left -= chunk.len();
            if chunk.is_empty() {
                Ok(())
            } else {
                sink(chunk)
            }
        })?;
        debug_assert_eq!(
            left, 0,
            "the writing walk gave fewer rows than were counted"
        );
        Ok(())
    }

    /// The table without its rows (written elsewhere): its identity and
    /// segments, to map addresses.
    pub fn into_layout(self) -> Table {
        Table {
            key: self.source.key,
            rows: Vec::new(),
            segments: self.source.segments,
            skipped_fdes: self.skipped_fdes,
        }
    }
}

/// Runs the CFI of the FDE at `offset` into `out`; returns the range it
/// covers, or `None` for an FDE of unlinked code. On an error `out` may hold
/// part of the FDE's rows.
fn walk_fde<'a, S>(
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
