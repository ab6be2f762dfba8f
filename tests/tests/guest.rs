//! scorch on another kernel: Debian's 6.1 LTS, booted under QEMU.
//!
//! Our development kernel is 6.18; users run older LTS kernels, and those
//! have kprobes and fentry, which ours lacks. `tests/guest/boot.sh` boots
//! Debian's 6.1 cloud kernel with an initramfs holding the release binary
//! and the workloads, runs a script as root in it and hands back the console.
//! Scripts print `NAME: line` for each line the test reads back.

mod common;

use common::{c_workload, c_workload_without_frame_pointers, folded, guest, scorch};

#[test]
fn profile_names_the_workloads_functions_on_linux_6_1() {
    let scorch = scorch();
    let burn = c_workload("burn");
    let script = format!(
        "uname -r | sed 's/^/KERNEL: /'\n\
         {burn} 4 > /tmp/burn.out &\n\
         sleep 1\n\
         {scorch} profile -F 99 -f -p $! 2 > /tmp/out.folded || exit 1\n\
         sed 's/^/FOLDED: /' /tmp/out.folded\n",
        burn = burn.display(),
        scorch = scorch.display()
    );
    let lines = guest(&script, &[&scorch, &burn], "FOLDED");
    let stacks = folded(&lines.join("\n"));
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let in_inner: u64 = stacks
        .iter()
        .filter(|(s, _)| s.starts_with("burn;") && s.contains("main;outer;inner"))
        .map(|(_, n)| n)
        .sum();
    assert!(total > 0, "no samples on 6.1:\n{lines:?}");
    assert!(
        in_inner * 2 > total,
        "main;outer;inner is {in_inner} of {total} samples on 6.1:\n{lines:#?}"
    );
}

#[test]
fn dwarf_unwinding_reaches_start_through_libc_on_linux_6_1() {
    let scorch = scorch();
    // main -> sort_all -> qsort (libc) -> ... -> compare, which spins; no
    // frame pointers anywhere, so only the tables reach main and _start.
    let qsort_spin = c_workload_without_frame_pointers("qsort_spin", "qsort_spin_nofp", &["-g"]);
    let script = format!(
        "{qsort_spin} > /tmp/qsort.out &\n\
         sleep 1\n\
         {scorch} profile -F 99 -U -f --unwind dwarf -p $! 2 > /tmp/out.folded 2> /tmp/err.txt || {{ cat /tmp/err.txt; exit 1; }}\n\
         sed 's/^/STDERR: /' /tmp/err.txt\n\
         sed 's/^/FOLDED: /' /tmp/out.folded\n",
        qsort_spin = qsort_spin.display(),
        scorch = scorch.display()
    );
    let lines = guest(&script, &[&scorch, &qsort_spin], "FOLDED");
    let stacks = folded(&lines.join("\n"));
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let complete: u64 = stacks
        .iter()
        .filter(|(s, _)| {
            s.contains(";_start;")
                && s.contains("qsort_r;")
                && s.contains(";main;sort_all")
                && s.ends_with(";compare")
        })
        .map(|(_, n)| n)
        .sum();
    // The tables are loaded before sampling starts: every stack is complete.
    assert!(
        total >= 20 && complete * 100 >= total * 99,
        "{complete} of {total} stacks reach _start through libc on 6.1:\n{lines:#?}"
    );
}

#[test]
fn dwarf_unwinding_keeps_127_frames_on_linux_6_1() {
    let scorch = scorch();
    // main -> descend x 200 -> spin: the bpf_loop walk runs its 127 steps.
    let deep = c_workload_without_frame_pointers("deep", "deep_nofp", &[]);
    let script = format!(
        "{deep} > /tmp/deep.out &\n\
         sleep 1\n\
         {scorch} profile -F 99 -U -f --unwind dwarf -p $! 2 > /tmp/out.folded 2> /tmp/err.txt || {{ cat /tmp/err.txt; exit 1; }}\n\
         sed 's/^/FOLDED: /' /tmp/out.folded\n",
        deep = deep.display(),
        scorch = scorch.display()
    );
    let lines = guest(&script, &[&scorch, &deep], "FOLDED");
    let stacks = folded(&lines.join("\n"));
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let full_depth: u64 = stacks
        .iter()
        .filter(|(s, _)| s.ends_with(";descend;spin") && s.matches(";descend").count() == 126)
        .map(|(_, n)| n)
        .sum();
    assert!(
        total >= 20 && full_depth * 100 >= total * 99,
        "{full_depth} of {total} stacks are 127 frames deep on 6.1:\n{lines:#?}"
    );
}

#[test]
fn trace_counts_a_tracepoint_on_linux_6_1() {
    let scorch = scorch();
    let script = format!(
        "(while true; do sleep 0.1; done) &\n\
         {scorch} trace -e 't:syscalls:sys_enter_clock_nanosleep /comm == \"sleep\"/ {{ @n = count(); }} \
         interval:ms:2500 {{ exit(); }}' > /tmp/out.txt || exit 1\n\
         kill $!\n\
         sed 's/^/TRACE: /' /tmp/out.txt\n",
        scorch = scorch.display()
    );
    let lines = guest(&script, &[&scorch], "TRACE");
    let count: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("@n: "))
        .unwrap_or_else(|| panic!("no @n in the trace output: {lines:?}"))
        .parse()
        .expect("a count");
    // glibc (in busybox) sleeps with clock_nanosleep: a run of sleep every
    // 0.1 s for the 2.5 s the probe is attached, even if emulation is slow.
    assert!(count >= 5, "@n = {count}: {lines:?}");
}

#[test]
fn off_cpu_times_a_sleeping_workload_on_linux_6_1() {
    let scorch = scorch();
    let sleeper = c_workload("sleeper");
    // Frame pointers would stop at libc's nanosleep (none there) and reach
    // main through it, skipping sleeper and usleep; the tables walk them.
    let script = format!(
        "{sleeper} sleep > /tmp/sleeper.out &\n\
         sleep 1\n\
         {scorch} profile --off-cpu --unwind dwarf -f -p $! 2 > /tmp/out.folded 2> /tmp/err.txt || {{ cat /tmp/err.txt; exit 1; }}\n\
         sed 's/^/STDERR: /' /tmp/err.txt\n\
         sed 's/^/FOLDED: /' /tmp/out.folded\n",
        sleeper = sleeper.display(),
        scorch = scorch.display()
    );
    let lines = guest(&script, &[&scorch, &sleeper], "FOLDED");
    let stacks = folded(&lines.join("\n"));
    let waiting: u64 = stacks
        .iter()
        .filter(|(s, _)| {
            s.starts_with("sleeper;")
                && s.contains(";main;sleeper;usleep;")
                && s.ends_with(";schedule;__schedule")
        })
        .map(|(_, n)| n)
        .sum();
    // It sleeps all the time: about the 2 s profiled, even under emulation.
    assert!(
        (1_000_000..=6_000_000).contains(&waiting),
        "{waiting} us off CPU from main through usleep into the scheduler in a 2 s profile on 6.1:\n{lines:#?}"
    );
}
