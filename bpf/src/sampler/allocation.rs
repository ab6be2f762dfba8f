//! Whether the sampler's hash maps may allocate their entries as they are
//! used instead of all at creation.
//!
//! Linux 6.1 gave BPF a memory allocator that works in any context, NMI
//! included, and with it let perf-event and tracing programs use hash maps
//! created with `BPF_F_NO_PREALLOC`. Before that, the verifier refuses them in
//! perf-event programs (and allocating under the scheduler's locks would not
//! be safe anyway), so the maps are preallocated there. Allocating as used
//! makes a map's memory follow the stacks and keys it holds: a few hundred
//! KiB for a quiet window instead of its whole capacity.

use std::sync::OnceLock;

use libbpf_rs::{MapHandle, MapType};

use super::codegen::fd;
use crate::insn::{Alu, Insn, Size, R0, R1, R10, R2};
use crate::program::{Program, ProgramType};

/// The flags to create a sampler hash map with: `BPF_F_NO_PREALLOC` when
/// this kernel lets perf-event programs use such maps, else none.
pub(super) fn hash_map_flags() -> u32 {
    static FLAGS: OnceLock<u32> = OnceLock::new();
    *FLAGS.get_or_init(|| {
        if allocating_maps_load() {
            libbpf_sys::BPF_F_NO_PREALLOC
        } else {
            0
        }
    })
}

/// Loads a perf-event program that looks up a `BPF_F_NO_PREALLOC` hash
/// map: the verifier accepts it from Linux 6.1 on.
fn allocating_maps_load() -> bool {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: libbpf_sys::BPF_F_NO_PREALLOC,
        ..Default::default()
    };
    let Ok(map) = MapHandle::create(MapType::Hash, Some("scorch_probe"), 4, 8, 1, &opts) else {
        return false;
    };
    let mut insns = vec![Insn::store_imm(Size::W, R10, -4, 0)];
    insns.extend(Insn::ld_map_fd(R1, fd(&map)));
    insns.extend([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, -4),
        Insn::call(libbpf_sys::BPF_FUNC_map_lookup_elem),
        Insn::mov64_imm(R0, 0),
        Insn::exit(),
    ]);
    Program::load(ProgramType::PerfEvent, "scorch_probe", &insns).is_ok()
}
