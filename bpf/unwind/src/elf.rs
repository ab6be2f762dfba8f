//! What table building needs from an ELF file, read without mapping it.
//!
//! The file is read through `object`'s on-demand cache: headers, then only
//! the sections asked for (`.eh_frame`, `.eh_frame_hdr`, `.debug_frame`,
//! decompressed when needed), the build id, the debug link and the
//! loadable segments. Nothing else of a large binary is read. Sections
//! stored uncompressed are read straight into their own buffer, past the
//! cache (which keeps what it reads until dropped): each is held once.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{
    Architecture, CompressionFormat, Object, ObjectSection, ObjectSegment, ReadRef, SectionKind,
};

use crate::error::{Error, Result};
use crate::table::FileKey;

/// A section's bytes and the address it is loaded at.
#[derive(Debug, Clone, Default)]
pub(crate) struct Section {
    /// Virtual address of the first byte.
    pub(crate) address: u64,
    /// Contents, decompressed.
    pub(crate) data: Vec<u8>,
}

/// A loadable segment: where a range of the file lands in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// File offset of the segment's first byte.
    pub offset: u64,
    /// Bytes of the file in the segment.
    pub size: u64,
    /// Virtual address of the segment's first byte.
    pub vaddr: u64,
    /// The program header's `p_flags` (`PF_X`, `PF_W`, `PF_R`).
    pub flags: u32,
}

impl Segment {
    /// `p_flags` bit of a segment holding code.
    pub const PF_X: u32 = 1;

    /// Whether the segment holds code.
    pub fn is_executable(&self) -> bool {
        self.flags & Self::PF_X != 0
    }
}

/// The parts of an ELF file that unwinding uses.
#[derive(Debug)]
pub(crate) struct ElfInfo {
    /// Identity of the file by device, inode, size and modification time
    /// (`None` for an image in memory).
    pub(crate) inode: Option<FileKey>,
    pub(crate) eh_frame: Option<Section>,
    pub(crate) eh_frame_hdr: Option<Section>,
    pub(crate) debug_frame: Option<Section>,
    /// Address of `.text`, a base for text-relative pointer encodings.
    pub(crate) text: u64,
    /// Address of `.got`, a base for data-relative pointer encodings.
    pub(crate) got: u64,
    pub(crate) build_id: Option<Vec<u8>>,
    /// `.gnu_debuglink`: file name and CRC-32 of the separate debug file.
    pub(crate) debuglink: Option<(PathBuf, u32)>,
    pub(crate) segments: Vec<Segment>,
}

impl ElfInfo {
    /// Reads `path`'s unwinding-related parts.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let inode = FileKey::of_metadata(&meta);
        let cache = ReadCache::new(&file);
        let read = |offset: u64, size: usize| {
            let mut bytes = vec![0; size];
            file.read_exact_at(&mut bytes, offset).ok()?;
            Some(bytes)
        };
        Self::parse(&cache, &read, path, Some(inode))
    }

    /// The parts of an ELF image held in memory (a vDSO), named `name` in errors.
    pub(crate) fn parse_image(bytes: &[u8], name: &Path) -> Result<Self> {
        let read = |offset: u64, size: usize| {
            let start = usize::try_from(offset).ok()?;
            Some(bytes.get(start..start.checked_add(size)?)?.to_vec())
        };
        Self::parse(bytes, &read, name, None)
    }

    /// Parses the parts from `data`; `read(offset, size)` reads a range of
    /// it into a buffer of its own (`None` past the end).
    fn parse<'data, R: ReadRef<'data>>(
        data: R,
        read: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
        path: &Path,
        inode: Option<FileKey>,
    ) -> Result<Self> {
        let not_elf = |reason: String| Error::NotElf {
            path: path.to_owned(),
            reason,
        };
        let elf = object::File::parse(data).map_err(|e| not_elf(e.to_string()))?;
        if elf.format() != object::BinaryFormat::Elf
            || elf.architecture() != Architecture::X86_64
            || !elf.is_little_endian()
        {
            return Err(not_elf(format!(
                "{:?} {:?} file",
                elf.format(),
                elf.architecture()
            )));
        }
        let section = |name: &str| -> Result<Option<Section>> {
            let Some(section) = elf.section_by_name(name) else {
                return Ok(None);
            };
            // Debug-only files keep allocated sections as NOBITS placeholders.
            if section.kind() == SectionKind::UninitializedData {
                return Ok(None);
            }
            let unreadable = |e: String| not_elf(format!("reading section {name}: {e}"));
            let range = section
                .compressed_file_range()
                .map_err(|e| unreadable(e.to_string()))?;
            let data = if range.format == CompressionFormat::None {
                // Bounded by the file's size: a bogus size fails the read.
                let size = usize::try_from(range.uncompressed_size)
                    .map_err(|e| unreadable(e.to_string()))?;
                if size > data.len().unwrap_or(0) as usize {
                    return Err(unreadable("larger than the file".to_owned()));
                }
                read(range.offset, size)
                    .ok_or_else(|| unreadable("it extends past the end of the file".to_owned()))?
            } else {
                section
                    .uncompressed_data()
                    .map_err(|e| unreadable(e.to_string()))?
                    .into_owned()
            };
            Ok(Some(Section {
                address: section.address(),
                data,
            }))
        };
        let address = |name: &str| elf.section_by_name(name).map_or(0, |s| s.address());
        let build_id = elf
            .build_id()
            .map_err(|e| not_elf(format!("reading the build id: {e}")))?
            .map(<[u8]>::to_vec);
        let debuglink = elf
            .gnu_debuglink()
            .map_err(|e| not_elf(format!("reading .gnu_debuglink: {e}")))?
            .map(|(name, crc)| {
                use std::os::unix::ffi::OsStrExt;
                (PathBuf::from(std::ffi::OsStr::from_bytes(name)), crc)
            });
        let segments = elf
            .segments()
            .filter_map(|s| {
                let (offset, size) = s.file_range();
                let flags = match s.flags() {
                    object::SegmentFlags::Elf { p_flags } => p_flags,
                    _ => 0,
                };
                (size > 0).then_some(Segment {
                    offset,
                    size,
                    vaddr: s.address(),
                    flags,
                })
            })
            .collect();
        Ok(Self {
            inode,
            eh_frame: section(".eh_frame")?,
            eh_frame_hdr: section(".eh_frame_hdr")?,
            debug_frame: section(".debug_frame")?,
            text: address(".text"),
            got: address(".got"),
            build_id,
            debuglink,
            segments,
        })
    }
}
