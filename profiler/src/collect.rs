//! Turns what the sampler counted into a symbolized [`Profile`].
//!
//! Stacks are resolved once per distinct stack id; user addresses are
//! batched per process and kernel addresses all together, so each binary
//! (and kallsyms) is searched once per run. Return
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
        self.resolve_kernel_stacks(counts);
        for count in counts {
            let kernel = match count.kernel {
                StackId::Id(id) => self
                    .kernel_stacks
                    .get(&id)
                    .cloned()
                    .unwrap_or(Stack::Missed),
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

    /// Resolves every kernel stack in one symbolizer call.
    fn resolve_kernel_stacks(&mut self, counts: &[Count]) {
        let ids = counts.iter().filter_map(|c| match c.kernel {
            StackId::Id(id) => Some(id),
            _ => None,
        });
        for (id, stack) in self.resolve(ids, |s, addrs| s.kernel(addrs)) {
            self.kernel_stacks.insert(id, stack);
        }
    }

    /// Resolves the user stacks of each process in one symbolizer call.
    fn resolve_user_stacks(&mut self, counts: &[Count]) {
        let mut by_pid: HashMap<u32, Vec<u32>> = HashMap::new();
        for count in counts {
            if let StackId::Id(id) = count.user {
                by_pid.entry(count.pid).or_default().push(id);
            }
        }
        for (pid, ids) in by_pid {
            for (id, stack) in self.resolve(ids.into_iter(), |s, addrs| s.user(pid, addrs)) {
                self.user_stacks.insert((pid, id), stack);
            }
        }
    }

    /// Symbolizes the distinct addresses of stacks `ids` with one call of
    /// `symbolize`, then builds each stack from the results.
    fn resolve(
        &mut self,
        ids: impl Iterator<Item = u32>,
        symbolize: impl FnOnce(&mut Symbolizer, &[u64]) -> Vec<Resolved>,
    ) -> Vec<(u32, Stack)> {
        let mut ids: Vec<u32> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        let snapshot = self.snapshot;
        let stacks: Vec<(u32, &[u64])> = ids
            .into_iter()
            .filter_map(|id| Some((id, snapshot.stack(id)?)))
            .collect();
        let mut lookups: Vec<u64> = stacks
            .iter()
            .flat_map(|(_, a)| lookup_addresses(a))
            .collect();
        lookups.sort_unstable();
        lookups.dedup();
        let resolved: HashMap<u64, Resolved> = lookups
            .iter()
            .copied()
            .zip(symbolize(self.symbolizer, &lookups))
            .collect();
        stacks
            .into_iter()
            .map(|(id, addrs)| {
                let frames = lookup_addresses(addrs)
                    .iter()
                    .map(|a| resolved.get(a).cloned())
                    .collect::<Option<Vec<_>>>();
                let stack = match frames {
                    Some(frames) => Stack::Frames(self.intern(addrs, frames)),
                    None => Stack::Missed,
                };
                (id, stack)
            })
            .collect()
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
