//! Command-line definitions: one place for every flag and its help.
//!
//! `profile` takes bcc's `profile` flags with bcc's meaning; the rest are
//! scorch's additions and are listed after them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// scorch: an eBPF CPU profiler with flame-graph output.
#[derive(Debug, Parser)]
#[command(name = "scorch", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// scorch's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sample on-CPU stacks (bcc `profile` compatible).
    Profile(ProfileArgs),
    /// Profile the whole host continuously, keep the history, serve the page.
    Agent(AgentArgs),
    /// Serve the page and API over a store, and receive profiles pushed by
    /// other hosts (Pyroscope /ingest and push APIs), without profiling.
    Serve(ServeArgs),
    /// Run a bpftrace program (bpftrace compatible).
    Trace(TraceArgs),
}

/// The binary invoked as `bpftrace`, so `#!/usr/bin/env bpftrace` scripts run.
#[derive(Debug, Parser)]
#[command(
    name = "bpftrace",
    version,
    about = "The bpftrace language, compiled by scorch without LLVM",
    after_help = "examples:\n    \
        bpftrace -l 'tracepoint:syscalls:sys_enter_*'\n    \
        bpftrace -e 'BEGIN { printf(\"hello world\\n\"); }'\n    \
        bpftrace -e 't:syscalls:sys_enter_openat { printf(\"%s %s\\n\", comm, str(args.filename)); }'\n    \
        bpftrace -e 't:syscalls:sys_enter_read { @[comm] = hist(args.count); }'\n    \
        bpftrace -c 'ls /tmp' -e 't:syscalls:sys_enter_openat /comm == \"ls\"/ { @ = count(); }'\n    \
        bpftrace script.bt 42"
)]
pub struct BpftraceCli {
    /// Tracing options.
    #[command(flatten)]
    pub args: TraceArgs,
}

/// Options of `trace`, with bpftrace's letters and meanings.
#[derive(Debug, Args, Clone)]
pub struct TraceArgs {
    /// The program to run.
    #[arg(short = 'e', value_name = "PROGRAM")]
    pub program: Option<String>,

    /// A program file (unless -e is given), then the positional parameters
    /// `$1`, `$2`, ….
    #[arg(
        value_name = "FILE|ARG",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub rest: Vec<String>,

    /// Output format.
    #[arg(short = 'f', value_enum, default_value = "text")]
    pub format: TraceFormat,

    /// Write the program's output to FILE instead of stdout.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Stop when the process with this PID exits.
    #[arg(short = 'p', value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,

    /// Run COMMAND, held before it starts until the probes are attached, and
    /// stop when it exits; user-space probes and watchpoints trace it only.
    #[arg(short = 'c', value_name = "COMMAND")]
    pub command: Option<String>,

    /// Print attach details, and the whole verifier log when a program is rejected.
    #[arg(short = 'v')]
    pub verbose: bool,

    /// Compile only: print the maps and the BPF instructions of every probe.
    #[arg(short = 'd', long = "dry-run")]
    pub dry_run: bool,

    /// Do not print the `Attached N probes` line.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Buffering of the output.
    #[arg(short = 'B', value_enum, default_value = "line")]
    pub buffering: Buffering,

    /// Allow functions with side effects outside tracing.
    #[arg(long = "unsafe")]
    pub unsafe_: bool,

    /// List the probes matching PATTERN (all when omitted) and exit.
    #[arg(short = 'l', value_name = "PATTERN", num_args = 0..=1, default_missing_value = "*")]
    pub list: Option<String>,
}

/// `trace -f`: how output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// bpftrace's text.
    Text,
    /// One JSON object per line, as `bpftrace -f json`.
    Json,
}

/// `trace -B`: when output reaches its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Buffering {
    /// After every line.
    Line,
    /// When the buffer is full.
    Full,
    /// After every write.
    None,
}

/// Options of `agent`.
#[derive(Debug, Args, Clone)]
pub struct AgentArgs {
    /// Sample frequency, Hertz.
    #[arg(short = 'F', long = "frequency", default_value_t = 19,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub frequency: u64,

    /// Length of a stored window (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = crate::units::parse_duration)]
    pub window: std::time::Duration,

    /// Directory of the profile store.
    #[arg(long = "data-dir", default_value = "/var/lib/scorch")]
    pub data_dir: PathBuf,

    /// Address of the web page and API.
    #[arg(long, default_value = "127.0.0.1:4040")]
    pub listen: std::net::SocketAddr,

    /// File holding a token every request must carry (Bearer header or ?token=).
    #[arg(long = "auth-token-file", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// A label added to every series, KEY=VALUE; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// How long history is kept (e.g. 7d, 12h).
    #[arg(long, default_value = "7d", value_parser = crate::units::parse_duration)]
    pub retention: std::time::Duration,

    /// Most disk the store may use (e.g. 2GiB); oldest windows go first.
    #[arg(long = "max-disk", default_value = "2GiB", value_parser = crate::units::parse_size)]
    pub max_disk: u64,

    /// Distinct stacks a window can hold [default: 8 per sample a window
    /// can take at -F on every CPU, as a power of two from 4096 to 16384].
    #[arg(long = "stack-storage-size", value_parser = clap::value_parser!(u32).range(1..))]
    pub stack_storage_size: Option<u32>,

    /// Most memory the symbol caches may hold (e.g. 64MiB); least recently used entries go first.
    #[arg(long = "max-symbol-cache", value_name = "SIZE", default_value = "64MiB",
          value_parser = parse_symbol_cache_size)]
    pub max_symbol_cache: u64,

    /// Most memory the page's answer cache may hold (e.g. 64MiB; 0 turns it
    /// off): flame trees already built, reused while no window of their
    /// range changes.
    #[arg(long = "answer-cache-size", value_name = "SIZE", default_value = "64MiB",
          value_parser = crate::units::parse_size)]
    pub answer_cache_size: u64,

    /// How user stacks are walked: fp (frame pointers), dwarf (tables built
    /// from .eh_frame per executable file as processes are first sampled,
    /// complete through code without frame pointers such as libc), or auto
    /// (dwarf where the kernel runs the in-kernel unwinder, else fp).
    #[arg(long = "unwind", value_enum, default_value_t = UnwindArg::Auto)]
    pub unwind: UnwindArg,

    /// Memory of the unwind-table row map (16 bytes a row; libc takes about
    /// 28k rows); when full, the least recently used files' tables go first.
    #[arg(long = "unwind-table-size", value_name = "SIZE", default_value = "16MiB",
          value_parser = parse_unwind_table_size)]
    pub unwind_table_size: u64,

    /// Off-CPU time too: how long threads wait (blocked, or runnable but
    /// not running) and where, as bcc's offcputime, stored as series of
    /// their own beside the CPU samples (the page's off-CPU switch, the
    /// API's measure=off-cpu).
    #[arg(long = "off-cpu", help_heading = "Off-CPU")]
    pub off_cpu: bool,

    /// Off CPU: keep waits of at least this many microseconds.
    #[arg(
        long = "min-block-time",
        value_name = "US",
        default_value_t = 1,
        requires = "off_cpu",
        help_heading = "Off-CPU"
    )]
    pub min_block_time: u64,

    /// Off CPU: keep waits of at most this many microseconds.
    #[arg(
        long = "max-block-time",
        value_name = "US",
        requires = "off_cpu",
        help_heading = "Off-CPU"
    )]
    pub max_block_time: Option<u64>,

    /// Log format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Least severe log lines shown; overrides RUST_LOG (default: RUST_LOG, else info).
    #[arg(long = "log-level", value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,

    /// Where and how each window is pushed (Pyroscope, Parca).
    #[command(flatten)]
    pub upload: UploadArgs,

    /// Directory of windows waiting to be uploaded [default: DATA_DIR/upload-spool].
    #[arg(
        long = "spool-dir",
        value_name = "DIR",
        requires = "url",
        help_heading = "Upload"
    )]
    pub spool_dir: Option<PathBuf>,

    /// Most disk the upload spool may use (e.g. 256MiB); when full, the
    /// oldest unsent windows are dropped. Windows older than the server
    /// accepts are dropped too: 1h for Pyroscope (its
    /// validation.reject-older-than), 24h for Parca.
    #[arg(long = "spool-size", value_name = "SIZE", default_value = "256MiB",
          value_parser = crate::units::parse_size, requires = "url", help_heading = "Upload")]
    pub spool_size: u64,
}

/// The smallest `--max-symbol-cache`: the kernel's symbol table alone takes a few MiB.
const MIN_SYMBOL_CACHE: u64 = 8 << 20;

fn parse_symbol_cache_size(text: &str) -> Result<u64, String> {
    let size = crate::units::parse_size(text)?;
    if size < MIN_SYMBOL_CACHE {
        return Err(format!(
            "`{text}` is too small for the symbol caches: the kernel's symbol table alone \
             takes a few MiB; use 8MiB or more"
        ));
    }
    Ok(size)
}

/// Bytes of one unwind-table row.
const UNWIND_ROW_BYTES: u64 = 16;

fn parse_unwind_table_size(text: &str) -> Result<u64, String> {
    let size = crate::units::parse_size(text)?;
    if size < UNWIND_ROW_BYTES || size / UNWIND_ROW_BYTES > u64::from(u32::MAX) {
        return Err(format!(
            "`{text}` is not a usable unwind table size: give 16 bytes (one row) to 64GiB, e.g. 16MiB"
        ));
    }
    Ok(size)
}

/// Options of `serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Directory of the profile store.
    #[arg(long = "data-dir", default_value = "/var/lib/scorch")]
    pub data_dir: PathBuf,

    /// Address of the web page and API.
    #[arg(long, default_value = "127.0.0.1:4040")]
    pub listen: std::net::SocketAddr,

    /// File holding a token every request must carry (Bearer header or ?token=).
    #[arg(long = "auth-token-file", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Do not accept pushed profiles (/ingest, push.v1.PusherService/Push):
    /// serve the store read-only.
    #[arg(long = "no-ingest")]
    pub no_ingest: bool,

    /// Largest ingest request body, as received (e.g. 16MiB).
    #[arg(long = "max-ingest-size", default_value = "16MiB", value_parser = crate::units::parse_size)]
    pub max_ingest_size: u64,

    /// Largest ingest request once decompressed, all its profiles together
    /// (e.g. 16MiB).
    #[arg(long = "max-ingest-decompressed", default_value = "16MiB",
          value_parser = crate::units::parse_size)]
    pub max_ingest_decompressed: u64,

    /// Delete history older than this (e.g. 7d, 12h); without it serve
    /// deletes nothing by age.
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub retention: Option<std::time::Duration>,

    /// Most disk the store may use (e.g. 2GiB), oldest windows deleted
    /// first; without it serve deletes nothing for size.
    #[arg(long = "max-disk", value_parser = crate::units::parse_size)]
    pub max_disk: Option<u64>,

    /// Most memory the page's answer cache may hold (e.g. 64MiB; 0 turns it
    /// off): flame trees already built, reused while no window of their
    /// range changes.
    #[arg(long = "answer-cache-size", value_name = "SIZE", default_value = "64MiB",
          value_parser = crate::units::parse_size)]
    pub answer_cache_size: u64,

    /// Log format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Least severe log lines shown; overrides RUST_LOG (default: RUST_LOG, else info).
    #[arg(long = "log-level", value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

/// Which log lines are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Failures only.
    Error,
    /// Failures and warnings.
    Warn,
    /// What the agent does, window by window.
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// The binary invoked as `profile`, as bcc's tool is.
#[derive(Debug, Parser)]
#[command(
    name = "profile",
    version,
    about = "Profile CPU stack traces at a timed interval",
    after_help = "examples:\n    \
        ./profile             # profile stack traces at 49 Hertz until Ctrl-C\n    \
        ./profile -F 99       # profile stack traces at 99 Hertz\n    \
        ./profile -c 1000000  # profile stack traces every 1 in a million events\n    \
        ./profile 5           # profile at 49 Hertz for 5 seconds only\n    \
        ./profile -f 5        # output in folded format for flame graphs\n    \
        ./profile -p 185      # only profile process with PID 185\n    \
        ./profile -L 185      # only profile thread with TID 185\n    \
        ./profile -U          # only show user space stacks (no kernel)\n    \
        ./profile -K          # only show kernel space stacks (no user)\n    \
        ./profile -o out.svg  # write a flame graph"
)]
pub struct ProfileCli {
    /// Profiling options.
    #[command(flatten)]
    pub args: ProfileArgs,
}

/// Help of the binary invoked as `offcputime`, as bcc's tool is: `profile
/// --off-cpu` with offcputime's words.
pub const OFFCPUTIME_ABOUT: &str = "Summarize off-CPU time by stack trace";

/// Examples shown by `offcputime --help`.
pub const OFFCPUTIME_EXAMPLES: &str = "examples:\n    \
    ./offcputime             # trace off-CPU stack time until Ctrl-C\n    \
    ./offcputime 5           # trace for 5 seconds only\n    \
    ./offcputime -f 5        # 5 seconds, and output in folded format\n    \
    ./offcputime -m 1000     # trace only events that last more than 1000 usec\n    \
    ./offcputime -M 10000    # trace only events that last less than 10000 usec\n    \
    ./offcputime -p 185      # only trace threads for PID 185\n    \
    ./offcputime -t 188      # only trace thread 188\n    \
    ./offcputime -u          # only trace user threads (no kernel)\n    \
    ./offcputime -k          # only trace kernel threads (no user)\n    \
    ./offcputime -U          # only show user space stacks (no kernel)\n    \
    ./offcputime -K          # only show kernel space stacks (no user)";

/// Options of `profile`.
#[derive(Debug, Args, Clone)]
pub struct ProfileArgs {
    /// Profile processes with these comma-separated PIDs only.
    #[arg(
        short = 'p',
        long = "pid",
        value_delimiter = ',',
        conflicts_with = "tid"
    )]
    pub pid: Vec<u32>,

    /// Profile threads with these comma-separated TIDs only (-t as in offcputime).
    #[arg(short = 'L', short_alias = 't', long = "tid", value_delimiter = ',')]
    pub tid: Vec<u32>,

    /// Show stacks from user space only (no kernel space stacks).
    #[arg(
        short = 'U',
        long = "user-stacks-only",
        conflicts_with = "kernel_stacks_only"
    )]
    pub user_stacks_only: bool,

    /// Show stacks from kernel space only (no user space stacks).
    #[arg(short = 'K', long = "kernel-stacks-only")]
    pub kernel_stacks_only: bool,

    /// Sample frequency, Hertz.
    #[arg(short = 'F', long = "frequency", conflicts_with = "count",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub frequency: Option<u64>,

    /// Sample period, number of events.
    #[arg(short = 'c', long = "count", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Insert delimiter between kernel/user stacks.
    #[arg(short = 'd', long = "delimited")]
    pub delimited: bool,

    /// Add _[k] annotations to kernel frames.
    #[arg(short = 'a', long = "annotations")]
    pub annotations: bool,

    /// Include CPU idle stacks.
    #[arg(short = 'I', long = "include-idle")]
    pub include_idle: bool,

    /// Output folded format, one line per stack (for flame graphs).
    #[arg(short = 'f', long = "folded")]
    pub folded: bool,

    /// The number of unique stack traces that can be stored and displayed.
    #[arg(long = "stack-storage-size", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub stack_storage_size: u32,

    /// CPU number to run profile on.
    #[arg(short = 'C', long = "cpu")]
    pub cpu: Option<u32>,

    /// Duration of trace, in seconds (default: until Ctrl-C).
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: Option<u64>,

    /// Write the profile to FILE (format from the extension: .folded, .txt,
    /// .svg, .pb.gz/.pprof, .json); repeat to write several formats.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Vec<PathBuf>,

    /// Output format, for stdout or files whose extension says nothing.
    #[arg(long = "format", value_name = "folded|text|svg|pprof|json")]
    pub format: Option<String>,

    /// Event that drives sampling: cpu-clock (software, works everywhere) or
    /// cycles (hardware, needs a PMU).
    #[arg(short = 'e', long = "event", value_enum, default_value_t = EventArg::CpuClock)]
    pub event: EventArg,

    /// How user stacks are walked: fp (frame pointers), dwarf (tables built
    /// from .eh_frame, complete through code without frame pointers such as
    /// libc), or auto (dwarf for -p/-L targets, fp for the whole host).
    #[arg(long = "unwind", value_enum, default_value_t = UnwindArg::Auto)]
    pub unwind: UnwindArg,

    /// No status line on stderr.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Where and how the profile is pushed (Pyroscope, Parca).
    #[command(flatten)]
    pub upload: UploadArgs,

    /// Off-CPU time instead of CPU samples: how long threads wait (blocked
    /// or runnable but not running) and where, as bcc's offcputime; counts
    /// are microseconds (folded, text, SVG) or nanoseconds (pprof).
    #[arg(long = "off-cpu", help_heading = "Off-CPU",
          conflicts_with_all = ["frequency", "count", "event", "include_idle", "cpu"])]
    pub off_cpu: bool,

    /// Off CPU: keep waits of at least this many microseconds.
    #[arg(
        short = 'm',
        long = "min-block-time",
        value_name = "US",
        default_value_t = 1,
        requires = "off_cpu",
        help_heading = "Off-CPU"
    )]
    pub min_block_time: u64,

    /// Off CPU: keep waits of at most this many microseconds.
    #[arg(
        short = 'M',
        long = "max-block-time",
        value_name = "US",
        requires = "off_cpu",
        help_heading = "Off-CPU"
    )]
    pub max_block_time: Option<u64>,

    /// Off CPU: user threads only (no kernel threads).
    #[arg(
        short = 'u',
        long = "user-threads-only",
        requires = "off_cpu",
        conflicts_with = "kernel_threads_only",
        help_heading = "Off-CPU"
    )]
    pub user_threads_only: bool,

    /// Off CPU: kernel threads only (no user threads).
    #[arg(
        short = 'k',
        long = "kernel-threads-only",
        requires = "off_cpu",
        help_heading = "Off-CPU"
    )]
    pub kernel_threads_only: bool,

    /// Off CPU: keep only waits that began in these task states, a bit mask
    /// as in include/linux/sched.h (1 interruptible sleep, 2 uninterruptible);
    /// 0 keeps only preempted threads [default: every state].
    #[arg(
        long = "state",
        value_name = "MASK",
        requires = "off_cpu",
        help_heading = "Off-CPU"
    )]
    pub state: Option<u32>,
}

/// User-stack unwinding methods `--unwind` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnwindArg {
    /// dwarf when profiling given processes or threads, else fp.
    Auto,
    /// Frame pointers.
    Fp,
    /// Unwind tables from .eh_frame, frame pointers where a file has none.
    Dwarf,
}

/// Sampling events `-e` accepts, named as perf names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventArg {
    /// The software CPU clock.
    CpuClock,
    /// Hardware CPU cycles.
    Cycles,
}

/// `--upload` and its options, shared by `agent` and `profile`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Upload")]
pub struct UploadArgs {
    /// Push profiles to this Pyroscope or Parca server, e.g.
    /// http://pyroscope:4040 (https://USER:PASSWORD@HOST for basic auth).
    #[arg(long = "upload", value_name = "URL")]
    pub url: Option<String>,

    /// The server's API: push (Pyroscope's Connect push, as Grafana Alloy
    /// sends), ingest (Pyroscope's HTTP /ingest), parca (Parca's gRPC WriteRaw).
    #[arg(long = "upload-protocol", value_enum, default_value_t = UploadProtocol::Push,
          requires = "url")]
    pub protocol: UploadProtocol,

    /// Application name of each process, a template over its labels, e.g.
    /// '{comm}' or 'shop-{host}' [default: the executable's name].
    #[arg(long = "app-name", value_name = "TEMPLATE", requires = "url")]
    pub app_name: Option<String>,

    /// File holding a bearer token for the server.
    #[arg(long = "upload-token-file", value_name = "FILE", requires = "url")]
    pub token_file: Option<PathBuf>,

    /// File holding basic-auth credentials as USER:PASSWORD (Grafana Cloud:
    /// the stack's user id and an access token).
    #[arg(long = "upload-basic-auth-file", value_name = "FILE", requires = "url")]
    pub basic_auth_file: Option<PathBuf>,

    /// A header sent with every upload, 'Name: value', e.g.
    /// 'X-Scope-OrgID: tenant' for multi-tenant Pyroscope; repeatable.
    #[arg(long = "upload-header", value_name = "HEADER", requires = "url")]
    pub headers: Vec<String>,

    /// Longest one upload request may take (e.g. 30s).
    #[arg(long = "upload-timeout", value_name = "DURATION", default_value = "30s",
          value_parser = crate::units::parse_duration, requires = "url")]
    pub timeout: std::time::Duration,
}

/// `--upload-protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadProtocol {
    /// Pyroscope's `push.v1.PusherService/Push` (Connect).
    Push,
    /// Pyroscope's HTTP `/ingest`.
    Ingest,
    /// Parca's `ProfileStoreService/WriteRaw` (gRPC).
    Parca,
}
