//! USDT probes: the static tracepoints programs declare with `sys/sdt.h`.
//!
//! Each probe is an ELF note in `.note.stapsdt` (owner `stapsdt`, type 3)
//! whose description holds the probe's address, the link-time address of
//! `.stapsdt.base` (to correct for prelinking), the address of its
//! semaphore (0 when it has none), then three strings: provider, name and
//! the argument specs. A probe is a `nop` at that address: scorch attaches a
//! uprobe there, and when the probe has a semaphore the kernel counts it up
//! while attached (the `ref_ctr_offset` of the uprobe), so code guarded by
//! `if (PROVIDER_NAME_ENABLED())` runs.
//!
//! Argument specs are assembler operands with a size: `-4@%edi` (a signed
//! 4-byte register), `8@-16(%rbp)` (memory at a register plus offset),
//! `4@$5` (a constant). [`ArgLocation`] says where each one lives in terms
//! of x86_64 `pt_regs`, for the code generator to read.

use std::path::Path;

use object::{Object, ObjectSection};

use crate::elf_symbols::{read_elf, Segments};
use crate::error::{Error, Result};

/// One USDT probe of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtProbe {
    /// The provider, e.g. `python`.
    pub provider: String,
    /// The probe name, e.g. `function__entry`.
    pub name: String,
    /// File offset of the probe's instruction (where the uprobe goes).
    pub offset: u64,
    /// File offset of the probe's semaphore, 0 when it has none.
    pub semaphore: u64,
    /// Its arguments, `arg0` first.
    pub args: Vec<UsdtArg>,
}

/// One argument of a USDT probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtArg {
    /// Size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Whether the value is sign-extended.
    pub signed: bool,
    /// Where the value is.
    pub location: ArgLocation,
}

/// Where a USDT argument lives when the probe fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgLocation {
    /// In a register, by its byte offset in x86_64 `struct pt_regs`.
    Register(u16),
    /// In user memory at (register at this `pt_regs` offset) + displacement.
    Memory {
        /// `pt_regs` offset of the base register.
        base: u16,
        /// Added to the base register's value.
        displacement: i64,
    },
    /// A constant.
    Constant(i64),
    /// A form scorch cannot read yet (e.g. `%rip`-relative or indexed), as
    /// written in the note.
    Unsupported(String),
}

/// The USDT probes of the ELF file at `path` (none if it has no
/// `.note.stapsdt`).
pub fn probes(path: &Path) -> Result<Vec<UsdtProbe>> {
    let data = read_elf(path)?;
    let file = object::File::parse(&*data)
        .map_err(|e| Error::Probe(format!("{} is not an ELF file: {e}", path.display())))?;
    // The notes hold addresses in the file's word size and byte order.
    if !file.is_64() || !file.is_little_endian() {
        return Err(Error::Probe(format!(
            "{} is not a 64-bit little-endian ELF file: scorch reads USDT probes of x86_64 binaries",
            path.display()
        )));
    }
    let Some(notes) = file.section_by_name(".note.stapsdt") else {
        return Ok(Vec::new());
    };
    let notes = notes.data().map_err(|e| {
        Error::Probe(format!(
            "{}: cannot read .note.stapsdt: {e}",
            path.display()
        ))
    })?;
    let base_section = file.section_by_name(".stapsdt.base").map(|s| s.address());
    let segments = Segments::of(&file);
    let corrupt = |what: &str| {
        Error::Probe(format!(
            "{}: corrupt .note.stapsdt ({what})",
            path.display()
        ))
    };
    let mut probes = Vec::new();
    for note in Notes(notes) {
        let note = note.map_err(|_| corrupt("a note runs past the section"))?;
        if note.owner != b"stapsdt" || note.kind != 3 {
            continue;
        }
        let desc = note.desc;
        if desc.len() < 24 {
            return Err(corrupt("a description is shorter than its three addresses"));
        }
        let word = |i: usize| u64::from_le_bytes(desc[i * 8..i * 8 + 8].try_into().unwrap());
        let (mut pc, link_base, semaphore) = (word(0), word(1), word(2));
        // Prelinked files moved .stapsdt.base: move the probe with it.
        if let Some(actual) = base_section.filter(|_| link_base != 0) {
            pc = pc.wrapping_sub(link_base).wrapping_add(actual);
        }
        let mut strings = desc[24..].split(|&b| b == 0);
        let mut next = || String::from_utf8_lossy(strings.next().unwrap_or_default()).into_owned();
        let (provider, name, args) = (next(), next(), next());
        let offset = segments.file_offset(pc).ok_or_else(|| {
            corrupt(&format!(
                "probe {provider}:{name} lies outside every segment"
            ))
        })?;
        let semaphore = match semaphore {
            0 => 0,
            address => segments.file_offset(address).ok_or_else(|| {
                corrupt(&format!(
                    "the semaphore of {provider}:{name} lies outside every segment"
                ))
            })?,
        };
        probes.push(UsdtProbe {
            args: args.split_whitespace().map(parse_arg).collect(),
            provider,
            name,
            offset,
            semaphore,
        });
    }
    Ok(probes)
}

/// One ELF note.
struct Note<'a> {
    owner: &'a [u8],
    kind: u32,
    desc: &'a [u8],
}

/// The notes of a note section, in order.
struct Notes<'a>(&'a [u8]);

impl<'a> Iterator for Notes<'a> {
    type Item = std::result::Result<Note<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.len() < 12 {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(self.0[i..i + 4].try_into().unwrap()) as usize;
        let (name_size, desc_size, kind) = (u32_at(0), u32_at(4), u32_at(8) as u32);
        let align = |n: usize| n.checked_add(3).map(|n| n & !3);
        let name_end = align(name_size).and_then(|n| n.checked_add(12));
        let desc_end =
            name_end.and_then(|start| Some((start, start.checked_add(align(desc_size)?)?)));
        let Some((desc_start, desc_end)) = desc_end.filter(|&(_, end)| end <= self.0.len()) else {
            self.0 = &[];
            return Some(Err(()));
        };
        let owner = &self.0[12..12 + name_size];
        let note = Note {
            owner: owner.strip_suffix(b"\0").unwrap_or(owner),
            kind,
            desc: &self.0[desc_start..desc_start + desc_size],
        };
        self.0 = &self.0[desc_end..];
        Some(Ok(note))
    }
}

/// Parses one argument spec such as `-4@%edi`, `8@-16(%rbp)` or `4@$5`.
fn parse_arg(spec: &str) -> UsdtArg {
    let (size, operand) = match spec.split_once('@') {
        Some((size, operand)) => (size.parse::<i8>().unwrap_or(8), operand),
        // Old notes leave the size out: a long.
        None => (8, spec),
    };
    let unsupported = || ArgLocation::Unsupported(spec.to_string());
    let location = if let Some(register) = operand.strip_prefix('%') {
        register_offset(register).map_or_else(unsupported, ArgLocation::Register)
    } else if let Some(constant) = operand.strip_prefix('$') {
        parse_int(constant).map_or_else(unsupported, ArgLocation::Constant)
    } else if let Some((displacement, rest)) = operand.split_once("(%") {
        let base = rest.strip_suffix(')').and_then(register_offset);
        let displacement = match displacement {
            "" => Some(0),
            d => parse_int(d),
        };
        match (base, displacement) {
            (Some(base), Some(displacement)) => ArgLocation::Memory { base, displacement },
            _ => unsupported(),
        }
    } else {
        unsupported()
    };
    UsdtArg {
        size: size.unsigned_abs().clamp(1, 8),
        signed: size < 0,
        location,
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if negative { -value } else { value })
}

/// The offset in x86_64 `struct pt_regs` of a general register, by any of
/// its names (`rdi`, `edi`, `di`, `dil`; `r8`, `r8d`, `r8w`, `r8b`).
fn register_offset(name: &str) -> Option<u16> {
    const LEGACY: [(&str, [&str; 4], u16); 8] = [
        ("ax", ["rax", "eax", "ax", "al"], 80),
        ("bx", ["rbx", "ebx", "bx", "bl"], 40),
        ("cx", ["rcx", "ecx", "cx", "cl"], 88),
        ("dx", ["rdx", "edx", "dx", "dl"], 96),
        ("si", ["rsi", "esi", "si", "sil"], 104),
        ("di", ["rdi", "edi", "di", "dil"], 112),
        ("bp", ["rbp", "ebp", "bp", "bpl"], 32),
        ("sp", ["rsp", "esp", "sp", "spl"], 152),
    ];
    if let Some(&(_, _, offset)) = LEGACY.iter().find(|(_, names, _)| names.contains(&name)) {
        return Some(offset);
    }
    // r8..r15 with an optional d/w/b suffix; pt_regs keeps r15 first.
    let number: u16 = name
        .strip_prefix('r')?
        .trim_end_matches(['d', 'w', 'b'])
        .parse()
        .ok()?;
    match number {
        8..=11 => Some(72 - (number - 8) * 8),
        12..=15 => Some(24 - (number - 12) * 8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(size: u8, signed: bool, location: ArgLocation) -> UsdtArg {
        UsdtArg {
            size,
            signed,
            location,
        }
    }

    #[test]
    fn parses_the_argument_forms_gcc_emits() {
        assert_eq!(
            parse_arg("-4@%edi"),
            arg(4, true, ArgLocation::Register(112))
        );
        assert_eq!(
            parse_arg("8@%rax"),
            arg(8, false, ArgLocation::Register(80))
        );
        assert_eq!(
            parse_arg("8@%r12"),
            arg(8, false, ArgLocation::Register(24))
        );
        assert_eq!(
            parse_arg("-2@%r9w"),
            arg(2, true, ArgLocation::Register(64))
        );
        assert_eq!(
            parse_arg("1@%r15b"),
            arg(1, false, ArgLocation::Register(0))
        );
        assert_eq!(
            parse_arg("8@-16(%rbp)"),
            arg(
                8,
                false,
                ArgLocation::Memory {
                    base: 32,
                    displacement: -16
                }
            )
        );
        assert_eq!(
            parse_arg("4@(%rdi)"),
            arg(
                4,
                false,
                ArgLocation::Memory {
                    base: 112,
                    displacement: 0
                }
            )
        );
        assert_eq!(parse_arg("-4@$-7"), arg(4, true, ArgLocation::Constant(-7)));
        assert_eq!(
            parse_arg("8@$0x10"),
            arg(8, false, ArgLocation::Constant(16))
        );
        assert_eq!(
            parse_arg("8@counter(%rip)"),
            arg(8, false, ArgLocation::Unsupported("8@counter(%rip)".into()))
        );
    }

    #[test]
    fn truncated_notes_are_reported_not_read_past() {
        let mut notes = Notes(&[8, 0, 0, 0, 200, 0, 0, 0, 3, 0, 0, 0, b's', b't']);
        assert!(matches!(notes.next(), Some(Err(()))));
        assert!(notes.next().is_none());
    }
}
