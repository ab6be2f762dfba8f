//! The sampler's maps: what the program writes and user space drains.
//!
//! A [`Buffer`] is one stack map plus one count map. A one-shot profile has
//! a single buffer, read once at the end. A continuous profiler has two and
//! an `active` switch: the program writes into the active one while user
//! space drains and clears the other, so no sample falls between windows.

use std::collections::HashSet;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use super::allocation::hash_map_flags;
use super::codegen::KEY_SIZE;
use super::offcpu::START_SIZE;
use super::stack_store::STORED_STACK_SIZE;
use super::tables::{TableMaps, UnwindTables, PROC_SIZE};
use super::unwinder::{UnwindMaps, SCRATCH_SIZE};
use super::{map_error, SamplerConfig, Target, UserUnwind, COUNTERS};
use crate::error::{Error, Result};

/// The stack maps and the count map whose keys refer to them.
#[derive(Debug)]
pub(super) struct Buffer {
    /// User stacks by hash ([`super::stack_store`]).
    pub(super) user_stacks: MapHandle,
    /// Kernel stacks by hash.
    pub(super) kernel_stacks: MapHandle,
    pub(super) counts: MapHandle,
    /// User and kernel stack ids no count referred to at the last drain.
    pub(super) unreferenced: [HashSet<u32>; 2],
}

/// The maps of the in-kernel unwinder, shared by both buffers.
#[derive(Debug)]
pub(super) struct Unwind {
    /// The row map, as the program refers to it.
    pub(super) rows: MapHandle,
    /// The per-process map, as the program refers to it.
    procs: MapHandle,
    /// The same maps and what user space placed in them.
    pub(super) tables: UnwindTables,
    /// Per-CPU state of one walk.
    pub(super) scratch: MapHandle,
    /// A `procs` value with no mappings, for processes without tables.
    pub(super) empty_proc: MapHandle,
}

impl Unwind {
    /// The maps the unwinder code uses when writing into `buffer`.
    pub(super) fn maps<'a>(&'a self, buffer: &'a Buffer) -> UnwindMaps<'a> {
        UnwindMaps {
            scratch: &self.scratch,
            procs: &self.procs,
            empty_proc: &self.empty_proc,
            stacks: &buffer.user_stacks,
        }
    }
}

/// One buffer, or two and the index of the one being written.
#[derive(Debug)]
pub(super) enum Buffers {
    Single(Buffer),
    Double {
        pair: Box<[Buffer; 2]>,
        active: MapHandle,
    },
}

/// Every map of a sampler.
#[derive(Debug)]
pub(super) struct Maps {
    pub(super) buffers: Buffers,
    /// Per-CPU room for one stack while it is hashed.
    pub(super) stack_scratch: MapHandle,
    /// Per-CPU counters, indexed by `Counter`.
    pub(super) counters: MapHandle,
    /// Ids to sample, when filtering.
    pub(super) filter: Option<MapHandle>,
    /// Process ids seen since user space last looked, when tracked.
    pub(super) seen_pids: Option<MapHandle>,
    /// The in-kernel unwinder's maps, when user stacks are walked with tables.
    pub(super) unwind: Option<Unwind>,
    /// Off-CPU profiles: when and with what key each waiting thread left
    /// the CPU, by thread id.
    pub(super) starts: Option<MapHandle>,
}

/// Most processes tracked between two looks at the seen-pids map.
const SEEN_PIDS: u32 = 8192;

fn create(ty: MapType, name: &str, key: u32, value: u32, entries: u32) -> Result<MapHandle> {
    create_with_flags(ty, name, key, value, entries, 0)
}

/// A hash map created with `flags`: [`hash_map_flags`] allocates its
/// entries as they are used where the kernel allows it.
fn create_hash(name: &str, key: u32, value: u32, entries: u32, flags: u32) -> Result<MapHandle> {
    create_with_flags(MapType::Hash, name, key, value, entries, flags)
}

fn create_with_flags(
    ty: MapType,
    name: &str,
    key: u32,
    value: u32,
    entries: u32,
    map_flags: u32,
) -> Result<MapHandle> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags,
        ..Default::default()
    };
    MapHandle::create(ty, Some(name), key, value, entries, &opts).map_err(|e| {
        let what = format!("creating BPF map `{name}` ({entries} entries)");
        match e.kind() {
            libbpf_rs::ErrorKind::PermissionDenied => Error::Permission { what },
            _ => Error::sys(what, std::io::Error::other(e.to_string())),
        }
    })
}

impl Buffer {
    fn create(config: &SamplerConfig, suffix: &str, hash_flags: u32) -> Result<Self> {
        let stacks = |kind: &str| {
            create_hash(
                &format!("scorch_{kind}stacks{suffix}"),
                4,
                STORED_STACK_SIZE,
                config.stack_storage_size,
                hash_flags,
            )
        };
        Ok(Self {
            user_stacks: stacks("u")?,
            kernel_stacks: stacks("k")?,
            unreferenced: Default::default(),
            counts: create_hash(
                &format!("scorch_counts{suffix}"),
                KEY_SIZE as u32,
                8,
                config.max_keys,
                hash_flags,
            )?,
        })
    }
}

impl Maps {
    pub(super) fn create(config: &SamplerConfig, unwind: UserUnwind) -> Result<Self> {
        Self::create_with(config, unwind, hash_map_flags())
    }

    /// [`Self::create`] with the stack, count and seen-pids hash maps
    /// created with `hash_flags`.
    pub(super) fn create_with(
        config: &SamplerConfig,
        unwind: UserUnwind,
        hash_flags: u32,
    ) -> Result<Self> {
        let tables = match unwind {
            UserUnwind::FramePointers => None,
            UserUnwind::Tables { rows, processes } => Some(Unwind::with_tables(
                UnwindTables::new(TableMaps::create(rows, processes)?),
            )?),
            UserUnwind::SharedTables(tables) => Some(Unwind::with_tables(tables)?),
        };
        let buffers = if config.double_buffered {
            let active = create(MapType::Array, "scorch_active", 4, 4, 1)?;
            Buffers::Double {
                pair: Box::new([
                    Buffer::create(config, "_a", hash_flags)?,
                    Buffer::create(config, "_b", hash_flags)?,
                ]),
                active,
            }
        } else {
            Buffers::Single(Buffer::create(config, "", hash_flags)?)
        };
        let filter = match &config.target {
            Target::All => None,
            Target::Pids(ids) | Target::Tids(ids) => {
                let map = create(
                    MapType::Hash,
                    "scorch_filter",
                    4,
                    1,
                    ids.len().max(1) as u32,
                )?;
                for id in ids {
                    map.update(&id.to_ne_bytes(), &[1], MapFlags::ANY)
                        .map_err(|e| map_error("filling the filter map", e))?;
                }
                Some(map)
            }
        };
        let seen_pids = if config.track_pids {
            Some(create_hash("scorch_seen", 4, 8, SEEN_PIDS, hash_flags)?)
        } else {
            None
        };
        let starts = match &config.off_cpu {
            // Preallocated: an entry is added at every switch-out and freed
            // at the switch-in, often on another CPU.
            Some(off_cpu) => Some(create(
                MapType::Hash,
                "scorch_offcpu",
                4,
                START_SIZE,
                off_cpu.max_threads,
            )?),
            None => None,
        };
        Ok(Self {
            starts,
            buffers,
            stack_scratch: create(
                MapType::PercpuArray,
                "scorch_sscratch",
                4,
                STORED_STACK_SIZE,
                1,
            )?,
            counters: create(MapType::PercpuArray, "scorch_counters", 4, 8, COUNTERS)?,
            filter,
            seen_pids,
            unwind: tables,
        })
    }
}

impl Unwind {
    /// The unwinder's maps over `tables`, and its own per-CPU state.
    fn with_tables(tables: UnwindTables) -> Result<Self> {
        let (rows, procs) = tables.handles()?;
        Ok(Unwind {
            rows,
            procs,
            tables,
            scratch: create(MapType::PercpuArray, "scorch_uscratch", 4, SCRATCH_SIZE, 1)?,
            empty_proc: create(MapType::Array, "scorch_unoproc", 4, PROC_SIZE as u32, 1)?,
        })
    }
}
