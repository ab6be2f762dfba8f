//! Running a program: compile, load, attach, print, stop.
//!
//! [`run`] is the whole of `scorch trace`: it takes the program text and
//! [`RunOptions`], writes what bpftrace would write to `out` (stdout) and
//! `err` (stderr), and returns the exit status. The steps:
//!
//! 1. Parse, analyze against the running kernel's tracefs, generate code
//!    (and stop there with a dump for `dry_run`).
//! 2. Create the maps and load the programs ([`load`]); a verifier
//!    rejection names the probe and gives the verifier's own reason.
//!    A `command` is forked first and held before its `exec`
//!    ([`command`]), so that its pid is the traced process.
//! 3. Attach every probe ([`attach`]), run `begin` probes, print
//!    `Attached N probes`.
//! 4. Release the `command`, if any; turn ring-buffer events into output
//!    until `exit()`, Ctrl-C, or the end of the command or of the process
//!    given with `pid` ([`session`]).
//! 5. Detach, run `end` probes, print every map, report lost events.
//!
//! `begin` and `end` are raw-tracepoint programs run once in the tracer
//! itself with `BPF_PROG_TEST_RUN`, so `pid` and `comm` there are the
//! tracer's, as in bpftrace.

mod actions;
mod attach;
mod clock;
mod command;
mod dwarf_params;
mod events;
mod list;
mod list_functions;
mod load;
mod session;
mod signals;
mod stacks;

use std::io::Write;

pub use list::{list, list_with};

use crate::diag::{render_all, Diagnostic};
use crate::sema::Kernel;
use crate::span::SourceFile;
use crate::{codegen, parse, sema};

/// How maps, printf output and messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// bpftrace's text.
    #[default]
    Text,
    /// bpftrace's `-f json`: one JSON object per line.
    Json,
}

/// What `scorch trace` was asked to do.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Positional parameters `$1`, `$2`, …
    pub params: Vec<String>,
    /// Text or JSON output. Default: text.
    pub format: OutputFormat,
    /// Compile only and print the generated programs. Default: off.
    pub dry_run: bool,
    /// Print attach details, and the whole verifier log on rejection.
    /// Default: off.
    pub verbose: bool,
    /// Allow functions with side effects outside tracing (`system`,
    /// `signal`). Default: off.
    pub unsafe_: bool,
    /// Stop when this process exits. Default: none.
    pub pid: Option<u32>,
    /// Do not print the `Attached N probes` line. Default: off.
    pub quiet: bool,
    /// A command to trace: started before the probes attach, held before
    /// its `exec` until they are, and traced as `pid` is (user-space probes
    /// fire in it only; a uprobe on its name attaches to its file); the
    /// run stops when it exits. Default: none.
    pub command: Vec<String>,
}

impl RunOptions {
    /// Default options with these positional parameters.
    pub fn with_params(params: Vec<String>) -> Self {
        RunOptions {
            params,
            ..Default::default()
        }
    }
}

/// Why a run failed. The text is ready to print after `error: `… or as
/// is, for program errors, which are rendered diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The program has errors; the rendered diagnostics.
    #[error("{0}")]
    Program(String),
    /// The verifier rejected the program of a probe.
    #[error("the BPF verifier rejected the program of probe `{probe}`: {summary}")]
    Verifier {
        /// The probe's name.
        probe: String,
        /// The verifier's reason, one line.
        summary: String,
        /// The whole verifier log.
        log: String,
    },
    /// Creating, loading, attaching or reading BPF objects failed.
    #[error("{0}")]
    Bpf(String),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Io(String),
}

/// Compiles `source` to programs, or returns the rendered errors. Warnings
/// are written to `err`. Functions such as `system()` are refused unless
/// `allow_unsafe` (`--unsafe`).
pub fn compile(
    source: &SourceFile,
    params: &[String],
    kernel: &dyn sema::Kernel,
    allow_unsafe: bool,
    err: &mut dyn Write,
) -> Result<codegen::Compiled, RunError> {
    let mut program = parse(source).map_err(|d| RunError::Program(render_all(&d, source)))?;
    crate::macros::expand(&mut program).map_err(|d| RunError::Program(render_all(&d, source)))?;
    let analysis = sema::analyze(&program, kernel, params)
        .map_err(|d| RunError::Program(render_all(&d, source)))?;
    if !allow_unsafe && !analysis.unsafe_calls.is_empty() {
        let errors: Vec<Diagnostic> = analysis
            .unsafe_calls
            .iter()
            .map(|(name, span)| {
                Diagnostic::error(
                    *span,
                    format!("{name}() is an unsafe function being used in safe mode"),
                )
                .with_help("run with --unsafe to allow it")
            })
            .collect();
        return Err(RunError::Program(render_all(&errors, source)));
    }
    if !analysis.warnings.is_empty() {
        let _ = err.write_all(render_all(&analysis.warnings, source).as_bytes());
    }
    codegen::compile(&program, &analysis).map_err(|d| RunError::Program(render_all(&d, source)))
}

/// Creates the maps and loads every program of `compiled`, then releases
/// them: whether the kernel's verifier accepts the code, without
/// attaching or running anything.
pub fn verify(compiled: &codegen::Compiled) -> Result<(), RunError> {
    load::load(compiled, 0).map(drop)
}

/// Runs `source` with `opts`, writing its output to `out` and messages
/// to `err`; returns the exit status (`exit(code)`'s code, else 0).
pub fn run(
    source: &SourceFile,
    opts: &RunOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, RunError> {
    let tracefs = scorch_bpf::mounts::TRACEFS;
    if !opts.dry_run {
        scorch_bpf::mounts::ensure_mounted().map_err(|e| RunError::Bpf(e.to_string()))?;
    }
    let mut command = match opts.command.is_empty() || opts.dry_run {
        true => None,
        false => Some(command::PausedCommand::start(&opts.command)?),
    };
    let kernel = match &command {
        Some(c) => sema::TraceFs::new(tracefs).with_command(c.pid(), c.file().to_path_buf()),
        None => sema::TraceFs::new(tracefs).with_pid(opts.pid),
    };
    let pid = kernel.target_pid();
    let compiled = compile(source, &opts.params, &kernel, opts.unsafe_, err)?;
    if opts.dry_run {
        out.write_all(codegen::dump(&compiled).as_bytes())
            .map_err(|e| RunError::Io(e.to_string()))?;
        return Ok(0);
    }
    let start = monotonic_ns();
    let loaded = load::load(&compiled, start)?;
    let mut session = session::Session {
        compiled: &compiled,
        loaded,
        format: opts.format,
        out,
        err,
        cpus: libbpf_rs::num_possible_cpus().unwrap_or(1),
        stacks: stacks::Stacks::default(),
    };
    signals::install();
    // bpftrace runs `begin` before it attaches the other probes, so that
    // what it sets up (maps of names, say) is there for their first event.
    session.run_special(true)?;

    let mut attached = attach::Attachments::default();
    let mut probes = 0;
    for (def, program) in compiled.programs.iter().zip(&session.loaded.programs) {
        let mut verbose = |line: String| {
            if opts.verbose {
                let _ = writeln!(session.err, "{line}");
            }
        };
        attach::attach(def, program, tracefs, pid, &mut attached, &mut verbose)?;
        probes += def.instances.len();
    }
    match opts.format {
        _ if opts.quiet => {}
        OutputFormat::Text => {
            let plural = if probes == 1 { "" } else { "s" };
            let _ = writeln!(session.err, "Attached {probes} probe{plural}");
        }
        OutputFormat::Json => {
            let line = crate::output::json::message(
                "attached_probes",
                &format!("{{\"probes\": {probes}}}"),
            );
            session
                .out
                .write_all(line.as_bytes())
                .map_err(|e| RunError::Io(e.to_string()))?;
        }
    }
    // bpftrace's runtime test harness waits for this line.
    if std::env::var_os("__BPFTRACE_NOTIFY_PROBES_ATTACHED").is_some() {
        let _ = writeln!(session.out, "__BPFTRACE_NOTIFY_PROBES_ATTACHED");
    }
    let _ = session.out.flush();
    let _ = session.err.flush();

    if let Some(command) = &mut command {
        command.release()?;
    }
    let code = session.event_loop(attached, pid);
    if let Some(command) = &mut command {
        // Reap it (or stop it, when tracing ended first).
        command.finish();
    }
    let code = code?;
    session.print_all_maps()?;
    session.report_losses(compiled_max_keys(&compiled))?;
    Ok(code.clamp(0, 255) as u8)
}

fn compiled_max_keys(compiled: &codegen::Compiled) -> u32 {
    compiled
        .maps
        .iter()
        .filter(|m| matches!(m.role, codegen::MapRole::User(_)))
        .map(|m| m.max_entries)
        .max()
        .unwrap_or(0)
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: what `bpf_ktime_get_ns` returns.
fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}
