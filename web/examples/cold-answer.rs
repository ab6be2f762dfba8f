//! Times the server's cold answers for a range as the page asks for them
//! when neither the answer cache nor the dictionary cache holds anything:
//! first the pruned tree of the first paint (`min_share=0.0001`), then the
//! whole tree, each with its JSON. Each run opens the store anew, so every
//! run is cold.
//!
//! ```sh
//! cargo run --release -p scorch-web --example cold-answer -- STORE_DIR FROM UNTIL [RUNS]
//! ```
//!
//! `bench/page-render.sh` makes such a store from the page tests' dataset.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use scorch_store::{Query, Store, StoreOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, from, until, runs) = match args.as_slice() {
        [dir, from, until, rest @ ..] if rest.len() <= 1 => (
            dir,
            from.parse::<u64>(),
            until.parse::<u64>(),
            rest.first().map_or(Ok(5), |r| r.parse::<usize>()),
        ),
        _ => {
            eprintln!("usage: cold-answer STORE_DIR FROM_NS UNTIL_NS [RUNS]");
            return ExitCode::from(2);
        }
    };
    let (Ok(from), Ok(until), Ok(runs)) = (from, until, runs) else {
        eprintln!("error: FROM_NS, UNTIL_NS and RUNS are whole numbers");
        return ExitCode::from(2);
    };
    match measure(Path::new(dir), from, until, runs.max(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the cold answers `runs` times and prints the median of each phase.
fn measure(dir: &Path, from: u64, until: u64, runs: usize) -> Result<(), String> {
    const PHASES: [&str; 3] = [
        "first paint (pruned tree + JSON), cold",
        "whole tree + JSON, after the first paint",
        "total",
    ];
    let query = Query::range(from, until);
    let mut times: Vec<[Duration; 3]> = Vec::new();
    let mut sizes = (0, 0, 0);
    for _ in 0..runs {
        let options = StoreOptions::new(Duration::from_secs(100 * 365 * 86400), u64::MAX);
        let store = Store::open_read_only(dir, options).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let (pruned, _) = store
            .pruned_flame_tree_with_window_set(&query, 0.0001)
            .map_err(|e| e.to_string())?;
        let first = serde_json::to_vec(&pruned).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let (tree, _) = store
            .flame_tree_with_window_set(&query)
            .map_err(|e| e.to_string())?;
        let whole = serde_json::to_vec(&tree).map_err(|e| e.to_string())?;
        let t2 = Instant::now();
        sizes = (tree.nodes.name.len(), first.len(), whole.len());
        times.push([t1 - t0, t2 - t1, t2 - t0]);
    }
    println!(
        "cold answer over {}: {} nodes, first paint {} kB, whole tree {:.1} MB; median of {runs} runs",
        dir.display(),
        sizes.0,
        sizes.1 / 1000,
        sizes.2 as f64 / 1e6
    );
    for (i, phase) in PHASES.iter().enumerate() {
        let mut column: Vec<Duration> = times.iter().map(|t| t[i]).collect();
        column.sort();
        println!(
            "  {phase:<40} {:>7.1} ms",
            column[column.len() / 2].as_secs_f64() * 1e3
        );
    }
    Ok(())
}
