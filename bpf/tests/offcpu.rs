//! The off-CPU program on the running kernel: it loads on `sched_switch`
//! and times this test's own sleeps, with their kernel and user stacks.

use std::time::{Duration, Instant};

use scorch_bpf::{
    Event, OffCpu, Rate, Sampler, SamplerConfig, Snapshot, StackId, Target, ThreadKind,
};

fn config(tid: u32, min_block_ns: u64) -> SamplerConfig {
    SamplerConfig {
        target: Target::Tids(vec![tid]),
        rate: Rate::Frequency(1),
        event: Event::CpuClock,
        cpus: Vec::new(),
        user_stacks: true,
        kernel_stacks: true,
        include_idle: false,
        per_thread: true,
        // Roomy: two of the few stacks sharing a bucket would be a collision.
        stack_storage_size: 16384,
        max_keys: 1024,
        double_buffered: false,
        track_pids: false,
        off_cpu: Some(OffCpu {
            min_block_ns,
            max_block_ns: u64::MAX,
            state: None,
            max_threads: 1024,
            threads: ThreadKind::All,
        }),
    }
}

/// Sleeps `times` times for `each`; returns the wall time slept.
fn sleep_loop(times: u32, each: Duration) -> Duration {
    let start = Instant::now();
    for _ in 0..times {
        std::thread::sleep(each);
    }
    start.elapsed()
}

#[test]
fn times_this_threads_sleeps() {
    let me = unsafe { libc::gettid() } as u32;
    let mut sampler = Sampler::start(&config(me, 1000)).expect("off-CPU program starts");
    let slept = sleep_loop(20, Duration::from_millis(20));
    sampler.stop();
    let snapshot = sampler.drain().expect("drain");
    assert!(
        snapshot.counts.iter().all(|c| c.tid == me),
        "the tid filter let others through: {:?}",
        snapshot.counts
    );
    let total = snapshot.total();
    let slept_ns = slept.as_nanos() as u64;
    // Every sleep is off CPU; the loop's own work is on it (a little).
    assert!(
        total >= slept_ns / 2 && total <= slept_ns * 3 / 2,
        "{total} ns off CPU for {slept_ns} ns slept: {:?}",
        snapshot.counts
    );
    let kernel = snapshot
        .counts
        .iter()
        .find_map(|c| match c.kernel {
            StackId::Id(id) => snapshot.stack(id),
            _ => None,
        })
        .expect("a kernel stack");
    assert!(!kernel.is_empty());
    assert!(
        snapshot
            .counts
            .iter()
            .any(|c| matches!(c.user, StackId::Id(_))),
        "no user stack: {:?}",
        snapshot.counts
    );
    // Nothing lost but to a hash collision in the stack map (possible with
    // any size, counted and reported as the CPU sampler's are).
    let counters = sampler.counters().unwrap();
    assert_eq!(counters.lost(), counters.stack_collisions, "{counters:?}");
}

#[test]
fn waits_outside_the_bounds_are_dropped() {
    let me = unsafe { libc::gettid() } as u32;
    let mut cfg = config(me, 1000);
    if let Some(off_cpu) = &mut cfg.off_cpu {
        off_cpu.max_block_ns = 50_000_000;
    }
    let mut sampler = Sampler::start(&cfg).expect("off-CPU program starts");
    let short = sleep_loop(20, Duration::from_millis(5));
    // Each of these is off CPU for 200 ms at least: above the maximum.
    sleep_loop(3, Duration::from_millis(200));
    sampler.stop();
    let total = sampler.drain().expect("drain").total();
    // The short sleeps count, off CPU no longer than their loop took, and
    // a few short waits while attaching and detaching; the long sleeps
    // would add 600 ms.
    let bound = short + Duration::from_millis(300);
    assert!(
        total > 0 && total <= bound.as_nanos() as u64,
        "{total} ns off CPU; the short sleeps took {short:?}"
    );
}

/// Nanoseconds of the counts whose kernel stack is missing from the snapshot.
fn without_kernel_stack(snapshot: &Snapshot) -> u64 {
    snapshot
        .counts
        .iter()
        .filter(|c| match c.kernel {
            StackId::Id(id) => snapshot.stack(id).is_none(),
            _ => true,
        })
        .map(|c| c.count)
        .sum()
}

/// Draining while the program runs (a continuous profiler drains every
/// window): a thread off CPU at the drain holds its stack ids in the start
/// map and its wait is counted only when it comes back, so the drain must
/// leave those stacks for the next one.
#[test]
fn a_drain_keeps_the_stacks_of_threads_still_off_cpu() {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let sleeper = std::thread::spawn(move || {
        tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
        go_rx.recv().unwrap();
        // The same stack twice: the second wait spans the first drain.
        std::thread::sleep(Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(400));
    });
    let tid = tid_rx.recv().unwrap();
    let mut sampler = Sampler::start(&config(tid, 1000)).expect("off-CPU program starts");
    go_tx.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let first = sampler.drain().expect("drain while running");
    sleeper.join().unwrap();
    sampler.stop();
    let second = sampler.drain().expect("drain");
    for (name, snapshot) in [("first", &first), ("second", &second)] {
        assert!(snapshot.total() > 0, "{name} drain is empty: {snapshot:?}");
        assert_eq!(
            without_kernel_stack(snapshot),
            0,
            "{name} drain counts waits whose kernel stack was freed: {snapshot:?}"
        );
    }
    // The second wait, 400 ms, is counted in the second drain.
    assert!(second.total() >= 300_000_000, "{second:?}");
}
