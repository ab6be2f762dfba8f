//! A user-space unwinder over compact tables: the reference for the BPF one.
//!
//! From a thread's RIP, RSP and RBP and a copy of its stack, each step finds
//! the mapping of the current address, its row, and from the row the CFA;
//! the return address is at `CFA - 8`, the caller's RSP is the CFA, and its
//! RBP is where the row says. Return addresses are looked up at
//! `address - 1` (inside the call: a call may be a function's last
//! instruction), except right after a signal frame, whose saved RIP is the
//! interrupted instruction itself.
//!
//! Where a mapping has no table or an address has no row, a step walks the
//! frame pointer instead (`RA = [RBP + 8]`, `RBP = [RBP]`) and the frame
//! says so; the walk stops, and says why, at the outermost frame, at an
//! unreadable word, at a rule no table can express, or when the stack does
//! not grow toward the caller. Arithmetic on registers wraps, as the BPF
//! unwinder's does: garbage registers give an unreadable address, never a panic.

mod memory;
mod space;

pub use memory::{Memory, StackSnapshot};
pub use space::{executables, AddressSpace, Executable, Image, Mapping};

use crate::row::{Cfa, Rbp, Row, SIGNAL_RBP, SIGNAL_RIP, SIGNAL_RSP};

/// The registers an unwind starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers {
    /// Instruction pointer.
    pub rip: u64,
    /// Stack pointer.
    pub rsp: u64,
    /// Frame pointer (or whatever the code keeps in RBP).
    pub rbp: u64,
}

/// How a frame's address was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The sampled RIP.
    Registers,
    /// A return address found through the caller's table row.
    Table,
    /// A return address found by walking RBP, for want of a row.
    FramePointer,
    /// The interrupted RIP saved in a signal frame.
    Signal,
}

/// One frame of an unwound stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The instruction pointer (a return address for all but the first and
    /// signal-interrupted frames).
    pub address: u64,
    /// How it was found.
    pub method: Method,
}

/// Why an unwind stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The outermost frame was reached (`_start`, thread entry, or a zero return address).
    End,
    /// The frame limit was reached.
    Depth,
    /// A word at this address was not in the stack snapshot.
    Unreadable(u64),
    /// The row for this address has a rule the table cannot express, or needs an RBP that was lost.
    Unsupported(u64),
    /// The frame at this address would have a caller below it on the stack:
    /// corrupt stack or wrong rules.
    NoProgress(u64),
}

/// An unwound stack, innermost frame first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwound {
    /// The frames.
    pub frames: Vec<Frame>,
    /// Why the walk ended.
    pub stop: Stop,
}

/// Unwinds at most `max_frames` frames from `regs` in `space`, reading `memory`.
pub fn unwind(
    regs: Registers,
    space: &AddressSpace,
    memory: &impl Memory,
    max_frames: usize,
) -> Unwound {
    let mut frames = vec![Frame {
        address: regs.rip,
        method: Method::Registers,
    }];
    let stop = walk(regs, space, memory, max_frames, &mut frames);
    Unwound { frames, stop }
}

fn walk(
    regs: Registers,
    space: &AddressSpace,
    memory: &impl Memory,
    max_frames: usize,
    frames: &mut Vec<Frame>,
) -> Stop {
    let (mut rip, mut rsp) = (regs.rip, regs.rsp);
    // `None` once a frame saved the caller's RBP where no table says.
    let mut rbp = Some(regs.rbp);
    let mut exact = true;
    let read = |address: u64| memory.read_u64(address).ok_or(Stop::Unreadable(address));
    loop {
        if frames.len() >= max_frames {
            return Stop::Depth;
        }
        let lookup = if exact { rip } else { rip.wrapping_sub(1) };
        let row = row_for(space, lookup);
        let step = match row.map(|r| r.cfa) {
            Some(Cfa::End) => return Stop::End,
            Some(Cfa::Unsupported) => return Stop::Unsupported(rip),
            Some(Cfa::Signal) => {
                let step = (|| {
                    Ok::<_, Stop>((
                        read(rsp.wrapping_add(SIGNAL_RIP))?,
                        read(rsp.wrapping_add(SIGNAL_RSP))?,
                        read(rsp.wrapping_add(SIGNAL_RBP))?,
                    ))
                })();
                match step {
                    Ok((next_rip, next_rsp, next_rbp)) => {
                        frames.push(Frame {
                            address: next_rip,
                            method: Method::Signal,
                        });
                        (rip, rsp, rbp, exact) = (next_rip, next_rsp, Some(next_rbp), true);
                        continue;
                    }
                    Err(stop) => return stop,
                }
            }
            Some(Cfa::Missing) | None => frame_pointer_step(rip, rsp, rbp, &read),
            Some(cfa) => table_step(cfa, row, rip, rsp, rbp, &read),
        };
        let (next_rip, cfa, next_rbp, method) = match step {
            Ok(step) => step,
            Err(stop) => return stop,
        };
        if next_rip == 0 {
            return Stop::End;
        }
        if cfa <= rsp {
            return Stop::NoProgress(rip);
        }
        frames.push(Frame {
            address: next_rip,
            method,
        });
        (rip, rsp, rbp, exact) = (next_rip, cfa, next_rbp, false);
    }
}

/// The row in force at `address`, when its mapping has a table covering it.
fn row_for(space: &AddressSpace, address: u64) -> Option<Row> {
    let mapping = space.find(address)?;
    let vaddr = mapping.vaddr(address)?;
    mapping.table.as_ref()?.lookup(vaddr)
}

/// `(return address, CFA, caller's RBP, method)` of one step.
type Step = (u64, u64, Option<u64>, Method);

/// One step by a table row whose CFA rule is `cfa`.
fn table_step(
    cfa: Cfa,
    row: Option<Row>,
    rip: u64,
    rsp: u64,
    rbp: Option<u64>,
    read: &impl Fn(u64) -> Result<u64, Stop>,
) -> Result<Step, Stop> {
    let unsupported = Stop::Unsupported(rip);
    let cfa = match cfa {
        Cfa::Rsp(offset) => rsp.wrapping_add_signed(offset.into()),
        Cfa::Rbp(offset) => rbp.ok_or(unsupported)?.wrapping_add_signed(offset.into()),
        Cfa::Plt { offset, threshold } => {
            let pushed = if rip & 15 >= u64::from(threshold) {
                8
            } else {
                0
            };
            rsp.wrapping_add_signed(offset.into()).wrapping_add(pushed)
        }
        _ => return Err(unsupported),
    };
    let next_rbp = match row.map_or(Rbp::Same, |r| r.rbp) {
        Rbp::Same => rbp,
        Rbp::AtCfa(offset) => Some(read(cfa.wrapping_add_signed(offset.into()))?),
        Rbp::Unsupported => None,
    };
    Ok((read(cfa.wrapping_sub(8))?, cfa, next_rbp, Method::Table))
}

/// One step by the frame pointer chain, from `rip`.
fn frame_pointer_step(
    rip: u64,
    rsp: u64,
    rbp: Option<u64>,
    read: &impl Fn(u64) -> Result<u64, Stop>,
) -> Result<Step, Stop> {
    let rbp = rbp.ok_or(Stop::Unsupported(rip))?;
    if rbp < rsp {
        return Err(Stop::NoProgress(rip));
    }
    Ok((
        read(rbp.wrapping_add(8))?,
        rbp.wrapping_add(16),
        Some(read(rbp)?),
        Method::FramePointer,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::elf::Segment;
    use crate::table::{FileKey, Table};

    /// One file mapped at 0x10000 (ELF address = runtime address - 0x10000) with:
    /// f at 0x1000 (CFA = RSP+16, RBP saved at CFA-16), a PLT entry at
    /// 0x2000, `_start` at 0x3000, nothing known from 0x4000, a signal
    /// trampoline at 0x5000, nothing known from 0x5010.
    fn space() -> AddressSpace {
        let row = |pc, cfa, rbp| Row { pc, cfa, rbp };
        let table = Table {
            key: FileKey::BuildId(vec![7]),
            rows: vec![
                row(0x1000, Cfa::Rsp(16), Rbp::AtCfa(-16)),
                row(
                    0x2000,
                    Cfa::Plt {
                        offset: 8,
                        threshold: 11,
                    },
                    Rbp::Same,
                ),
                row(0x3000, Cfa::End, Rbp::Same),
                row(0x4000, Cfa::Missing, Rbp::Same),
                row(0x5000, Cfa::Signal, Rbp::Same),
                row(0x5010, Cfa::Missing, Rbp::Same),
            ],
            segments: vec![Segment {
                offset: 0,
                size: 0x10000,
                vaddr: 0,
                flags: Segment::PF_X,
            }],
            skipped_fdes: 0,
        };
        AddressSpace::new(vec![Mapping {
            start: 0x10000,
            end: 0x20000,
            offset: 0,
            path: "/test".into(),
            table: Some(Arc::new(table)),
        }])
    }

    /// A stack at 0x7000 holding `words` from its base.
    fn stack(words: &[u64]) -> StackSnapshot {
        StackSnapshot {
            base: 0x7000,
            bytes: words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        }
    }

    fn addresses(unwound: &Unwound) -> Vec<(u64, Method)> {
        unwound
            .frames
            .iter()
            .map(|f| (f.address, f.method))
            .collect()
    }

    #[test]
    fn follows_rows_to_the_end_of_the_stack() {
        // In f: [rsp] = saved rbp, [rsp+8] = return address into _start.
        let memory = stack(&[0xbbbb, 0x13001]);
        let regs = Registers {
            rip: 0x11010,
            rsp: 0x7000,
            rbp: 0x1,
        };
        let unwound = unwind(regs, &space(), &memory, 10);
        assert_eq!(
            addresses(&unwound),
            vec![(0x11010, Method::Registers), (0x13001, Method::Table)]
        );
        assert_eq!(unwound.stop, Stop::End);
    }

    #[test]
    fn plt_entries_count_their_push() {
        // Past the push (offset 11 of the entry): the return address is at RSP+8.
        let memory = stack(&[0x55, 0x13001]);
        let regs = Registers {
            rip: 0x1200b,
            rsp: 0x7000,
            rbp: 0,
        };
        assert_eq!(
            unwind(regs, &space(), &memory, 10).frames[1].address,
            0x13001
        );
        // Before it: at RSP.
        let regs = Registers {
            rip: 0x12006,
            ..regs
        };
        let memory = stack(&[0x13001]);
        assert_eq!(
            unwind(regs, &space(), &memory, 10).frames[1].address,
            0x13001
        );
    }

    #[test]
    fn garbage_registers_stop_the_walk_without_overflow() {
        let memory = stack(&[0x13001; 4]);
        let at = |rip, rsp| {
            let regs = Registers { rip, rsp, rbp: 0 };
            unwind(regs, &space(), &memory, 10).stop
        };
        // A signal frame at the top of the address space.
        assert!(matches!(at(0x15000, u64::MAX - 100), Stop::Unreadable(_)));
        // A PLT entry past its push, RSP + 8 + 8 beyond 2^64.
        assert!(matches!(at(0x1200b, u64::MAX - 11), Stop::Unreadable(_)));
        // CFA = RSP + 16 wraps to 4: RBP is read at 4 - 16, which wraps too.
        assert!(matches!(at(0x11010, u64::MAX - 11), Stop::Unreadable(_)));
    }

    #[test]
    fn no_row_falls_back_to_frame_pointers_and_limits_hold() {
        // At 0x14000 nothing is known: RBP = 0x7010 -> [saved rbp, return address].
        let memory = stack(&[0, 0, 0x7020, 0x14100, 0x7030, 0x14200, 0x7000, 0x14300]);
        let regs = Registers {
            rip: 0x14000,
            rsp: 0x7000,
            rbp: 0x7010,
        };
        let unwound = unwind(regs, &space(), &memory, 3);
        assert_eq!(
            addresses(&unwound),
            vec![
                (0x14000, Method::Registers),
                (0x14100, Method::FramePointer),
                (0x14200, Method::FramePointer),
            ]
        );
        assert_eq!(unwound.stop, Stop::Depth);
        // The chain points back down the stack: no progress, the walk stops.
        let unwound = unwind(regs, &space(), &memory, 10);
        assert_eq!(unwound.stop, Stop::NoProgress(0x14300));
        // Outside the snapshot: unreadable.
        let regs = Registers {
            rbp: 0x9000,
            ..regs
        };
        assert_eq!(
            unwind(regs, &space(), &memory, 10).stop,
            Stop::Unreadable(0x9008)
        );
    }
}
