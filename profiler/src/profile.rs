//! `profile`: sample on-CPU stacks for a while, then write them out; with
//! `--off-cpu`, time where threads wait instead (bcc's offcputime).
//!
//! The run has three phases. Validation checks every argument, privilege and
//! output path before anything is attached. Sampling attaches the sampler,
//! captures each newly seen process's mappings while it lives, and ends on
//! the duration, Ctrl-C, or the exit of every target. Output detaches,
//! symbolizes and writes every requested format from the one profile.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use scorch_bpf::sampler::TargetTables;
use scorch_bpf::{
    online_cpus, Counters, Event, LoadedProcess, OffCpu, Rate, Sampler, SamplerConfig, Target,
    ThreadKind, UserUnwind,
};
use scorch_formats::{text, Format, Measure, Meta, Profile, TextOptions};
use scorch_symbolizer::Symbolizer;

use crate::cli::{EventArg, ProfileArgs, UnwindArg};
use crate::collect::Collector;
use crate::status::StatusLine;
use crate::{privileges, signals};

const DEFAULT_HZ: u64 = 49;
/// How often the loop wakes to check for the end and capture new processes.
const TICK: Duration = Duration::from_millis(100);

/// An output destination with its format.
struct Output {
    format: Format,
    path: Option<PathBuf>,
    writer: Box<dyn Write>,
}

/// Runs `profile` with `args`.
pub fn run(args: &ProfileArgs) -> anyhow::Result<()> {
    let target = target(args)?;
    let off_cpu = off_cpu(args)?;
    let outputs = open_outputs(args)?;
    let upload = crate::upload::endpoint(&args.upload)?;
    if off_cpu.is_some() && upload.is_some() {
        bail!("--upload sends CPU profiles only: write the off-CPU profile to a file with -o (e.g. -o offcpu.pb.gz) instead");
    }
    privileges::check()?;
    let cpus = cpus(args.cpu)?;
    scorch_bpf::mounts::ensure_mounted()?;

    let text_opts = TextOptions {
        user: !args.kernel_stacks_only,
        kernel: !args.user_stacks_only,
        annotate_kernel: args.annotations,
        delimited: args.delimited,
    };
    let per_thread = !args.tid.is_empty()
        || outputs
            .iter()
            .any(|o| matches!(o.format, Format::Pprof | Format::Json));
    let config = sampler_config(args, target.clone(), cpus, per_thread, off_cpu);
    let mut symbolizer = Symbolizer::one_shot();
    if let Target::Pids(pids) = &target {
        for &pid in pids {
            if let Err(err) = symbolizer.capture(pid) {
                eprintln!("warning: {err}; user frames of PID {pid} will show as addresses");
            }
        }
    }

    let duration = args.duration.map(Duration::from_secs);
    signals::install();
    let start_wall = SystemTime::now();
    let mut sampler = prepare_sampler(&config, args.unwind, &target)?;
    // The targets' tables go in before the first sample, so every stack is
    // complete. The whole host's are loaded as each process is first
    // sampled (its first samples walk frame pointers, counted), so
    // sampling starts at once.
    let mut tables = TableReport::default();
    if target != Target::All {
        tables.add_targets(sampler.load_target_tables());
    }
    sampler.attach(&config)?;
    let text_to_stdout = outputs
        .iter()
        .any(|o| o.path.is_none() && o.format == Format::Text);
    if text_to_stdout {
        println!("{}", header(args, &target, duration));
    }
    let started = Instant::now();
    let end = sample(
        &mut sampler,
        &mut symbolizer,
        &mut tables,
        &target,
        duration,
        args.quiet,
        off_cpu.is_some(),
    );
    sampler.stop();
    let elapsed = started.elapsed();
    if text_to_stdout {
        // bcc separates the header from the report with an empty line.
        println!();
    }
    if let End::TargetsExited = end {
        eprintln!(
            "warning: every target process exited after {:.1} s; writing what was collected",
            elapsed.as_secs_f64()
        );
    }

    let snapshot = sampler.drain()?;
    let meta = meta(&target, &config, start_wall, elapsed);
    let mut profile = Collector::new(&snapshot, &mut symbolizer, meta).build(per_thread);
    if off_cpu.is_some() {
        crate::offcpu::trim_tracing_frames(&mut profile);
    }
    let written = write_outputs(&profile, outputs, &text_opts);
    let counters = report_losses(&sampler)?;
    if !args.quiet {
        if let Some(warning) = tables.warning(&counters) {
            eprintln!("{warning}");
        }
    }
    // Local outputs first: a failed upload must not lose the profile.
    if let Some(endpoint) = &upload {
        match crate::upload::send_profile(endpoint, &profile) {
            Ok(series) if !args.quiet => {
                eprintln!("uploaded {series} profile(s) to {}", endpoint.base)
            }
            Ok(_) => {}
            Err(err) if written.is_ok() => return Err(err),
            Err(err) => eprintln!("error: {err:#}"),
        }
    }
    written
}

/// The sampler's configuration for `args`.
fn sampler_config(
    args: &ProfileArgs,
    target: Target,
    cpus: Vec<u32>,
    per_thread: bool,
    off_cpu: Option<OffCpu>,
) -> SamplerConfig {
    SamplerConfig {
        target,
        rate: match (args.frequency, args.count) {
            (_, Some(n)) => Rate::Period(n),
            (hz, None) => Rate::Frequency(hz.unwrap_or(DEFAULT_HZ)),
        },
        event: match args.event {
            EventArg::CpuClock => Event::CpuClock,
            EventArg::Cycles => Event::Cycles,
        },
        cpus,
        user_stacks: !args.kernel_stacks_only,
        kernel_stacks: !args.user_stacks_only,
        include_idle: args.include_idle,
        per_thread,
        stack_storage_size: args.stack_storage_size,
        // Distinct (pid, tid, stacks, comm) outnumber distinct stacks.
        max_keys: scorch_bpf::count_keys_for(args.stack_storage_size),
        double_buffered: false,
        track_pids: true,
        off_cpu,
    }
}

/// Threads an off-CPU profile can time at once (the start map, 40 bytes each).
const OFF_CPU_THREADS: u32 = 65536;

/// The off-CPU options of `args`, checked; `None` without `--off-cpu`.
fn off_cpu(args: &ProfileArgs) -> anyhow::Result<Option<OffCpu>> {
    if !args.off_cpu {
        return Ok(None);
    }
    if let Some(max) = args.max_block_time.filter(|&max| max < args.min_block_time) {
        bail!(
            "--max-block-time {max} is below --min-block-time {}: no wait could be kept",
            args.min_block_time
        );
    }
    // As bcc: a wait counts when its whole microseconds are within bounds.
    Ok(Some(OffCpu {
        min_block_ns: args.min_block_time.saturating_mul(1000),
        max_block_ns: args
            .max_block_time
            .map_or(u64::MAX, |max| max.saturating_mul(1000).saturating_add(999)),
        state: args.state,
        max_threads: OFF_CPU_THREADS,
        threads: match (args.user_threads_only, args.kernel_threads_only) {
            (true, _) => ThreadKind::User,
            (_, true) => ThreadKind::Kernel,
            _ => ThreadKind::All,
        },
    }))
}

/// Unwind table capacity of a `profile` run: rows (16 bytes each,
/// preallocated; libc has 28k), 8 MiB for chosen processes and 16 MiB (as
/// the agent's default) for the whole host, and processes (allocated as
/// loaded).
const UNWIND_ROWS: u32 = 1 << 19;
const UNWIND_ROWS_WHOLE_HOST: u32 = 1 << 20;
const UNWIND_PROCESSES: u32 = 1024;
/// How often the tables of exited processes are freed, and files no
/// process was sampled in since the round before become evictable, so a
/// process started during a whole-host profile finds room for its own.
const TABLE_ROUND: Duration = Duration::from_secs(1);

/// How the sampler walks user stacks for `--unwind` on `target`.
fn user_unwind(arg: UnwindArg, target: &Target) -> UserUnwind {
    match arg {
        UnwindArg::Fp => UserUnwind::FramePointers,
        UnwindArg::Dwarf | UnwindArg::Auto => UserUnwind::Tables {
            rows: match target {
                Target::All => UNWIND_ROWS_WHOLE_HOST,
                Target::Pids(_) | Target::Tids(_) => UNWIND_ROWS,
            },
            processes: UNWIND_PROCESSES,
        },
    }
}

/// Creates the sampler's maps and program, not yet attached; `--unwind
/// auto` falls back to frame pointers when the in-kernel unwinder cannot
/// load on this kernel.
fn prepare_sampler(
    config: &SamplerConfig,
    arg: UnwindArg,
    target: &Target,
) -> anyhow::Result<Sampler> {
    let unwind = user_unwind(arg, target);
    let with_tables = !matches!(unwind, UserUnwind::FramePointers);
    match Sampler::prepare(config, unwind) {
        Err(err) if arg == UnwindArg::Auto && with_tables => {
            eprintln!("warning: {err}; walking user stacks with frame pointers");
            Ok(Sampler::prepare(config, UserUnwind::FramePointers)?)
        }
        prepared => Ok(prepared?),
    }
}

/// What the profile says about its own run.
fn meta(target: &Target, config: &SamplerConfig, start: SystemTime, elapsed: Duration) -> Meta {
    let rate = match config.off_cpu {
        Some(_) => None,
        None => Some(config.rate),
    };
    Meta {
        target: target_description(target),
        start_unix_ns: start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        duration_ns: elapsed.as_nanos() as u64,
        frequency_hz: match rate {
            Some(Rate::Frequency(hz)) => Some(hz),
            _ => None,
        },
        sample_period: match rate {
            Some(Rate::Period(n)) => Some(n),
            _ => None,
        },
        measure: match config.off_cpu {
            Some(_) => Measure::OffCpuNanoseconds,
            None => Measure::OnCpuSamples,
        },
    }
}

/// Writes every output; one that fails does not stop the others.
fn write_outputs(
    profile: &Profile,
    outputs: Vec<Output>,
    opts: &TextOptions,
) -> anyhow::Result<()> {
    let mut first_error = None;
    for mut output in outputs {
        let result = scorch_formats::write(profile, output.format, opts, &mut output.writer)
            .map_err(anyhow::Error::from)
            .and_then(|()| output.writer.flush().map_err(Into::into))
            .with_context(|| match &output.path {
                Some(p) => format!("writing {}", p.display()),
                None => "writing to stdout".to_string(),
            });
        if let Err(err) = result {
            if first_error.is_some() {
                eprintln!("error: {err:#}");
            }
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Why sampling ended.
enum End {
    Duration,
    Interrupted,
    TargetsExited,
}

/// Waits for the end of the run, capturing new processes as they appear.
fn sample(
    sampler: &mut Sampler,
    symbolizer: &mut Symbolizer,
    tables: &mut TableReport,
    target: &Target,
    duration: Option<Duration>,
    quiet: bool,
    off_cpu: bool,
) -> End {
    let unit = if off_cpu { "waits" } else { "samples" };
    let mut status = StatusLine::new(quiet, unit);
    let started = Instant::now();
    let mut captured: HashSet<u32> = HashSet::new();
    let mut round = Instant::now();
    let end = loop {
        std::thread::sleep(TICK);
        let elapsed = started.elapsed();
        if signals::stop_requested() {
            break End::Interrupted;
        }
        if duration.is_some_and(|d| elapsed >= d) {
            break End::Duration;
        }
        if !any_alive(target) {
            break End::TargetsExited;
        }
        // New processes are captured within a tick of their first sample.
        for pid in sampler.take_seen_pids().unwrap_or_default() {
            if pid == 0 {
                continue;
            }
            // A process that already exited cannot be captured; its samples
            // still show their addresses.
            if captured.insert(pid) {
                let _ = symbolizer.capture(pid);
            }
            // Its later samples unwind with tables (when --unwind uses them),
            // loaded again after an exec or for a new process under an old pid.
            tables.add(pid, sampler.refresh_tables(pid));
        }
        if round.elapsed() >= TABLE_ROUND {
            round = Instant::now();
            if let Some(tables) = sampler.unwind_tables() {
                tables.forget_exited();
                tables.next_round();
            }
        }
        if status.enabled() {
            let counters = sampler.counters().unwrap_or_default();
            status.update(elapsed, duration, counters.recorded, counters.lost());
        }
    };
    status.clear();
    end
}

/// Whether any target process or thread still runs (always, for the whole host).
fn any_alive(target: &Target) -> bool {
    match target {
        Target::All => true,
        Target::Pids(ids) | Target::Tids(ids) => ids.iter().any(|&id| alive(id)),
    }
}

/// Whether a task runs: it exists and is not a zombie waiting to be reaped.
fn alive(id: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{id}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces and parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Prints bcc's warnings about stacks and samples that were lost; returns the counters.
fn report_losses(sampler: &Sampler) -> anyhow::Result<Counters> {
    let losses = sampler.counters()?;
    let missing = losses.stack_map_full + losses.stack_collisions;
    if missing > 0 {
        // As bcc, which advises only on a full map (collisions of the
        // 31-bit stack keys are very rare).
        eprintln!(
            "WARNING: {missing} stack traces could not be displayed. Consider increasing --stack-storage-size."
        );
    }
    if losses.start_map_full > 0 {
        eprintln!(
            "WARNING: {} waits were not timed because {OFF_CPU_THREADS} threads were already off CPU; profile fewer threads with -p or -t.",
            losses.start_map_full
        );
    }
    if losses.count_map_full > 0 {
        eprintln!(
            "WARNING: {} samples were dropped because the count map was full. Consider increasing --stack-storage-size.",
            losses.count_map_full
        );
    }
    Ok(losses)
}

/// Share of user stacks walked partly with frame pointers above which the
/// run warns (some fall back legitimately, e.g. in JIT code).
const FALLBACK_WARN_PERCENT: u64 = 5;
/// Files named in the unwinding warning; the rest are counted.
const FILES_NAMED: usize = 3;

/// What loading unwind tables ran into, gathered for one warning at the end.
#[derive(Debug, Default)]
struct TableReport {
    /// Files of sampled processes left without a table, and why.
    skipped: BTreeMap<String, String>,
    /// Live processes whose tables could not be loaded, and why.
    failed: Vec<(u32, String)>,
}

impl TableReport {
    /// Notes what loading the targets' tables did.
    fn add_targets(&mut self, tables: TargetTables) {
        for (_, loaded) in tables.loaded {
            self.add_loaded(loaded);
        }
        for (pid, err) in tables.failed {
            self.add(pid, Err(err));
        }
    }

    /// Notes what loading process `pid`'s tables did.
    fn add(&mut self, pid: u32, loaded: scorch_bpf::Result<Option<LoadedProcess>>) {
        match loaded {
            Ok(Some(loaded)) => self.add_loaded(loaded),
            Ok(None) => {}
            // A process gone meanwhile has no more samples to unwind.
            Err(_) if !alive(pid) => {}
            Err(err) => self.failed.push((pid, err.to_string())),
        }
    }

    fn add_loaded(&mut self, loaded: LoadedProcess) {
        for file in loaded.skipped {
            self.skipped
                .entry(file.path)
                .or_insert_with(|| file.why.to_string());
        }
    }

    /// One line saying what fell back to frame pointers, why and what to
    /// do; `None` when unwinding went as it should.
    fn warning(&self, counters: &Counters) -> Option<String> {
        let fell_back = counters
            .user_frame_pointer
            .max(counters.user_without_tables);
        let total = counters.recorded.max(fell_back);
        let many = fell_back * 100 >= total.max(1) * FALLBACK_WARN_PERCENT && fell_back > 0;
        if !many && self.skipped.is_empty() && self.failed.is_empty() {
            return None;
        }
        let what = if fell_back > 0 {
            format!(
                "{fell_back} of {total} user stacks ({}%) were walked at least partly with frame pointers and may be cut short",
                fell_back * 100 / total.max(1)
            )
        } else {
            "some code of the profiled processes cannot be unwound with tables".to_string()
        };
        let why = if let Some((pid, err)) = self.failed.first() {
            format!("the unwind tables of process {pid} could not be loaded ({err})")
        } else if !self.skipped.is_empty() {
            let named: Vec<String> = self
                .skipped
                .iter()
                .take(FILES_NAMED)
                .map(|(path, why)| format!("{path}: {why}"))
                .collect();
            let more = self.skipped.len().saturating_sub(FILES_NAMED);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "{} file(s) have no usable unwind table ({}{more})",
                self.skipped.len(),
                named.join("; ")
            )
        } else if counters.user_without_tables * 2 >= fell_back {
            return Some(format!(
                "warning: {what}: most were sampled before their process's tables were loaded, which happens when it is first sampled; short-lived processes and short profiles see more of these (profile a process with -p to load its tables before sampling starts)"
            ));
        } else {
            "the sampled code has no call frame information (JIT code, or built with -fno-asynchronous-unwind-tables)".to_string()
        };
        Some(format!(
            "warning: {what}: {why}; build that code with -fno-omit-frame-pointer or unwind tables, or install its separate debug info"
        ))
    }
}

fn target(args: &ProfileArgs) -> anyhow::Result<Target> {
    for (kind, ids) in [("PID", &args.pid), ("TID", &args.tid)] {
        if let Some(id) = ids.iter().find(|&&id| !alive(id)) {
            bail!("{kind} {id} does not exist or has exited (see `ps -e`); check the process is running");
        }
    }
    Ok(match (&args.pid[..], &args.tid[..]) {
        ([], []) => Target::All,
        (pids, []) => Target::Pids(pids.to_vec()),
        (_, tids) => Target::Tids(tids.to_vec()),
    })
}

fn cpus(cpu: Option<u32>) -> anyhow::Result<Vec<u32>> {
    let online = online_cpus()?;
    match cpu {
        None => Ok(online),
        Some(c) if online.contains(&c) => Ok(vec![c]),
        Some(c) => bail!("CPU {c} is not online (online CPUs: {online:?})"),
    }
}

/// Opens every output before sampling, so a bad path fails before attaching.
fn open_outputs(args: &ProfileArgs) -> anyhow::Result<Vec<Output>> {
    let explicit: Option<Format> = args
        .format
        .as_deref()
        .map(|f| f.parse().map_err(|e| anyhow::anyhow!("--format: {e}")))
        .transpose()?;
    if args.output.is_empty() {
        let format = explicit.unwrap_or(if args.folded {
            Format::Folded
        } else {
            Format::Text
        });
        return Ok(vec![Output {
            format,
            path: None,
            writer: Box::new(BufWriter::new(std::io::stdout())),
        }]);
    }
    args.output
        .iter()
        .map(|path| {
            let format = match Format::from_extension(path) {
                Some(f) => f,
                None => explicit.ok_or_else(|| {
                    anyhow::anyhow!(
                        "cannot tell the format of {} from its extension: use .folded, .txt, .svg, .pb.gz or .json, or give --format",
                        path.display()
                    )
                })?,
            };
            let file = File::create(path)
                .with_context(|| format!("cannot write the output file {}", path.display()))?;
            Ok(Output {
                format,
                path: Some(path.clone()),
                writer: Box::new(BufWriter::new(file)),
            })
        })
        .collect()
}

fn target_description(target: &Target) -> String {
    let list = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    match target {
        Target::All => "all threads".to_string(),
        Target::Pids(ids) => format!("PID {}", list(ids)),
        Target::Tids(ids) => format!("TID {}", list(ids)),
    }
}

fn header(args: &ProfileArgs, target: &Target, duration: Option<Duration>) -> String {
    text::header(&text::Header {
        frequency_hz: args
            .count
            .is_none()
            .then(|| args.frequency.unwrap_or(DEFAULT_HZ)),
        sample_period: args.count,
        target: target_description(target),
        user: !args.kernel_stacks_only,
        kernel: !args.user_stacks_only,
        cpu: args.cpu,
        duration_secs: duration.map(|d| d.as_secs()),
        off_cpu: args.off_cpu,
    })
}
