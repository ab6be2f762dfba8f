//! Fills a profile store with the page tests' dataset, for `scorch serve`
//! to serve (the page benchmark, `bench/page-render.sh`).
//!
//! ```sh
//! node web/e2e/fixtures.mjs --out DIR      # writes DIR/dataset.json
//! cargo run --release -p scorch-web --example fixture-store -- DIR/dataset.json STORE_DIR
//! ```
//!
//! The dataset's folded stacks start with the process name; FlameGraph's
//! `_[k]` and `_[j]` suffixes mark kernel and JIT frames.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use scorch_formats::{FrameKind, Line, Location, Meta, Profile, ProfileBuilder, Sample, Stack};
use scorch_store::{Store, StoreOptions, Window};
use serde_json::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dataset, store_dir] = args.as_slice() else {
        eprintln!("usage: fixture-store DATASET.json STORE_DIR");
        return ExitCode::from(2);
    };
    match load(Path::new(dataset), Path::new(store_dir)) {
        Ok(count) => {
            println!("stored {count} windows in {store_dir}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every window of `dataset` into a store in `store_dir`.
fn load(dataset: &Path, store_dir: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(dataset)
        .map_err(|e| format!("cannot read {}: {e}", dataset.display()))?;
    let data: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", dataset.display()))?;
    let period = data["period_ns"]
        .as_u64()
        .ok_or("the dataset has no period_ns")?;
    let windows = data["windows"]
        .as_array()
        .ok_or("the dataset has no windows")?
        .iter()
        .map(|w| window(w, period))
        .collect::<Result<Vec<_>, _>>()?;
    // Fixture timestamps are years old: keep them.
    let options = StoreOptions::new(Duration::from_secs(100 * 365 * 86400), u64::MAX);
    let store = Store::open(store_dir, options).map_err(|e| e.to_string())?;
    store.write_windows(&windows).map_err(|e| e.to_string())?;
    Ok(windows.len())
}

/// One window of the dataset.
fn window(w: &Value, period_ns: u64) -> Result<Window, String> {
    let labels: BTreeMap<String, String> = w["labels"]
        .as_object()
        .ok_or("a window has no labels")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let pid = labels.get("pid").and_then(|p| p.parse().ok()).unwrap_or(0);
    let folded = w["folded"]
        .as_str()
        .ok_or("a window has no folded stacks")?;
    Ok(Window {
        start_unix_ns: w["start"].as_u64().ok_or("a window has no start")?,
        end_unix_ns: w["end"].as_u64().ok_or("a window has no end")?,
        profile: profile(folded, pid, period_ns)?,
        labels,
    })
}

/// A profile from folded stacks whose first frame is the process name.
fn profile(folded: &str, pid: u32, period_ns: u64) -> Result<Profile, String> {
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(1_000_000_000 / period_ns.max(1)),
        ..Meta::default()
    });
    for line in folded.lines().filter(|l| !l.is_empty()) {
        let (stack, count) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("not a folded line: {line:?}"))?;
        let count = count
            .parse()
            .map_err(|_| format!("bad count in {line:?}"))?;
        let mut frames = stack.split(';');
        let comm = frames.next().unwrap_or_default().to_string();
        let (mut user, mut kernel) = (Vec::new(), Vec::new());
        for (depth, frame) in frames.enumerate() {
            let (name, kind) = match (frame.strip_suffix("_[k]"), frame.strip_suffix("_[j]")) {
                (Some(n), _) => (n, FrameKind::Kernel),
                (_, Some(n)) => (n, FrameKind::Jit),
                _ => (frame, FrameKind::User),
            };
            let location = b.location(Location {
                // Distinct per name and depth, as distinct call sites are.
                address: (depth as u64) << 32 | name.len() as u64,
                mapping: None,
                kind,
                lines: vec![Line {
                    function: name.to_string(),
                    file: None,
                    line: None,
                }],
            });
            match kind {
                FrameKind::Kernel => kernel.push(location),
                _ => user.push(location),
            }
        }
        user.reverse();
        kernel.reverse();
        let stack = |frames: Vec<_>| {
            if frames.is_empty() {
                Stack::Absent
            } else {
                Stack::Frames(frames)
            }
        };
        b.sample(Sample {
            pid,
            tid: None,
            comm,
            user: stack(user),
            kernel: stack(kernel),
            count,
        });
    }
    Ok(b.build())
}
