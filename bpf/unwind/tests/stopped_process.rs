//! The reference unwinder on a real stopped process: a C program built
//! without frame pointers, stopped with ptrace inside a qsort comparator,
//! its registers from `PTRACE_GETREGS` and its stack from
//! `process_vm_readv`. The unwound chain must go through libc back to
//! `main` and `_start`; frame pointers alone must not get there. A Rust
//! release binary linked by LLD (code segment at a file offset that is not
//! page-aligned) must unwind the same way.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{c_workload, run, rust_release_workload, symbol_at, symbols, Symbol};
use scorch_unwind::unwind::{
    AddressSpace, Frame, Mapping, Method, Registers, StackSnapshot, Stop, Unwound,
};
use scorch_unwind::{unwind, TableCache};

/// Most of the stack copied per capture.
const STACK_COPY: u64 = 1 << 20;

/// A workload traced with ptrace, killed when dropped.
struct Traced {
    child: Child,
}

impl Traced {
    /// Starts `exe args`, waits for "ready", and seizes it.
    fn start(exe: &Path, args: &[&str]) -> Self {
        // ETXTBSY: a process another test thread forked may still hold a
        // just-written binary open for writing until it execs.
        let spawn = || Command::new(exe).args(args).stdout(Stdio::piped()).spawn();
        let mut child = spawn();
        for _ in 0..50 {
            match &child {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(Duration::from_millis(20));
                    child = spawn();
                }
                _ => break,
            }
        }
        let mut child = child.expect("workload starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let traced = Self { child };
        // SAFETY: plain ptrace requests on our own child.
        let seized = unsafe { libc::ptrace(libc::PTRACE_SEIZE, traced.pid(), 0, 0) };
        assert_eq!(
            seized,
            0,
            "PTRACE_SEIZE: {}",
            std::io::Error::last_os_error()
        );
        traced
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Stops the process, takes its registers and stack, and lets it run again.
    fn capture(&self) -> (Registers, StackSnapshot) {
        let pid = self.pid();
        // SAFETY: ptrace and waitpid on our seized child; regs is written by the kernel.
        unsafe {
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, libc::__WALL), pid);
            assert!(libc::WIFSTOPPED(status), "status {status:#x}");
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            let got = libc::ptrace(
                libc::PTRACE_GETREGS,
                pid,
                0,
                &mut regs as *mut libc::user_regs_struct,
            );
            assert_eq!(
                got,
                0,
                "PTRACE_GETREGS: {}",
                std::io::Error::last_os_error()
            );
            let stack = read_stack(pid as u32, regs.rsp);
            assert_eq!(libc::ptrace(libc::PTRACE_CONT, pid, 0, 0), 0);
            let regs = Registers {
                rip: regs.rip,
                rsp: regs.rsp,
                rbp: regs.rbp,
            };
            (regs, stack)
        }
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stack of `pid` from `rsp` to the end of its `[stack]` mapping (at most [`STACK_COPY`]).
fn read_stack(pid: u32, rsp: u64) -> StackSnapshot {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let end = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').nth(1)?.split(' ').next())
        .and_then(|end| u64::from_str_radix(end, 16).ok())
        .expect("a [stack] mapping");
    assert!(rsp < end, "rsp {rsp:#x} is not on the main stack");
    let len = (end - rsp).min(STACK_COPY) as usize;
    let mut bytes = vec![0u8; len];
    let local = libc::iovec {
        iov_base: bytes.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: rsp as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: one local buffer of `len` bytes that we own.
    let read = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    assert_eq!(
        read,
        len as isize,
        "process_vm_readv: {}",
        std::io::Error::last_os_error()
    );
    StackSnapshot { base: rsp, bytes }
}

/// A frame as a test reads it: function name (or `?`) and file name.
#[derive(Debug, Clone)]
struct Named {
    function: String,
    file: String,
    method: Method,
}

/// Names every frame with the symbols of its file (`readelf -Ws`).
fn name(frames: &[Frame], space: &AddressSpace) -> Vec<Named> {
    let mut by_path: HashMap<String, Vec<Symbol>> = HashMap::new();
    frames
        .iter()
        .map(|frame| {
            // Return addresses are looked up inside the call instruction.
            let exact = matches!(frame.method, Method::Registers | Method::Signal);
            let lookup = if exact {
                frame.address
            } else {
                frame.address - 1
            };
            let mapping = space.find(lookup);
            let file = mapping.map_or("?", |m| m.path.rsplit('/').next().unwrap_or("?"));
            let function = mapping
                .filter(|m| m.path.starts_with('/'))
                .and_then(|m| {
                    let vaddr = m.vaddr(lookup)?;
                    let syms = by_path
                        .entry(m.path.clone())
                        .or_insert_with(|| symbols(Path::new(&m.path)));
                    symbol_at(syms, vaddr).map(|s| s.name.clone())
                })
                .unwrap_or_else(|| "?".to_owned());
            Named {
                function,
                file: file.to_owned(),
                method: frame.method,
            }
        })
        .collect()
}

/// The same address space with every table dropped: frame pointers only.
fn without_tables(space: &AddressSpace) -> AddressSpace {
    AddressSpace::new(
        space
            .mappings()
            .iter()
            .map(|m| Mapping {
                table: None,
                ..m.clone()
            })
            .collect(),
    )
}

/// One stop of a traced workload, unwound and named.
struct UnwoundStop {
    regs: Registers,
    stack: StackSnapshot,
    unwound: Unwound,
    named: Vec<Named>,
}

/// `wanted` stops whose innermost function is `leaf`, 20 ms apart. On a
/// loaded machine a stop can still land in libc, in the `printf` of
/// "ready" that `leaf` makes before it spins: such stops are skipped (at
/// most 50 are taken in all); a stop anywhere else fails.
fn stops_in(traced: &Traced, space: &AddressSpace, leaf: &str, wanted: usize) -> Vec<UnwoundStop> {
    let mut stops = Vec::new();
    let mut last = Vec::new();
    for _ in 0..50 {
        let (regs, stack) = traced.capture();
        let unwound = unwind(regs, space, &stack, 127);
        let named = name(&unwound.frames, space);
        let in_leaf = named.iter().position(|n| n.function == leaf);
        let in_libc_called_by_leaf =
            in_leaf.is_some_and(|at| named[..at].iter().all(|n| n.file == "libc.so.6"));
        assert!(
            in_libc_called_by_leaf,
            "stopped outside {leaf} and the libc calls it makes: {named:#?}"
        );
        if in_leaf == Some(0) {
            stops.push(UnwoundStop {
                regs,
                stack,
                unwound,
                named,
            });
            if stops.len() == wanted {
                return stops;
            }
        } else {
            last = named;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "only {} of 50 stops were in {leaf}; the last other: {last:#?}",
        stops.len()
    );
}

/// Index of the first frame at or after `from` whose function starts with `prefix`.
fn position(named: &[Named], from: usize, prefix: &str) -> Option<usize> {
    named[from..]
        .iter()
        .position(|n| n.function.starts_with(prefix))
        .map(|i| i + from)
}

/// Checks the part of the chain every capture shares: compare (at `compare`)
/// → libc frames → sort_all → main → … → _start, unwound by tables.
fn check_chain_from_compare(named: &[Named], unwound: &Unwound, compare: usize) {
    let describe = || format!("{named:#?}\nstopped: {:?}", unwound.stop);
    let sort_all = position(named, compare, "sort_all")
        .unwrap_or_else(|| panic!("no sort_all in {}", describe()));
    let libc_frames = &named[compare + 1..sort_all];
    assert!(
        !libc_frames.is_empty() && libc_frames.iter().all(|n| n.file == "libc.so.6"),
        "compare is not called from libc: {}",
        describe()
    );
    assert!(
        libc_frames.iter().any(|n| n.function == "qsort_r"),
        "qsort_r is not on the stack: {}",
        describe()
    );
    assert_eq!(named[sort_all + 1].function, "main", "{}", describe());
    assert_eq!(named.last().unwrap().function, "_start", "{}", describe());
    assert_eq!(unwound.stop, Stop::End, "{}", describe());
    assert!(
        named[1..].iter().all(|n| n.method != Method::FramePointer),
        "a frame fell back to frame pointers: {}",
        describe()
    );
}

#[test]
fn unwinds_a_comparator_through_libc_to_main() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let traced = Traced::start(&exe, &[]);
    let mut cache = TableCache::new();
    let space = AddressSpace::of_process(traced.pid() as u32, &mut cache).unwrap();
    assert!(
        space
            .mappings()
            .iter()
            .any(|m| m.path.ends_with("libc.so.6") && m.table.is_some()),
        "libc has no table: {:?}",
        space.mappings()
    );
    for stop in stops_in(&traced, &space, "compare", 5) {
        check_chain_from_compare(&stop.named, &stop.unwound, 0);

        // Frame pointers alone lose the chain in code built without them.
        let fp = unwind(stop.regs, &without_tables(&space), &stop.stack, 127);
        let fp_named = name(&fp.frames, &space);
        assert!(
            !fp_named.iter().any(|n| n.function == "main"),
            "frame pointers reached main: the test proves nothing: {fp_named:#?}"
        );
    }
}

#[test]
fn unwinds_through_a_signal_frame() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let traced = Traced::start(&exe, &["signal"]);
    let mut cache = TableCache::new();
    let space = AddressSpace::of_process(traced.pid() as u32, &mut cache).unwrap();
    for stop in stops_in(&traced, &space, "handler", 3) {
        let named = &stop.named;
        let signal = named
            .iter()
            .position(|n| n.method == Method::Signal)
            .unwrap_or_else(|| panic!("no signal frame: {named:#?}"));
        // handler returns into __restore_rt, which is libc's.
        assert_eq!(named[signal - 1].file, "libc.so.6", "{named:#?}");
        let compare = position(named, signal, "compare")
            .unwrap_or_else(|| panic!("compare not found past the signal frame: {named:#?}"));
        // raise and what it calls are libc's.
        assert!(
            named[signal..compare].iter().all(|n| n.file == "libc.so.6"),
            "{named:#?}"
        );
        check_chain_from_compare(named, &stop.unwound, compare);
    }
}

#[test]
fn a_deleted_executable_is_read_through_map_files() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let copy = exe.with_extension("deleted");
    std::fs::copy(&exe, &copy).unwrap();
    let traced = Traced::start(&copy, &[]);
    std::fs::remove_file(&copy).unwrap();
    let space = AddressSpace::of_process(traced.pid() as u32, &mut TableCache::new()).unwrap();
    let mapping = space
        .mappings()
        .iter()
        .find(|m| m.path.ends_with("(deleted)"))
        .expect("the deleted executable's mapping");
    assert!(mapping.table.is_some(), "no table for {}", mapping.path);
    let (regs, stack) = traced.capture();
    let unwound = unwind(regs, &space, &stack, 127);
    assert_eq!(unwound.stop, Stop::End, "{unwound:?}");
    assert!(
        unwound.frames[1..]
            .iter()
            .all(|f| f.method == Method::Table),
        "{unwound:?}"
    );
}

/// Whether `exe` was linked by LLD (`readelf -p .comment`).
fn linked_by_lld(exe: &Path) -> bool {
    run(Command::new("readelf").arg("-p").arg(".comment").arg(exe)).contains("Linker: LLD")
}

#[test]
fn unwinds_a_rust_release_binary_linked_by_lld() {
    let exe = rust_release_workload("burn_rs");
    assert!(
        linked_by_lld(&exe),
        "rustc no longer links with LLD here: the test needs an LLD-linked binary"
    );
    let table = scorch_unwind::build(&exe).unwrap();
    // The layout that misled the old address mapping: the code segment's
    // first page starts inside the file range of the segment before it.
    let segments = table.segments();
    assert!(
        segments.iter().any(|code| {
            code.is_executable()
                && code.offset % 4096 != 0
                && segments.iter().any(|other| {
                    !other.is_executable()
                        && other.offset <= code.offset & !4095
                        && code.offset & !4095 < other.offset + other.size
                })
        }),
        "no code segment shares its first page with another: {segments:?}"
    );

    let traced = Traced::start(&exe, &[]);
    let space = AddressSpace::of_process(traced.pid() as u32, &mut TableCache::new()).unwrap();
    let mut in_the_loop = 0;
    for _ in 0..50 {
        if in_the_loop == 5 {
            break;
        }
        let (regs, stack) = traced.capture();
        let unwound = unwind(regs, &space, &stack, 127);
        let named = name(&unwound.frames, &space);
        let describe = || format!("{named:#?}\nstopped: {:?}", unwound.stop);
        let at = |part: &str| named.iter().position(|n| n.function.contains(part));
        // Every stop unwinds to `_start` through tables; a stop can still
        // land in the `println!` of "ready" on a loaded machine.
        assert_eq!(named.last().unwrap().function, "_start", "{}", describe());
        assert_eq!(unwound.stop, Stop::End, "{}", describe());
        if at("burn_rs5outer").is_none() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        in_the_loop += 1;
        // Stopped in inner (nearly always) or, between two calls, in outer.
        let leaf = at("burn_rs5inner").unwrap_or(0);
        assert!(
            matches!(
                (at("burn_rs5outer"), at("burn_rs4main")),
                (Some(o), Some(m)) if leaf <= o && o < m
            ),
            "[inner ->] outer -> main not found: {}",
            describe()
        );
        assert!(
            named[1..].iter().all(|n| n.method == Method::Table),
            "a frame was not found through a table: {}",
            describe()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(in_the_loop, 5, "the workload was never stopped in its loop");
}
