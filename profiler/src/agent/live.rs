//! The agent's answer to `/debug/pprof/profile`: a sampler of its own for
//! the requested seconds, independent of the windows being stored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scorch_bpf::{Rate, Sampler, SamplerConfig, Target};
use scorch_formats::{Measure, Meta, Profile};
use scorch_symbolizer::Symbolizer;
use scorch_web::LiveProfiler;

use crate::collect::Collector;

/// Go's net/http/pprof samples at 100 Hz; 99 avoids lockstep with timers.
const HZ: u64 = 99;
/// How often new processes are captured while sampling.
const TICK: Duration = Duration::from_millis(100);

/// Takes live profiles on request.
pub struct LiveSampler {
    /// Distinct stacks a live profile can hold.
    pub stack_storage_size: u32,
}

impl LiveProfiler for LiveSampler {
    fn profile(&self, duration: Duration, pid: Option<u32>) -> Result<Profile, String> {
        let target = pid.map_or(Target::All, |p| Target::Pids(vec![p]));
        let shared =
            super::sampler_config(target.clone(), Rate::Frequency(HZ), self.stack_storage_size);
        let config = SamplerConfig {
            per_thread: true,
            track_pids: true,
            ..shared.map_err(|e| e.to_string())?
        };
        let mut symbolizer = Symbolizer::one_shot();
        let start = SystemTime::now();
        let mut sampler = Sampler::start(&config).map_err(|e| e.to_string())?;
        let mut waited = Duration::ZERO;
        while waited < duration {
            std::thread::sleep(TICK);
            waited += TICK;
            for pid in sampler.take_seen_pids().unwrap_or_default() {
                let _ = symbolizer.capture(pid);
            }
        }
        sampler.stop();
        let snapshot = sampler.drain().map_err(|e| e.to_string())?;
        let meta = Meta {
            target: pid.map_or("all threads".into(), |p| format!("PID {p}")),
            start_unix_ns: start
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            duration_ns: duration.as_nanos() as u64,
            frequency_hz: Some(HZ),
            sample_period: None,
            measure: Measure::OnCpuSamples,
        };
        Ok(Collector::new(&snapshot, &mut symbolizer, meta).build(true))
    }
}
