//! The page in a real browser against the real server: the store is filled
//! with the page tests' dataset, served by this crate's router, and
//! `web/e2e/run.mjs` drives headless Chromium through it.
//!
//! Needs Node.js, `npm ci` in `web/e2e` and Debian's `chromium` (all
//! installed by `.ci/run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use scorch_formats::{
    FrameKind, Line, Location, Measure, Meta, Profile, ProfileBuilder, Sample, Stack,
};
use scorch_store::{Store, StoreOptions, Window};

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// A profile from folded stacks whose first frame is the command; `_[k]` and
/// `_[j]` mark kernel and JIT frames, which FlameGraph's scripts also use.
/// Off-CPU windows (`measure`) count nanoseconds.
fn profile_from_folded(folded: &str, pid: u32, period_ns: u64, measure: Measure) -> Profile {
    let mut b = ProfileBuilder::new(match measure {
        Measure::OnCpuSamples => Meta {
            frequency_hz: Some(1_000_000_000 / period_ns.max(1)),
            ..Meta::default()
        },
        Measure::OffCpuNanoseconds => Meta {
            measure,
            ..Meta::default()
        },
    });
    for line in folded.lines().filter(|l| !l.is_empty()) {
        let (stack, count) = line.rsplit_once(' ').expect("folded line");
        let mut frames = stack.split(';');
        let comm = frames.next().unwrap_or_default().to_string();
        let (mut user, mut kernel) = (Vec::new(), Vec::new());
        for (depth, frame) in frames.enumerate() {
            let (name, kind) = if let Some(n) = frame.strip_suffix("_[k]") {
                (n, FrameKind::Kernel)
            } else if let Some(n) = frame.strip_suffix("_[j]") {
                (n, FrameKind::Jit)
            } else {
                (frame, FrameKind::User)
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
            if kind == FrameKind::Kernel {
                kernel.push(location)
            } else {
                user.push(location)
            }
        }
        user.reverse();
        kernel.reverse();
        b.sample(Sample {
            pid,
            tid: None,
            comm,
            user: if user.is_empty() {
                Stack::Absent
            } else {
                Stack::Frames(user)
            },
            kernel: if kernel.is_empty() {
                Stack::Absent
            } else {
                Stack::Frames(kernel)
            },
            count: count.parse().expect("folded count"),
        });
    }
    b.build()
}

/// The page tests' dataset, written by `web/e2e/fixtures.mjs`, as store windows.
fn dataset(dir: &Path) -> Vec<Window> {
    let status = Command::new("node")
        .arg(e2e_dir().join("fixtures.mjs"))
        .arg("--out")
        .arg(dir)
        .status()
        .expect("node (Node.js) runs the page tests");
    assert!(status.success(), "fixtures.mjs failed");
    let text = std::fs::read_to_string(dir.join("dataset.json")).unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let period = data["period_ns"].as_u64().unwrap();
    data["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let labels: BTreeMap<String, String> = w["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let pid = labels.get("pid").and_then(|p| p.parse().ok()).unwrap_or(0);
            let measure = match w["measure"].as_str() {
                Some("off-cpu") => Measure::OffCpuNanoseconds,
                _ => Measure::OnCpuSamples,
            };
            Window {
                start_unix_ns: w["start"].as_u64().unwrap(),
                end_unix_ns: w["end"].as_u64().unwrap(),
                profile: profile_from_folded(w["folded"].as_str().unwrap(), pid, period, measure),
                labels,
            }
        })
        .collect()
}

#[test]
fn the_page_works_in_chromium_against_the_real_server() {
    assert!(
        e2e_dir().join("node_modules/playwright-core").exists(),
        "run `npm ci` in web/e2e first (.ci/run does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "install Debian's chromium (.ci/run does)"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &dir.join("store"),
        StoreOptions::new(Duration::from_secs(10 * 365 * 86400), 1 << 30),
    )
    .unwrap();
    store.write_windows(&dataset(&dir)).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = scorch_web::router(Arc::new(store), None, None);
    runtime.spawn(async move { axum::serve(listener, app).await });

    let out = Command::new("node")
        .arg(e2e_dir().join("run.mjs"))
        .env("SCORCH_URL", format!("http://{addr}/"))
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "page tests failed against the real server:\n{report}"
    );
}
