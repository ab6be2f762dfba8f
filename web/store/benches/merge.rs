//! Store benchmark: a day of agent windows, written then merged.
//!
//! Builds a store of 8640 windows (24 h at one per 10 s) of one host, each
//! with 2000 distinct traces drawn from a pool of 20000 over a dictionary
//! of 50000 frames, and prints: write throughput, database size, and the
//! time to merge the whole day (cold dictionary cache, then warm), the
//! timeline, label lookups and a retention run.
//!
//! `cargo bench -p scorch-store --bench merge` runs it in full. Sizes can be
//! changed with `SCORCH_BENCH_WINDOWS`, `SCORCH_BENCH_STACKS`,
//! `SCORCH_BENCH_POOL`, `SCORCH_BENCH_FRAMES`, and the number of warm
//! queries with `SCORCH_BENCH_QUERIES`; `SCORCH_BENCH_DIR` picks where the
//! store goes (default: the temporary directory). With `SCORCH_BENCH_KEEP=1`
//! the store is kept, and the next run with the same sizes skips writing
//! and only measures the queries (a kept store skips the retention run,
//! which would delete its first hour). Run as a test
//! (`cargo test --benches`), it does a small smoke run instead.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use scorch_formats::{FrameKind, Line, Location, Mapping, Meta, Profile, Sample, Stack};
use scorch_store::{Query, Store, StoreOptions, Window};

const TEN_S: u64 = 10_000_000_000;
const T0: u64 = 1_704_067_200_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One sample key of the pool: its stacks as indices into the universe.
struct Trace {
    pid: u32,
    user: Vec<usize>,
    kernel: Option<Vec<usize>>,
}

/// All frames of the host: mappings and `frames` locations, the last tenth
/// of them kernel frames.
fn universe(frames: usize) -> Profile {
    let mut p = Profile {
        meta: Meta {
            frequency_hz: Some(49),
            ..Meta::default()
        },
        ..Profile::default()
    };
    for i in 0..20u64 {
        p.mappings.push(Mapping {
            start: 0x7f00_0000_0000 + i * 0x100_0000,
            limit: 0x7f00_0000_0000 + (i + 1) * 0x100_0000,
            offset: 0,
            file: format!("/usr/lib/x86_64-linux-gnu/libbench{i}.so"),
            build_id: Some(format!("{:040x}", i * 0x1234_5678_9abc)),
        });
    }
    p.mappings.push(Mapping {
        start: 0xffff_ffff_8100_0000,
        limit: 0xffff_ffff_a000_0000,
        offset: 0,
        file: "[kernel.kallsyms]".into(),
        build_id: None,
    });
    let kernel_from = frames - frames / 10;
    for i in 0..frames {
        let kernel = i >= kernel_from;
        let lib = i % 20;
        let mut lines = vec![Line {
            function: if kernel {
                format!("kernel_function_{i}")
            } else {
                format!("bench::module_{}::Type{}::method_{i}", i % 97, i % 13)
            },
            file: (!kernel).then(|| format!("src/module_{}/file_{}.rs", i % 97, i % 500)),
            line: (!kernel).then_some((i % 2000) as u32 + 1),
        }];
        if i % 10 == 0 && !kernel {
            lines.insert(
                0,
                Line {
                    function: format!("bench::inlined_helper_{}", i % 1000),
                    file: Some("src/helpers.rs".into()),
                    line: Some((i % 300) as u32),
                },
            );
        }
        p.locations.push(Location {
            address: if kernel {
                0xffff_ffff_8100_0000 + i as u64 * 64
            } else {
                p.mappings[lib].start + (i as u64 * 64) % 0x100_0000
            },
            mapping: Some(if kernel { 20 } else { lib }),
            kind: if kernel {
                FrameKind::Kernel
            } else {
                FrameKind::User
            },
            lines,
        });
    }
    p
}

fn pool(rng: &mut Rng, frames: usize, size: usize) -> Vec<Trace> {
    let kernel_from = frames - frames / 10;
    (0..size)
        .map(|_| {
            let depth = 8 + rng.below(32);
            Trace {
                pid: 1000 + rng.below(50) as u32,
                user: (0..depth).map(|_| rng.below(kernel_from)).collect(),
                kernel: (rng.below(10) < 3).then(|| {
                    (0..3 + rng.below(8))
                        .map(|_| kernel_from + rng.below(frames - kernel_from))
                        .collect()
                }),
            }
        })
        .collect()
}

/// A window's samples: `stacks` distinct traces drawn at random from the
/// pool (a partial shuffle of `order`), most seen once, some hot.
fn samples(rng: &mut Rng, pool: &[Trace], order: &mut [usize], stacks: usize) -> Vec<Sample> {
    let n = stacks.min(pool.len());
    for k in 0..n {
        let j = k + rng.below(order.len() - k);
        order.swap(k, j);
    }
    order[..n]
        .iter()
        .map(|&i| {
            let t = &pool[i];
            let skew = rng.below(100);
            Sample {
                pid: t.pid,
                tid: None,
                comm: format!("proc{}", t.pid % 50),
                user: Stack::Frames(t.user.clone()),
                kernel: t.kernel.clone().map_or(Stack::Absent, Stack::Frames),
                count: if skew < 80 {
                    1
                } else {
                    1 + rng.below(50) as u64
                },
            }
        })
        .collect()
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let windows = env("SCORCH_BENCH_WINDOWS", if full { 8640 } else { 30 });
    let stacks = env("SCORCH_BENCH_STACKS", if full { 2000 } else { 100 });
    let pool_size = env("SCORCH_BENCH_POOL", if full { 20_000 } else { 500 });
    let frames = env("SCORCH_BENCH_FRAMES", if full { 50_000 } else { 2_000 });
    let keep = std::env::var_os("SCORCH_BENCH_KEEP").is_some();
    let dir = std::env::var_os("SCORCH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!(
            "scorch-store-bench-{windows}x{stacks}-{pool_size}-{frames}{}",
            if keep {
                String::new()
            } else {
                format!("-{}", std::process::id())
            }
        ));
    let reuse = keep && dir.join(scorch_store::DB_FILE).exists();
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!(
        "scorch-store merge benchmark: {windows} windows x {stacks} stacks \
         (pool {pool_size} traces, {frames} frames) in {}",
        dir.display()
    );
    let mut options = StoreOptions::default();
    options.max_disk_bytes = 64 << 30;
    options.retention = Duration::from_secs(24 * 3600);

    if reuse {
        println!("write:     skipped, reusing the store of an earlier run");
    } else {
        write(&dir, &options, windows, stacks, pool_size, frames);
    }

    let day = Query::range(T0, T0 + windows as u64 * TEN_S).label("host", "bench");
    let store = Store::open(&dir, options).expect("reopen the store");
    // What every merge must add up to: the window totals.
    let total_samples: u64 = store
        .timeline(&day, Duration::from_secs(3600))
        .expect("timeline")
        .iter()
        .map(|b| b.samples)
        .sum();
    let warm_runs = env("SCORCH_BENCH_QUERIES", 2);
    for run in std::iter::once("cold").chain(std::iter::repeat_n("warm", warm_runs)) {
        let started = Instant::now();
        let profile = store.query(&day).expect("query");
        let took = started.elapsed();
        assert_eq!(profile.total_count(), total_samples);
        println!(
            "query all: {} ({run} dictionary cache) for {windows} windows -> {} distinct stacks, \
             {} locations, {} samples",
            secs(took),
            profile.samples.len(),
            profile.locations.len(),
            profile.total_count()
        );
    }
    let started = Instant::now();
    let hour = store
        .query(&Query::range(T0, T0 + 360 * TEN_S).label("host", "bench"))
        .expect("query");
    println!(
        "query 1h:  {} for the first 360 windows -> {} distinct stacks",
        secs(started.elapsed()),
        hour.samples.len()
    );
    let started = Instant::now();
    let buckets = store
        .timeline(&day, Duration::from_secs(60))
        .expect("timeline");
    println!(
        "timeline:  {} for {} one-minute buckets",
        secs(started.elapsed()),
        buckets.len()
    );
    let started = Instant::now();
    let values = store
        .label_values("host", T0, T0 + windows as u64 * TEN_S)
        .expect("label values");
    println!(
        "labels:    {} for label_values ({} value)",
        secs(started.elapsed()),
        values.len()
    );
    if !keep {
        // Retention one hour past the day: the first hour goes.
        let started = Instant::now();
        let report = store
            .enforce_retention(T0 + (windows as u64 + 360) * TEN_S)
            .expect("retention");
        println!(
            "retention: {} deleting {} windows and {} dictionary entries",
            secs(started.elapsed()),
            report.expired_windows,
            report.dictionary_entries
        );
    }
    drop(store);
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Writes the day of windows and prints write throughput and size.
fn write(
    dir: &std::path::Path,
    options: &StoreOptions,
    windows: usize,
    stacks: usize,
    pool_size: usize,
    frames: usize,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let universe = universe(frames);
    let pool = pool(&mut rng, frames, pool_size);
    let store = Store::open(dir, options.clone()).expect("open the store");
    let labels: BTreeMap<String, String> = [("host".to_string(), "bench".to_string())].into();
    let mut window = Window {
        start_unix_ns: 0,
        end_unix_ns: 0,
        labels,
        profile: universe,
    };
    let mut order: Vec<usize> = (0..pool.len()).collect();
    let mut writing = Duration::ZERO;
    for i in 0..windows as u64 {
        window.start_unix_ns = T0 + i * TEN_S;
        window.end_unix_ns = T0 + (i + 1) * TEN_S;
        window.profile.samples = samples(&mut rng, &pool, &mut order, stacks);
        let started = Instant::now();
        store.write_window(&window).expect("write a window");
        writing += started.elapsed();
    }
    let stats = store.stats().expect("stats");
    println!(
        "write:     {} for {windows} windows = {:.0} windows/s, {:.0} stacks/s ({:.2} ms per window)",
        secs(writing),
        windows as f64 / writing.as_secs_f64(),
        (windows * stacks) as f64 / writing.as_secs_f64(),
        writing.as_secs_f64() * 1000.0 / windows as f64,
    );
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "size:      {:.1} MiB live ({:.1} MiB window blobs, {:.0} bytes each; the rest \
         dictionaries and indexes), {:.1} MiB on disk with WAL, {} dictionary entries",
        mib(stats.live_bytes),
        mib(stats.window_bytes),
        stats.window_bytes as f64 / windows as f64,
        mib(stats.file_bytes),
        stats.dictionary_entries
    );
    drop(store);
}
