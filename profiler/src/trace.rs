//! `scorch trace` (and the binary run as `bpftrace`): run a bpftrace program.
//!
//! Glue only: the flags become [`RunOptions`], the program comes from `-e`
//! or a file, the output goes to stdout or `-o FILE` with bpftrace's
//! buffering modes, and `scorch-lang` does the rest. Program errors are
//! printed as rendered diagnostics; a verifier rejection prints our one-line
//! reason, and the whole log with `-v`.

use std::fs::File;
use std::io::{BufWriter, LineWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use scorch_lang::{OutputFormat, RunError, RunOptions, SourceFile};

use crate::cli::{Buffering, TraceArgs, TraceFormat};
use crate::privileges;

/// Runs `scorch trace` with `args`; the exit status is the program's.
pub fn run(args: &TraceArgs) -> anyhow::Result<ExitCode> {
    if let Some(pattern) = &args.list {
        // `-lv PATTERN` is bpftrace's `-l -v PATTERN`, though it reads as
        // `-l` with the value `v`; after `-l -v` the pattern is left over.
        let (pattern, verbose) = match (pattern.as_str(), args.rest.first()) {
            ("v", rest) => (rest.map_or("*", String::as_str), true),
            ("*", Some(rest)) => (rest.as_str(), args.verbose),
            (pattern, _) => (pattern, args.verbose),
        };
        let kernel =
            scorch_lang::sema::TraceFs::new(scorch_bpf::mounts::TRACEFS).with_pid(args.pid);
        let mut out = std::io::stdout().lock();
        scorch_lang::runtime::list_with(pattern, &kernel, verbose, &mut out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (source, params) = program(args)?;
    if !args.dry_run {
        privileges::check()?;
    }
    let mut out = output(args)?;
    let mut opts = RunOptions::with_params(params);
    opts.format = match args.format {
        TraceFormat::Text => OutputFormat::Text,
        TraceFormat::Json => OutputFormat::Json,
    };
    opts.dry_run = args.dry_run;
    opts.verbose = args.verbose;
    opts.unsafe_ = args.unsafe_;
    opts.pid = args.pid;
    opts.quiet = args.quiet;
    // Split like a shell without quoting, as bpftrace's -c does.
    opts.command = args
        .command
        .as_deref()
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let result = scorch_lang::run(&source, &opts, &mut out, &mut std::io::stderr());
    out.flush().context("writing the output")?;
    match result {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(RunError::Program(diagnostics)) => {
            eprint!("{diagnostics}");
            Ok(ExitCode::FAILURE)
        }
        Err(e @ RunError::Verifier { .. }) => {
            eprintln!("error: {e}");
            match &e {
                RunError::Verifier { log, .. } if args.verbose => eprintln!("{log}"),
                _ => eprintln!("(run with -v for the full verifier log)"),
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// The program text and its positional parameters.
fn program(args: &TraceArgs) -> anyhow::Result<(SourceFile, Vec<String>)> {
    if let Some(text) = &args.program {
        return Ok((SourceFile::inline(text.as_str()), args.rest.clone()));
    }
    let Some((path, params)) = args.rest.split_first() else {
        anyhow::bail!("no program given: use -e 'PROGRAM' or a FILE (see --help)");
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    Ok((
        SourceFile::from_bytes(path.as_str(), &bytes),
        params.to_vec(),
    ))
}

/// Where the program's output goes, buffered as asked.
fn output(args: &TraceArgs) -> anyhow::Result<Box<dyn Write>> {
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    Ok(match args.buffering {
        Buffering::Line => Box::new(LineWriter::new(sink)),
        Buffering::Full => Box::new(BufWriter::new(sink)),
        Buffering::None => sink,
    })
}
