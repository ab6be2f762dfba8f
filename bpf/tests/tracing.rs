//! The tracer's kernel plumbing on the running kernel, without the
//! compiler: hand-assembled programs run once with `BPF_PROG_TEST_RUN`,
//! attached to a tracepoint, and writing into a ring buffer that user
//! space reads back. Needs root; skips with the reason printed otherwise.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapType};
use scorch_bpf::insn::{Alu, Insn, Size, R0, R1, R10, R2, R3, R4};
use scorch_bpf::program::{Program, ProgramType};
use scorch_bpf::ringbuf::RingBufReader;
use scorch_bpf::{map, run_once, tracepoint};

fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: loading BPF programs needs root");
    }
    root
}

fn fd(m: &libbpf_rs::MapHandle) -> i32 {
    use std::os::fd::{AsFd, AsRawFd};
    m.as_fd().as_raw_fd()
}

#[test]
fn run_once_writes_to_a_ring_buffer() {
    if !privileged() {
        return;
    }
    let ring = map::create(MapType::RingBuf, "test_ring", 0, 0, 4096).expect("ring buffer");
    // *(u64 *)(fp - 8) = 0x1122334455667788; ringbuf_output(ring, fp - 8, 8, 0); return 7
    let mut insns = Vec::new();
    insns.extend(Insn::ld_imm64(R1, 0x1122_3344_5566_7788));
    insns.push(Insn::store_reg(Size::DW, R10, -8, R1));
    insns.extend(Insn::ld_map_fd(R1, fd(&ring)));
    insns.extend([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, -8),
        Insn::mov64_imm(R3, 8),
        Insn::mov64_imm(R4, 0),
        Insn::call(libbpf_sys::BPF_FUNC_ringbuf_output),
        Insn::mov64_imm(R0, 7),
        Insn::exit(),
    ]);
    let program = Program::load(ProgramType::RawTracepoint, "test_once", &insns).expect("load");
    assert_eq!(run_once::run_once(&program).expect("run"), 7);
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let sink = seen.clone();
    let reader = RingBufReader::new(&ring, move |record: &[u8]| {
        sink.borrow_mut().push(record.to_vec());
        0
    })
    .expect("reader");
    assert_eq!(reader.poll(Duration::from_millis(100)).expect("poll"), 1);
    assert_eq!(
        *seen.borrow(),
        [0x1122_3344_5566_7788u64.to_ne_bytes().to_vec()]
    );
    assert_eq!(reader.drain().expect("drain"), 0);
}

#[test]
fn tracepoint_program_counts_hits_until_detached() {
    if !privileged() {
        return;
    }
    scorch_bpf::mounts::ensure_mounted().expect("tracefs");
    let counts = map::create(MapType::Array, "test_counts", 4, 8, 1).expect("array");
    // key 0 on the stack; r0 = lookup(counts, &key); if r0: *r0 += 1 (atomically)
    let mut insns = vec![Insn::store_imm(Size::W, R10, -4, 0)];
    insns.extend(Insn::ld_map_fd(R1, fd(&counts)));
    insns.extend([
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(Alu::Add, R2, -4),
        Insn::call(libbpf_sys::BPF_FUNC_map_lookup_elem),
        Insn::jmp_imm(scorch_bpf::insn::Cond::Eq, R0, 0, 2),
        Insn::mov64_imm(R1, 1),
        Insn::atomic_add(Size::DW, R0, 0, R1),
        Insn::mov64_imm(R0, 0),
        Insn::exit(),
    ]);
    let program = Program::load(ProgramType::Tracepoint, "test_tp", &insns).expect("load");
    let id =
        tracepoint::id(scorch_bpf::mounts::TRACEFS, "syscalls", "sys_enter_getppid").expect("id");
    let read = || {
        let v = counts
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .unwrap()
            .unwrap();
        u64::from_ne_bytes(v[..8].try_into().unwrap())
    };
    let link = tracepoint::TracepointLink::attach(&program, "syscalls", "sys_enter_getppid", id)
        .expect("attach");
    for _ in 0..5 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    // Other processes may call getppid too: at least our five hits.
    assert!(read() >= 5, "only {} hits", read());
    drop(link);
    let after = read();
    for _ in 0..5 {
        // SAFETY: as above.
        unsafe { libc::getppid() };
    }
    assert_eq!(read(), after, "still attached after drop");
}

#[test]
fn maps_are_read_cleared_and_zeroed() {
    if !privileged() {
        return;
    }
    let cpus = libbpf_rs::num_possible_cpus().expect("cpus");
    let plain = map::create(MapType::Hash, "@odd name!", 8, 8, 4).expect("hash");
    for k in 0u64..3 {
        plain
            .update(&k.to_ne_bytes(), &(k * 10).to_ne_bytes(), MapFlags::ANY)
            .unwrap();
    }
    let mut entries = map::entries(&plain).unwrap();
    entries.sort();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2].1, 20u64.to_ne_bytes());
    map::zero(&plain, false, cpus).unwrap();
    assert!(map::entries(&plain)
        .unwrap()
        .iter()
        .all(|(_, v)| v.iter().all(|&b| b == 0)));
    map::clear(&plain).unwrap();
    assert!(map::entries(&plain).unwrap().is_empty());

    let per_cpu = map::create(MapType::PercpuHash, "per_cpu", 8, 8, 4).expect("percpu hash");
    per_cpu
        .update_percpu(
            &1u64.to_ne_bytes(),
            &vec![5u64.to_ne_bytes().to_vec(); cpus],
            MapFlags::ANY,
        )
        .unwrap();
    let entries = map::entries_per_cpu(&per_cpu).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.len(), cpus);
    map::zero(&per_cpu, true, cpus).unwrap();
    assert!(map::entries_per_cpu(&per_cpu).unwrap()[0]
        .1
        .iter()
        .flatten()
        .all(|&b| b == 0));
}
