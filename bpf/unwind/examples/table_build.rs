//! Builds the unwind table of each file named on the command line and
//! prints, tab-separated: the path, its rows, their bytes in the sampler's
//! row map (16 a row) and the build time in ms. For
//! `bench/unwind-vs-perf.sh`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Bytes of a row in the sampler's map (`scorch_bpf`'s `ROW_SIZE`).
const ROW_BYTES: usize = 16;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args_os().skip(1) {
        let path = Path::new(&path);
        let start = Instant::now();
        match scorch_unwind::build(path) {
            Ok(table) => {
                let ms = start.elapsed().as_secs_f64() * 1e3;
                let rows = table.rows().len();
                println!("{}\t{rows}\t{}\t{ms:.1}", path.display(), rows * ROW_BYTES);
            }
            Err(err) => {
                eprintln!("{}: {err}", path.display());
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
