//! `scorch agent`: always-on whole-host profiling into the embedded store,
//! with the web page served beside it.
//!
//! One thread samples: at the end of every window it drains the sampler's idle buffer (the program keeps
//! writing the other), symbolizes it, splits it per process and hands the
//! series to the store writer ([`writer`]), which writes them in one
//! transaction on a thread of its own, so that a slow disk never delays a
//! capture. New processes are captured every tick on a thread of their
//! own ([`capture`]), so they are caught while they live even when the
//! sampling thread is busy symbolizing. With `--unwind dwarf` (or auto),
//! the pids it sees go on to a third thread ([`unwind`]) that loads their
//! unwind tables into the BPF maps. Symbol caches survive across windows under a memory ceiling;
//! after each window, processes that exited are forgotten and the caches
//! trimmed. Retention runs every minute. The
//! web server runs on its own small tokio runtime and reads the same store.
//! SIGINT/SIGTERM end the current window early, write it, and exit.

mod capture;
pub(crate) mod labels;
mod live;
mod offcpu;
mod unwind;
mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use scorch_bpf::{online_cpus, Event, Rate, Sampler, SamplerConfig, Target, UserUnwind};
use scorch_formats::Meta;
use scorch_store::{Store, StoreOptions, Window};
use scorch_symbolizer::Symbolizer;
use tracing::{info, warn};

use crate::cli::UnwindArg;
use crate::collect::Collector;
use crate::{privileges, server, signals};
use labels::{hostname, ProcessLabels};
pub use offcpu::OffCpuArgs;

/// How often the loop wakes to capture new processes and check for the end.
const TICK: Duration = Duration::from_millis(100);
/// How often old windows are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Everything the agent needs, validated.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Sampling frequency.
    pub frequency_hz: u64,
    /// Length of a stored window.
    pub window: Duration,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// Where the web server listens.
    pub listen: SocketAddr,
    /// File holding the token every request must carry.
    pub auth_token_file: Option<PathBuf>,
    /// Labels added to every series.
    pub labels: Vec<(String, String)>,
    /// How long windows are kept.
    pub retention: Duration,
    /// Most bytes the store may use.
    pub max_disk_bytes: u64,
    /// Distinct stacks per window the stack map can hold.
    pub stack_storage_size: u32,
    /// How user stacks are walked.
    pub unwind: UnwindArg,
    /// Rows of the unwind-table map, for all files together.
    pub unwind_rows: u32,
    /// Most bytes the symbol caches may hold (estimated).
    pub max_symbol_cache_bytes: u64,
    /// Most bytes the page's answer cache may hold (estimated).
    pub answer_cache_bytes: u64,
    /// Where windows are pushed, if anywhere.
    pub upload: crate::cli::UploadArgs,
    /// Directory of windows waiting to be uploaded (default: under the data dir).
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the upload spool may use.
    pub spool_size: u64,
    /// Off-CPU time too, with these bounds (`--off-cpu`).
    pub off_cpu: Option<OffCpuArgs>,
}

/// The stack storage a window needs when `--stack-storage-size` is not
/// given: room for 8 distinct stacks of each kind per sample it can take,
/// a power of two from 4096 to 16384.
pub fn default_stack_storage(frequency_hz: u64, window: Duration, cpus: usize) -> u32 {
    let samples = frequency_hz
        .saturating_mul(window.as_secs().max(1))
        .saturating_mul(cpus as u64);
    samples
        .saturating_mul(8)
        .clamp(4096, 16384)
        .next_power_of_two() as u32
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(config: &AgentConfig) -> anyhow::Result<()> {
    if let Some(off_cpu) = &config.off_cpu {
        off_cpu.check()?;
    }
    privileges::check()?;
    scorch_bpf::mounts::ensure_mounted()?;
    let store = open_store(config)?;
    let spool_dir = config
        .spool_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("upload-spool"));
    let uploader = crate::upload::start(&config.upload, &spool_dir, config.spool_size)?;
    let live = live::LiveSampler {
        stack_storage_size: config.stack_storage_size,
    };
    let listen = server::Listen {
        addr: config.listen,
        token_file: config.auth_token_file.clone(),
        answer_cache_bytes: config.answer_cache_bytes,
    };
    let server = server::spawn(Arc::clone(&store), Some(Arc::new(live)), &listen)?;
    info!(listen = %config.listen, data_dir = %config.data_dir.display(), "serving the flame-graph page at http://{}", config.listen);
    signals::install();
    let result = sample_forever(config, &store, uploader.as_ref());
    server.stop();
    if let Some(uploader) = uploader {
        crate::upload::stop(uploader);
    }
    result
}

/// What the agent's samplers share: `target` on every CPU at `rate`, user
/// and kernel stacks, room for `stack_storage_size` distinct stacks; one
/// buffer, no thread ids, no list of pids, on-CPU.
fn sampler_config(
    target: Target,
    rate: Rate,
    stack_storage_size: u32,
) -> scorch_bpf::Result<SamplerConfig> {
    Ok(SamplerConfig {
        target,
        rate,
        event: Event::CpuClock,
        cpus: online_cpus()?,
        user_stacks: true,
        kernel_stacks: true,
        include_idle: false,
        per_thread: false,
        stack_storage_size,
        max_keys: scorch_bpf::count_keys_for(stack_storage_size),
        double_buffered: false,
        track_pids: false,
        off_cpu: None,
    })
}

fn open_store(config: &AgentConfig) -> anyhow::Result<Arc<Store>> {
    let options = StoreOptions::new(config.retention, config.max_disk_bytes);
    let store = Store::open(&config.data_dir, options)
        .with_context(|| format!("opening the profile store in {}", config.data_dir.display()))?;
    let report = store.open_report();
    if let Some(recovery) = &report.recovery {
        warn!(
            ?recovery,
            "the store was damaged: the damaged file was set aside and its readable data kept"
        );
    }
    Ok(Arc::new(store))
}

/// Samples window after window until a stop is requested.
fn sample_forever(
    config: &AgentConfig,
    store: &Arc<Store>,
    uploader: Option<&scorch_upload::Uploader>,
) -> anyhow::Result<()> {
    let sampler_config = SamplerConfig {
        double_buffered: true,
        track_pids: true,
        ..sampler_config(
            Target::All,
            Rate::Frequency(config.frequency_hz),
            config.stack_storage_size,
        )?
    };
    let mut sampler = start_sampler(&sampler_config, config)?;
    // Off CPU, user stacks walk the CPU sampler's tables.
    let mut off_cpu = config
        .off_cpu
        .as_ref()
        .map(|args| {
            offcpu::OffCpuSampler::start(args, config.stack_storage_size, sampler.unwind_tables())
        })
        .transpose()?;
    let loader = sampler
        .unwind_tables()
        .map(unwind::Loader::start)
        .transpose()
        .context("starting the unwind-table thread")?;
    let mut unwind_share = unwind::UnwindShare::default();
    let mut symbolizer = Symbolizer::with_memory_limit(config.max_symbol_cache_bytes);
    let processes = Arc::new(Mutex::new(ProcessLabels::default()));
    let seen = sampler.seen_pids()?.context("the sampler tracks no pids")?;
    let pid_sender = loader.as_ref().map(|l| l.sender()).unwrap_or_default();
    let capture = capture::Capture::start(seen, Arc::clone(&processes), pid_sender.clone())
        .context("starting the capture thread")?;
    let host = hostname();
    let mut window_start = SystemTime::now();
    let mut window_clock = Instant::now();
    let writer = writer::Writer::start(Arc::clone(store))?;
    let mut lost_before = 0;
    info!(hz = config.frequency_hz, window = ?config.window, off_cpu = off_cpu.is_some(), "profiling every process");
    loop {
        std::thread::sleep(TICK);
        capture.deliver(&mut symbolizer);
        let stopping = signals::stop_requested();
        if !stopping && window_clock.elapsed() < config.window {
            continue;
        }
        let window_end = SystemTime::now();
        window_clock = Instant::now();
        let snapshot = sampler.drain()?;
        capture.deliver(&mut symbolizer);
        let meta = Meta {
            frequency_hz: Some(config.frequency_hz),
            ..Meta::default()
        };
        let profile = Collector::new(&snapshot, &mut symbolizer, meta).build(false);
        let off_cpu_profile = off_cpu
            .as_mut()
            .map(|s| s.drain(&mut symbolizer))
            .transpose()?;
        let symbol_bytes = symbolizer.end_window();
        if symbol_bytes > config.max_symbol_cache_bytes {
            warn!(
                symbol_cache_bytes = symbol_bytes,
                "the symbols this window needed took more than --max-symbol-cache; they are \
                 kept (parsing them again every window would cost CPU): raise it"
            );
        }
        let span = (unix_ns(window_start), unix_ns(window_end));
        window_start = window_end;
        let mut labels = capture::lock(&processes);
        let mut windows = split_windows(profile, span, &labels, &host, &config.labels);
        // Off-CPU series are only stored, not uploaded (the upload protocols
        // carry CPU samples).
        let cpu_windows = windows.len();
        if let Some(profile) = off_cpu_profile {
            // Threads that only wait are never sampled on CPU: read their
            // labels now, and have their unwind tables loaded.
            for sample in &profile.samples {
                labels.capture(sample.pid);
            }
            let mut waited: Vec<u32> = profile.samples.iter().map(|s| s.pid).collect();
            waited.sort_unstable();
            waited.dedup();
            pid_sender.send(&waited);
            windows.extend(split_windows(profile, span, &labels, &host, &config.labels));
        }
        labels.end_window();
        drop(labels);
        if let Some(uploader) = uploader {
            crate::upload::submit(uploader, &windows[..cpu_windows], config.frequency_hz);
        }
        let counters = sampler.counters().unwrap_or_default();
        if let Some(tables) = sampler.unwind_tables() {
            unwind_share.log(counters, tables.stats());
        }
        if let Some(lost) = off_cpu.as_mut().map(|s| s.newly_lost()).filter(|&n| n > 0) {
            warn!(
                lost,
                "off-CPU waits or stacks lost in this window; raise --stack-storage-size"
            );
        }
        let lost = counters.lost();
        if lost > lost_before {
            warn!(
                lost = lost - lost_before,
                "stacks or samples lost in this window; raise --stack-storage-size"
            );
            lost_before = lost;
        }
        let (samples, cache_bytes) = (snapshot.total(), symbolizer.memory_used());
        if stopping {
            writer.finish(windows, samples, cache_bytes);
            info!("stopped; the last window is written");
            return Ok(());
        }
        writer.submit(windows, samples, cache_bytes);
    }
}

/// One window per process (pid, comm) of `profile`, labelled.
fn split_windows(
    profile: scorch_formats::Profile,
    (start, end): (u64, u64),
    labels: &ProcessLabels,
    host: &str,
    extra: &[(String, String)],
) -> Vec<Window> {
    profile
        .split_by(|s| (s.pid, s.comm.clone()))
        .into_iter()
        .map(|((pid, comm), profile)| Window {
            start_unix_ns: start,
            end_unix_ns: end,
            labels: labels.labels(pid, &comm, host, extra),
            profile,
        })
        .collect()
}

/// Unwind-table entries for processes (about 4 KiB each, allocated as loaded).
const UNWIND_PROCESSES: u32 = 4096;

/// Starts the sampler, walking user stacks as `--unwind` says; `auto`
/// falls back to frame pointers where the in-kernel unwinder cannot load.
fn start_sampler(sampler_config: &SamplerConfig, config: &AgentConfig) -> anyhow::Result<Sampler> {
    let tables = UserUnwind::Tables {
        rows: config.unwind_rows,
        processes: UNWIND_PROCESSES,
    };
    let started = match config.unwind {
        UnwindArg::Fp => return Ok(Sampler::start(sampler_config)?),
        UnwindArg::Dwarf | UnwindArg::Auto => Sampler::start_unwinding(sampler_config, tables),
    };
    match started {
        Err(err) if config.unwind == UnwindArg::Auto => {
            warn!(%err, "walking user stacks with frame pointers");
            Ok(Sampler::start(sampler_config)?)
        }
        started => Ok(started?),
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_storage_grows_with_the_samples_a_window_takes() {
        let ten = Duration::from_secs(10);
        // 19 Hz on 2 CPUs: 380 samples; the floor.
        assert_eq!(default_stack_storage(19, ten, 2), 4096);
        // 19 Hz on 16 CPUs: 3040 samples, 24320 slots; the ceiling.
        assert_eq!(default_stack_storage(19, ten, 16), 16384);
        // 99 Hz on 8 CPUs for 1 s: 792 samples, 6336 slots.
        assert_eq!(default_stack_storage(99, Duration::from_secs(1), 8), 8192);
    }
}
