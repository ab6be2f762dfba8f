//! `agent --off-cpu`: a second sampler, on the scheduler's `sched_switch`,
//! timing how long every thread waits and where. It is drained at the end
//! of every window with the CPU sampler, and its windows are stored as
//! series of their own ([`Measure::OffCpuNanoseconds`]), so that no query
//! ever sums CPU samples with nanoseconds.
//!
//! The off-CPU program writes one buffer, so it is drained while it runs: a
//! wait that ends between the reading of a count and its deletion is lost,
//! a few microseconds' worth of switches in every window. User stacks walk
//! frame pointers (the unwind tables belong to the CPU sampler).

use anyhow::{bail, Context};
use scorch_bpf::{
    OffCpu, Rate, Sampler, SamplerConfig, Target, ThreadKind, UnwindTables, UserUnwind,
};
use scorch_formats::{Measure, Meta, Profile};
use scorch_symbolizer::Symbolizer;

use crate::collect::Collector;

/// `--off-cpu` and its bounds, as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffCpuArgs {
    /// Shortest wait kept, microseconds.
    pub min_block_us: u64,
    /// Longest wait kept, microseconds.
    pub max_block_us: Option<u64>,
}

/// Threads that can be off CPU at once on the whole host (the start map,
/// 40 bytes each).
const MAX_THREADS: u32 = 65536;

impl OffCpuArgs {
    /// The sampler's off-CPU settings, checked.
    fn settings(&self) -> anyhow::Result<OffCpu> {
        if let Some(max) = self.max_block_us.filter(|&max| max < self.min_block_us) {
            bail!(
                "--max-block-time {max} is below --min-block-time {}: no wait could be kept",
                self.min_block_us
            );
        }
        // As bcc: a wait counts when its whole microseconds are within bounds.
        Ok(OffCpu {
            min_block_ns: self.min_block_us.saturating_mul(1000),
            max_block_ns: self
                .max_block_us
                .map_or(u64::MAX, |max| max.saturating_mul(1000).saturating_add(999)),
            state: None,
            max_threads: MAX_THREADS,
            threads: ThreadKind::All,
        })
    }

    /// Checks the bounds before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        self.settings().map(drop)
    }
}

/// The running off-CPU sampler.
pub struct OffCpuSampler {
    sampler: Sampler,
    lost_before: u64,
}

impl OffCpuSampler {
    /// Loads and attaches the off-CPU program for every thread on the host;
    /// user stacks walk `tables` when given (the CPU sampler's), else
    /// frame pointers.
    pub fn start(
        args: &OffCpuArgs,
        stack_storage_size: u32,
        tables: Option<UnwindTables>,
    ) -> anyhow::Result<Self> {
        let config = SamplerConfig {
            off_cpu: Some(args.settings()?),
            ..super::sampler_config(Target::All, Rate::Frequency(1), stack_storage_size)?
        };
        let unwind = tables.map_or(UserUnwind::FramePointers, UserUnwind::SharedTables);
        let sampler =
            Sampler::start_unwinding(&config, unwind).context("starting the off-CPU sampler")?;
        Ok(Self {
            sampler,
            lost_before: 0,
        })
    }

    /// The waits that ended since the last drain, symbolized, counts in
    /// nanoseconds.
    pub fn drain(&mut self, symbolizer: &mut Symbolizer) -> anyhow::Result<Profile> {
        let snapshot = self
            .sampler
            .drain()
            .context("draining the off-CPU sampler")?;
        let meta = Meta {
            measure: Measure::OffCpuNanoseconds,
            ..Meta::default()
        };
        let mut profile = Collector::new(&snapshot, symbolizer, meta).build(false);
        crate::offcpu::trim_tracing_frames(&mut profile);
        Ok(profile)
    }

    /// Waits or stacks lost since the last call, if any.
    pub fn newly_lost(&mut self) -> u64 {
        let lost = self.sampler.counters().unwrap_or_default().lost();
        let new = lost.saturating_sub(self.lost_before);
        self.lost_before = lost;
        new
    }
}
