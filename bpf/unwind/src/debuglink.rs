//! Finding a file's separate debug file, which may hold `.debug_frame`.
//!
//! Distributions strip binaries and ship their DWARF apart. Two conventions
//! name the debug file: by build id
//! (`/usr/lib/debug/.build-id/ab/cdef….debug`, trusted when its own build
//! id matches) and by `.gnu_debuglink` (a file name looked up beside the
//! binary, in its `.debug/` folder and under `/usr/lib/debug/`, trusted
//! when its CRC-32 matches the one recorded in the link).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::elf::ElfInfo;

/// Root of the system's separate debug files.
const DEBUG_ROOT: &str = "/usr/lib/debug";

/// The debug file of `binary` (whose parts are `info`), when one is installed.
pub(crate) fn find(binary: &Path, info: &ElfInfo) -> Option<PathBuf> {
    if let Some(id) = info.build_id.as_deref().filter(|id| id.len() >= 2) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let path = Path::new(DEBUG_ROOT)
            .join(".build-id")
            .join(&hex[..2])
            .join(format!("{}.debug", &hex[2..]));
        let matches = ElfInfo::read(&path).is_ok_and(|d| d.build_id.as_deref() == Some(id));
        if matches {
            return Some(path);
        }
    }
    let (name, crc) = info.debuglink.as_ref()?;
    let dir = binary.parent().unwrap_or(Path::new("/"));
    let under_root = Path::new(DEBUG_ROOT).join(dir.strip_prefix("/").unwrap_or(dir));
    [
        dir.join(name),
        dir.join(".debug").join(name),
        under_root.join(name),
    ]
    .into_iter()
    .find(|candidate| candidate != binary && file_crc32(candidate) == Some(*crc))
}

/// CRC-32 (IEEE, as `.gnu_debuglink` uses) of a whole file.
fn file_crc32(path: &Path) -> Option<u32> {
    let mut file = File::open(path).ok()?;
    let mut crc = Crc32::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(crc.finish()),
            Ok(n) => crc.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Running CRC-32 with the reflected polynomial 0xEDB88320.
struct Crc32 {
    table: [u32; 256],
    state: u32,
}

impl Default for Crc32 {
    fn default() -> Self {
        let mut table = [0u32; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        Self {
            table,
            state: 0xFFFF_FFFF,
        }
    }
}

impl Crc32 {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = self.table[((self.state ^ b as u32) & 0xff) as usize] ^ (self.state >> 8);
        }
    }

    fn finish(&self) -> u32 {
        !self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut crc = Crc32::default();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xCBF4_3926);
    }
}
