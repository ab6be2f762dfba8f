//! A file's compact unwind table and the identity it is shared under.

use crate::elf::Segment;
use crate::row::Row;

/// Identity of a file's content: processes mapping the same content share one table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileKey {
    /// The GNU build id note.
    BuildId(Vec<u8>),
    /// Device, inode, size and modification time, for files without a build id.
    Inode {
        /// Device number.
        dev: u64,
        /// Inode number.
        inode: u64,
        /// Size in bytes.
        size: u64,
        /// Modification time (seconds, nanoseconds).
        mtime: (i64, i64),
    },
}

impl FileKey {
    /// The inode identity of a file with metadata `meta`.
    pub fn of_metadata(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileKey::Inode {
            dev: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// Unwind rows of one ELF file, sorted by address, and how its file maps to addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub(crate) key: FileKey,
    pub(crate) rows: Vec<Row>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) skipped_fdes: usize,
}

impl Table {
    /// The file's identity.
    pub fn key(&self) -> &FileKey {
        &self.key
    }

    /// Every row, sorted by `pc`, no two neighbours with the same rules
    /// (none for a table whose rows were streamed elsewhere:
    /// [`crate::CountedTable::into_layout`]).
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// FDEs left out because they could not be read: their code has no rows.
    pub fn skipped_fdes(&self) -> usize {
        self.skipped_fdes
    }

    /// The loadable segments of the file.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The row in force at ELF virtual address `vaddr`, if any row starts at or before it.
    pub fn lookup(&self, vaddr: u64) -> Option<Row> {
        let after = self.rows.partition_point(|row| row.pc <= vaddr);
        after.checked_sub(1).map(|i| self.rows[i])
    }

    /// The ELF virtual address of file offset `offset` of an executable
    /// mapping, through the executable segment the kernel mapped it from.
    ///
    /// The kernel maps a segment from its page-aligned file offset, so a
    /// mapping's offset may lie before the segment's own `p_offset` — inside
    /// the previous segment's file range, when a linker (LLD) packs segments
    /// without page-aligning their file offsets. Only executable segments are
    /// considered, each from its page-aligned start.
    pub fn vaddr_of(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.is_executable())
            .find(|s| offset >= align_down(s.offset) && offset < s.offset + s.size)
            .and_then(|s| s.vaddr.checked_add(offset)?.checked_sub(s.offset))
    }
}

/// Page size of x86_64: the granularity the kernel maps segments at.
const PAGE_SIZE: u64 = 4096;

/// `value` rounded down to a page boundary.
fn align_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Cfa, Rbp};

    fn table() -> Table {
        let row = |pc, cfa| Row {
            pc,
            cfa,
            rbp: Rbp::Same,
        };
        Table {
            key: FileKey::BuildId(vec![1]),
            rows: vec![
                row(0x1000, Cfa::Rsp(8)),
                row(0x1004, Cfa::Rsp(16)),
                row(0x1010, Cfa::Missing),
            ],
            segments: vec![Segment {
                offset: 0x1000,
                size: 0x2000,
                vaddr: 0x401000,
                flags: Segment::PF_X,
            }],
            skipped_fdes: 0,
        }
    }

    #[test]
    fn lookup_finds_the_row_in_force() {
        let table = table();
        assert_eq!(table.lookup(0xfff), None);
        assert_eq!(table.lookup(0x1000).unwrap().cfa, Cfa::Rsp(8));
        assert_eq!(table.lookup(0x1003).unwrap().cfa, Cfa::Rsp(8));
        assert_eq!(table.lookup(0x100f).unwrap().cfa, Cfa::Rsp(16));
        assert_eq!(table.lookup(u64::MAX).unwrap().cfa, Cfa::Missing);
    }

    #[test]
    fn file_offsets_map_through_segments() {
        let table = table();
        assert_eq!(table.vaddr_of(0x1800), Some(0x401800));
        assert_eq!(table.vaddr_of(0xfff), None);
        assert_eq!(table.vaddr_of(0x3000), None);
    }

    #[test]
    fn lld_segments_map_from_their_page_aligned_offset() {
        // As LLD lays out a Rust release binary: the code segment's file
        // offset is not page-aligned and its first page is shared with the
        // read-only segment before it.
        let table = Table {
            segments: vec![
                Segment {
                    offset: 0,
                    size: 0x136fc,
                    vaddr: 0,
                    flags: 4,
                },
                Segment {
                    offset: 0x13700,
                    size: 0x3dcf0,
                    vaddr: 0x14700,
                    flags: 4 | Segment::PF_X,
                },
            ],
            ..table()
        };
        // The kernel maps file page 0x13000 at the page of 0x14700: 0x14000.
        assert_eq!(table.vaddr_of(0x13000), Some(0x14000));
        assert_eq!(table.vaddr_of(0x13800), Some(0x14800));
        assert_eq!(table.vaddr_of(0x12fff), None);
        assert_eq!(table.vaddr_of(0x13700 + 0x3dcf0), None);
    }
}
