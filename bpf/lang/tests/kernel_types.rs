//! Kernel and script C types in real programs on the running kernel:
//! `curtask->…` walks checked against the builtins and `/proc`, integers
//! of every size and signedness and bitfields read from memory whose
//! bytes the test wrote, typed raw tracepoint arguments, and
//! `sizeof`/`offsetof` against `bpftool`.
//!
//! Needs root; skips with the reason printed otherwise.

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{serial, trace};

/// The test process's pid and its parent's.
fn pids() -> (u32, u32) {
    // SAFETY: getpid and getppid have no preconditions.
    unsafe { (libc::getpid() as u32, libc::getppid() as u32) }
}

#[test]
fn curtask_walks_agree_with_the_builtins() {
    let Some(_serial) = serial() else {
        return;
    };
    let (pid, ppid) = pids();
    let leader = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/comm")).unwrap();
    let mut expected_tid = 0;
    let o = trace(
        |tid| {
            expected_tid = tid;
            format!(
                "#include <linux/sched.h>
                 t:syscalls:sys_enter_openat /tid == {tid}/ {{
                   printf(\"%d %d %d %d %d\\n\", curtask->pid, tid, curtask->tgid, pid, curtask->real_parent->tgid);
                   printf(\"%s %s %d %d\\n\", curtask->comm, comm, curtask->comm == comm, curtask->comm[0]);
                   printf(\"%d %d %d\\n\", curtask->exit_signal, (curtask->flags & PF_KTHREAD) != 0, curtask->mm == curtask->group_leader->mm);
                   printf(\"%s\\n\", curtask->group_leader->comm);
                   @[curtask->comm, curtask.pid] = count();
                   exit();
                 }}"
            )
        },
        || {
            let _ = std::fs::File::open("/etc/hostname");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let tid = expected_tid;
    // A thread's real parent is its process's parent; its exit signal is
    // -1 (threads signal nobody), which reads back sign-extended.
    assert_eq!(
        o.out,
        format!(
            "{tid} {tid} {pid} {pid} {ppid}\nscorch-worker scorch-worker 1 115\n-1 0 1\n{leader}\n\n@[scorch-worker, {tid}]: 1\n"
        )
    );
}

/// The bytes of `struct bits` (see the program below) as GCC lays it out
/// on x86-64 and aarch64, with known values.
fn bits_bytes() -> Vec<u8> {
    let mut b = vec![0u8; 40];
    // a:3 = 5, b:5 = 17, c:7 = -3 in the first unit.
    let unit: u32 = 5 | (17 << 3) | ((-3i32 as u32 & 0x7f) << 8);
    b[0..2].copy_from_slice(&(unit as u16).to_le_bytes());
    b[2..4].copy_from_slice(&(-2i16).to_le_bytes());
    b[4] = -5i8 as u8;
    b[5] = 250;
    b[8..12].copy_from_slice(&(-100_000i32).to_le_bytes());
    b[16..24].copy_from_slice(&(-5_000_000_000i64).to_le_bytes());
    b[24..32].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    b[32..35].copy_from_slice(b"abc");
    b
}

#[test]
fn script_structs_read_every_integer_kind_from_user_memory() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "struct bits {{
                   unsigned int a:3, b:5;
                   int c:7;
                   short s;
                   signed char sc;
                   unsigned char uc;
                   int i;
                   long l;
                   unsigned long long u;
                   char name[8];
                 }};
                 t:syscalls:sys_enter_write /tid == {tid}/ {{
                   $b = (struct bits *)args.buf;
                   printf(\"%d %d %d %d %d %d %d %ld %lu %s\\n\", $b->a, $b->b, $b->c, $b->s, $b->sc, $b->uc, $b->i, $b->l, $b->u, $b->name);
                   printf(\"%d %d %d %d\\n\", sizeof(struct bits), offsetof(struct bits, l), $b->name[1], (*$b).uc);
                   exit();
                 }}"
            )
        },
        || {
            use std::io::Write;
            let mut null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            null.write_all(&bits_bytes()).unwrap();
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        "5 17 -3 -2 -5 250 -100000 -5000000000 18446744073709551614 abc\n40 16 98 250\n\n\n"
    );
}

#[test]
fn raw_tracepoint_arguments_are_typed_task_pointers() {
    let Some(_serial) = serial() else {
        return;
    };
    let (pid, _) = pids();
    let o = trace(
        |tid| {
            format!(
                "rawtracepoint:sched_switch /((struct task_struct *)arg1)->pid == {tid}/ {{
                   printf(\"%s %d %d %d\\n\", arg1->comm, arg1->tgid, curtask == arg1, ((struct task_struct *)arg2)->pid != {tid});
                   exit();
                 }}"
            )
        },
        sleep_a_little,
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, format!("scorch-worker {pid} 1 1\n\n\n"));
}

#[test]
fn tracepoint_sched_switch_runs_in_the_previous_task() {
    let Some(_serial) = serial() else {
        return;
    };
    let (pid, _) = pids();
    let mut worker = 0;
    let o = trace(
        |tid| {
            worker = tid;
            format!(
                "#include <linux/sched.h>
                 tracepoint:sched:sched_switch /args.prev_pid == {tid} && args.prev_state != TASK_RUNNING/ {{
                   printf(\"%s %d %d\\n\", curtask->comm, curtask->pid, curtask->tgid);
                   exit();
                 }}"
            )
        },
        sleep_a_little,
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, format!("scorch-worker {worker} {pid}\n\n\n"));
}

/// Sleeps, so the scheduler switches the thread out (and back in).
fn sleep_a_little() {
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn runqueue_of_the_running_task_from_profile() {
    let Some(_serial) = serial() else {
        return;
    };
    // bpftrace's runqlen walks `curtask->se.cfs_rq`; the queue's current
    // entity is the sampled task's own while it runs.
    let o = trace(
        |tid| {
            format!(
                "profile:hz:99 /tid == {tid}/ {{
                   $task = (struct task_struct *)curtask;
                   $q = (struct cfs_rq *)$task->se.cfs_rq;
                   printf(\"%d %d\\n\", (uint64)$q->curr == (uint64)curtask + offsetof(struct task_struct, se), $q->h_nr_queued > 0);
                   exit();
                 }}"
            )
        },
        || {
            // On CPU until sampled (bounded: a few seconds at most).
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_secs(3) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "1 1\n\n\n");
}

/// `size` of struct `name` and the bit offset of its member `member`,
/// from bpftool's raw dump of the kernel's BTF.
fn bpftool_layout(name: &str, member: &str) -> (u64, u64) {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .output()
        .expect("bpftool runs (Debian package bpftool)");
    let text = String::from_utf8_lossy(&out.stdout);
    let header = format!("STRUCT '{name}' size=");
    let mut lines = text.lines().skip_while(|l| !l.contains(&header));
    let first = lines.next().expect("struct in bpftool's dump");
    let size = first[first.find(&header).unwrap() + header.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let quoted = format!("'{member}' ");
    let line = lines
        .take_while(|l| l.starts_with('\t'))
        .find(|l| l.trim_start().starts_with(&quoted))
        .expect("member in bpftool's dump");
    let bits = line.split("bits_offset=").nth(1).unwrap();
    let bits = bits.split_whitespace().next().unwrap().parse().unwrap();
    (size, bits)
}

#[test]
fn sizeof_and_offsetof_agree_with_bpftool() {
    let Some(_serial) = serial() else {
        return;
    };
    let (task_size, pid_bits) = bpftool_layout("task_struct", "pid");
    let (_, se_bits) = bpftool_layout("task_struct", "se");
    let (entity_size, vruntime_bits) = bpftool_layout("sched_entity", "vruntime");
    let o = trace(
        |_| {
            "BEGIN { printf(\"%d %d %d %d %d\\n\", sizeof(struct task_struct), offsetof(struct task_struct, pid), offsetof(struct task_struct, se.vruntime), sizeof(curtask->se), sizeof(curtask->comm)); exit(); }".into()
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        format!(
            "{task_size} {} {} {entity_size} 16\n\n\n",
            pid_bits / 8,
            (se_bits + vruntime_bits) / 8
        )
    );
}

/// The value of `@name: N` in bpftrace's map output.
fn scalar(out: &str, name: &str) -> u64 {
    let prefix = format!("@{name}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {out}"))
        .parse()
        .unwrap()
}

#[test]
fn run_queue_latency_with_task_state_constants() {
    let Some(_serial) = serial() else {
        return;
    };
    // What bpftrace's runqlat measures, for one thread: the time from its
    // wakeup (or preemption) to running again.
    let o = trace(
        |tid| {
            format!(
                "#include <linux/sched.h>
                 tracepoint:sched:sched_wakeup /args.pid == {tid}/ {{ @qtime[args.pid] = nsecs; @wakeups = count(); }}
                 tracepoint:sched:sched_switch {{
                   if (args.prev_pid == {tid} && args.prev_state == TASK_RUNNING) {{ @qtime[args.prev_pid] = nsecs; }}
                   if (args.prev_pid == {tid} && args.prev_state == TASK_INTERRUPTIBLE) {{ @sleeps = count(); }}
                   $ns = @qtime[args.next_pid];
                   if ($ns) {{ @usecs = hist((nsecs - $ns) / 1000); @runs = count(); }}
                   delete(@qtime[args.next_pid]);
                 }}
                 t:syscalls:sys_enter_openat /tid == {tid}/ {{ clear(@qtime); exit(); }}"
            )
        },
        || {
            sleep_a_little();
            let _ = std::fs::File::open("/etc/hostname");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // Each sleep blocks interruptibly and is woken by its timer; every
    // wakeup is followed by a run.
    assert!(scalar(&o.out, "sleeps") >= 1, "{}", o.out);
    assert!(scalar(&o.out, "wakeups") >= 1, "{}", o.out);
    assert!(scalar(&o.out, "runs") >= 1, "{}", o.out);
    assert!(o.out.contains("@usecs: \n["), "{}", o.out);
}

#[test]
fn socket_structs_from_a_tracepoint_pointer() {
    let Some(_serial) = serial() else {
        return;
    };
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: this kernel has no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    // The client socket becomes established: its `struct sock` (a
    // `const void *` in the tracepoint) holds both addresses, IPv6 arrays
    // that ntop() formats, the state it leaves, and the remote port in
    // network byte order, which bswap() turns around as tcpdrop.bt does.
    let o = trace(
        |_| {
            format!(
                "tracepoint:sock:inet_sock_set_state /args.family == AF_INET6 && args.dport == {port} && args.newstate == TCP_ESTABLISHED/ {{
                   $sk = (struct sock *)args.skaddr;
                   printf(\"%s %s %d %d %d\\n\", ntop($sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8), ntop($sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8), $sk->__sk_common.skc_family == AF_INET6, $sk->__sk_common.skc_state == args.oldstate, bswap($sk->__sk_common.skc_dport));
                   exit();
                 }}"
            )
        },
        move || {
            let _client = std::net::TcpStream::connect(("::1", port)).unwrap();
            let _server = listener.accept().unwrap();
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, format!("::1 ::1 1 1 {port}\n\n\n"));
}

#[test]
fn user_struct_pointers_in_tracepoint_arguments() {
    let Some(_serial) = serial() else {
        return;
    };
    let (_, ppid) = pids();
    // What bpftrace's naptime reads: the `struct __kernel_timespec *` a
    // process passes to nanosleep(2), in user memory.
    let o = trace(
        |tid| {
            format!(
                "tracepoint:syscalls:sys_enter_nanosleep /tid == {tid} && args->rqtp->tv_sec + args->rqtp->tv_nsec/ {{
                   $task = (struct task_struct *)curtask;
                   printf(\"%d %d.%03d %d\\n\", $task->real_parent->pid, args->rqtp->tv_sec, (uint64)args->rqtp->tv_nsec / 1e6, args.rqtp.tv_nsec);
                   exit();
                 }}"
            )
        },
        || {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_500_000,
            };
            // SAFETY: nanosleep reads one timespec; the remainder may be null.
            unsafe {
                libc::syscall(
                    libc::SYS_nanosleep,
                    &ts,
                    std::ptr::null_mut::<libc::timespec>(),
                )
            };
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, format!("{ppid} 0.001 1500000\n\n\n"));
}

#[test]
fn char_pointer_members_through_anonymous_unions() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    // `d_name` sits in an anonymous union of `struct dentry` on recent
    // kernels; `name` is a `const unsigned char *` that str() reads.
    let o = trace(
        |tid| {
            format!(
                "t:syscalls:sys_enter_openat /tid == {tid}/ {{
                   $d = curtask->mm->exe_file->f_path.dentry;
                   printf(\"%s %d\\n\", str($d->d_name.name), $d->d_name.len);
                   exit();
                 }}"
            )
        },
        || {
            let _ = std::fs::File::open("/etc/hostname");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, format!("{name} {}\n\n\n", name.len()));
}
