//! Runs a bpftrace program, as `scorch trace` will:
//!
//! ```text
//! cargo run -p scorch-lang --example trace -- [-d] [-v] [-j] [--unsafe] 'PROGRAM' [PARAMS…]
//! ```
//!
//! `-d` prints the generated programs instead of running them, `-v`
//! prints attach details and verifier logs, `-j` prints JSON, `--unsafe`
//! allows `system()` and `signal()`.

use std::process::ExitCode;

use scorch_lang::{run, OutputFormat, RunError, RunOptions, SourceFile};

fn main() -> ExitCode {
    let mut opts = RunOptions::default();
    let mut program = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-d" if program.is_none() => opts.dry_run = true,
            "-v" if program.is_none() => opts.verbose = true,
            "-j" if program.is_none() => opts.format = OutputFormat::Json,
            "--unsafe" if program.is_none() => opts.unsafe_ = true,
            _ if program.is_none() => program = Some(arg),
            _ => opts.params.push(arg),
        }
    }
    let Some(text) = program else {
        eprintln!("usage: trace [-d] [-v] [-j] [--unsafe] 'PROGRAM' [PARAMS…]");
        return ExitCode::from(2);
    };
    let source = SourceFile::inline(text);
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    match run(&source, &opts, &mut out, &mut err) {
        Ok(code) => ExitCode::from(code),
        Err(RunError::Program(text)) => {
            eprint!("{text}");
            ExitCode::FAILURE
        }
        Err(e @ RunError::Verifier { .. }) => {
            eprintln!("error: {e}");
            if let RunError::Verifier { log, .. } = &e {
                if opts.verbose {
                    eprintln!("{log}");
                }
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
