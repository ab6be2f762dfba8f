//! Uprobes and kprobes on the running kernel, without the compiler: a
//! hand-assembled program adds a `pt_regs` register of every hit into a map,
//! so the sum proves both that the probe fired and that it saw the right
//! argument or return value. Needs root; skips with the reason otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use scorch_bpf::btf_link::{self, BtfLink};
use scorch_bpf::btf_types::KernelTypes;
use scorch_bpf::elf_symbols::{function_symbols, resolve_binary, symbol_offset};
use scorch_bpf::insn::{Alu, Cond, Insn, Size, R0, R1, R10, R2, R3, R6, R7};
use scorch_bpf::map;
use scorch_bpf::probe::{attach, ProbePoint};
use scorch_bpf::program::{Program, ProgramType};
use scorch_bpf::usdt::{self, ArgLocation};
use scorch_bpf::watchpoint;

/// Offsets in x86_64 `struct pt_regs`.
const PT_REGS_AX: i16 = 80;
const PT_REGS_DI: i16 = 112;

fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: loading BPF programs needs root");
    }
    root
}

/// A program that adds the value `load` leaves in R1 (with the context in
/// R6; it may use the stack below fp-8) into slot 0 of `sum` and counts
/// hits in slot 1.
fn summing_program(sum: &MapHandle, load: &[Insn]) -> Program {
    summing_program_of_type(ProgramType::Kprobe, sum, load).expect("load")
}

/// [`summing_program`] loaded as `ty`.
fn summing_program_of_type(
    ty: ProgramType,
    sum: &MapHandle,
    load: &[Insn],
) -> scorch_bpf::Result<Program> {
    use std::os::fd::{AsFd, AsRawFd};
    let fd = sum.as_fd().as_raw_fd();
    let mut insns = vec![Insn::mov64_reg(R6, R1)];
    insns.extend_from_slice(load);
    insns.push(Insn::mov64_reg(R7, R1));
    for slot in [0, 1] {
        insns.push(Insn::store_imm(Size::W, R10, -4, slot));
        insns.extend(Insn::ld_map_fd(R1, fd));
        insns.extend([
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(Alu::Add, R2, -4),
            Insn::call(libbpf_sys::BPF_FUNC_map_lookup_elem),
            Insn::jmp_imm(Cond::Eq, R0, 0, 2),
            match slot {
                0 => Insn::mov64_reg(R1, R7),
                _ => Insn::mov64_imm(R1, 1),
            },
            Insn::atomic_add(Size::DW, R0, 0, R1),
        ]);
    }
    insns.extend([Insn::mov64_imm(R0, 0), Insn::exit()]);
    Program::load(ty, "test_probe_sum", &insns)
}

/// Loads the `pt_regs` register at `offset` into R1.
fn register(offset: i16) -> [Insn; 1] {
    [Insn::load(Size::DW, R1, R6, offset)]
}

fn read(sum: &MapHandle, slot: u32) -> u64 {
    let v = sum
        .lookup(&slot.to_ne_bytes(), MapFlags::ANY)
        .unwrap()
        .unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// Builds (once per run) C `source` as `name` with gcc -O1.
fn build_c(name: &str, source: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let exe = dir.join(name);
    if !built.iter().any(|b| b == name) {
        let src = dir.join(format!("{name}.c"));
        std::fs::write(&src, source).unwrap();
        let status = Command::new("gcc")
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(&src)
            .status()
            .expect("gcc");
        assert!(status.success(), "building {name}");
        built.push(name.to_string());
    }
    exe
}

/// A program whose `probed(i)` returns `2 i + 1`, called for i in 0..N
/// (N its argument) once a line arrives on stdin. Built under a name of the
/// test's own: a probe on a file fires in every process running it, so
/// tests running at once must not share one.
fn target(name: &str) -> PathBuf {
    build_c(
        name,
        "#include <stdio.h>\n#include <stdlib.h>\n\
         __attribute__((noinline)) long probed(long i) { return 2 * i + 1; }\n\
         int main(int argc, char **argv) {\n\
           char line[8]; volatile long s = 0; long n = atol(argv[1]);\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < n; i++) s += probed(i);\n\
           return 0;\n\
         }\n",
    )
}

/// Like [`target`]'s, but the loop fires the USDT probe `scorch:tick(i, 2 i + 1)`
/// only while its semaphore is set.
fn usdt_target() -> PathBuf {
    build_c(
        "usdt_probed",
        "#define _SDT_HAS_SEMAPHORES 1\n\
         #include <stdio.h>\n#include <stdlib.h>\n\
         unsigned short scorch_tick_semaphore __attribute__((section(\".probes\")));\n\
         #include <sys/sdt.h>\n\
         int main(int argc, char **argv) {\n\
           char line[8]; long n = atol(argv[1]);\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < n; i++)\n\
             if (*(volatile unsigned short *)&scorch_tick_semaphore)\n\
               STAP_PROBE2(scorch, tick, i, 2 * i + 1);\n\
           return 0;\n\
         }\n",
    )
}

fn start(exe: &Path, n: u64) -> Child {
    Command::new(exe)
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the probed program")
}

fn go(mut child: Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn uprobe_sees_arguments_and_uretprobe_return_values() {
    if !privileged() {
        return;
    }
    let exe = target("probed_sums");
    let offset = symbol_offset(&exe, "probed").expect("probed's offset");
    let n = 1000u64;
    for (ret, reg, expected) in [
        (false, PT_REGS_DI, n * (n - 1) / 2), // sum of i
        (true, PT_REGS_AX, n * n),            // sum of 2 i + 1
    ] {
        let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
        let program = summing_program(&sum, &register(reg));
        let point = ProbePoint::User {
            path: &exe,
            offset,
            ret,
            pid: None,
            semaphore: 0,
        };
        let link = attach(&program, &point).expect("attach");
        go(start(&exe, n));
        assert_eq!(read(&sum, 1), n, "hits of {}", point.describe());
        assert_eq!(read(&sum, 0), expected, "sum at {}", point.describe());
        drop(link);
        go(start(&exe, n));
        assert_eq!(read(&sum, 1), n, "still attached after drop");
    }
}

#[test]
fn uprobe_with_a_pid_fires_in_that_process_only() {
    if !privileged() {
        return;
    }
    let exe = target("probed_pid");
    let offset = symbol_offset(&exe, "probed").expect("offset");
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let program = summing_program(&sum, &register(PT_REGS_DI));
    let (watched, other) = (start(&exe, 10), start(&exe, 500));
    let point = ProbePoint::User {
        path: &exe,
        offset,
        ret: false,
        pid: Some(watched.id()),
        semaphore: 0,
    };
    let _link = attach(&program, &point).expect("attach");
    go(other);
    go(watched);
    assert_eq!(read(&sum, 1), 10);
    assert_eq!(read(&sum, 0), 45);
}

#[test]
fn uprobe_errors_name_the_problem() {
    if !privileged() {
        return;
    }
    let exe = target("probed_errors");
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let program = summing_program(&sum, &register(PT_REGS_DI));
    let gone = ProbePoint::User {
        path: Path::new("/no/such/binary"),
        offset: 0x1000,
        ret: false,
        pid: None,
        semaphore: 0,
    };
    let err = attach(&program, &gone).unwrap_err().to_string();
    assert!(err.contains("/no/such/binary does not exist"), "{err}");
    let offset = symbol_offset(&exe, "probed").unwrap();
    let no_process = ProbePoint::User {
        path: &exe,
        offset,
        ret: false,
        pid: Some(i32::MAX as u32),
        semaphore: 0,
    };
    let err = attach(&program, &no_process).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    let scorch_itself = ProbePoint::User {
        path: &exe,
        offset,
        ret: false,
        pid: Some(0),
        semaphore: 0,
    };
    let err = attach(&program, &scorch_itself).unwrap_err().to_string();
    assert!(err.contains("give the PID of a user process"), "{err}");
}

/// Loads a USDT argument into R1 from where its note says it is.
fn usdt_arg(location: &ArgLocation) -> Vec<Insn> {
    match *location {
        ArgLocation::Register(offset) => register(offset as i16).to_vec(),
        ArgLocation::Constant(value) => Insn::ld_imm64(R1, value as u64).to_vec(),
        ArgLocation::Memory { base, displacement } => {
            // probe_read_user(fp - 16, 8, regs[base] + displacement); r1 = *(fp - 16)
            let mut insns = vec![Insn::load(Size::DW, R3, R6, base as i16)];
            insns.extend(Insn::ld_imm64(R2, displacement as u64));
            insns.extend([
                Insn::alu64_reg(Alu::Add, R3, R2),
                Insn::mov64_reg(R1, R10),
                Insn::alu64_imm(Alu::Add, R1, -16),
                Insn::mov64_imm(R2, 8),
                Insn::call(libbpf_sys::BPF_FUNC_probe_read_user),
                Insn::load(Size::DW, R1, R10, -16),
            ]);
            insns
        }
        ArgLocation::Unsupported(ref spec) => {
            panic!("gcc wrote an argument we cannot read: {spec}")
        }
    }
}

#[test]
fn usdt_probe_with_a_semaphore_fires_and_reads_its_arguments() {
    if !privileged() {
        return;
    }
    let exe = usdt_target();
    let probes = usdt::probes(&exe).expect("notes");
    let tick = probes
        .iter()
        .find(|p| p.provider == "scorch" && p.name == "tick")
        .unwrap_or_else(|| panic!("no scorch:tick in {probes:?}"));
    assert_ne!(tick.semaphore, 0, "{tick:?}");
    assert_eq!(tick.args.len(), 2, "{tick:?}");
    assert_eq!(
        (tick.args[1].size, tick.args[1].signed),
        (8, true),
        "{tick:?}"
    );
    let n = 300u64;
    for (semaphore, hits, sum) in [(0, 0, 0), (tick.semaphore, n, n * n)] {
        let map = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
        let program = summing_program(&map, &usdt_arg(&tick.args[1].location));
        let point = ProbePoint::User {
            path: &exe,
            offset: tick.offset,
            ret: false,
            pid: None,
            semaphore,
        };
        let _link = attach(&program, &point).expect("attach");
        go(start(&exe, n));
        // Without the semaphore the guarded probe never runs.
        assert_eq!(
            (read(&map, 1), read(&map, 0)),
            (hits, sum),
            "semaphore {semaphore:#x}"
        );
    }
}

#[test]
fn watchpoint_counts_writes_to_an_address() {
    if !privileged() {
        return;
    }
    let exe = build_c(
        "watched",
        "#include <stdio.h>\n#include <stdlib.h>\n\
         volatile long counter;\n\
         int main(int argc, char **argv) {\n\
           char line[8]; long n = atol(argv[1]);\n\
           printf(\"%p\\n\", (void *)&counter); fflush(stdout);\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < n; i++) counter += i;\n\
           return 0;\n\
         }\n",
    );
    let mut child = Command::new(&exe)
        .arg("1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let address = u64::from_str_radix(line.trim().trim_start_matches("0x"), 16).expect("address");
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let program =
        summing_program_of_type(ProgramType::PerfEvent, &sum, &[Insn::mov64_imm(R1, 0)]).unwrap();
    let writes = watchpoint::Access::parse("w").unwrap();
    let err = watchpoint::attach(&program, child.id(), address + 1, 8, writes).unwrap_err();
    assert!(err.to_string().contains("aligned"), "{err}");
    let execute = watchpoint::Access::parse("x").unwrap();
    let err = watchpoint::attach(&program, child.id(), address, 1, execute).unwrap_err();
    assert!(err.to_string().contains("over 8 bytes"), "{err}");
    let err = watchpoint::attach(&program, 0, address, 8, writes).unwrap_err();
    assert!(err.to_string().contains("PID of a user process"), "{err}");
    let link = watchpoint::attach(&program, child.id(), address, 8, writes).expect("attach");
    go(child);
    assert_eq!(read(&sum, 1), 1000);
    drop(link);
}

#[test]
fn tp_btf_reads_typed_task_pointers_directly() {
    if !privileged() {
        return;
    }
    // sched_switch(preempt, prev, next, prev_state): count prev->pid == us.
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    let task = types.struct_named("task_struct").unwrap();
    let pid = types.member(task, "pid").expect("task_struct.pid");
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let load = [
        Insn::load(Size::DW, R1, R6, 8),
        Insn::load(Size::W, R1, R1, (pid.offset_bits / 8) as i16),
        Insn::jmp_imm(Cond::Eq, R1, tid, 2),
        Insn::mov64_imm(R1, 0),
        Insn::ja(1),
        Insn::mov64_imm(R1, 1),
    ];
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let ty = btf_link::tp_btf_type("sched_switch").expect("btf_trace_sched_switch");
    let program = summing_program_of_type(ty, &sum, &load).expect("the verifier takes prev->pid");
    let _link = BtfLink::attach(&program).expect("attach");
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(
        read(&sum, 0) >= 20,
        "{} switches away from us",
        read(&sum, 0)
    );
    assert!(read(&sum, 1) > read(&sum, 0));
    let err = btf_link::tp_btf_type("no_such_tracepoint").unwrap_err();
    assert!(
        err.to_string()
            .contains("no raw tracepoint `no_such_tracepoint`"),
        "{err}"
    );
}

#[test]
fn kernel_functions_include_well_known_ones() {
    if !privileged() {
        return;
    }
    scorch_bpf::mounts::ensure_mounted().expect("tracefs");
    let functions = scorch_bpf::probe::kernel_functions(scorch_bpf::mounts::TRACEFS).expect("list");
    for name in ["do_nanosleep", "vfs_read", "schedule"] {
        assert!(
            functions.binary_search(&name.to_string()).is_ok(),
            "{name} missing"
        );
    }
}

#[test]
fn symbols_of_a_library_found_by_name() {
    let libc = resolve_binary("libc", None).expect("libc");
    let mallocs = function_symbols(&libc, |name| name.starts_with("malloc")).expect("symbols");
    assert!(mallocs.iter().any(|s| s.name == "malloc"), "{mallocs:?}");
}

#[test]
fn kprobe_fires_where_the_kernel_has_kprobes_and_says_why_not_elsewhere() {
    if !privileged() {
        return;
    }
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let program = summing_program(&sum, &register(PT_REGS_DI));
    let point = ProbePoint::Kernel {
        function: "do_nanosleep",
        offset: 0,
        ret: false,
    };
    let has_kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    if std::env::var_os("SCORCH_REQUIRE_KPROBES").is_some() {
        assert!(has_kprobes, "this kernel was expected to have kprobes");
    }
    match attach(&program, &point) {
        Ok(_link) => {
            assert!(has_kprobes);
            std::thread::sleep(std::time::Duration::from_millis(10));
            assert!(read(&sum, 1) >= 1, "our own sleep was not seen");
        }
        Err(err) => {
            assert!(!has_kprobes, "kprobes exist but attaching failed: {err}");
            let err = err.to_string();
            assert!(
                err.contains("no kprobe PMU") && err.contains("CONFIG_KPROBES"),
                "{err}"
            );
        }
    }
}

#[test]
fn fentry_and_fexit_fire_where_the_kernel_has_trampolines_and_say_why_not_elsewhere() {
    if !privileged() {
        return;
    }
    for exit in [false, true] {
        let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
        let ty = btf_link::fentry_type("do_nanosleep", exit).expect("do_nanosleep in BTF");
        let loaded = summing_program_of_type(ty, &sum, &register(0))
            .map_err(|e| btf_link::explain_fentry_error(e, "do_nanosleep"));
        let link = loaded.and_then(|program| BtfLink::attach(&program));
        match link {
            Ok(_link) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                assert!(read(&sum, 1) >= 1, "our own sleep was not seen");
            }
            Err(err) => {
                assert!(
                    std::env::var_os("SCORCH_REQUIRE_KPROBES").is_none(),
                    "{err}"
                );
                let err = err.to_string();
                assert!(
                    err.contains("cannot load fentry/fexit programs for `do_nanosleep`")
                        && err.contains("use kprobe:do_nanosleep"),
                    "{err}"
                );
            }
        }
    }
    let err = btf_link::fentry_type("no_such_kernel_function", false).unwrap_err();
    assert!(
        err.to_string()
            .contains("has no function `no_such_kernel_function`"),
        "{err}"
    );
}

/// Runs the kprobe and fentry tests above inside Debian's 6.1 kernel, which
/// has both (our development kernel does not): see `tests/guest/boot.sh`.
#[test]
fn kprobe_and_fentry_fire_on_linux_6_1() {
    if !privileged() {
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-kprobe.sh");
    std::fs::write(
        &script,
        format!(
            "SCORCH_REQUIRE_KPROBES=1 {} --test-threads 1 \\\n\
             kprobe_fires_where_the_kernel_has_kprobes_and_says_why_not_elsewhere \\\n\
             fentry_and_fexit_fire_where_the_kernel_has_trampolines_and_say_why_not_elsewhere\n",
            me.display()
        ),
    )
    .unwrap();
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guest/boot.sh");
    let out = Command::new("bash")
        .arg(boot)
        .arg(&script)
        .arg(&me)
        .output()
        .expect("tests/guest/boot.sh");
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && console.contains("test result: ok. 2 passed"),
        "the kprobe test failed on 6.1 ({:?}):\n{console}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
