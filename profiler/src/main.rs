//! The scorch binary: argument parsing and wiring, nothing else.
//!
//! Invoked as `profile` it behaves as bcc's `profile` tool, as
//! `offcputime` as bcc's `offcputime`, as `bpftrace` as bpftrace; as `scorch` it takes subcommands.

mod agent;
mod cli;
mod collect;
mod logging;
mod offcpu;
mod privileges;
mod profile;
mod serve;
mod server;
mod signals;
mod status;
mod trace;
mod units;
mod upload;

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

fn main() -> ExitCode {
    raise_open_file_limit();
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = match name.as_str() {
        "profile" => profile::run(&cli::ProfileCli::parse().args),
        "offcputime" => profile::run(&offcputime_args()),
        "bpftrace" => return exit_status(trace::run(&cli::BpftraceCli::parse().args)),
        _ => match cli::Cli::parse().command {
            cli::Command::Trace(args) => return exit_status(trace::run(&args)),
            cli::Command::Profile(args) => profile::run(&args),
            cli::Command::Agent(args) => {
                logging::init(args.log_format, args.log_level);
                agent::run(&agent_config(args))
            }
            cli::Command::Serve(args) => {
                logging::init(args.log_format, args.log_level);
                serve::run(&args)
            }
        },
    };
    exit_status(result.map(|()| ExitCode::SUCCESS))
}

/// Raises the soft limit on open files to the hard limit, as bpftrace does:
/// a wide probe wildcard holds one perf event per match, and the agent
/// keeps the files of the processes it captured open.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The arguments of the binary invoked as `offcputime`: `profile --off-cpu`
/// under bcc's tool name and help.
fn offcputime_args() -> cli::ProfileArgs {
    let mut argv = std::env::args_os();
    let argv = argv
        .next()
        .into_iter()
        .chain([std::ffi::OsString::from("--off-cpu")])
        .chain(argv);
    let matches = cli::ProfileCli::command()
        .name("offcputime")
        .about(cli::OFFCPUTIME_ABOUT)
        .after_help(cli::OFFCPUTIME_EXAMPLES)
        .get_matches_from(argv);
    cli::ProfileCli::from_arg_matches(&matches)
        .unwrap_or_else(|err| err.exit())
        .args
}

/// The status to exit with, printing the error if there is one.
fn exit_status(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text an
/// outer message already includes.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn agent_config(args: cli::AgentArgs) -> agent::AgentConfig {
    agent::AgentConfig {
        frequency_hz: args.frequency,
        window: args.window,
        data_dir: args.data_dir,
        listen: args.listen,
        auth_token_file: args.auth_token_file,
        labels: args.labels,
        retention: args.retention,
        max_disk_bytes: args.max_disk,
        stack_storage_size: args.stack_storage_size.unwrap_or_else(|| {
            let cpus = scorch_bpf::online_cpus().map_or(1, |cpus| cpus.len());
            agent::default_stack_storage(args.frequency, args.window, cpus)
        }),
        unwind: args.unwind,
        unwind_rows: (args.unwind_table_size / 16) as u32,
        max_symbol_cache_bytes: args.max_symbol_cache,
        answer_cache_bytes: args.answer_cache_size,
        upload: args.upload,
        spool_dir: args.spool_dir,
        spool_size: args.spool_size,
        off_cpu: args.off_cpu.then_some(agent::OffCpuArgs {
            min_block_us: args.min_block_time,
            max_block_us: args.max_block_time,
        }),
    }
}
