//! The in-kernel unwinder on the running kernel: a C program built without
//! frame pointers spins in a qsort comparator; with tables its sampled user
//! stacks reach `main` and `_start` through libc, with frame pointers they
//! do not. Where a workload's stack is fixed, the in-kernel unwinder's
//! stacks must equal the reference unwinder's on the same process.

mod workloads;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use scorch_bpf::{
    online_cpus, Event, Rate, Sampler, SamplerConfig, Snapshot, StackId, Target, UserUnwind,
};
use scorch_unwind::unwind::{AddressSpace, Registers, StackSnapshot, Stop};
use scorch_unwind::TableCache;

/// `tests/workloads/qsort_spin.c` built once with `-O2 -fomit-frame-pointer`
/// (tests run in parallel: rebuilding under a running workload would race).
fn workload() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_c("qsort_spin")).clone()
}

/// `tests/workloads/lost_rbp.c`, built once like [`workload`].
fn lost_rbp_workload() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_c("lost_rbp")).clone()
}

/// Builds `tests/workloads/NAME.c` without frame pointers as `NAME_nofp`.
fn build_c(name: &str) -> PathBuf {
    workloads::c_without_frame_pointers(name, &format!("{name}_nofp"))
}

/// A running workload, killed when dropped.
struct Workload(Child);

impl Workload {
    fn start(exe: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("workload starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(pid: u32) -> SamplerConfig {
    SamplerConfig {
        target: Target::Pids(vec![pid]),
        rate: Rate::Frequency(499),
        event: Event::CpuClock,
        cpus: online_cpus().expect("online CPUs"),
        user_stacks: true,
        kernel_stacks: true,
        include_idle: false,
        per_thread: false,
        stack_storage_size: 4096,
        max_keys: 4096,
        double_buffered: false,
        track_pids: false,
        off_cpu: None,
    }
}

/// Function names of the workload's own symbols (`readelf -Ws`), by address.
fn symbols(exe: &Path) -> Vec<(u64, u64, String)> {
    let out = Command::new("readelf")
        .arg("-Ws")
        .arg(exe)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[3] == "FUNC" && f[6] != "UND").then(|| {
                Some((
                    u64::from_str_radix(f[1], 16).ok()?,
                    f[2].parse().ok()?,
                    f[7].to_owned(),
                ))
            })?
        })
        .collect()
}

/// The workload's function names in each sampled user stack, with the stack's count.
fn named_stacks(snapshot: &Snapshot, pid: u32, exe: &Path) -> Vec<(Vec<String>, u64)> {
    let space = AddressSpace::of_process(pid, &mut TableCache::new()).unwrap();
    let syms = symbols(exe);
    let exe_name = exe.to_str().unwrap();
    let mut out = Vec::new();
    for count in &snapshot.counts {
        let StackId::Id(id) = count.user else {
            out.push((Vec::new(), count.count));
            continue;
        };
        let names = name_stack(
            snapshot.stack(id).unwrap_or_default(),
            &space,
            &syms,
            exe_name,
        );
        out.push((names, count.count));
    }
    out
}

/// The workload's function names (`?` elsewhere) of a stack's addresses, leaf first.
fn name_stack(
    stack: &[u64],
    space: &AddressSpace,
    syms: &[(u64, u64, String)],
    exe_name: &str,
) -> Vec<String> {
    stack
        .iter()
        .enumerate()
        .map(|(i, &address)| {
            let lookup = if i == 0 { address } else { address - 1 };
            space
                .find(lookup)
                .filter(|m| m.path == exe_name)
                .and_then(|m| m.vaddr(lookup))
                .and_then(|v| {
                    syms.iter()
                        .find(|(a, size, _)| *a <= v && v < a + size)
                        .map(|(_, _, n)| n.clone())
                })
                .unwrap_or_else(|| "?".to_owned())
        })
        .collect()
}

/// Samples `pid` for a second with `unwind`; returns the named stacks and the counters.
fn profile(
    exe: &Path,
    pid: u32,
    unwind: UserUnwind,
) -> (Vec<(Vec<String>, u64)>, scorch_bpf::Counters) {
    let with_tables = !matches!(unwind, UserUnwind::FramePointers);
    let mut sampler = Sampler::start_unwinding(&config(pid), unwind).expect("sampler starts");
    let loaded = sampler.load_target_tables().loaded.len();
    assert_eq!(loaded, usize::from(with_tables));
    std::thread::sleep(Duration::from_secs(1));
    sampler.stop();
    let snapshot = sampler.drain().unwrap();
    (
        named_stacks(&snapshot, pid, exe),
        sampler.counters().unwrap(),
    )
}

fn share(stacks: &[(Vec<String>, u64)], pred: impl Fn(&[String]) -> bool) -> f64 {
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    let hits: u64 = stacks.iter().filter(|(s, _)| pred(s)).map(|(_, c)| c).sum();
    hits as f64 / total.max(1) as f64
}

/// Share of the samples taken once the tables were loaded that satisfy
/// `pred` (the first few, before loading, walk frame pointers: counted).
fn share_with_tables(
    stacks: &[(Vec<String>, u64)],
    counters: &scorch_bpf::Counters,
    pred: impl Fn(&[String]) -> bool,
) -> f64 {
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    let with_tables = total.saturating_sub(counters.user_without_tables);
    assert!(
        with_tables * 2 >= total,
        "most samples came before the tables were loaded: {counters:?}"
    );
    let hits: u64 = stacks.iter().filter(|(s, _)| pred(s)).map(|(_, c)| c).sum();
    hits as f64 / with_tables.max(1) as f64
}

#[test]
fn tables_reach_main_where_frame_pointers_do_not() {
    let exe = workload();
    let workload = Workload::start(&exe, &[]);
    let tables = UserUnwind::Tables {
        rows: 1 << 20,
        processes: 16,
    };
    let (stacks, counters) = profile(&exe, workload.pid(), tables);
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    assert!(total >= 50, "only {total} samples: {counters:?}");
    let complete = |s: &[String]| {
        s.first().is_some_and(|f| f == "compare")
            && s.iter().any(|f| f.starts_with("sort_all"))
            && s.iter().any(|f| f == "main")
            && s.last().is_some_and(|f| f == "_start")
    };
    let by_tables = share_with_tables(&stacks, &counters, complete);
    assert!(
        by_tables >= 0.9,
        "{:.0}% complete stacks with tables: {stacks:?} {counters:?}",
        by_tables * 100.0
    );

    let (fp_stacks, _) = profile(&exe, workload.pid(), UserUnwind::FramePointers);
    let reach_main = share(&fp_stacks, |s| s.iter().any(|f| f == "main"));
    assert!(
        reach_main < 0.1,
        "frame pointers reached main in {:.0}%: the test proves nothing: {fp_stacks:?}",
        reach_main * 100.0
    );
}

#[test]
fn a_process_without_tables_falls_back_to_frame_pointers_and_is_counted() {
    let exe = workload();
    let workload = Workload::start(&exe, &[]);
    // A row map too small for any table: every mapping is left without one.
    let unwind = UserUnwind::Tables {
        rows: 1,
        processes: 16,
    };
    let mut sampler =
        Sampler::start_unwinding(&config(workload.pid()), unwind).expect("sampler starts");
    sampler.load_target_tables();
    std::thread::sleep(Duration::from_millis(600));
    sampler.stop();
    let snapshot = sampler.drain().unwrap();
    let counters = sampler.counters().unwrap();
    assert!(snapshot.total() > 0);
    assert_eq!(
        counters.user_frame_pointer,
        snapshot.total(),
        "every stack needed frame pointers: {counters:?}"
    );
    let mut seen = HashMap::new();
    for (names, count) in named_stacks(&snapshot, workload.pid(), &exe) {
        *seen.entry(names.first().cloned()).or_insert(0) += count;
    }
    assert!(seen.contains_key(&Some("compare".to_owned())), "{seen:?}");
}

#[test]
fn unwinds_through_a_signal_frame() {
    let exe = workload();
    // The handler spins on the stack of the interrupted comparator.
    let workload = Workload::start(&exe, &["signal"]);
    let tables = UserUnwind::Tables {
        rows: 1 << 20,
        processes: 16,
    };
    let (stacks, counters) = profile(&exe, workload.pid(), tables);
    let through_signal = |s: &[String]| {
        let at = |name: &str| s.iter().position(|f| f.starts_with(name));
        s.first().is_some_and(|f| f == "handler")
            && matches!(
                (at("compare"), at("sort_all"), at("main")),
                (Some(c), Some(s), Some(m)) if c < s && s < m
            )
            && s.last().is_some_and(|f| f == "_start")
    };
    let complete = share_with_tables(&stacks, &counters, through_signal);
    assert!(
        complete >= 0.9,
        "{:.0}% unwound through the signal frame: {stacks:?} {counters:?}",
        complete * 100.0
    );
}

/// The registers and stack (up to the end of `[stack]`) of `pid`, stopped a
/// moment with ptrace; the process runs on afterwards, still seized.
fn capture(pid: u32) -> (Registers, StackSnapshot) {
    let pid = pid as libc::pid_t;
    // SAFETY: ptrace requests on our own child; regs is written by the kernel.
    let regs = unsafe {
        assert_eq!(
            libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0),
            0,
            "PTRACE_SEIZE"
        );
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, libc::__WALL), pid);
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        let got = libc::ptrace(
            libc::PTRACE_GETREGS,
            pid,
            0,
            &mut regs as *mut libc::user_regs_struct,
        );
        assert_eq!(got, 0, "PTRACE_GETREGS");
        regs
    };
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let end = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| u64::from_str_radix(l.split('-').nth(1)?.split(' ').next()?, 16).ok())
        .expect("a [stack] mapping");
    let mut bytes = vec![0u8; (end - regs.rsp) as usize];
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut bytes, regs.rsp).unwrap();
    // SAFETY: as above.
    unsafe { assert_eq!(libc::ptrace(libc::PTRACE_CONT, pid, 0, 0), 0) };
    let registers = Registers {
        rip: regs.rip,
        rsp: regs.rsp,
        rbp: regs.rbp,
    };
    (
        registers,
        StackSnapshot {
            base: regs.rsp,
            bytes,
        },
    )
}

#[test]
fn a_saved_rbp_is_used_again_after_a_frame_that_lost_it() {
    // lost_rbp keeps RBP where no table says; saves_rbp saved it on the
    // stack; deep_rbp's CFA is RBP-based: only an unwinder that takes the
    // saved RBP back gets past deep_rbp to main.
    let exe = lost_rbp_workload();
    let workload = Workload::start(&exe, &[]);
    let tables = UserUnwind::Tables {
        rows: 1 << 20,
        processes: 16,
    };
    let mut sampler = Sampler::start_unwinding(&config(workload.pid()), tables).expect("sampler");
    assert_eq!(sampler.load_target_tables().loaded.len(), 1);
    std::thread::sleep(Duration::from_secs(1));
    sampler.stop();
    let snapshot = sampler.drain().unwrap();
    let counters = sampler.counters().unwrap();

    // The reference unwinder over the same process, stopped in the spin.
    let space = AddressSpace::of_process(workload.pid(), &mut TableCache::new()).unwrap();
    let (regs, stack) = capture(workload.pid());
    let reference = scorch_unwind::unwind(regs, &space, &stack, scorch_bpf::sampler::MAX_DEPTH);
    let expected: Vec<u64> = reference.frames.iter().map(|f| f.address).collect();
    let names = name_stack(&expected, &space, &symbols(&exe), exe.to_str().unwrap());
    assert_eq!(reference.stop, Stop::End, "reference: {names:?}");
    let chain = ["lost_rbp", "saves_rbp", "deep_rbp", "main"];
    assert_eq!(names[..4], chain, "reference: {names:?}");

    let total = snapshot.total();
    let same: u64 = snapshot
        .counts
        .iter()
        .filter(|c| matches!(c.user, StackId::Id(id) if snapshot.stack(id) == Some(&expected[..])))
        .map(|c| c.count)
        .sum();
    let with_tables = total.saturating_sub(counters.user_without_tables);
    assert!(
        total >= 50 && same * 10 >= with_tables * 9,
        "{same} of {with_tables} samples with tables unwound as the reference {names:?}: {:?} {counters:?}",
        named_stacks(&snapshot, workload.pid(), &exe)
    );
}

#[test]
fn tables_are_loaded_again_after_an_exec() {
    // A shell that execs the workload once told to: same pid, new program.
    let exe = workload();
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; exec {}", exe.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let pid = shell.id();
    let tables = UserUnwind::Tables {
        rows: 1 << 20,
        processes: 16,
    };
    let mut sampler = Sampler::prepare(&config(pid), tables).expect("sampler");
    assert!(sampler.load_tables(pid).unwrap().is_some());
    assert_eq!(
        sampler.refresh_tables(pid).unwrap(),
        None,
        "the same program was loaded again"
    );

    use std::io::Write;
    writeln!(shell.stdin.take().unwrap()).unwrap();
    let mut line = String::new();
    BufReader::new(shell.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let reloaded = sampler.refresh_tables(pid).unwrap();
    let _ = shell.kill();
    let _ = shell.wait();
    let reloaded = reloaded.expect("the exec'd program's tables were not loaded");
    assert!(reloaded.with_table >= 2, "{reloaded:?}");
}
