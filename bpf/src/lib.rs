//! Everything that makes and runs BPF for scorch.
//!
//! Design constraints:
//! - No clang, no LLVM: programs are assembled here ([`insn`]) from Rust.
//! - libbpf (through libbpf-rs and libbpf-sys) is the one path into the
//!   kernel: maps are `MapHandle`s, programs load with `bpf_prog_load`,
//!   attachments are links that detach when dropped.
//! - Pure parts (instruction encoding, the sampler's code generation and key
//!   layout) are unit-tested without privileges; the privileged parts are
//!   exercised by the root integration tests.

pub mod btf;
pub mod btf_link;
pub mod btf_types;
pub mod counter;
pub mod elf_symbols;
pub mod error;
pub mod func_info;
pub mod insn;
pub mod map;
pub mod mounts;
pub mod perf_event;
pub mod probe;
pub mod program;
pub mod raw_tracepoint;
pub mod ringbuf;
pub mod run_once;
pub mod sampler;
pub mod tracepoint;
pub mod usdt;
pub mod watchpoint;

pub use error::{Error, Result};
pub use perf_event::{online_cpus, Event, Rate};
pub use sampler::{
    count_keys_for, Count, Counters, LoadedProcess, OffCpu, Sampler, SamplerConfig, SeenPids,
    Snapshot, StackId, TableStats, Target, ThreadKind, UnwindTables, UserUnwind,
};
