//! Turns what the sampler counted into a symbolized [`Profile`].
//!
//! Stacks are resolved once per distinct stack id; user addresses are
//! batched per process so each binary is searched once per run. Return
//! addresses (every frame but the leaf) are looked up one byte earlier, so a
//! call that ends a function is attributed to its caller's line, as perf does.

use std::collections::HashMap;

use scorch_bpf::{Count, Snapshot, StackId};
use scorch_formats::{Location, Meta, Profile, ProfileBuilder, Sample, Stack};
use scorch_symbolizer::{Resolved, Symbolizer};

/// Everything needed to symbolize the counts of a finished run.
pub struct Collector<'a> {
    snapshot: &'a Snapshot,
    symbolizer: &'a mut Symbolizer,
    builder: ProfileBuilder,
    kernel_stacks: HashMap<u32, Stack>,
    user_stacks: HashMap<(u32, u32), Stack>,
}

impl<'a> Collector<'a> {
    /// Starts a profile with `meta`.
    pub fn new(snapshot: &'a Snapshot, symbolizer: &'a mut Symbolizer, meta: Meta) -> Self {
        Self {
            snapshot,
            symbolizer,
            builder: ProfileBuilder::new(meta),
            kernel_stacks: HashMap::new(),
            user_stacks: HashMap::new(),
        }
    }

    /// Symbolizes the snapshot's counts; `per_thread` keeps thread ids.
    pub fn build(mut self, per_thread: bool) -> Profile {
        let counts = &self.snapshot.counts;
        self.resolve_user_stacks(counts);
        for count in counts {
            let kernel = match count.kernel {
                StackId::Id(id) => self.kernel_stack(id),
                StackId::Absent => Stack::Absent,
                StackId::Missed => Stack::Missed,
            };
            let user = match count.user {
                StackId::Id(id) => self
                    .user_stacks
                    .get(&(count.pid, id))
                    .cloned()
                    .unwrap_or(Stack::Missed),
                StackId::Absent => Stack::Absent,
                StackId::Missed => Stack::Missed,
            };
            self.builder.sample(Sample {
                pid: count.pid,
                tid: per_thread.then_some(count.tid),
                comm: count.comm.clone(),
                user,
                kernel,
                count: count.count,
            });
        }
        self.builder.build()
    }

    fn kernel_stack(&mut self, id: u32) -> Stack {
        if let Some(stack) = self.kernel_stacks.get(&id) {
            return stack.clone();
        }
        let stack = match self.snapshot.stack(id) {
            None => Stack::Missed,
            Some(addrs) => {
                let resolved = self.symbolizer.kernel(&lookup_addresses(addrs));
                Stack::Frames(self.intern(addrs, resolved))
            }
        };
        self.kernel_stacks.insert(id, stack.clone());
        stack
    }

    /// Resolves every user stack of a process in one symbolizer call.
    fn resolve_user_stacks(&mut self, counts: &[Count]) {
        let mut by_pid: HashMap<u32, Vec<u32>> = HashMap::new();
        for count in counts {
            if let StackId::Id(id) = count.user {
                by_pid.entry(count.pid).or_default().push(id);
            }
        }
        for (pid, mut ids) in by_pid {
            ids.sort_unstable();
            ids.dedup();
            let mut stacks = Vec::with_capacity(ids.len());
            let mut lookups = Vec::new();
            for id in ids {
                if let Some(addrs) = self.snapshot.stack(id) {
                    lookups.extend(lookup_addresses(addrs));
                    stacks.push((id, addrs));
                }
            }
            lookups.sort_unstable();
            lookups.dedup();
            let resolved: HashMap<u64, Resolved> = lookups
                .iter()
                .copied()
                .zip(self.symbolizer.user(pid, &lookups))
                .collect();
            for (id, addrs) in stacks {
                let frames = lookup_addresses(addrs)
                    .iter()
                    .map(|a| resolved.get(a).cloned())
                    .collect::<Option<Vec<_>>>();
                let stack = match frames {
                    Some(frames) => Stack::Frames(self.intern(addrs, frames)),
                    None => Stack::Missed,
                };
                self.user_stacks.insert((pid, id), stack);
            }
        }
    }

    /// Interns resolved frames as locations at their sampled addresses.
    fn intern(&mut self, addrs: &[u64], resolved: Vec<Resolved>) -> Vec<usize> {
        addrs
            .iter()
            .zip(resolved)
            .map(|(&address, r)| {
                let mapping = r.mapping.map(|m| self.builder.mapping(m));
                self.builder.location(Location {
                    address,
                    mapping,
                    kind: r.kind,
                    lines: r.lines,
                })
            })
            .collect()
    }
}

/// The addresses to look up for a leaf-first stack: the leaf as sampled,
/// return addresses minus one so they fall inside the call instruction.
fn lookup_addresses(stack: &[u64]) -> Vec<u64> {
    stack
        .iter()
        .enumerate()
        .map(|(i, &a)| if i == 0 { a } else { a.saturating_sub(1) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_addresses_are_looked_up_inside_the_call() {
        assert_eq!(lookup_addresses(&[0x10, 0x20, 0]), vec![0x10, 0x1f, 0]);
        assert!(lookup_addresses(&[]).is_empty());
    }
}
