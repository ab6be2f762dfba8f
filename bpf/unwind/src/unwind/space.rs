//! A process's executable mappings and the table of each.
//!
//! Read from `/proc/PID/maps` (`START-END PERMS OFFSET DEV INODE PATH`);
//! only executable mappings matter to an unwinder ([`executables`]). The
//! code of each is read from its file, or from memory for the vDSO. A
//! mapping whose table cannot be built (no CFI, unreadable, anonymous JIT
//! code) is kept without a table, so the unwinder knows to fall back to
//! frame pointers.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::TableCache;
use crate::table::Table;

/// An executable mapping of a process.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// File offset mapped at `start`.
    pub offset: u64,
    /// The mapped file's path, or a pseudo-name such as `[vdso]`.
    pub path: String,
    /// The file's unwind table, when it has one.
    pub table: Option<Arc<Table>>,
}

impl Mapping {
    /// The ELF virtual address of `address`, which lies in this mapping.
    pub fn vaddr(&self, address: u64) -> Option<u64> {
        self.table
            .as_ref()?
            .vaddr_of(address - self.start + self.offset)
    }
}

/// The executable mappings of one process, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct AddressSpace {
    mappings: Vec<Mapping>,
}

impl AddressSpace {
    /// An address space of these mappings.
    pub fn new(mut mappings: Vec<Mapping>) -> Self {
        mappings.sort_by_key(|m| m.start);
        Self { mappings }
    }

    /// The executable mappings of process `pid`, with tables from `cache`.
    pub fn of_process(pid: u32, cache: &mut TableCache) -> std::io::Result<Self> {
        let mappings = executables(pid)?
            .into_iter()
            .map(|e| {
                let table = match &e.image {
                    Image::File(file) => cache.get(file).ok(),
                    Image::Memory(bytes) => cache.image(bytes, Path::new(&e.path)).ok(),
                    Image::None => None,
                };
                Mapping {
                    start: e.start,
                    end: e.end,
                    offset: e.offset,
                    path: e.path,
                    table,
                }
            })
            .collect();
        Ok(Self::new(mappings))
    }

    /// Every mapping.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The mapping holding `address`.
    pub fn find(&self, address: u64) -> Option<&Mapping> {
        let after = self.mappings.partition_point(|m| m.start <= address);
        let mapping = self.mappings.get(after.checked_sub(1)?)?;
        (address < mapping.end).then_some(mapping)
    }
}

/// Where the code of a mapping can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// From this file: the mapped path while it still names the mapped
    /// inode (so a debug link beside it is found), else
    /// `/proc/PID/map_files/…` (deleted files, other mount namespaces).
    File(PathBuf),
    /// From this copy of the process's memory (the vDSO has no file).
    Memory(Vec<u8>),
    /// Nowhere (anonymous memory, JIT code).
    None,
}

/// An executable mapping before its table is built.
#[derive(Debug, Clone)]
pub struct Executable {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// File offset mapped at `start`.
    pub offset: u64,
    /// The path `/proc/PID/maps` shows, or a pseudo-name such as `[vdso]`.
    pub path: String,
    /// Where its code can be read.
    pub image: Image,
}

/// The executable mappings of process `pid`, in address order.
pub fn executables(pid: u32) -> std::io::Result<Vec<Executable>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(text
        .lines()
        .filter_map(parse_line)
        .map(|line| {
            let MapsLine {
                start,
                end,
                offset,
                path,
                ..
            } = line;
            let image = if path == "[vdso]" {
                vdso(pid, start, end).map_or(Image::None, Image::Memory)
            } else if path.starts_with('/') {
                Image::File(file_of(pid, &line))
            } else {
                Image::None
            };
            Executable {
                start,
                end,
                offset,
                path: path.to_owned(),
                image,
            }
        })
        .collect())
}

/// The vDSO image of process `pid`, mapped at `start..end` (it has no file).
fn vdso(pid: u32, start: u64, end: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut image = vec![0u8; usize::try_from(end - start).ok()?];
    mem.read_exact_at(&mut image, start).ok()?;
    Some(image)
}

/// One executable line of `/proc/PID/maps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MapsLine<'a> {
    start: u64,
    end: u64,
    offset: u64,
    /// Device of the mapped file: (major, minor).
    dev: (u64, u64),
    inode: u64,
    path: &'a str,
}

/// Where to read the file a mapping of process `pid` maps: its path when
/// that names the very file (same device and inode: not a file of another
/// mount namespace that happens to share the path and inode number), else
/// `/proc/PID/map_files/…`.
fn file_of(pid: u32, line: &MapsLine) -> PathBuf {
    let same = std::fs::metadata(line.path)
        .is_ok_and(|m| m.ino() == line.inode && dev_parts(m.dev()) == line.dev);
    if same {
        PathBuf::from(line.path)
    } else {
        PathBuf::from(format!(
            "/proc/{pid}/map_files/{:x}-{:x}",
            line.start, line.end
        ))
    }
}

/// `(major, minor)` of a device number as Linux encodes `dev_t`.
fn dev_parts(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major, minor)
}

/// An executable mapping line; `None` for others.
fn parse_line(line: &str) -> Option<MapsLine<'_>> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim_start();
    if perms.as_bytes().get(2) != Some(&b'x') {
        return None;
    }
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    let (start, end) = (hex(start)?, hex(end)?);
    (start < end).then_some(MapsLine {
        start,
        end,
        offset: hex(offset)?,
        dev: (hex(major)?, hex(minor)?),
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_executable_lines_only() {
        let libc = "7f3a1c028000-7f3a1c1b5000 r-xp 00028000 08:1a 1835263                    /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(
            parse_line(libc),
            Some(MapsLine {
                start: 0x7f3a1c028000,
                end: 0x7f3a1c1b5000,
                offset: 0x28000,
                dev: (8, 0x1a),
                inode: 1835263,
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6"
            })
        );
        assert_eq!(
            parse_line("7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]")
                .map(|l| (l.start, l.dev, l.path)),
            Some((0x7ffd1000, (0, 0), "[vdso]"))
        );
        assert_eq!(parse_line("1000-2000 rw-p 00000000 00:00 0 [heap]"), None);
        assert_eq!(parse_line("2000-1000 r-xp 00000000 00:00 0 /a"), None);
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn a_file_is_read_by_path_only_when_device_and_inode_match() {
        // This test binary's own code mapping.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        let line = maps
            .lines()
            .filter_map(parse_line)
            .find(|l| std::path::Path::new(l.path) == exe)
            .expect("the test binary's code mapping");
        let pid = std::process::id();
        assert_eq!(file_of(pid, &line), exe);
        // The same path and inode number on another device: another
        // container's file, read through map_files.
        let elsewhere = MapsLine {
            dev: (line.dev.0 + 1, line.dev.1),
            ..line
        };
        let through = format!("/proc/{pid}/map_files/{:x}-{:x}", line.start, line.end);
        assert_eq!(file_of(pid, &elsewhere), PathBuf::from(&through));
        let other_inode = MapsLine {
            inode: line.inode + 1,
            ..line
        };
        assert_eq!(file_of(pid, &other_inode), PathBuf::from(through));
    }

    #[test]
    fn device_numbers_split_as_linux_encodes_them() {
        // makedev(8, 1), and makedev(0x1234, 0x11170) whose parts overflow
        // the old 8-bit fields: major bits 12+ at 44+, minor bits 8+ at 20+.
        assert_eq!(dev_parts(0x801), (8, 1));
        let dev = (0x1000u64 << 32) | (0x234 << 8) | (0x11100 << 12) | 0x70;
        assert_eq!(dev_parts(dev), (0x1234, 0x11170));
    }

    #[test]
    fn finds_the_mapping_of_an_address() {
        let mapping = |start, end| Mapping {
            start,
            end,
            offset: 0,
            path: String::new(),
            table: None,
        };
        let space = AddressSpace::new(vec![mapping(0x5000, 0x6000), mapping(0x1000, 0x2000)]);
        assert_eq!(space.find(0x1000).map(|m| m.start), Some(0x1000));
        assert_eq!(space.find(0x1fff).map(|m| m.start), Some(0x1000));
        assert!(space.find(0x2000).is_none());
        assert!(space.find(0xfff).is_none());
        assert_eq!(space.find(0x5800).map(|m| m.start), Some(0x5000));
    }
}
