//! Compact unwind tables for x86_64 ELF files, and an unwinder over them.
//!
//! Most code profiled in practice (Debian's libc, distro packages, release
//! builds of C, C++ and Rust) has no frame pointers, so walking RBP stops
//! after a frame or two. What every such file does have is call frame
//! information (CFI): `.eh_frame`, kept for C++ exceptions and Rust panics.
//! Interpreting CFI (a bytecode per function) is too slow and too branchy
//! for a BPF program, so user space flattens it here into a sorted list of
//! [`Row`]s per file: "from this address on, CFA = RSP or RBP + n, the
//! caller's RBP is saved at CFA + m, the return address at CFA - 8". A
//! sampler then only binary-searches a row per frame.
//!
//! # Design constraints
//! - **Tables per file, not per process**: a [`Table`] is keyed by
//!   [`FileKey`] (build id, else device + inode + size + mtime), so every
//!   process mapping libc shares one ([`TableCache`]).
//! - **Small and streamed**: FDEs are walked one at a time in address order
//!   (`.eh_frame_hdr`'s sorted search table, read in place) and equal
//!   neighbouring rows merged; the rows leave in chunks of a fixed size. A
//!   loader writing them elsewhere (the sampler's BPF row map) counts them
//!   in one walk and writes them in a second ([`TableSource`],
//!   [`CountedTable`]), so building even libLLVM holds the call frame
//!   sections, one FDE's rows and one chunk, never the file's rows. Only
//!   [`build`], for the user-space reference unwinder, keeps them all.
//! - **Honest about what it cannot express**: a DWARF expression other than
//!   the two x86_64 idioms we know (PLT entries, the signal trampoline) is
//!   [`Cfa::Unsupported`]; an address no FDE covers is [`Cfa::Missing`]; the
//!   outermost frame (`_start`, thread entry) is [`Cfa::End`].
//! - **Bad input is an error, not a panic**: a missing file, a non-ELF file
//!   or malformed CFI gives an [`Error`] naming the file and the offset.
//!
//! # What the caller does
//! Maps a sampled address to a file and ELF virtual address (the process's
//! mappings, [`Table::vaddr_of`]), and for return addresses looks up
//! `address - 1`, inside the call instruction. [`unwind()`] does all of it
//! in user space from registers and a stack snapshot: the reference that
//! the in-kernel unwinder (`scorch-bpf`'s sampler) mirrors rule for rule.
//! Files are read by path ([`build`], [`TableSource::open`]); the vDSO,
//! which has none, from a copy of its memory ([`build_image`],
//! [`TableSource::image`]).
//!
//! # Non-goals
//! Architectures other than x86_64; recovering registers other than RIP,
//! RSP and RBP (what a profiler's unwinder needs); evaluating arbitrary
//! DWARF expressions.

mod builder;
mod cache;
mod cfi;
mod debuglink;
mod elf;
mod error;
mod fdes;
mod row;
mod rows;
mod table;
pub mod unwind;

pub use builder::{build, build_image, CountedTable, TableSource};
pub use cache::TableCache;
pub use elf::Segment;
pub use error::{Error, Result};
pub use row::{Cfa, Rbp, Row, SIGNAL_RBP, SIGNAL_RIP, SIGNAL_RSP};
pub use table::{FileKey, Table};
pub use unwind::unwind;
