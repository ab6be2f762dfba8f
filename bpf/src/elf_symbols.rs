//! What a uprobe attaches to: the file, and the file offset of a symbol.
//!
//! Users name binaries as bpftrace lets them: a path, a command found
//! through `$PATH`, or a library name (`libc`) found in the target process's
//! mappings or the dynamic linker's cache. Symbols come from `.symtab` and
//! `.dynsym`; the kernel wants file offsets, so each symbol's virtual address
//! is mapped through the loadable segment that holds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::error::{Error, Result};

/// A function symbol of an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The (mangled) name.
    pub name: String,
    /// File offset of the first instruction.
    pub offset: u64,
    /// Size in bytes (0 when the symbol table does not say).
    pub size: u64,
    /// An IFUNC: its code is the resolver the dynamic linker runs once to
    /// pick an implementation, so a probe on it does not fire on calls.
    pub ifunc: bool,
}

/// Finds the file a uprobe names: a path as given (`/usr/bin/bash`), a
/// command through `$PATH` (`bash`), or a library by name (`libc`,
/// `libc.so.6`), first among `pid`'s mappings, then in the dynamic linker's
/// cache.
pub fn resolve_binary(name: &str, pid: Option<u32>) -> Result<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(Error::Probe(format!(
                "{name} is not a regular file: give the path of an executable or library"
            ))),
            Err(_) => Err(Error::Probe(format!(
                "{name} does not exist: check the path, or give a command or library name"
            ))),
        };
    }
    let found = pid
        .and_then(|pid| library_in_maps(name, pid))
        .or_else(|| command_in_path(name))
        .or_else(|| library_in_ld_cache(name));
    found.ok_or_else(|| {
        Error::Probe(format!(
            "cannot find `{name}`: not a command in $PATH nor a library the dynamic linker knows{}; give its full path",
            if pid.is_some() { " or the process maps" } else { "" }
        ))
    })
}

/// Whether `file_name` is the library `name` (`libc` and `libc.so.6` both
/// name `libc.so.6`).
fn is_library(file_name: &str, name: &str) -> bool {
    file_name == name
        || file_name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(".so") || rest.starts_with('-'))
}

fn library_in_maps(name: &str, pid: u32) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| is_library(f, name))
        })
        .map(|path| PathBuf::from(format!("/proc/{pid}/root{path}")))
}

fn command_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn library_in_ld_cache(name: &str) -> Option<PathBuf> {
    // `ldconfig -p` prints the cache: `\tlibc.so.6 (libc6,x86-64) => /lib/...`;
    // read once per process.
    static CACHE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = CACHE.get_or_init(|| {
        std::process::Command::new("ldconfig")
            .arg("-p")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    });
    let mut matches = text.lines().filter_map(|line| {
        let (lib, path) = line.trim().split_once(" => ")?;
        let (file, flags) = lib.split_once(' ')?;
        is_library(file, name).then(|| (flags.contains("x86-64"), PathBuf::from(path)))
    });
    let first = matches.next()?;
    // Prefer the 64-bit build when the cache lists several.
    Some(match first.0 {
        true => first.1,
        false => matches.find(|(x86_64, _)| *x86_64).unwrap_or(first).1,
    })
}

/// The function symbols of `path` whose names satisfy `wanted`, by name,
/// with file offsets.
pub fn function_symbols(path: &Path, wanted: impl Fn(&str) -> bool) -> Result<Vec<Symbol>> {
    let data = read_elf(path)?;
    let file = ElfFile64::<Endianness>::parse(&*data).map_err(|e| {
        Error::Probe(format!(
            "{} is not a 64-bit ELF file ({e}): scorch probes x86_64 binaries",
            path.display()
        ))
    })?;
    let segments = Segments::of(&file);
    // .dynsym's versions: a hidden one (`name@VERSION`) is an older version
    // kept for old binaries; the default (`name@@VERSION`) is what programs
    // link against today. .symtab spells the same in its names.
    let versions = file
        .elf_section_table()
        .versions(file.endian(), file.data())
        .ok()
        .flatten();
    let dynamic = file.dynamic_symbols().map(|symbol| {
        let hidden = versions
            .as_ref()
            .is_some_and(|v| v.version_index(file.endian(), symbol.index()).is_hidden());
        (symbol, !hidden)
    });
    let mut found = BTreeMap::new();
    for (symbol, visible) in file.symbols().map(|s| (s, true)).chain(dynamic) {
        let ifunc = symbol.elf_symbol().st_type() == elf::STT_GNU_IFUNC;
        if !(symbol.kind() == SymbolKind::Text || ifunc) || symbol.section_index().is_none() {
            continue;
        }
        let Ok(versioned) = symbol.name() else {
            continue;
        };
        let (name, default) = match versioned.split_once('@') {
            Some((name, version)) => (name, version.starts_with('@')),
            None => (versioned, visible),
        };
        let taken = found.get(name).map(|&(_, default)| default);
        if name.is_empty() || taken == Some(true) || (taken.is_some() && !default) {
            continue;
        }
        if !wanted(name) {
            continue;
        }
        let Some(offset) = segments.file_offset(symbol.address()) else {
            continue;
        };
        let function = Symbol {
            name: name.to_string(),
            offset,
            size: symbol.size(),
            ifunc,
        };
        found.insert(name.to_string(), (function, default));
    }
    Ok(found.into_values().map(|(function, _)| function).collect())
}

/// The loadable segments of an ELF file, to turn virtual addresses into
/// the file offsets the kernel's uprobes want.
pub(crate) struct Segments(Vec<(u64, u64, u64)>);

impl Segments {
    /// The segments of `file`: (virtual address, size, file offset).
    pub(crate) fn of<'data>(file: &impl Object<'data>) -> Self {
        Segments(
            file.segments()
                .map(|s| (s.address(), s.size(), s.file_range().0))
                .collect(),
        )
    }

    /// The file offset of virtual address `address`, if a segment holds it.
    pub(crate) fn file_offset(&self, address: u64) -> Option<u64> {
        self.0
            .iter()
            .find(|&&(start, size, _)| (start..start + size).contains(&address))
            .map(|&(start, _, file_start)| address - start + file_start)
    }
}

/// Reads the ELF file at `path`, with an error that names it.
pub(crate) fn read_elf(path: &Path) -> Result<Vec<u8>> {
    // Never a device or a FIFO, which could be endless.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err(Error::Probe(format!(
            "{} is not a regular file: give the path of an executable or library",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| Error::Probe(format!("cannot read {}: {e}", path.display())))
}

/// The libraries `path` names as its dependencies (`DT_NEEDED`), e.g.
/// `libc.so.6`.
pub fn needed_libraries(path: &Path) -> Result<Vec<String>> {
    use object::read::elf::Dyn;
    let data = read_elf(path)?;
    let file = ElfFile64::<Endianness>::parse(&*data)
        .map_err(|e| Error::Probe(format!("{} is not a 64-bit ELF file ({e})", path.display())))?;
    let endian = file.endian();
    let sections = file.elf_section_table();
    let Some((entries, index)) = sections.dynamic(endian, file.data()).ok().flatten() else {
        return Ok(Vec::new());
    };
    let Ok(strings) = sections.strings(endian, file.data(), index) else {
        return Ok(Vec::new());
    };
    Ok(entries
        .iter()
        .filter(|d| d.tag32(endian) == Some(elf::DT_NEEDED))
        .filter_map(|d| d.string(endian, strings).ok())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect())
}

/// The file offset of virtual address `address` in `path` (a probe given
/// by address, as `nm` or `objdump` print it).
pub fn address_offset(path: &Path, address: u64) -> Result<u64> {
    let data = read_elf(path)?;
    let file = object::File::parse(&*data)
        .map_err(|e| Error::Probe(format!("{} is not an ELF file: {e}", path.display())))?;
    Segments::of(&file).file_offset(address).ok_or_else(|| {
        Error::Probe(format!(
            "address {address:#x} is in no loadable segment of {}: give a virtual address as `nm` prints it",
            path.display()
        ))
    })
}

/// The link-time address of symbol `name` (a function or a variable) in
/// `path`, if it has one: what bpftrace's `uaddr()` returns.
pub fn symbol_address(path: &Path, name: &str) -> Result<Option<u64>> {
    let data = read_elf(path)?;
    let file = object::File::parse(&*data)
        .map_err(|e| Error::Probe(format!("{} is not an ELF file: {e}", path.display())))?;
    Ok(file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.section_index().is_some() && s.address() != 0)
        .find(|s| {
            s.name()
                .is_ok_and(|n| n.split_once('@').map_or(n, |(base, _)| base) == name)
        })
        .map(|s| s.address()))
}

/// The file offset of the function `symbol` in `path`.
pub fn symbol_offset(path: &Path, symbol: &str) -> Result<u64> {
    let functions = function_symbols(path, |_| true)?;
    let Some(found) = functions.iter().find(|f| f.name == symbol) else {
        return Err(Error::Probe(format!(
            "{} has no function `{symbol}`{}; list its functions with `scorch trace -l 'uprobe:{}:*'`",
            path.display(),
            if functions.is_empty() {
                " (the file has no symbol table: it is stripped)"
            } else {
                ""
            },
            path.display()
        )));
    };
    if found.ifunc {
        let mut implementations: Vec<&str> = functions
            .iter()
            .filter(|f| !f.ifunc && f.name != symbol && f.name.contains(symbol))
            .map(|f| f.name.as_str())
            .take(5)
            .collect();
        implementations.sort_unstable();
        return Err(Error::Probe(format!(
            "`{symbol}` in {} is an IFUNC: its code picks an implementation once, when the program loads, and never runs on calls; probe an implementation instead{}",
            path.display(),
            match implementations.is_empty() {
                true => String::new(),
                false => format!(" (candidates: {})", implementations.join(", ")),
            }
        )));
    }
    Ok(found.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_match_their_files() {
        assert!(is_library("libc.so.6", "libc"));
        assert!(is_library("libc.so.6", "libc.so.6"));
        assert!(is_library("libc-2.36.so", "libc"));
        assert!(!is_library("libcrypt.so.1", "libc"));
        assert!(!is_library("libc.so.6", "libcrypt"));
    }

    #[test]
    fn finds_libc_and_its_malloc() {
        let libc = resolve_binary("libc", None).expect("libc through ld.so's cache");
        assert!(libc.to_string_lossy().contains("libc.so"), "{libc:?}");
        let offset = symbol_offset(&libc, "malloc").expect("malloc");
        assert!(offset > 0);
        let err = symbol_offset(&libc, "no_such_function_here").unwrap_err();
        assert!(
            err.to_string()
                .contains("has no function `no_such_function_here`"),
            "{err}"
        );
    }

    #[test]
    fn ifuncs_are_refused_with_their_implementations() {
        let libc = resolve_binary("libc", None).expect("libc");
        let memcpy = function_symbols(&libc, |name| name == "memcpy").expect("symbols");
        assert!(memcpy.first().is_some_and(|s| s.ifunc), "{memcpy:?}");
        let err = symbol_offset(&libc, "memcpy").unwrap_err().to_string();
        assert!(err.contains("is an IFUNC"), "{err}");
        assert!(!function_symbols(&libc, |n| n == "malloc").unwrap()[0].ifunc);
    }

    #[test]
    fn commands_resolve_through_path() {
        let sh = resolve_binary("sh", None).expect("sh in $PATH");
        assert!(sh.is_file());
        let err = resolve_binary("no-such-command-xyz", None).unwrap_err();
        assert!(err.to_string().contains("give its full path"), "{err}");
    }
}
