//! Uprobes and kprobes on the running kernel, without the compiler: a
//! hand-assembled program adds a `pt_regs` register of every hit into a map,
//! so the sum proves both that the probe fired and that it saw the right
//! argument or return value. Needs root; skips with the reason otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use scorch_bpf::elf_symbols::{function_symbols, resolve_binary, symbol_offset};
use scorch_bpf::insn::{Cond, Insn, Size, R0, R1, R10, R2, R6};
use scorch_bpf::map;
use scorch_bpf::probe::{attach, ProbePoint};
use scorch_bpf::program::{Program, ProgramType};

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

/// A program that adds `*(u64 *)(ctx + reg)` into slot 0 of `sum` and
/// counts hits in slot 1.
fn summing_program(sum: &MapHandle, reg: i16) -> Program {
    use std::os::fd::{AsFd, AsRawFd};
    let fd = sum.as_fd().as_raw_fd();
    let mut insns = vec![Insn::mov64_reg(R6, R1)];
    for (slot, value) in [(0, Some(reg)), (1, None)] {
        insns.push(Insn::store_imm(Size::W, R10, -4, slot));
        insns.extend(Insn::ld_map_fd(R1, fd));
        insns.extend([
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(scorch_bpf::insn::Alu::Add, R2, -4),
            Insn::call(libbpf_sys::BPF_FUNC_map_lookup_elem),
            Insn::jmp_imm(Cond::Eq, R0, 0, 2),
        ]);
        insns.push(match value {
            Some(off) => Insn::load(Size::DW, R1, R6, off),
            None => Insn::mov64_imm(R1, 1),
        });
        insns.push(Insn::atomic_add(Size::DW, R0, 0, R1));
    }
    insns.extend([Insn::mov64_imm(R0, 0), Insn::exit()]);
    Program::load(ProgramType::Kprobe, "test_probe_sum", &insns).expect("load")
}

fn read(sum: &MapHandle, slot: u32) -> u64 {
    let v = sum
        .lookup(&slot.to_ne_bytes(), MapFlags::ANY)
        .unwrap()
        .unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// Builds (once) a program whose `probed(i)` returns `2 i + 1`, called for
/// i in 0..N after a line arrives on stdin.
fn target() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_target).clone()
}

fn build_target() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("probed.c");
    let exe = dir.join("probed");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <stdlib.h>\n\
         __attribute__((noinline)) long probed(long i) { return 2 * i + 1; }\n\
         int main(int argc, char **argv) {\n\
           char line[8]; volatile long s = 0; long n = atol(argv[1]);\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < n; i++) s += probed(i);\n\
           return 0;\n\
         }\n",
    )
    .unwrap();
    let status = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(status.success());
    exe
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
    let exe = target();
    let offset = symbol_offset(&exe, "probed").expect("probed's offset");
    let n = 1000u64;
    for (ret, reg, expected) in [
        (false, PT_REGS_DI, n * (n - 1) / 2), // sum of i
        (true, PT_REGS_AX, n * n),            // sum of 2 i + 1
    ] {
        let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
        let program = summing_program(&sum, reg);
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
    let exe = target();
    let offset = symbol_offset(&exe, "probed").expect("offset");
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let program = summing_program(&sum, PT_REGS_DI);
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
    let exe = target();
    let sum = map::create(MapType::Array, "test_sum", 4, 8, 2).expect("array");
    let program = summing_program(&sum, PT_REGS_DI);
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
    let program = summing_program(&sum, PT_REGS_DI);
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

/// Runs the kprobe test above inside Debian's 6.1 kernel, which has kprobes
/// (our development kernel does not): see `tests/guest/boot.sh`.
#[test]
fn kprobe_fires_on_linux_6_1() {
    if !privileged() {
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-kprobe.sh");
    std::fs::write(
        &script,
        format!(
            "SCORCH_REQUIRE_KPROBES=1 {} --exact \\\n\
             kprobe_fires_where_the_kernel_has_kprobes_and_says_why_not_elsewhere\n",
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
        out.status.success() && console.contains("test result: ok. 1 passed"),
        "the kprobe test failed on 6.1 ({:?}):\n{console}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
