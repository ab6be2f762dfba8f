//! `uprobe`/`uretprobe` and `usdt` specs resolved to file offsets.
//!
//! A user-space probe names a binary (a path, a command found through
//! `$PATH`, or a library such as `libc`, found in the `-p` process's
//! mappings or the dynamic linker's cache) and a place in it: a function
//! (wildcards allowed), `function+offset`, an address, or a USDT probe.
//! Everything is read from the file here, so a missing symbol is an error
//! with a nearby name before anything is loaded or attached.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use scorch_bpf::elf_symbols::{self, Symbol};
use scorch_bpf::usdt::{self, UsdtProbe};

use super::probes::{glob, Attach, Instance};
use crate::ast::ProbeSpec;
use crate::diag::Diagnostic;
use crate::provider::ProbeKind;

/// Where a uprobe or uretprobe attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProbe {
    /// The file.
    pub path: PathBuf,
    /// The function (or the address, as written, for a probe by address).
    pub function: String,
    /// File offset of the instruction.
    pub offset: u64,
    /// On return from the function rather than at the instruction.
    pub ret: bool,
}

/// A USDT probe of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtPoint {
    /// The file.
    pub path: PathBuf,
    /// The probe, its semaphore and its argument locations.
    pub probe: UsdtProbe,
}

/// How a path is shown in probe names: a library found through a
/// process's mappings without the `/proc/PID/root` prefix.
pub(crate) fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    match text.strip_prefix("/proc/") {
        Some(rest) => match rest.split_once("/root/") {
            Some((pid, real)) if pid.bytes().all(|b| b.is_ascii_digit()) => format!("/{real}"),
            _ => text,
        },
        None => text,
    }
}

/// The process user-space probes are for: the one of `-p`, or the
/// command of `-c`, started but stopped before its `exec`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Target<'a> {
    /// Its pid: uprobes fire in it only.
    pub pid: Option<u32>,
    /// The command's file, for `-c`. Its name (as written or as a file
    /// name) means this file; libraries are not looked up in the pid's
    /// mappings, which are still the tracer's until the `exec`.
    pub command: Option<&'a Path>,
}

impl Target<'_> {
    /// The file `name` means for the command, if it names it.
    fn command_named(&self, name: &str) -> Option<PathBuf> {
        let command = self.command?;
        let same_file = || {
            let (Ok(a), Ok(b)) = (std::fs::canonicalize(name), std::fs::canonicalize(command))
            else {
                return false;
            };
            a == b
        };
        let named = Path::new(name) == command
            || (!name.contains('/') && command.file_name() == Some(name.as_ref()))
            || (name.contains('/') && same_file());
        named.then(|| command.to_path_buf())
    }
}

/// The binary a spec names, or an error at the spec.
fn binary(spec: &ProbeSpec, name: &str, target: Target<'_>) -> Result<PathBuf, Diagnostic> {
    if let Some(path) = target.command_named(name) {
        return Ok(path);
    }
    let pid = target.pid.filter(|_| target.command.is_none());
    elf_symbols::resolve_binary(name, pid).map_err(|e| Diagnostic::error(spec.span, e.to_string()))
}

/// Strips quotes a part was written with (`"ns::f(int)"`).
fn unquote(part: &str) -> &str {
    part.strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .unwrap_or(part)
}

/// `uprobe:BINARY:FUNCTION`, `…:FUNCTION+OFFSET`, `…:ADDRESS`; wildcards
/// in FUNCTION.
pub(super) fn uprobe(
    spec: &ProbeSpec,
    parts: &[&str],
    process: Target<'_>,
) -> Result<Vec<Instance>, Diagnostic> {
    let ret = spec.kind == ProbeKind::Uretprobe;
    let kind = spec.kind.name();
    let [bin, target] = parts else {
        return Err(Diagnostic::error(
            spec.span,
            format!("a {kind} probe is written `{kind}:BINARY:FUNCTION`"),
        )
        .with_help(format!(
            "e.g. `{kind}:/bin/bash:readline` or `{kind}:libc:malloc`; BINARY is a path, a command in $PATH or a library name"
        )));
    };
    let target = unquote(target);
    let path = binary(spec, bin, process)?;
    let one = |function: String, offset: u64| Instance {
        name: format!("{kind}:{}:{function}", shown(&path)),
        attach: Attach::Uprobe(Arc::new(UserProbe {
            path: path.clone(),
            function,
            offset,
            ret,
        })),
    };
    let fail = |e: scorch_bpf::Error| Diagnostic::error(spec.span, e.to_string());
    if let Some(address) = parse_number(target) {
        let offset = elf_symbols::address_offset(&path, address).map_err(fail)?;
        return Ok(vec![one(target.to_string(), offset)]);
    }
    if target.contains(['*', '?']) {
        let found: Vec<Symbol> =
            elf_symbols::function_symbols(&path, |name| glob(target, name)).map_err(fail)?;
        let found: Vec<Instance> = found
            .into_iter()
            .filter(|s| !s.ifunc)
            .map(|s| one(s.name, s.offset))
            .collect();
        if found.is_empty() {
            return Err(Diagnostic::error(
                spec.span,
                format!("no function of {} matches `{target}`", shown(&path)),
            )
            .with_help(format!(
                "list its functions with `scorch trace -l '{kind}:{}:*'`",
                shown(&path)
            )));
        }
        return Ok(found);
    }
    let (function, extra) = match target.split_once('+') {
        Some((function, off)) => match parse_number(off) {
            Some(off) => (function, off),
            None => {
                return Err(Diagnostic::error(
                    spec.span,
                    format!("invalid offset `{off}`: write a number such as 16 or 0x10"),
                ))
            }
        },
        None => (target, 0),
    };
    if ret && extra != 0 {
        return Err(Diagnostic::error(
            spec.span,
            "a uretprobe fires on return from a function: it takes no offset",
        ));
    }
    let pid = process.pid.filter(|_| process.command.is_none());
    let (path, symbol) = match find_function(&path, function, pid) {
        Ok(found) => found,
        Err(e) => return Err(missing_function(spec, &path, function, e)),
    };
    if symbol.size != 0 && extra >= symbol.size {
        return Err(Diagnostic::error(
            spec.span,
            format!(
                "offset {extra:#x} is past the end of `{function}` ({} bytes)",
                symbol.size
            ),
        ));
    }
    let mut instance = one(function.to_string(), symbol.offset + extra);
    if let Attach::Uprobe(u) = &mut instance.attach {
        Arc::make_mut(u).path.clone_from(&path);
    }
    if extra != 0 {
        instance.name = format!("{kind}:{}:{function}+{extra}", shown(&path));
    }
    Ok(vec![instance])
}

/// Function `name` of `path`, or of a library `path` depends on: glibc
/// 2.34 moved `libpthread`'s functions into `libc`, and the stub
/// `libpthread.so.0` only names `libc.so.6` as its dependency, as the
/// dynamic linker would find them (through `pid`'s mappings when given).
fn find_function(
    path: &Path,
    name: &str,
    pid: Option<u32>,
) -> Result<(PathBuf, Symbol), scorch_bpf::Error> {
    let direct = elf_symbols::symbol_offset(path, name);
    let offset = match direct {
        Ok(offset) => offset,
        Err(e) => {
            for dep in elf_symbols::needed_libraries(path).unwrap_or_default() {
                let Ok(dep_path) = elf_symbols::resolve_binary(&dep, pid) else {
                    continue;
                };
                if let Ok(offset) = elf_symbols::symbol_offset(&dep_path, name) {
                    let symbol = lookup_symbol(&dep_path, name, offset)?;
                    return Ok((dep_path, symbol));
                }
            }
            return Err(e);
        }
    };
    Ok((path.to_path_buf(), lookup_symbol(path, name, offset)?))
}

fn lookup_symbol(path: &Path, name: &str, offset: u64) -> Result<Symbol, scorch_bpf::Error> {
    let found = elf_symbols::function_symbols(path, |n| n == name)?;
    Ok(found.into_iter().next().unwrap_or(Symbol {
        name: name.to_string(),
        offset,
        size: 0,
        ifunc: false,
    }))
}

/// The error for a function `path` does not have, with the nearest name.
fn missing_function(
    spec: &ProbeSpec,
    path: &Path,
    function: &str,
    err: scorch_bpf::Error,
) -> Diagnostic {
    let d = Diagnostic::error(spec.span, err.to_string()).with_target_missing();
    let names = elf_symbols::function_symbols(path, |_| true).unwrap_or_default();
    match crate::suggest::closest(function, names.iter().map(|s| s.name.as_str())) {
        Some(near) => d.with_help(format!("did you mean `{near}`?")),
        None => d,
    }
}

/// `usdt:BINARY:PROVIDER:NAME` or `usdt:BINARY:NAME`; wildcards allowed.
pub(super) fn usdt(
    spec: &ProbeSpec,
    parts: &[&str],
    target: Target<'_>,
) -> Result<Vec<Instance>, Diagnostic> {
    let (bin, provider, name) = match parts {
        [bin, provider, name] => (*bin, *provider, *name),
        [bin, name] => (*bin, "*", *name),
        _ => {
            return Err(Diagnostic::error(
                spec.span,
                "a usdt probe is written `usdt:BINARY:PROVIDER:NAME` or `usdt:BINARY:NAME`",
            ))
        }
    };
    let path = binary(spec, bin, target)?;
    let all = usdt::probes(&path).map_err(|e| Diagnostic::error(spec.span, e.to_string()))?;
    let found: Vec<Instance> = all
        .iter()
        .filter(|p| glob(provider, &p.provider) && glob(name, &p.name))
        .map(|p| Instance {
            name: format!("usdt:{}:{}:{}", shown(&path), p.provider, p.name),
            attach: Attach::Usdt(Arc::new(UsdtPoint {
                path: path.clone(),
                probe: p.clone(),
            })),
        })
        .collect();
    if found.is_empty() {
        let wanted = format!("{provider}:{name}");
        let mut d = Diagnostic::error(
            spec.span,
            format!("{} has no USDT probe `{wanted}`", shown(&path)),
        );
        let known: Vec<String> = all
            .iter()
            .map(|p| format!("{}:{}", p.provider, p.name))
            .collect();
        d = if known.is_empty() {
            d.with_help("the file has no .note.stapsdt section: it declares no USDT probes")
        } else if let Some(near) =
            crate::suggest::closest(&wanted, known.iter().map(String::as_str))
        {
            d.with_help(format!("did you mean `usdt:{}:{near}`?", shown(&path)))
        } else {
            d.with_help(format!(
                "list them with `scorch trace -l 'usdt:{}:*'`",
                shown(&path)
            ))
        };
        return Err(d);
    }
    Ok(found)
}

/// A number as probe specs write them: decimal or `0x` hex.
pub(super) fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_paths() {
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("malloc"), None);
        assert_eq!(
            shown(Path::new("/proc/12/root/usr/lib/libc.so.6")),
            "/usr/lib/libc.so.6"
        );
        assert_eq!(shown(Path::new("/bin/bash")), "/bin/bash");
    }
}
