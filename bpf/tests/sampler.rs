//! The sampler program on the running kernel: it loads, attaches to every
//! CPU, and records this test's own busy thread with both stacks.

use std::time::{Duration, Instant};

use scorch_bpf::{online_cpus, Event, Rate, Sampler, SamplerConfig, StackId, Target};

fn config(target: Target) -> SamplerConfig {
    SamplerConfig {
        target,
        rate: Rate::Frequency(199),
        event: Event::CpuClock,
        cpus: online_cpus().expect("online CPUs"),
        user_stacks: true,
        kernel_stacks: true,
        include_idle: false,
        per_thread: true,
        stack_storage_size: 16384,
        max_keys: 4096,
    }
}

fn spin(for_how_long: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < for_how_long {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

#[test]
fn samples_this_process_with_stacks() {
    let me = std::process::id();
    let sampler = Sampler::start(&config(Target::Pids(vec![me]))).expect("sampler starts");
    spin(Duration::from_millis(600));
    let counts = sampler.counts().expect("counts");
    assert!(!counts.is_empty(), "no samples of a busy process");
    assert!(
        counts.iter().all(|c| c.pid == me),
        "the pid filter let others through: {counts:?}"
    );
    let total: u64 = counts.iter().map(|c| c.count).sum();
    // 600 ms at 199 Hz is ~119 samples; allow for a loaded machine.
    assert!(total >= 30, "only {total} samples in 600 ms at 199 Hz");
    let with_user = counts.iter().find_map(|c| match c.user {
        StackId::Id(id) => Some(id),
        _ => None,
    });
    let stack = sampler
        .stack(with_user.expect("a user stack"))
        .unwrap()
        .unwrap();
    assert!(!stack.is_empty());
    // Hash collisions in the stack map are possible (bcc has them too) but
    // rare at the default size; a full map or a dropped sample is a bug here.
    let losses = sampler.losses().unwrap();
    assert_eq!((losses.stack_map_full, losses.count_map_full), (0, 0));
    assert!(
        losses.stack_collisions * 20 <= total,
        "{losses:?} of {total}"
    );
}

#[test]
fn tid_filter_excludes_other_threads() {
    let other = std::thread::spawn(|| spin(Duration::from_millis(600)));
    let me = unsafe { libc::gettid() } as u32;
    let sampler = Sampler::start(&config(Target::Tids(vec![me]))).expect("sampler starts");
    spin(Duration::from_millis(600));
    other.join().unwrap();
    let counts = sampler.counts().unwrap();
    assert!(!counts.is_empty());
    assert!(
        counts.iter().all(|c| c.tid == me),
        "other threads sampled: {counts:?}"
    );
}

#[test]
fn a_full_stack_map_is_counted() {
    let mut cfg = config(Target::Pids(vec![std::process::id()]));
    cfg.stack_storage_size = 1;
    cfg.rate = Rate::Frequency(999);
    let sampler = Sampler::start(&cfg).expect("sampler starts");
    // Distinct stacks: recursion depth changes the user stack.
    fn deep(n: u32) -> u64 {
        if n == 0 {
            spin(Duration::from_millis(30))
        } else {
            std::hint::black_box(deep(n - 1)) + 1
        }
    }
    for n in 0..20 {
        deep(n);
    }
    let losses = sampler.losses().unwrap();
    assert!(
        losses.stack_map_full + losses.stack_collisions > 0,
        "a one-entry stack map lost nothing: {losses:?}"
    );
}
