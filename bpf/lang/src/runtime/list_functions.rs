//! `-l` for probes on functions: kernel functions (kprobes from tracefs or
//! kallsyms, fentry from BTF), a binary's function symbols (uprobes) and
//! USDT probes, and `-lv`'s argument lines.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use scorch_bpf::btf_types::KernelTypes;

use super::RunError;
use crate::sema;
use crate::sema::kernel_probes::function_proto;
use crate::sema::probes::glob;
use crate::sema::user_probes::shown;

/// The probes of `provider` (canonical name) whose rest matches `rest`;
/// nothing for providers listed elsewhere.
pub(super) fn list(provider: &str, rest: &str, pid: Option<u32>) -> Result<Vec<String>, RunError> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| RunError::Bpf(format!("listing {what}: {e}"));
    Ok(match provider {
        "kprobe" | "kretprobe" => {
            // Functions are not told apart by module (see kernel_probe).
            let function = match rest.split_once(':') {
                Some((module, f)) if glob(module, "vmlinux") => f,
                Some(_) => return Ok(Vec::new()),
                None => rest,
            };
            scorch_bpf::probe::kernel_functions(scorch_bpf::mounts::TRACEFS)
                .map_err(|e| fail("kernel functions", &e))?
                .into_iter()
                .filter(|f| glob(function, f))
                .map(|f| format!("{provider}:{f}"))
                .collect()
        }
        "fentry" | "fexit" => {
            let btf = KernelTypes::vmlinux().map_err(|e| fail("kernel functions in BTF", &e))?;
            btf.function_names()
                .into_iter()
                .filter(|f| glob(rest, &format!("vmlinux:{f}")) || glob(rest, f))
                .map(|f| format!("{provider}:vmlinux:{f}"))
                .collect()
        }
        "uprobe" | "uretprobe" => {
            let Some((binary, pattern)) = rest.rsplit_once(':') else {
                return Ok(Vec::new());
            };
            let path = scorch_bpf::elf_symbols::resolve_binary(binary, pid)
                .map_err(|e| fail(binary, &e))?;
            scorch_bpf::elf_symbols::function_symbols(&path, |name| glob(pattern, name))
                .map_err(|e| fail(binary, &e))?
                .into_iter()
                .map(|s| format!("{provider}:{}:{}", shown(&path), s.name))
                .collect()
        }
        "usdt" => {
            let Some((binary, pattern)) = rest.split_once(':') else {
                return Ok(Vec::new());
            };
            let path = scorch_bpf::elf_symbols::resolve_binary(binary, pid)
                .map_err(|e| fail(binary, &e))?;
            scorch_bpf::usdt::probes(&path)
                .map_err(|e| fail(binary, &e))?
                .into_iter()
                .map(|p| format!("{}:{}", p.provider, p.name))
                .filter(|name| glob(pattern, name))
                .map(|name| format!("usdt:{}:{name}", shown(&path)))
                .collect()
        }
        _ => Vec::new(),
    })
}

/// The `-lv` lines under each probe, reading the kernel's BTF once.
pub(super) struct Details {
    btf: Option<Option<KernelTypes>>,
    /// The user functions listed, by binary: the only ones whose
    /// parameters are read.
    listed: HashMap<String, HashSet<String>>,
    /// The last binary's listed functions and their parameters from DWARF.
    dwarf: Option<(String, HashMap<String, Vec<String>>)>,
}

impl Details {
    /// Details of the probes `names`.
    pub(super) fn new(names: &[String]) -> Details {
        let mut listed: HashMap<String, HashSet<String>> = HashMap::new();
        for (binary, function) in names.iter().filter_map(|n| user_function(n)) {
            listed
                .entry(binary.to_string())
                .or_default()
                .insert(function.to_string());
        }
        Details {
            btf: None,
            listed,
            dwarf: None,
        }
    }

    /// The argument lines of probe `name`: a tracepoint's fields, an
    /// fentry function's arguments and return value, a user function's
    /// parameters when its binary has DWARF.
    pub(super) fn of(&mut self, name: &str, kernel: &dyn sema::Kernel) -> Vec<String> {
        if let Some((binary, function)) = user_function(name) {
            if self.dwarf.as_ref().map(|(b, _)| b.as_str()) != Some(binary) {
                let wanted = self.listed.get(binary).cloned().unwrap_or_default();
                let params = super::dwarf_params::function_params(Path::new(binary), &wanted);
                self.dwarf = Some((binary.to_string(), params));
            }
            return self
                .dwarf
                .as_ref()
                .and_then(|(_, functions)| functions.get(function).cloned())
                .unwrap_or_default();
        }
        if let Some(function) = name
            .strip_prefix("fentry:vmlinux:")
            .or_else(|| name.strip_prefix("fexit:vmlinux:"))
        {
            let Some(btf) = self.btf.get_or_insert_with(|| KernelTypes::vmlinux().ok()) else {
                return Vec::new();
            };
            let Some(proto) = function_proto(btf, function) else {
                return Vec::new();
            };
            let mut lines: Vec<String> = proto
                .params
                .iter()
                .map(|p| format!("{} {}", p.c_type, p.name))
                .collect();
            if let Some((_, ret)) = btf.function(function) {
                if ret != 0 {
                    lines.push(format!("{} retval", btf.name_of(ret)));
                }
            }
            return lines;
        }
        if let Some(rest) = name.strip_prefix("tracepoint:") {
            let Some((category, event)) = rest.split_once(':') else {
                return Vec::new();
            };
            let Ok(text) = kernel.tracepoint_format(category, event) else {
                return Vec::new();
            };
            return sema::tracepoint::parse_format(category, &text)
                .fields
                .iter()
                .map(|f| format!("{} {}", f.c_type, f.name))
                .collect();
        }
        Vec::new()
    }
}

/// The binary and function of a `uprobe:` or `uretprobe:` probe name.
fn user_function(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("uprobe:")
        .or_else(|| name.strip_prefix("uretprobe:"))
        .and_then(|rest| rest.rsplit_once(':'))
}
