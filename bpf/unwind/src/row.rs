//! One row of a compact unwind table and the rules it carries.
//!
//! A row holds from its `pc` up to the next row's. On x86_64 the return
//! address is always at `CFA - 8` (rows where it is not are
//! [`Cfa::Unsupported`]), so a row only says how to find the CFA and where
//! the caller's RBP was saved; the caller's RSP is the CFA.

/// How to compute the canonical frame address (the caller's RSP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cfa {
    /// `RSP + offset`.
    Rsp(i32),
    /// `RBP + offset`.
    Rbp(i32),
    /// A lazy-binding PLT entry: `RSP + offset`, plus 8 when
    /// `pc & 15 >= threshold` (after the entry's `push`).
    Plt {
        /// Offset from RSP before the push.
        offset: i32,
        /// Offset within the 16-byte entry from which 8 more bytes are pushed.
        threshold: u8,
    },
    /// A signal trampoline (`__restore_rt`): RSP points at the kernel's
    /// `ucontext_t`, from which RIP, RSP and RBP of the interrupted frame are read.
    Signal,
    /// The outermost frame (`_start`, a thread's entry): the return address is undefined.
    End,
    /// A rule this table cannot express (a DWARF expression, another base register).
    Unsupported,
    /// No FDE covers this address.
    Missing,
}

/// Where the caller's RBP is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rbp {
    /// RBP was not changed by this frame: the caller's is the current one.
    Same,
    /// Saved at `CFA + offset`.
    AtCfa(i32),
    /// Somewhere this table cannot express; unwinding past a frame that
    /// needs the caller's RBP is not possible.
    Unsupported,
}

/// The unwind rules from one address on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Row {
    /// First address (ELF virtual address of the file) the rules apply to.
    pub pc: u64,
    /// How to find the CFA.
    pub cfa: Cfa,
    /// Where the caller's RBP is.
    pub rbp: Rbp,
}

impl Row {
    /// Whether `other` carries the same rules (whatever its address).
    pub fn same_rules(&self, other: &Row) -> bool {
        (self.cfa, self.rbp) == (other.cfa, other.rbp)
    }
}

/// In a signal trampoline, offset from RSP of the interrupted frame's RBP
/// (`ucontext_t.uc_mcontext.gregs[REG_RBP]` on x86_64 Linux).
pub const SIGNAL_RBP: u64 = 120;
/// In a signal trampoline, offset from RSP of the interrupted frame's RSP.
pub const SIGNAL_RSP: u64 = 160;
/// In a signal trampoline, offset from RSP of the interrupted frame's RIP.
pub const SIGNAL_RIP: u64 = 168;
