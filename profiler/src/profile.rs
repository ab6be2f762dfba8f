//! `profile`: sample on-CPU stacks for a while, then write them out.
//!
//! The run has three phases. Validation checks every argument, privilege and
//! output path before anything is attached. Sampling attaches the sampler,
//! captures each newly seen process's mappings while it lives, and ends on
//! the duration, Ctrl-C, or the exit of every target. Output detaches,
//! symbolizes and writes every requested format from the one profile.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use scorch_bpf::{online_cpus, Event, Rate, Sampler, SamplerConfig, Target};
use scorch_formats::{text, Format, Meta, Profile, TextOptions};
use scorch_symbolizer::Symbolizer;

use crate::cli::{EventArg, ProfileArgs};
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
    let outputs = open_outputs(args)?;
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
    let config = sampler_config(args, target.clone(), cpus, per_thread);
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
    let mut sampler = Sampler::start(&config)?;
    let text_to_stdout = outputs
        .iter()
        .any(|o| o.path.is_none() && o.format == Format::Text);
    if text_to_stdout {
        println!("{}", header(args, &target, duration));
    }
    let started = Instant::now();
    let end = sample(&sampler, &mut symbolizer, &target, duration, args.quiet);
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
    let meta = meta(&target, config.rate, start_wall, elapsed);
    let profile = Collector::new(&snapshot, &mut symbolizer, meta).build(per_thread);
    let written = write_outputs(&profile, outputs, &text_opts);
    report_losses(&sampler)?;
    written
}

/// The sampler's configuration for `args`.
fn sampler_config(
    args: &ProfileArgs,
    target: Target,
    cpus: Vec<u32>,
    per_thread: bool,
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
        max_keys: args.stack_storage_size.saturating_mul(2).max(10240),
        double_buffered: false,
        track_pids: true,
    }
}

/// What the profile says about its own run.
fn meta(target: &Target, rate: Rate, start: SystemTime, elapsed: Duration) -> Meta {
    Meta {
        target: target_description(target),
        start_unix_ns: start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        duration_ns: elapsed.as_nanos() as u64,
        frequency_hz: match rate {
            Rate::Frequency(hz) => Some(hz),
            Rate::Period(_) => None,
        },
        sample_period: match rate {
            Rate::Period(n) => Some(n),
            Rate::Frequency(_) => None,
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
    sampler: &Sampler,
    symbolizer: &mut Symbolizer,
    target: &Target,
    duration: Option<Duration>,
    quiet: bool,
) -> End {
    let mut status = StatusLine::new(quiet);
    let started = Instant::now();
    let mut captured: HashSet<u32> = HashSet::new();
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
            // A process that already exited cannot be captured; its samples
            // still show their addresses.
            if captured.insert(pid) && pid != 0 {
                let _ = symbolizer.capture(pid);
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

/// Prints bcc's warnings about stacks and samples that were lost.
fn report_losses(sampler: &Sampler) -> anyhow::Result<()> {
    let losses = sampler.counters()?;
    let missing = losses.stack_map_full + losses.stack_collisions;
    if missing > 0 {
        // bcc advises only on a full map, but a larger map also makes hash
        // collisions rarer, so the advice holds for both.
        eprintln!(
            "WARNING: {missing} stack traces could not be displayed. Consider increasing --stack-storage-size."
        );
    }
    if losses.count_map_full > 0 {
        eprintln!(
            "WARNING: {} samples were dropped because the count map was full. Consider increasing --stack-storage-size.",
            losses.count_map_full
        );
    }
    Ok(())
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
    })
}
