//! Draining an off-CPU profile while it runs: a thread that is off CPU at
//! the drain holds its stack ids in the start map, and its wait is counted
//! only when it comes back, so the drain must leave those stacks for the
//! next one (a continuous profiler drains every window).

use std::time::Duration;

use scorch_bpf::{
    Event, OffCpu, Rate, Sampler, SamplerConfig, Snapshot, StackId, Target, ThreadKind,
};

fn config(tid: u32) -> SamplerConfig {
    SamplerConfig {
        target: Target::Tids(vec![tid]),
        rate: Rate::Frequency(1),
        event: Event::CpuClock,
        cpus: Vec::new(),
        user_stacks: true,
        kernel_stacks: true,
        include_idle: false,
        per_thread: true,
        stack_storage_size: 16384,
        max_keys: 1024,
        double_buffered: false,
        track_pids: false,
        off_cpu: Some(OffCpu {
            min_block_ns: 1000,
            max_block_ns: u64::MAX,
            state: None,
            max_threads: 1024,
            threads: ThreadKind::All,
        }),
    }
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
    let mut sampler = Sampler::start(&config(tid)).expect("off-CPU program starts");
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
