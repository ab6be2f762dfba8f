//! scorch on another kernel: Debian's 6.1 LTS, booted under QEMU.
//!
//! Our development kernel is 6.18; users run older LTS kernels, and those
//! have kprobes and fentry, which ours lacks. `tests/guest/boot.sh` boots
//! Debian's 6.1 cloud kernel with an initramfs holding the release binary
//! and the workloads, runs a script as root in it and hands back the console.
//! Scripts print `NAME: line` for each line the test reads back.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{
    assert_one_warning_about_missing_tables, assert_qsort_mostly_complete, c_workload, chains,
    count, folded, guest, mixed_fp_nofp, once_new_spin_nofp, qsort_spin_nocfi, qsort_spin_nofp,
    rust_workload_without_frame_pointers, scorch,
};

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

/// The unwinder's workloads, profiled in one boot of the 6.1 guest (a boot
/// per test would cost seconds each): each run's console lines, read back by
/// the tests below, which assert what their twins in unwind.rs assert.
struct UnwindRuns {
    lines: Vec<String>,
}

/// A shell function that starts a workload and waits until it prints
/// `ready`: `start NAME EXE [ARG...]` sets `$pid`, or prints `RUN: NAME
/// failed` (its runs are named `NAME-MODE`).
const START: &str = r#"start() {
  name=$1
  out=/tmp/$1.out
  shift
  "$@" > "$out" &
  pid=$!
  tries=0
  until grep -q ready "$out"; do
    tries=$((tries + 1))
    [ $tries -le 600 ] || { echo "RUN: $name failed: $* printed no ready in 60 s"; return 1; }
    sleep 0.1
  done
}
"#;

/// A shell function that runs `scorch profile -F 99 -U -f ARGS` and prints
/// `RUN: NAME: ` before each folded line, `RUN: NAME stderr: ` before each
/// line on stderr and `RUN: NAME failed` when scorch fails:
/// `profile NAME ARG...`.
const PROFILE: &str = r#"profile() {
  run=$1
  shift
  if "$scorch" profile -F 99 -U -f "$@" > /tmp/$run.folded 2> /tmp/$run.err; then
    sed "s/^/RUN: $run: /" /tmp/$run.folded
  else
    echo "RUN: $run failed: exit $?"
  fi
  sed "s/^/RUN: $run stderr: /" /tmp/$run.err
}
"#;

/// The whole-host profile of a process started while it runs: scorch
/// (`$sp`) profiles until told to stop; once it samples (it has a perf event
/// open, once the tables of the processes already running are loaded) the
/// workload starts, and scorch stops when the workload has had two seconds
/// of CPU (utime, 14th field of its stat, in 1/100 s), however slowly the
/// emulated guest runs.
const LATE: &str = r#"cp "$qsort_spin" /tmp/qsort_spin_late
"$scorch" profile -F 99 -U -q -f --unwind dwarf 120 > /tmp/late.folded 2> /tmp/late.err &
sp=$!
tries=0
until ls -l /proc/$sp/fd 2> /dev/null | grep -q 'perf_event'; do
  tries=$((tries + 1))
  [ $tries -le 1200 ] || { echo "RUN: late failed: no perf event after 60 s"; break; }
  sleep 0.05
done
if start late /tmp/qsort_spin_late; then
  tries=0
  until [ "$(cut -d ' ' -f 14 /proc/$pid/stat)" -ge 200 ]; do
    tries=$((tries + 1))
    [ $tries -le 600 ] || { echo "RUN: late failed: not 2 s of CPU in 60 s"; break; }
    sleep 0.1
  done
fi
kill $sp
wait $sp || echo "RUN: late failed: exit $?"
kill $pid
sed 's/^/RUN: late: /' /tmp/late.folded
sed 's/^/RUN: late stderr: /' /tmp/late.err
"#;

impl UnwindRuns {
    /// The runs, booting the guest on the first call.
    fn get() -> &'static UnwindRuns {
        static RUNS: OnceLock<Result<UnwindRuns, String>> = OnceLock::new();
        RUNS.get_or_init(|| {
            std::panic::catch_unwind(Self::boot).map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            })
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("the unwinding runs in the 6.1 guest failed: {e}"))
    }

    fn boot() -> UnwindRuns {
        let scorch = scorch();
        let qsort_spin = qsort_spin_nofp();
        let qsort_spin_nocfi = qsort_spin_nocfi();
        let deep = common::deep_nofp();
        let once_new_spin = once_new_spin_nofp();
        let mixed = mixed_fp_nofp();
        let burn = rust_workload_without_frame_pointers("burn_rs");
        let files: [&Path; 7] = [
            &scorch,
            &qsort_spin,
            &qsort_spin_nocfi,
            &deep,
            &once_new_spin,
            &mixed,
            &burn,
        ];
        let [scorch_exe, qsort_exe, nocfi_exe, deep_exe, cxx_exe, mixed_exe, rust_exe] =
            files.map(|p| p.display());
        // One workload at a time, killed after its profiles: each has the
        // guest's CPUs to itself.
        let script = format!(
            "scorch={scorch_exe}\n\
             qsort_spin={qsort_exe}\n\
             {START}{PROFILE}\
             if start qsort {qsort_exe}; then\n\
               profile qsort-dwarf --unwind dwarf -p $pid 1\n\
               profile qsort-auto --unwind auto -p $pid 1\n\
               profile qsort-fp --unwind fp -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             if start nocfi {nocfi_exe}; then\n\
               profile nocfi-dwarf --unwind dwarf -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             if start signal {qsort_exe} signal; then\n\
               profile signal-dwarf --unwind dwarf -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             if start deep {deep_exe}; then\n\
               profile deep-dwarf --unwind dwarf -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             if start cxx {cxx_exe}; then\n\
               profile cxx-dwarf --unwind dwarf -p $pid 1\n\
               profile cxx-fp --unwind fp -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             if start mixed {mixed_exe}; then\n\
               profile mixed-dwarf --unwind dwarf -p $pid 1\n\
               profile mixed-fp --unwind fp -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             if start rust {rust_exe}; then\n\
               profile rust-dwarf --unwind dwarf -p $pid 1\n\
               kill $pid; wait $pid\n\
             fi\n\
             {LATE}",
        );
        UnwindRuns {
            lines: guest(&script, &files, "RUN"),
        }
    }

    /// Folded stacks of run `name`; panics if scorch or its workload failed.
    fn stacks(&self, name: &str) -> Vec<(String, u64)> {
        let failures = [name, workload(name)].map(|n| format!("{n} failed"));
        assert!(
            !self
                .lines
                .iter()
                .any(|l| failures.iter().any(|f| l.starts_with(f.as_str()))),
            "run {name} failed in the 6.1 guest:\n{}",
            self.describe(name)
        );
        let prefix = format!("{name}: ");
        folded(
            &self
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    /// What run `name` printed on stderr.
    fn stderr(&self, name: &str) -> String {
        let prefix = format!("{name} stderr: ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every line of run `name` and its workload, for assertion messages.
    fn describe(&self, name: &str) -> String {
        let runs = [
            format!("{name}: "),
            format!("{name} "),
            format!("{} failed", workload(name)),
        ];
        self.lines
            .iter()
            .filter(|l| runs.iter().any(|r| l.starts_with(r.as_str())))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The workload of run `name` (`WORKLOAD-MODE`).
fn workload(name: &str) -> &str {
    name.split('-').next().unwrap_or(name)
}

#[test]
fn dwarf_unwinding_reaches_start_through_libc_and_fp_does_not_on_linux_6_1() {
    let runs = UnwindRuns::get();
    // main -> sort_all -> qsort (libc) -> ... -> compare, which spins; no
    // frame pointers anywhere, so only the tables reach main and _start.
    // They are loaded before sampling starts: every stack is complete.
    for run in ["qsort-dwarf", "qsort-auto"] {
        let stacks = runs.stacks(run);
        let total = count(&stacks, |_| true);
        let complete = count(&stacks, chains::qsort_complete);
        assert!(
            total >= 20 && complete * 100 >= total * 99,
            "{complete} of {total} stacks reach _start through libc on 6.1:\n{}",
            runs.describe(run)
        );
        assert!(
            !runs.stderr(run).contains("frame pointers"),
            "{run} warned about frame pointers on 6.1:\n{}",
            runs.describe(run)
        );
    }

    let fp = runs.stacks("qsort-fp");
    let total = count(&fp, |_| true);
    assert!(
        total >= 20 && count(&fp, chains::qsort_leaf) * 10 >= total * 9,
        "{}",
        runs.describe("qsort-fp")
    );
    assert!(
        count(&fp, chains::reaches_main) * 10 < total,
        "frame pointers reached main on 6.1: the test proves nothing:\n{}",
        runs.describe("qsort-fp")
    );
}

#[test]
fn code_without_unwind_tables_is_reported_on_linux_6_1() {
    let runs = UnwindRuns::get();
    // compare has no row: every stack falls back to frame pointers there.
    let stacks = runs.stacks("nocfi-dwarf");
    assert!(
        count(&stacks, |_| true) >= 20,
        "{}",
        runs.describe("nocfi-dwarf")
    );
    assert_one_warning_about_missing_tables(&runs.stderr("nocfi-dwarf"));
}

#[test]
fn dwarf_unwinding_walks_through_a_signal_frame_on_linux_6_1() {
    let runs = UnwindRuns::get();
    // compare raises SIGUSR1 and the handler spins: handler -> __restore_rt
    // -> raise (libc) -> compare -> qsort (libc) -> sort_all -> main.
    let stacks = runs.stacks("signal-dwarf");
    let total = count(&stacks, |_| true);
    let through = count(&stacks, chains::signal_complete);
    assert!(
        total >= 20 && through * 100 >= total * 99,
        "{through} of {total} stacks from the handler through the signal frame to _start on 6.1:\n{}",
        runs.describe("signal-dwarf")
    );
}

#[test]
fn dwarf_unwinding_keeps_127_frames_on_linux_6_1() {
    let runs = UnwindRuns::get();
    // main -> descend x 200 -> spin: the bpf_loop walk runs its 127 steps.
    let stacks = runs.stacks("deep-dwarf");
    let total = count(&stacks, |_| true);
    let full_depth = count(&stacks, chains::deep_127_frames);
    assert!(
        total >= 20 && full_depth * 100 >= total * 99,
        "{full_depth} of {total} stacks are 127 frames deep on 6.1:\n{}",
        runs.describe("deep-dwarf")
    );
}

#[test]
fn dwarf_unwinding_reaches_main_through_libstdcxx_and_fp_does_not_on_linux_6_1() {
    let runs = UnwindRuns::get();
    // main -> call_once -> ... -> operator new (libstdc++) -> the new handler.
    let stacks = runs.stacks("cxx-dwarf");
    let total = count(&stacks, |_| true);
    let complete = count(&stacks, chains::once_new_complete);
    assert!(
        total >= 20 && complete * 100 >= total * 99,
        "{complete} of {total} stacks reach _start through libstdc++ on 6.1:\n{}",
        runs.describe("cxx-dwarf")
    );

    let fp = runs.stacks("cxx-fp");
    let total = count(&fp, |_| true);
    assert!(
        total >= 20 && count(&fp, chains::once_new_leaf) * 10 >= total * 9,
        "{}",
        runs.describe("cxx-fp")
    );
    assert!(
        count(&fp, chains::reaches_main) * 10 < total,
        "frame pointers reached main on 6.1: the test proves nothing:\n{}",
        runs.describe("cxx-fp")
    );
}

#[test]
fn dwarf_unwinding_walks_a_chain_mixing_frame_pointers_and_tables_on_linux_6_1() {
    let runs = UnwindRuns::get();
    let stacks = runs.stacks("mixed-dwarf");
    let total = count(&stacks, |_| true);
    let whole = count(&stacks, chains::mixed_complete);
    assert!(
        total >= 20 && whole * 100 >= total * 99,
        "{whole} of {total} stacks hold the whole chain on 6.1:\n{}",
        runs.describe("mixed-dwarf")
    );

    // Frame pointers go wrong at spin_nofp and skip second_fp and main.
    let fp = runs.stacks("mixed-fp");
    let total = count(&fp, |_| true);
    let skipping = count(&fp, chains::mixed_fp_skipping);
    assert!(
        total >= 20 && skipping * 10 >= total * 9,
        "{skipping} of {total} frame-pointer stacks skip second_fp and main on 6.1:\n{}",
        runs.describe("mixed-fp")
    );
}

#[test]
fn dwarf_unwinding_reaches_start_in_a_rust_release_build_on_linux_6_1() {
    let runs = UnwindRuns::get();
    let stacks = runs.stacks("rust-dwarf");
    let total = count(&stacks, |_| true);
    let complete = count(&stacks, chains::rust_complete);
    assert!(
        total >= 20 && complete * 100 >= total * 99,
        "{complete} of {total} stacks reach _start on 6.1:\n{}",
        runs.describe("rust-dwarf")
    );
}

#[test]
fn dwarf_unwinding_loads_the_tables_of_a_process_started_during_a_host_profile_on_linux_6_1() {
    let runs = UnwindRuns::get();
    // Started once the whole-host profile samples, and sampled for two
    // seconds of its CPU time: its first samples walk
    // frame pointers (cut short at compare) until its tables are loaded, a
    // tick after it is first sampled; then the rest reach main.
    let context = format!("on 6.1:\n{}", runs.describe("late"));
    assert_qsort_mostly_complete(&runs.stacks("late"), "qsort_spin_late", &context);
}
