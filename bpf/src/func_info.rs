//! The BTF a program with subprograms must carry.
//!
//! The verifier accepts a program whose code takes the address of a
//! subprogram (`ld_imm64` with `BPF_PSEUDO_FUNC`, as callbacks of
//! `bpf_for_each_map_elem` and `bpf_loop` are passed) only with "func
//! info": one record per subprogram giving its first instruction and a
//! BTF `FUNC` type. Hand-assembled programs have no such BTF, so
//! [`FuncInfo`] builds the smallest blob that describes them — a `long`,
//! a `void *`, one prototype per arity and one static function per
//! subprogram — and loads it into the kernel.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// `BTF_MAGIC` and the `BTF_KIND_*` numbers of `include/uapi/linux/btf.h`.
const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
/// `BTF_INT_SIGNED`, in the encoding byte of an `INT`.
const INT_SIGNED: u32 = 1 << 24;

/// Func info loaded into the kernel, for one program.
#[derive(Debug)]
pub struct FuncInfo {
    btf: OwnedFd,
    records: Vec<libbpf_sys::bpf_func_info>,
}

impl FuncInfo {
    /// Describes a program whose subprograms start at `starts` (the main
    /// program, at 0, first) and take `arity[i]` arguments each.
    pub fn load(starts: &[usize], arity: &[u32]) -> Result<Self> {
        let blob = blob(arity);
        let mut opts = libbpf_sys::bpf_btf_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_btf_load_opts>() as _,
            ..Default::default()
        };
        // SAFETY: blob outlives the call; opts is valid.
        let fd =
            unsafe { libbpf_sys::bpf_btf_load(blob.as_ptr().cast(), blob.len() as _, &mut opts) };
        if fd < 0 {
            return Err(Error::sys(
                "loading the BTF of a program with subprograms",
                std::io::Error::from_raw_os_error(-fd),
            ));
        }
        let records = starts
            .iter()
            .enumerate()
            .map(|(i, &start)| libbpf_sys::bpf_func_info {
                insn_off: start as u32,
                // Types 1-2 are `long` and `void *`; then a prototype and
                // a function per subprogram.
                type_id: 4 + 2 * i as u32,
            })
            .collect();
        Ok(FuncInfo {
            // SAFETY: a non-negative return is a new fd we own.
            btf: unsafe { OwnedFd::from_raw_fd(fd) },
            records,
        })
    }

    /// The BTF object's file descriptor.
    pub fn btf_fd(&self) -> i32 {
        self.btf.as_raw_fd()
    }

    /// The records, one per subprogram.
    pub fn records(&self) -> &[libbpf_sys::bpf_func_info] {
        &self.records
    }
}

/// The BTF blob: type 1 `long`, type 2 `void *`, then for subprogram `i`
/// its prototype (`3 + 2i`) and its function (`4 + 2i`).
fn blob(arity: &[u32]) -> Vec<u8> {
    let mut strings = b"\0long\0a\0b\0c\0d\0e\0".to_vec();
    let long_name = 1u32;
    let param_names = [6u32, 8, 10, 12, 14];
    let mut types: Vec<u32> = Vec::new();
    let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
    types.extend([long_name, info(KIND_INT, 0), 8, INT_SIGNED | 64]);
    types.extend([0, info(KIND_PTR, 0), 0]);
    for (i, &n) in arity.iter().enumerate() {
        let n = n.min(param_names.len() as u32);
        types.extend([0, info(KIND_FUNC_PROTO, n), 1]);
        for name in &param_names[..n as usize] {
            types.extend([*name, 2]);
        }
        let name = strings.len() as u32;
        strings.extend(format!("f{i}\0").bytes());
        // Static linkage; the type is the prototype just written.
        types.extend([name, info(KIND_FUNC, 0), 3 + 2 * i as u32]);
    }
    let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut out = Vec::new();
    out.extend(MAGIC.to_ne_bytes());
    out.extend([1u8, 0]); // version, flags
    out.extend(24u32.to_ne_bytes()); // header length
    out.extend(0u32.to_ne_bytes()); // type section offset
    out.extend((type_bytes.len() as u32).to_ne_bytes());
    out.extend((type_bytes.len() as u32).to_ne_bytes()); // string offset
    out.extend((strings.len() as u32).to_ne_bytes());
    out.extend(type_bytes);
    out.extend(strings);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_layout() {
        let b = blob(&[1, 4]);
        assert_eq!(&b[..2], &MAGIC.to_ne_bytes());
        let type_len = u32::from_ne_bytes(b[12..16].try_into().unwrap()) as usize;
        // long (16) + ptr (12) + proto/1 (20) + func (12) + proto/4 (44) + func (12).
        assert_eq!(type_len, 16 + 12 + 20 + 12 + 44 + 12);
        let strings = &b[24 + type_len..];
        assert!(strings.ends_with(b"f0\0f1\0"));
    }
}
