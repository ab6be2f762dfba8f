//! The sampling profiler's BPF side.
//!
//! One program runs on every cpu-clock sample on every CPU. It drops samples
//! outside the target (idle, other processes or threads) and records the
//! kernel and user stacks of the rest with `bpf_get_stackid` into a
//! `STACK_TRACE` map, counting each distinct
//! `(pid, tid, user stack, kernel stack, comm)` in a hash. Failures (stack
//! map full, hash collisions, count map full) are counted per CPU so the
//! user hears about every lost stack.
//!
//! The filter is baked into the generated code: a run that profiles one PID
//! carries one lookup in a small hash, a whole-host run none.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use crate::error::{Error, Result};
use crate::insn::{Alu, Asm, Cond, Insn, Label, Size, R0, R1, R10, R2, R3, R4, R6, R7, R8, R9};
use crate::perf_event::{Event, PerfEventLink, Rate};
use crate::program::{Program, ProgramType};

/// Stack depth kept per stack, as the kernel's default `perf_event_max_stack`.
pub const MAX_DEPTH: usize = 127;

/// Which processes or threads to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every process on the host.
    All,
    /// These process ids (tgids).
    Pids(Vec<u32>),
    /// These thread ids.
    Tids(Vec<u32>),
}

/// What the sampler collects and how.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Whom to sample.
    pub target: Target,
    /// Sampling rate.
    pub rate: Rate,
    /// Event that drives sampling.
    pub event: Event,
    /// CPUs to sample on.
    pub cpus: Vec<u32>,
    /// Keep user stacks.
    pub user_stacks: bool,
    /// Keep kernel stacks.
    pub kernel_stacks: bool,
    /// Keep samples of the idle task (tid 0).
    pub include_idle: bool,
    /// Keep counts per thread rather than per process.
    pub per_thread: bool,
    /// Number of distinct stacks the stack map can hold.
    pub stack_storage_size: u32,
    /// Number of distinct (pid, tid, stacks, comm) the count map can hold.
    pub max_keys: u32,
}

/// Why stacks or samples were lost, as counted by the BPF program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The stack map was full (`-ENOMEM`): raise the stack storage size.
    UserStackMapFull = 0,
    /// A user stack collided with another in the stack map (`-EEXIST`).
    UserStackCollision = 1,
    /// The stack map was full for a kernel stack.
    KernelStackMapFull = 2,
    /// A kernel stack collided with another in the stack map.
    KernelStackCollision = 3,
    /// The count map was full: the whole sample was dropped.
    CountMapFull = 4,
}

const LOSS_KINDS: u32 = 5;

/// Loss counters summed over all CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses {
    /// Stacks not recorded because the stack map was full.
    pub stack_map_full: u64,
    /// Stacks not recorded because of a hash collision.
    pub stack_collisions: u64,
    /// Samples dropped entirely because the count map was full.
    pub count_map_full: u64,
}

impl Losses {
    /// Every stack or sample lost, whatever the reason.
    pub fn total(&self) -> u64 {
        self.stack_map_full + self.stack_collisions + self.count_map_full
    }
}

/// A stack id as the BPF program recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StackId {
    /// Index into the stack map.
    Id(u32),
    /// No such stack (or not collected): `-EFAULT` from the helper.
    Absent,
    /// The stack was wanted but lost (map full or collision).
    Missed,
}

impl StackId {
    fn from_raw(raw: i32) -> Self {
        match raw {
            id if id >= 0 => StackId::Id(id as u32),
            e if e == -libc::EFAULT => StackId::Absent,
            _ => StackId::Missed,
        }
    }
}

/// One distinct sampled key and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// Process id.
    pub pid: u32,
    /// Thread id (0 unless per-thread counts were asked for).
    pub tid: u32,
    /// Thread name.
    pub comm: String,
    /// User stack.
    pub user: StackId,
    /// Kernel stack.
    pub kernel: StackId,
    /// Number of samples.
    pub count: u64,
}

// Layout of the count key, shared by the program and the reader.
const KEY_SIZE: usize = 32;
const KEY_PID: i16 = 0;
const KEY_TID: i16 = 4;
const KEY_USTACK: i16 = 8;
const KEY_KSTACK: i16 = 12;
const KEY_COMM: i16 = 16;
const COMM_LEN: i32 = 16;
// Stack frame of the program: key at fp-32, a u64 value at fp-40, a u32
// scratch (filter key, loss index) at fp-48.
const FP_KEY: i16 = -32;
const FP_VALUE: i16 = -40;
const FP_SCRATCH: i16 = -48;

/// The maps the sampler program writes into.
#[derive(Debug)]
struct Maps {
    stacks: MapHandle,
    counts: MapHandle,
    losses: MapHandle,
    filter: Option<MapHandle>,
}

/// A running sampler: its maps, program and attachments.
#[derive(Debug)]
pub struct Sampler {
    maps: Maps,
    // Dropping the links detaches the program; keep it after them.
    links: Vec<PerfEventLink>,
    _program: Program,
}

impl Sampler {
    /// Creates the maps, loads the program and attaches it to every CPU in `config.cpus`.
    pub fn start(config: &SamplerConfig) -> Result<Self> {
        let maps = Maps::create(config)?;
        let insns = program(config, &maps)?;
        let program = Program::load(ProgramType::PerfEvent, "scorch_sample", &insns)?;
        let links = config
            .cpus
            .iter()
            .map(|&cpu| PerfEventLink::attach(&program, config.event, config.rate, cpu))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            maps,
            links,
            _program: program,
        })
    }

    /// Detaches the program from every CPU; the maps stay readable.
    pub fn stop(&mut self) {
        self.links.clear();
    }

    /// Every distinct sampled key with its count.
    pub fn counts(&self) -> Result<Vec<Count>> {
        let mut out = Vec::new();
        for key in self.maps.counts.keys() {
            let Some(value) = self
                .maps
                .counts
                .lookup(&key, MapFlags::ANY)
                .map_err(|e| map_error("reading the count map", e))?
            else {
                continue;
            };
            if let Some(count) = decode_count(&key, &value) {
                out.push(count);
            }
        }
        Ok(out)
    }

    /// Total number of samples recorded so far (cheap enough for a status line).
    pub fn sample_total(&self) -> u64 {
        self.counts()
            .map(|c| c.iter().map(|c| c.count).sum())
            .unwrap_or(0)
    }

    /// Process ids seen so far.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .maps
            .counts
            .keys()
            .filter_map(|k| {
                k.get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The addresses of a recorded stack, leaf first.
    pub fn stack(&self, id: u32) -> Result<Option<Vec<u64>>> {
        let value = self
            .maps
            .stacks
            .lookup(&id.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_error("reading the stack map", e))?;
        Ok(value.map(|v| {
            v.chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .take_while(|&a| a != 0)
                .collect()
        }))
    }

    /// Loss counters summed over CPUs.
    pub fn losses(&self) -> Result<Losses> {
        let mut sums = [0u64; LOSS_KINDS as usize];
        for (kind, sum) in sums.iter_mut().enumerate() {
            let per_cpu = self
                .maps
                .losses
                .lookup_percpu(&(kind as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| map_error("reading the loss counters", e))?
                .unwrap_or_default();
            *sum = per_cpu
                .iter()
                .filter_map(|v| v.get(..8))
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                .sum();
        }
        Ok(Losses {
            stack_map_full: sums[Loss::UserStackMapFull as usize]
                + sums[Loss::KernelStackMapFull as usize],
            stack_collisions: sums[Loss::UserStackCollision as usize]
                + sums[Loss::KernelStackCollision as usize],
            count_map_full: sums[Loss::CountMapFull as usize],
        })
    }
}

fn map_error(what: &str, e: libbpf_rs::Error) -> Error {
    Error::sys(what, std::io::Error::other(e.to_string()))
}

fn decode_count(key: &[u8], value: &[u8]) -> Option<Count> {
    let u32_at = |off: i16| -> Option<u32> {
        let o = off as usize;
        Some(u32::from_ne_bytes(key.get(o..o + 4)?.try_into().ok()?))
    };
    let comm_bytes = key.get(KEY_COMM as usize..KEY_SIZE)?;
    let comm_end = comm_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(comm_bytes.len());
    Some(Count {
        pid: u32_at(KEY_PID)?,
        tid: u32_at(KEY_TID)?,
        comm: String::from_utf8_lossy(&comm_bytes[..comm_end]).into_owned(),
        user: StackId::from_raw(u32_at(KEY_USTACK)? as i32),
        kernel: StackId::from_raw(u32_at(KEY_KSTACK)? as i32),
        count: u64::from_ne_bytes(value.get(..8)?.try_into().ok()?),
    })
}

impl Maps {
    fn create(config: &SamplerConfig) -> Result<Self> {
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let create = |ty, name: &str, key: u32, value: u32, entries: u32| {
            MapHandle::create(ty, Some(name), key, value, entries, &opts).map_err(|e| {
                let what = format!("creating BPF map `{name}` ({entries} entries)");
                match e.kind() {
                    libbpf_rs::ErrorKind::PermissionDenied => Error::Permission { what },
                    _ => Error::sys(what, std::io::Error::other(e.to_string())),
                }
            })
        };
        let filter_ids = match &config.target {
            Target::All => None,
            Target::Pids(ids) | Target::Tids(ids) => Some(ids),
        };
        let filter = match filter_ids {
            None => None,
            Some(ids) => {
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
        Ok(Self {
            stacks: create(
                MapType::StackTrace,
                "scorch_stacks",
                4,
                (MAX_DEPTH * 8) as u32,
                config.stack_storage_size,
            )?,
            counts: create(
                MapType::Hash,
                "scorch_counts",
                KEY_SIZE as u32,
                8,
                config.max_keys,
            )?,
            losses: create(MapType::PercpuArray, "scorch_losses", 4, 8, LOSS_KINDS)?,
            filter,
        })
    }
}

/// Generates the sampler program for `config` over `maps`.
fn program(config: &SamplerConfig, maps: &Maps) -> Result<Vec<Insn>> {
    use libbpf_sys as sys;
    let fd = |m: &MapHandle| m.as_fd().as_raw_fd();
    let mut asm = Asm::new();
    let exit = asm.label();

    // r6 = ctx; r7 = tid; r8 = tgid.
    asm.emit([
        Insn::mov64_reg(R6, R1),
        Insn::call(sys::BPF_FUNC_get_current_pid_tgid),
        Insn::alu32_reg(Alu::Mov, R7, R0),
        Insn::mov64_reg(R8, R0),
        Insn::alu64_imm(Alu::Rsh, R8, 32),
    ]);
    if !config.include_idle {
        asm.jump(Insn::jmp_imm(Cond::Eq, R7, 0, 0), exit);
    }
    if let Some(filter) = &maps.filter {
        let id = if matches!(config.target, Target::Tids(_)) {
            R7
        } else {
            R8
        };
        asm.emit([Insn::store_reg(Size::W, R10, FP_SCRATCH, id)]);
        asm.emit(Insn::ld_map_fd(R1, fd(filter)));
        asm.emit([
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(Alu::Add, R2, FP_SCRATCH as i32),
            Insn::call(sys::BPF_FUNC_map_lookup_elem),
        ]);
        asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), exit);
    }

    // The key, zeroed whole so padding never differs.
    for off in (FP_KEY..0).step_by(8) {
        asm.emit([Insn::store_imm(Size::DW, R10, off, 0)]);
    }
    asm.emit([Insn::store_reg(Size::W, R10, FP_KEY + KEY_PID, R8)]);
    if config.per_thread {
        asm.emit([Insn::store_reg(Size::W, R10, FP_KEY + KEY_TID, R7)]);
    }
    asm.emit([
        Insn::mov64_reg(R1, R10),
        Insn::alu64_imm(Alu::Add, R1, (FP_KEY + KEY_COMM) as i32),
        Insn::mov64_imm(R2, COMM_LEN),
        Insn::call(sys::BPF_FUNC_get_current_comm),
    ]);

    let stacks = [
        (
            config.user_stacks,
            KEY_USTACK,
            sys::BPF_F_USER_STACK as i32,
            Loss::UserStackMapFull,
        ),
        (
            config.kernel_stacks,
            KEY_KSTACK,
            0,
            Loss::KernelStackMapFull,
        ),
    ];
    for (wanted, slot, flags, map_full) in stacks {
        if !wanted {
            asm.emit([Insn::store_imm(Size::W, R10, FP_KEY + slot, -libc::EFAULT)]);
            continue;
        }
        asm.emit([Insn::mov64_reg(R1, R6)]);
        asm.emit(Insn::ld_map_fd(R2, fd(&maps.stacks)));
        asm.emit([
            Insn::mov64_imm(R3, flags),
            Insn::call(sys::BPF_FUNC_get_stackid),
            Insn::store_reg(Size::W, R10, FP_KEY + slot, R0),
            Insn::mov64_reg(R9, R0),
        ]);
        let done = asm.label();
        asm.jump(Insn::jmp_imm(Cond::Sge, R9, 0, 0), done);
        asm.jump(Insn::jmp_imm(Cond::Eq, R9, -libc::EFAULT, 0), done);
        let collision = asm.label();
        asm.jump(Insn::jmp_imm(Cond::Eq, R9, -libc::EEXIST, 0), collision);
        count_loss(&mut asm, &maps.losses, map_full as i32, done);
        asm.place(collision);
        count_loss(&mut asm, &maps.losses, map_full as i32 + 1, done);
        asm.place(done);
    }

    // counts[key] += 1, inserting the key when it is new.
    let add = asm.label();
    lookup_key(&mut asm, &maps.counts);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), add);
    asm.emit([Insn::store_imm(Size::DW, R10, FP_VALUE, 1)]);
    asm.emit(Insn::ld_map_fd(R1, fd(&maps.counts)));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_KEY as i32),
        Insn::mov64_reg(R3, R10),
        Insn::alu64_imm(Alu::Add, R3, FP_VALUE as i32),
        Insn::mov64_imm(R4, sys::BPF_NOEXIST as i32),
        Insn::call(sys::BPF_FUNC_map_update_elem),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), exit);
    // Another CPU inserted the same key first: add to its entry instead.
    let full = asm.label();
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, -libc::EEXIST, 0), full);
    lookup_key(&mut asm, &maps.counts);
    asm.jump(Insn::jmp_imm(Cond::Ne, R0, 0, 0), add);
    asm.place(full);
    count_loss(&mut asm, &maps.losses, Loss::CountMapFull as i32, exit);
    asm.place(add);
    asm.emit([
        Insn::mov64_imm(R1, 1),
        Insn::atomic_add(Size::DW, R0, 0, R1),
    ]);
    asm.place(exit);
    asm.emit([Insn::mov64_imm(R0, 0), Insn::exit()]);
    Ok(asm.finish()?)
}

/// `r0 = counts[key]`.
fn lookup_key(asm: &mut Asm, counts: &MapHandle) {
    asm.emit(Insn::ld_map_fd(R1, counts.as_fd().as_raw_fd()));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_KEY as i32),
        Insn::call(libbpf_sys::BPF_FUNC_map_lookup_elem),
    ]);
}

/// `losses[index] += 1`, then `goto next`.
fn count_loss(asm: &mut Asm, losses: &MapHandle, index: i32, next: Label) {
    asm.emit([Insn::store_imm(Size::W, R10, FP_SCRATCH, index)]);
    asm.emit(Insn::ld_map_fd(R1, losses.as_fd().as_raw_fd()));
    asm.emit([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, FP_SCRATCH as i32),
        Insn::call(libbpf_sys::BPF_FUNC_map_lookup_elem),
    ]);
    asm.jump(Insn::jmp_imm(Cond::Eq, R0, 0, 0), next);
    asm.emit([
        Insn::load(Size::DW, R1, R0, 0),
        Insn::alu64_imm(Alu::Add, R1, 1),
        Insn::store_reg(Size::DW, R0, 0, R1),
    ]);
    asm.goto(next);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_written_by_the_program_layout() {
        let mut key = [0u8; KEY_SIZE];
        key[0..4].copy_from_slice(&42u32.to_ne_bytes());
        key[4..8].copy_from_slice(&43u32.to_ne_bytes());
        key[8..12].copy_from_slice(&7i32.to_ne_bytes());
        key[12..16].copy_from_slice(&(-libc::EFAULT).to_ne_bytes());
        key[16..20].copy_from_slice(b"bash");
        let count = decode_count(&key, &9u64.to_ne_bytes()).unwrap();
        assert_eq!(
            count,
            Count {
                pid: 42,
                tid: 43,
                comm: "bash".into(),
                user: StackId::Id(7),
                kernel: StackId::Absent,
                count: 9
            }
        );
        key[8..12].copy_from_slice(&(-libc::ENOMEM).to_ne_bytes());
        assert_eq!(decode_count(&key, &[1; 8]).unwrap().user, StackId::Missed);
        assert_eq!(decode_count(&key[..10], &[1; 8]), None);
    }
}
