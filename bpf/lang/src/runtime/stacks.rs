//! Turning stack ids into frames, as bpftrace names them.
//!
//! Programs store a `kstack`/`ustack` as an id in a stack-trace map (user
//! stacks with the pid in the high 32 bits). Before a value is printed,
//! [`Stacks::resolve`] reads the addresses behind the id and names them:
//! kernel addresses as `function+offset` from `/proc/kallsyms` (decimal
//! offset, `0x…` when unknown, exactly bcc's `ksyms` as bpftrace uses it),
//! user addresses through `scorch-symbolizer`.

use std::collections::HashMap;

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use scorch_symbolizer::Symbolizer;

use crate::codegen::Compiled;
use crate::output::{Reduced, Stack, Value};
use crate::sema::StackType;

/// Kernel symbols sorted by address.
#[derive(Debug, Default)]
pub(crate) struct Kallsyms {
    symbols: Vec<(u64, String)>,
}

impl Kallsyms {
    /// Parses `/proc/kallsyms` text (`ADDR TYPE NAME [module]` lines).
    pub(crate) fn parse(text: &str) -> Kallsyms {
        let mut symbols: Vec<(u64, String)> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
                let _kind = parts.next()?;
                let name = parts.next()?;
                (addr != 0).then(|| (addr, name.to_string()))
            })
            .collect();
        symbols.sort_by_key(|(a, _)| *a);
        Kallsyms { symbols }
    }

    fn load() -> Kallsyms {
        std::fs::read_to_string("/proc/kallsyms")
            .map(|t| Kallsyms::parse(&t))
            .unwrap_or_default()
    }

    /// The symbol covering `addr` and how far into it `addr` is.
    pub(crate) fn symbol(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.symbols.partition_point(|(a, _)| *a <= addr);
        let (start, name) = self.symbols.get(i.checked_sub(1)?)?;
        Some((name, addr - start))
    }

    /// `name+offset`, or the address as `0x…` when no symbol covers it.
    pub(crate) fn name(&self, addr: u64) -> String {
        match self.symbol(addr) {
            Some((name, off)) => format!("{name}+{off}"),
            None => format!("{addr:#x}"),
        }
    }
}

/// Named frames of a stack: address and name, innermost first.
type Frames = Vec<(u64, String)>;

/// Resolves stacks for one run; symbol tables load on first use.
#[derive(Default)]
pub(super) struct Stacks {
    kallsyms: Option<Kallsyms>,
    symbolizer: Option<Symbolizer>,
    /// Symbol offsets in ELF files, which `scorch-symbolizer` leaves out.
    elf: Option<blazesym::symbolize::Symbolizer>,
    /// Frames already read, by stack type and raw stack word.
    cache: HashMap<(StackType, u64), Option<Frames>>,
}

impl Stacks {
    /// Fills in the frames of every stack inside `value`, and the text of
    /// every `strftime()` timestamp.
    pub(super) fn resolve(&mut self, value: &mut Value, compiled: &Compiled, maps: &[MapHandle]) {
        match value {
            Value::Stack(stack) => {
                let key = (stack.ty, stack.raw);
                if let Some(frames) = self.cache.get(&key) {
                    stack.frames = frames.clone();
                    return;
                }
                let frames = self.frames(stack, compiled, maps);
                self.cache.insert(key, frames.clone());
                stack.frames = frames;
            }
            Value::Sym(sym) if sym.user => {
                let symbolizer = self.symbolizer.get_or_insert_with(Symbolizer::new);
                let resolved = symbolizer.user(sym.pid, &[sym.addr]);
                let r = resolved.into_iter().next();
                let mapped = r.as_ref().and_then(|r| r.mapping.clone());
                let elf = mapped.and_then(|m| self.elf_symbol(&m, sym.addr));
                sym.name = match (elf, r.and_then(|r| r.lines.last().cloned())) {
                    (Some((name, _)), _) => Some(name),
                    (None, Some(line)) => Some(line.function),
                    (None, None) => None,
                };
            }
            Value::Sym(sym) => {
                let kallsyms = self.kallsyms.get_or_insert_with(Kallsyms::load);
                sym.name = kallsyms.symbol(sym.addr).map(|(name, _)| name.to_string());
            }
            Value::Time(t) => {
                if let Some(fmt) = compiled.strftime_formats.get(t.format as usize) {
                    t.text = Some(super::clock::boot_time(fmt, t.nsecs));
                }
            }
            Value::Tuple(items) => {
                for item in items {
                    self.resolve(item, compiled, maps);
                }
            }
            _ => {}
        }
    }

    /// Resolves the stacks in keys and values of map entries.
    pub(super) fn resolve_entries(
        &mut self,
        entries: &mut [crate::output::Entry],
        compiled: &Compiled,
        maps: &[MapHandle],
    ) {
        for entry in entries {
            for k in &mut entry.key {
                self.resolve(k, compiled, maps);
            }
            if let Reduced::Value(v) = &mut entry.value {
                self.resolve(v, compiled, maps);
            }
        }
    }

    /// Snapshots process `pid` while it lives, so its user stacks still
    /// resolve after it exits.
    pub(super) fn capture(&mut self, value: &Value) {
        match value {
            Value::Sym(sym) if sym.user => {
                let _ = self
                    .symbolizer
                    .get_or_insert_with(Symbolizer::new)
                    .capture(sym.pid);
            }
            Value::Stack(stack) if stack.ty.user => {
                let _ = self
                    .symbolizer
                    .get_or_insert_with(Symbolizer::new)
                    .capture(stack.pid());
            }
            Value::Tuple(items) => items.iter().for_each(|v| self.capture(v)),
            _ => {}
        }
    }

    fn frames(&mut self, stack: &Stack, compiled: &Compiled, maps: &[MapHandle]) -> Option<Frames> {
        let id = stack.id();
        if id < 0 {
            return None;
        }
        let map = maps.get(compiled.stack_map(stack.ty.limit)?)?;
        let bytes = map.lookup(&id.to_ne_bytes(), MapFlags::ANY).ok()??;
        let addrs: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
            .take_while(|&a| a != 0)
            .collect();
        if stack.ty.mode == crate::sema::StackMode::Raw {
            return Some(addrs.into_iter().map(|a| (a, String::new())).collect());
        }
        if !stack.ty.user {
            let kallsyms = self.kallsyms.get_or_insert_with(Kallsyms::load);
            return Some(addrs.iter().map(|&a| (a, kallsyms.name(a))).collect());
        }
        let perf = stack.ty.mode == crate::sema::StackMode::Perf;
        let symbolizer = self.symbolizer.get_or_insert_with(Symbolizer::new);
        let resolved = symbolizer.user(stack.pid(), &addrs);
        let mut frames = Vec::with_capacity(addrs.len());
        for (&a, r) in addrs.iter().zip(resolved) {
            // bpftrace names the symbol containing the address: the
            // outermost function when some were inlined.
            // The ELF symbol table's name and offset, as bcc gives them to
            // bpftrace; else the symbolizer's name (JIT code, perf maps).
            let symbol = r.mapping.as_ref().and_then(|m| self.elf_symbol(m, a));
            let module = match &r.mapping {
                Some(m) => m.file.clone(),
                None => format!("/tmp/perf-{}.map", stack.pid()),
            };
            let name = match (symbol, r.lines.last()) {
                (Some((name, off)), _) => format!("{name}+{off}"),
                (None, Some(line)) => line.function.clone(),
                (None, None) if perf => format!("{a:#x} ([unknown])"),
                (None, None) => format!("{a:#x}"),
            };
            let name = if perf && !name.ends_with("([unknown])") {
                format!("{name} ({module})")
            } else {
                name
            };
            frames.push((a, name));
        }
        Some(frames)
    }
}

impl Stacks {
    /// The ELF symbol containing `addr`, and how far into it `addr` is.
    fn elf_symbol(
        &mut self,
        mapping: &scorch_formats::Mapping,
        addr: u64,
    ) -> Option<(String, u64)> {
        use blazesym::symbolize::source::{self, Source};
        use blazesym::symbolize::{Input, Symbolized};
        let file_offset = addr
            .checked_sub(mapping.start)?
            .checked_add(mapping.offset)?;
        let elf = self
            .elf
            .get_or_insert_with(blazesym::symbolize::Symbolizer::new);
        let mut src = source::Elf::new(&mapping.file);
        src.debug_syms = false;
        let found = elf
            .symbolize_single(&Source::Elf(src), Input::FileOffset(file_offset))
            .ok()?;
        match found {
            Symbolized::Sym(sym) => Some((sym.name.into_owned(), sym.offset as u64)),
            Symbolized::Unknown(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_have_decimal_offsets() {
        let k = Kallsyms::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81000100 t helper [mod]\n\
             0000000000000000 A skipped\n",
        );
        assert_eq!(k.name(0xffffffff81000000), "_stext+0");
        assert_eq!(k.name(0xffffffff8100011b), "helper+27");
        assert_eq!(k.name(0x1000), "0x1000");
    }
}
