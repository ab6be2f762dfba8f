//! Raw tracepoints and software/hardware perf events on the running kernel.
//!
//! As in `runtime.rs`, each program filters on the thread id of a
//! workload that runs once the probes are attached, so the counts are
//! those of the workload alone. Needs root; skips with the reason
//! printed otherwise.

mod harness;

use harness::{serial, trace, trace_with};
use scorch_lang::{RunError, RunOptions};

/// Opens three files, fails to open a fourth, then calls `getppid`,
/// which the programs below take as the signal to stop.
fn opens_then_getppid() {
    for _ in 0..3 {
        let _ = std::fs::File::open("/etc/hostname");
    }
    let _ = std::fs::File::open("/nonexistent/scorch");
    // SAFETY: getppid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getppid) };
}

#[test]
fn raw_tracepoint_arguments() {
    let Some(_serial) = serial() else {
        return;
    };
    let (openat, getppid) = (libc::SYS_openat, libc::SYS_getppid);
    let o = trace(
        |tid| {
            format!(
                "rt:sys_enter /tid == {tid} && arg1 == {openat}/ {{ @opens = count(); }}
                 rt:sys_exit /tid == {tid} && (int64)arg1 == -2/ {{ @enoent = count(); }}
                 rawtracepoint:sys_enter /tid == {tid} && arg1 == {getppid}/ {{ printf(\"%s\\n\", probe); exit(); }}"
            )
        },
        opens_then_getppid,
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        "rawtracepoint:sys_enter\n\n\n@enoent: 1\n@opens: 4\n"
    );
    assert_eq!(o.err, "Attached 3 probes\n");
}

#[test]
fn raw_tracepoint_wildcards_attach_each_match() {
    let Some(_serial) = serial() else {
        return;
    };
    let getppid = libc::SYS_getppid;
    let o = trace(
        |tid| {
            format!(
                "rt:sys_e* /tid == {tid}/ {{ @[probe] = count(); }}
                 rt:sys_enter /tid == {tid} && arg1 == {getppid}/ {{ exit(); }}"
            )
        },
        opens_then_getppid,
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.err.starts_with("Attached 3 probes\n"), "{}", o.err);
    // Every syscall of the workload enters and exits; getppid enters.
    let count = |name: &str| -> u64 {
        let prefix = format!("@[rawtracepoint:{name}]: ");
        o.out
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {}", o.out))
            .parse()
            .unwrap()
    };
    assert!(count("sys_enter") >= 5, "{}", o.out);
    assert!(count("sys_exit") >= 4, "{}", o.out);
}

#[test]
fn software_page_faults_count_the_pages_touched() {
    let Some(_serial) = serial() else {
        return;
    };
    const PAGES: usize = 64;
    let getppid = libc::SYS_getppid;
    let o = trace(
        |tid| {
            format!(
                "software:page-faults:1 /tid == {tid}/ {{ @faults = count(); }}
                 s:faults:1000000 /tid == {tid}/ {{ @rare = count(); }}
                 rt:sys_enter /tid == {tid} && arg1 == {getppid}/ {{ exit(); }}"
            )
        },
        || {
            // SAFETY: a fresh private anonymous mapping, unmapped below.
            unsafe {
                let len = PAGES * 4096;
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                for page in 0..PAGES {
                    std::ptr::write_volatile(p.cast::<u8>().add(page * 4096), 1);
                }
                libc::syscall(libc::SYS_getppid);
                libc::munmap(p, len);
            }
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let faults: u64 = o
        .out
        .strip_prefix("\n\n@faults: ")
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {:?}", o.out));
    // One fault per page touched, and a few more for the stack or libc;
    // the one-in-a-million probe never fires.
    assert!(
        (PAGES as u64..PAGES as u64 + 32).contains(&faults),
        "{faults}"
    );
}

#[test]
fn software_cpu_clock_fires_on_every_cpu() {
    let Some(_serial) = serial() else {
        return;
    };
    // 1 ms of CPU time per sample: an idle CPU still ticks.
    let o = trace_with(
        |_| "s:cpu-clock:1000000 { @[cpu] = count(); } interval:ms:300 { exit(); }".into(),
        RunOptions::default(),
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let cpus = scorch_bpf::online_cpus().unwrap();
    let rows: Vec<&str> = o.out.lines().filter(|l| l.starts_with("@[")).collect();
    assert!(!rows.is_empty() && rows.len() <= cpus.len(), "{}", o.out);
}

/// Whether this machine has a CPU PMU (bare metal usually, VMs rarely).
fn has_pmu() -> bool {
    ["cpu", "cpu_core", "armv8_pmuv3_0"].iter().any(|d| {
        std::path::Path::new("/sys/bus/event_source/devices")
            .join(d)
            .exists()
    })
}

#[test]
fn hardware_events_need_a_pmu() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| "hardware:cycles:100000 { @ = count(); } interval:ms:200 { exit(); }".into(),
        || {},
    );
    if has_pmu() {
        assert_eq!(o.result, Ok(0), "{}", o.err);
        assert!(o.out.starts_with("\n\n@: "), "{}", o.out);
        return;
    }
    let Err(RunError::Bpf(text)) = o.result else {
        panic!("expected an attach error without a PMU, got {:?}", o.result);
    };
    assert_eq!(
        text,
        "attaching hardware:cpu-cycles:100000: opening the cpu-cycles perf event on CPU 0: \
         this machine has no hardware PMU for it (common in VMs); use a software event such \
         as software:cpu-clock: No such file or directory (os error 2)"
    );
}

#[test]
fn lists_raw_tracepoints_from_the_kernel_btf() {
    if !std::path::Path::new(scorch_bpf::btf::VMLINUX).exists() {
        eprintln!(
            "skipped: this kernel has no BTF at {}",
            scorch_bpf::btf::VMLINUX
        );
        return;
    }
    let kernel = scorch_lang::sema::TraceFs::new(scorch_bpf::mounts::TRACEFS);
    let mut out = Vec::new();
    scorch_lang::runtime::list("rt:sched_switch", &kernel, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "rawtracepoint:sched_switch\n"
    );
    let all = scorch_bpf::btf::raw_tracepoints(scorch_bpf::btf::VMLINUX).unwrap();
    assert!(all.len() > 100, "only {} raw tracepoints", all.len());
    let sys_enter = all.iter().find(|t| t.name == "sys_enter").unwrap();
    assert_eq!(sys_enter.args, 2, "sys_enter passes (regs, id)");
}
