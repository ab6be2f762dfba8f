//! BPF maps made from Rust: creation, whole-map reads, clearing.
//!
//! Maps are libbpf-rs [`MapHandle`]s, created without an ELF object. This
//! module adds what a tracer needs on top: kernel-safe names, reading
//! every entry at once (values of per-CPU maps split by CPU), and
//! emptying or zeroing a map in place.

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use crate::error::{Error, Result};

/// The name the kernel accepts for `name`: letters, digits, `_` and `.`,
/// at most 15 bytes.
pub fn kernel_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(15)
        .collect()
}

/// Creates a map of type `ty`; `name` is made kernel-safe.
pub fn create(
    ty: MapType,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> Result<MapHandle> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    MapHandle::create(
        ty,
        Some(kernel_name(name)),
        key_size,
        value_size,
        max_entries,
        &opts,
    )
    .map_err(|e| {
        let what = format!(
            "creating BPF map `{name}` ({max_entries} entries of {key_size}+{value_size} bytes)"
        );
        match e.kind() {
            libbpf_rs::ErrorKind::PermissionDenied => Error::Permission { what },
            _ => Error::sys(what, std::io::Error::other(e.to_string())),
        }
    })
}

fn map_error(what: &str, e: libbpf_rs::Error) -> Error {
    Error::sys(what, std::io::Error::other(e.to_string()))
}

/// A key and its value on every CPU.
pub type PerCpuEntry = (Vec<u8>, Vec<Vec<u8>>);

/// Every `(key, value)` of a map. Entries deleted while reading are
/// skipped.
pub fn entries(map: &MapHandle) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for key in map.keys() {
        let value = map
            .lookup(&key, MapFlags::ANY)
            .map_err(|e| map_error("reading a map entry", e))?;
        if let Some(value) = value {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Every `(key, values by CPU)` of a per-CPU map.
pub fn entries_per_cpu(map: &MapHandle) -> Result<Vec<PerCpuEntry>> {
    let mut out = Vec::new();
    for key in map.keys() {
        let values = map
            .lookup_percpu(&key, MapFlags::ANY)
            .map_err(|e| map_error("reading a per-CPU map entry", e))?;
        if let Some(values) = values {
            out.push((key, values));
        }
    }
    Ok(out)
}

/// Removes every entry of a hash map.
pub fn clear(map: &MapHandle) -> Result<()> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        // Already gone is fine: the goal is an empty map.
        let _ = map.delete(&key);
    }
    Ok(())
}

/// Sets every value of a map to zero bytes, keeping the keys.
pub fn zero(map: &MapHandle, per_cpu: bool, cpus: usize) -> Result<()> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    let size = map.value_size() as usize;
    for key in keys {
        let result = if per_cpu {
            map.update_percpu(&key, &vec![vec![0u8; size]; cpus], MapFlags::EXIST)
        } else {
            map.update(&key, &vec![0u8; size], MapFlags::EXIST)
        };
        // A key deleted meanwhile is as good as zero.
        let _ = result;
    }
    Ok(())
}

/// Writes `value` at `key` of an array or hash map.
pub fn set(map: &MapHandle, key: &[u8], value: &[u8]) -> Result<()> {
    map.update(key, value, MapFlags::ANY)
        .map_err(|e| map_error("writing a map entry", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_kernel_safe() {
        assert_eq!(kernel_name("@start_time"), "_start_time");
        assert_eq!(kernel_name(".scratch12"), ".scratch12");
        assert_eq!(
            kernel_name("a_very_long_map_name_indeed"),
            "a_very_long_map"
        );
        assert_eq!(kernel_name("tracepoint:x:y"), "tracepoint_x_y");
    }
}
