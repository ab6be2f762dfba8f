//! Helpers shared by the integration tests: temporary directories,
//! deterministic profiles, and a canonical form to compare profiles by.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use scorch_formats::{
    FrameKind, Line, Location, Mapping, Meta, Profile, ProfileBuilder, Sample, Stack,
};
use scorch_store::Window;

/// Ten seconds in nanoseconds.
pub const TEN_S: u64 = 10_000_000_000;

/// A base time: 2024-01-01T00:00:00Z.
pub const T0: u64 = 1_704_067_200_000_000_000;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "scorch-store-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A window of `profile` starting `index` × 10 s after [`T0`].
pub fn window(index: u64, labels: BTreeMap<String, String>, profile: Profile) -> Window {
    Window {
        start_unix_ns: T0 + index * TEN_S,
        end_unix_ns: T0 + (index + 1) * TEN_S,
        labels,
        profile,
    }
}

/// A deterministic profile: `samples` samples over a small universe of
/// functions, varying with `seed`; same seed, same profile.
pub fn profile(seed: u64, samples: usize) -> Profile {
    let mut rng = Rng::new(seed);
    let mut p = Profile {
        meta: Meta {
            frequency_hz: Some(49),
            ..Meta::default()
        },
        ..Profile::default()
    };
    p.mappings.push(Mapping {
        start: 0x40_0000,
        limit: 0x80_0000,
        offset: 0,
        file: "/usr/bin/app".into(),
        build_id: Some("abcdef".into()),
    });
    p.mappings.push(Mapping {
        start: 0xffff_ffff_8100_0000,
        limit: 0xffff_ffff_a000_0000,
        offset: 0,
        file: "[kernel.kallsyms]".into(),
        build_id: None,
    });
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut location = |p: &mut Profile, n: u64, kernel: bool| -> usize {
        let key = n * 2 + u64::from(kernel);
        *index.entry(key).or_insert_with(|| {
            p.locations.push(Location {
                address: if kernel {
                    0xffff_ffff_8100_0000 + n * 16
                } else {
                    0x40_0000 + n * 16
                },
                mapping: Some(usize::from(kernel)),
                kind: if kernel {
                    FrameKind::Kernel
                } else {
                    FrameKind::User
                },
                lines: vec![Line {
                    function: format!("{}_{n}", if kernel { "k" } else { "fn" }),
                    file: (!kernel).then(|| format!("src/f{}.c", n % 7)),
                    line: (!kernel).then_some(n as u32 % 300),
                }],
            });
            p.locations.len() - 1
        })
    };
    for _ in 0..samples {
        let depth = 2 + rng.below(8) as usize;
        let user: Vec<usize> = (0..depth)
            .map(|_| location(&mut p, rng.below(200), false))
            .collect();
        let kernel = match rng.below(3) {
            0 => Stack::Absent,
            1 => Stack::Frames(
                (0..1 + rng.below(3))
                    .map(|_| location(&mut p, rng.below(50), true))
                    .collect(),
            ),
            _ => Stack::Missed,
        };
        p.samples.push(Sample {
            pid: 100 + rng.below(3) as u32,
            tid: None,
            comm: format!("worker{}", rng.below(2)),
            user: Stack::Frames(user),
            kernel,
            count: 1 + rng.below(20),
        });
    }
    p
}

/// A profile as a map from a full, index-free description of each sample
/// to its summed count: two profiles are the same data when these are equal.
pub fn canonical(p: &Profile) -> BTreeMap<String, u64> {
    let frame = |i: &usize| -> String {
        match p.locations.get(*i) {
            // What the store keeps for an index that points nowhere.
            None => "loc(0x0,none,User,[])".to_string(),
            Some(l) => {
                let mapping = l.mapping.and_then(|m| p.mappings.get(m)).map_or_else(
                    || "none".to_string(),
                    |m| {
                        format!(
                            "{}@{:#x}-{:#x}+{:#x}/{:?}",
                            m.file, m.start, m.limit, m.offset, m.build_id
                        )
                    },
                );
                format!("loc({:#x},{mapping},{:?},{:?})", l.address, l.kind, l.lines)
            }
        }
    };
    let stack = |s: &Stack| match s {
        Stack::Absent => "absent".to_string(),
        Stack::Missed => "missed".to_string(),
        Stack::Frames(f) => f.iter().map(frame).collect::<Vec<_>>().join(";"),
    };
    let mut out = BTreeMap::new();
    for s in &p.samples {
        if s.count == 0 {
            continue;
        }
        let key = format!(
            "{}/{:?}/{} | {} | {}",
            s.pid,
            s.tid,
            s.comm,
            stack(&s.user),
            stack(&s.kernel)
        );
        *out.entry(key).or_insert(0) += s.count;
    }
    out
}

/// The sum of canonical forms.
pub fn merged<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for p in profiles {
        for (k, v) in canonical(p) {
            *out.entry(k).or_insert(0) += v;
        }
    }
    out
}

/// Whether the tests run as root (needed for mounts).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A profile of one sample per stack: `(functions, count)`, functions
/// named root first, user frames without a mapping, all of command `comm`.
pub fn stacks(comm: &str, stacks: &[(&[&str], u64)]) -> Profile {
    let mut b = ProfileBuilder::new(Meta::default());
    for &(functions, count) in stacks {
        let frames = functions
            .iter()
            .rev()
            .map(|f| {
                b.location(Location {
                    address: 0,
                    mapping: None,
                    kind: FrameKind::User,
                    lines: vec![Line {
                        function: f.to_string(),
                        file: None,
                        line: None,
                    }],
                })
            })
            .collect();
        b.sample(Sample {
            pid: 1,
            tid: None,
            comm: comm.into(),
            user: Stack::Frames(frames),
            kernel: Stack::Absent,
            count,
        });
    }
    b.build()
}
