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
        double_buffered: false,
        track_pids: false,
        off_cpu: None,
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
    let mut sampler = Sampler::start(&config(Target::Pids(vec![me]))).expect("sampler starts");
    spin(Duration::from_millis(600));
    sampler.stop();
    let snapshot = sampler.drain().expect("drain");
    assert!(!snapshot.counts.is_empty(), "no samples of a busy process");
    assert!(
        snapshot.counts.iter().all(|c| c.pid == me),
        "the pid filter let others through: {:?}",
        snapshot.counts
    );
    let total = snapshot.total();
    // 600 ms at 199 Hz is ~119 samples; allow for a loaded machine.
    assert!(total >= 30, "only {total} samples in 600 ms at 199 Hz");
    let with_user = snapshot.counts.iter().find_map(|c| match c.user {
        StackId::Id(id) => Some(id),
        _ => None,
    });
    let stack = snapshot
        .stack(with_user.expect("a user stack"))
        .expect("stack read");
    assert!(!stack.is_empty());
    // Hash collisions in the stack map are possible (bcc has them too) but
    // rare at the default size; a full map or a dropped sample is a bug here.
    let counters = sampler.counters().unwrap();
    assert_eq!((counters.stack_map_full, counters.count_map_full), (0, 0));
    assert!(
        counters.stack_collisions * 20 <= total,
        "{counters:?} of {total}"
    );
    assert_eq!(
        counters.recorded, total,
        "the recorded counter disagrees with the counts"
    );
    assert!(
        sampler.drain().unwrap().counts.is_empty(),
        "a drained buffer is empty"
    );
}

#[test]
fn tid_filter_excludes_other_threads() {
    let other = std::thread::spawn(|| spin(Duration::from_millis(600)));
    let me = unsafe { libc::gettid() } as u32;
    let mut sampler = Sampler::start(&config(Target::Tids(vec![me]))).expect("sampler starts");
    spin(Duration::from_millis(600));
    other.join().unwrap();
    sampler.stop();
    let counts = sampler.drain().unwrap().counts;
    assert!(!counts.is_empty());
    assert!(
        counts.iter().all(|c| c.tid == me),
        "other threads sampled: {counts:?}"
    );
}

#[test]
fn double_buffered_drains_lose_nothing_between_windows() {
    let mut cfg = config(Target::Pids(vec![std::process::id()]));
    cfg.double_buffered = true;
    cfg.track_pids = true;
    cfg.rate = Rate::Frequency(499);
    let mut sampler = Sampler::start(&cfg).expect("sampler starts");
    let mut drained = 0;
    for _ in 0..5 {
        spin(Duration::from_millis(150));
        let window = sampler.drain().unwrap();
        assert!(window.total() > 0, "a window of a busy process is empty");
        drained += window.total();
    }
    sampler.stop();
    drained += sampler.drain().unwrap().total() + sampler.drain().unwrap().total();
    let counters = sampler.counters().unwrap();
    assert_eq!(drained, counters.recorded, "samples fell between windows");
    assert_eq!(counters.count_map_full, 0);
    assert_eq!(sampler.take_seen_pids().unwrap(), vec![std::process::id()]);
    assert!(
        sampler.take_seen_pids().unwrap().is_empty(),
        "seen pids are taken once"
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
    let counters = sampler.counters().unwrap();
    assert!(
        counters.stack_map_full + counters.stack_collisions > 0,
        "a one-entry stack map lost nothing: {counters:?}"
    );
}

#[test]
fn kernel_stacks_are_stored_once_each_and_read_back_whole() {
    let me = unsafe { libc::gettid() } as u32;
    let mut sampler = Sampler::start(&config(Target::Tids(vec![me]))).expect("sampler starts");
    // Time in the kernel: reading a proc file walks the VFS and seq_file.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(800) {
        std::hint::black_box(std::fs::read("/proc/self/stat").unwrap());
    }
    sampler.stop();
    let snapshot = sampler.drain().expect("drain");
    let kernel_ids: std::collections::HashSet<u32> = snapshot
        .counts
        .iter()
        .filter_map(|c| match c.kernel {
            StackId::Id(id) => Some(id),
            _ => None,
        })
        .collect();
    assert!(
        kernel_ids.len() >= 2,
        "reading /proc for 800 ms gave {} kernel stacks: {:?}",
        kernel_ids.len(),
        snapshot.counts
    );
    let stacks: std::collections::HashSet<&[u64]> = kernel_ids
        .iter()
        .map(|&id| snapshot.stack(id).expect("every kernel id has its stack"))
        .collect();
    assert_eq!(
        stacks.len(),
        kernel_ids.len(),
        "one kernel stack was stored under two ids"
    );
    for stack in &stacks {
        assert!(!stack.is_empty() && stack.len() <= 127, "{stack:x?}");
        assert!(
            stack.iter().all(|&a| a >= 0xffff_8000_0000_0000),
            "a kernel stack holds a user address: {stack:x?}"
        );
    }
    // Repeated stacks were found stored already, not taken for collisions.
    let with_kernel: u64 = snapshot
        .counts
        .iter()
        .filter(|c| matches!(c.kernel, StackId::Id(_)))
        .map(|c| c.count)
        .sum();
    assert!(
        with_kernel > kernel_ids.len() as u64,
        "no kernel stack was sampled twice: {:?}",
        snapshot.counts
    );
    let counters = sampler.counters().unwrap();
    assert_eq!(
        (counters.stack_map_full, counters.stack_collisions),
        (0, 0),
        "{counters:?}"
    );
}

#[test]
fn stacks_no_count_refers_to_are_freed_by_the_second_drain() {
    // A one-key count map: samples after the first find it full, so the
    // stacks they stored are referred to by no count.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            std::hint::black_box(std::fs::read("/proc/self/stat").unwrap());
        }
    });
    let mut cfg = config(Target::Tids(vec![tid_rx.recv().unwrap()]));
    cfg.rate = Rate::Frequency(999);
    cfg.max_keys = 1;
    let mut sampler = Sampler::start(&cfg).expect("sampler starts");
    worker.join().unwrap();
    sampler.stop();
    let counters = sampler.counters().unwrap();
    assert!(counters.count_map_full > 0, "{counters:?}");
    let first = sampler.drain().unwrap();
    assert_eq!(first.counts.len(), 1, "{first:?}");
    let orphans = sampler.held_stacks();
    assert!(
        orphans > 0,
        "no stack outlived its lost count: {counters:?}"
    );
    sampler.drain().unwrap();
    assert_eq!(
        sampler.held_stacks(),
        0,
        "{orphans} stacks no count refers to are still held after two drains"
    );
}
