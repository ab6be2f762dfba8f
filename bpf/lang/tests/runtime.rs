//! Real programs on the running kernel, output compared exactly.
//!
//! Each test runs a program with [`scorch_lang::run`] in this process,
//! starts a workload once the probes are attached (the `Attached` line on
//! stderr is the signal), and compares stdout with the text bpftrace
//! prints for the same program. Workloads run on their own thread and
//! programs filter on that thread's id, so other activity on the machine
//! never changes the result.
//!
//! Needs root; skips with the reason printed otherwise. Runs are
//! serialized: one of them sends SIGINT to this process.

mod harness;

use std::io::Read;
use std::time::Duration;

use harness::{privileged, serial, trace, trace_with, SERIAL};
use scorch_lang::{OutputFormat, RunError, RunOptions};

fn read_sizes(sizes: &'static [usize]) -> impl FnOnce() + Send + 'static {
    move || {
        let mut zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
        let mut buf = vec![0u8; 8192];
        for &n in sizes {
            zero.read_exact(&mut buf[..n]).expect("read /dev/zero");
        }
    }
}

#[test]
fn counts_opens_by_comm() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "t:syscalls:sys_enter_openat /tid == {tid}/ {{ @[comm] = count(); @files[str(args.filename)] = count(); }}
                 t:syscalls:sys_enter_openat /tid == {tid} && str(args.filename) == \"/dev/null\"/ {{ exit(); }}"
            )
        },
        || {
            for _ in 0..3 {
                let _ = std::fs::File::open("/etc/hostname");
            }
            let _ = std::fs::File::open("/dev/null");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        "\n\n@[scorch-worker]: 4\n@files[/dev/null]: 1\n@files[/etc/hostname]: 3\n"
    );
    assert_eq!(o.err, "Attached 2 probes\n");
}

#[test]
fn interval_exits() {
    let Some(_serial) = serial() else {
        return;
    };
    let started = std::time::Instant::now();
    let o = trace(|_| "interval:ms:100 { exit(); }".into(), || {});
    assert_eq!(o.result, Ok(0));
    assert_eq!(o.out, "\n\n");
    assert_eq!(o.err, "Attached 1 probe\n");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn nothing_prints_after_exit() {
    let Some(_serial) = serial() else {
        return;
    };
    // A 1 ms interval fires again before the probes are detached; those
    // later records must not print, as with bpftrace.
    let o = trace(
        |_| "interval:ms:1 { printf(\"tick\\n\"); exit(); } END { printf(\"end\\n\"); }".into(),
        || {},
    );
    assert_eq!(o.result, Ok(0));
    assert_eq!(o.out, "tick\nend\n\n\n");
}

#[test]
fn hist_of_read_sizes() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "t:syscalls:sys_enter_read /tid == {tid}/ {{ @bytes = hist(args.count); @lin = lhist(args.count, 0, 200, 50);
                   @s = stats(args.count); @a = avg(args.count); @lo = min(args.count); @hi = max(args.count); @sum = sum(args.count);
                   if (args.count == 4096) {{ exit(); }} }}"
            )
        },
        read_sizes(&[1, 2, 4, 100, 4096]),
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let bar = "@".repeat(52);
    let blank = " ".repeat(52);
    let row = |label: &str, n: u32| {
        format!(
            "{label:<16}{n:>8} |{}|\n",
            if n == 1 { &bar } else { &blank }
        )
    };
    let mut expected = String::from("\n\n@a: 840\n\n@bytes: \n");
    expected.push_str(&row("[1]", 1));
    expected.push_str(&row("[2, 4)", 1));
    expected.push_str(&row("[4, 8)", 1));
    for label in ["[8, 16)", "[16, 32)", "[32, 64)"] {
        expected.push_str(&row(label, 0));
    }
    expected.push_str(&row("[64, 128)", 1));
    for label in [
        "[128, 256)",
        "[256, 512)",
        "[512, 1K)",
        "[1K, 2K)",
        "[2K, 4K)",
    ] {
        expected.push_str(&row(label, 0));
    }
    expected.push_str(&row("[4K, 8K)", 1));
    expected.push_str("\n@hi: 4096\n@lin: \n");
    let three = format!("{:<52}", "@".repeat(52));
    expected.push_str(&format!("[0, 50)                3 |{three}|\n"));
    expected.push_str(&row("[50, 100)", 0));
    let third = format!("{:<52}", "@".repeat(17));
    expected.push_str(&format!("[100, 150)             1 |{third}|\n"));
    expected.push_str(&row("[150, 200)", 0));
    expected.push_str(&format!("[200, ...)             1 |{third}|\n"));
    expected.push_str("\n@lo: 1\n@s: count 5, average 840, total 4203\n\n@sum: 4203\n");
    assert_eq!(o.out, expected);
}

#[test]
fn printf_of_a_tracepoint_string() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "t:syscalls:sys_enter_openat /tid == {tid}/ {{
                   printf(\"%-12s|%d|%s|%5d|%x\\n\", str(args.filename), args.dfd, str(args.filename, 4), 42, args.flags & 0x3);
                   exit(); }}"
            )
        },
        || {
            let _ = std::fs::File::open("/etc/hostname");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // str(p, 4) keeps 4 characters, as bpftrace 0.17 does.
    assert_eq!(o.out, "/etc/hostname|-100|/etc|   42|0\n\n\n");
}

#[test]
fn begin_end_variables_and_control_flow() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace_with(
        |_| {
            r#"BEGIN {
                 $i = 0; $odd = 0;
                 while ($i < 10) { $i++; if ($i % 2 == 0) { continue; } $odd += $i; }
                 unroll (3) { @u++; }
                 @t = (1, "two", $odd > 20 ? "big" : "small");
                 @m[$1, str($2)] = $odd;
                 printf("%d %s %d\n", $odd, $odd > 20 ? "big" : "small", $#);
                 exit(7);
               }
               END { printf("end %d\n", @u); delete(@u); }"#
                .into()
        },
        RunOptions::with_params(vec!["5".into(), "five".into()]),
        || {},
    );
    assert_eq!(o.result, Ok(7), "{}", o.err);
    assert_eq!(
        o.out,
        "25 big 2\nend 3\n\n\n@m[5, five]: 25\n@t: (1, two, big)\n\n"
    );
    assert!(
        o.err.starts_with(
            "stdin:3:46: warning: signed operands for `%` can lead to undefined behavior"
        ),
        "{}",
        o.err
    );
    assert!(o.err.ends_with("\nAttached 2 probes\n"), "{}", o.err);
}

/// A struct chosen by a ternary or given by a block is copied where each
/// branch reads it (bpftrace rejects both; the verifier once did).
#[test]
fn structs_from_ternaries_and_blocks_are_stored_whole() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace_with(
        |_| {
            r#"BEGIN {
                 $c = 0;
                 $t = $c ? curtask->signal->rlim[0] : curtask->signal->rlim[7];
                 print($t);
                 print(curtask->signal->rlim[7]);
                 $u = { $c = 2; curtask->se.load };
                 print($u);
                 @m = $c == 2 ? curtask->se.load : curtask->real_parent->se.load;
                 exit();
               }"#
            .into()
        },
        RunOptions::default(),
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let lines: Vec<&str> = o.out.lines().collect();
    assert!(lines.len() >= 3, "{}", o.out);
    assert_eq!(lines[0], lines[1], "{}", o.out);
    assert!(lines[0].starts_with("{ .rlim_cur = "), "{}", o.out);
    assert!(!lines[0].contains("18446744073709551615 }"), "{}", o.out);
    assert_eq!(
        lines[2], "{ .weight = 1048576, .inv_weight = 4194304 }",
        "{}",
        o.out
    );
    assert!(
        o.out
            .contains("@m: { .weight = 1048576, .inv_weight = 4194304 }\n"),
        "{}",
        o.out
    );
}

#[test]
fn print_clear_zero_and_time() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| {
            r#"BEGIN { @a[1] = 1; @a[2] = 2; @c = count(); @c = count(); @h = hist(3);
                       print(@a); print(@c); print(@h); print(@a, 1); print(@c, 0, 2); print(42); print("s"); print((1, "x"));
                       clear(@a); zero(@c); time("%%Y\n"); exit(); }"#
                .into()
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let bar = "@".repeat(52);
    assert_eq!(
        o.out,
        format!(
            "@a[1]: 1\n@a[2]: 2\n@c: 2\n@h: \n[2, 4)                 1 |{bar}|\n\n@a[2]: 2\n@c: 1\n42\ns\n(1, x)\n%Y\n\n\n\n@c: 0\n@h: \n[2, 4)                 1 |{bar}|\n\n"
        )
    );
}

#[test]
fn json_output() {
    let Some(_serial) = serial() else {
        return;
    };
    let mut opts = RunOptions::default();
    opts.format = OutputFormat::Json;
    let o = trace_with(
        |_| {
            r#"BEGIN { printf("a \"%d\"\n", 5); @x["k", 2] = count(); @y = 3; @z["k"] = hist(5); @s = stats(4);
                       @l = lhist(3, 0, 10, 1); @e[1] = 1; delete(@e[1]); print(5); exit(); }"#
                .into()
        },
        opts,
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        concat!(
            "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n",
            "{\"type\": \"printf\", \"data\": \"a \\\"5\\\"\\n\"}\n",
            "{\"type\": \"value\", \"data\": 5}\n",
            "{\"type\": \"hist\", \"data\": {\"@l\": [{\"min\": 3, \"max\": 3, \"count\": 1}]}}\n",
            "{\"type\": \"stats\", \"data\": {\"@s\": {\"count\": 1, \"average\": 4, \"total\": 4}}}\n",
            "{\"type\": \"map\", \"data\": {\"@x\": {\"k,2\": 1}}}\n",
            "{\"type\": \"map\", \"data\": {\"@y\": 3}}\n",
            "{\"type\": \"hist\", \"data\": {\"@z\": {\"k\": [{\"min\": 4, \"max\": 7, \"count\": 1}]}}}\n",
        )
    );
    assert_eq!(o.err, "");
}

#[test]
fn interrupt_runs_end_and_prints_maps() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| "BEGIN { @started = 1; } END { printf(\"bye\\n\"); @ended = 1; }".into(),
        || {
            // SAFETY: signalling our own process; run() handles SIGINT.
            unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "bye\n\n\n@ended: 1\n@started: 1\n");
}

#[test]
fn stops_when_the_traced_process_exits() {
    let Some(_serial) = serial() else {
        return;
    };
    let mut child = std::process::Command::new("sleep")
        .arg("0.3")
        .spawn()
        .expect("sleep");
    let mut opts = RunOptions::default();
    opts.pid = Some(child.id());
    let started = std::time::Instant::now();
    let o = trace_with(|_| "END { printf(\"done\\n\"); }".into(), opts, || {});
    let _ = child.wait();
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "done\n\n\n");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn lost_events_are_counted() {
    let Some(_serial) = serial() else {
        return;
    };
    // 300 events of ~4 KiB sent before anyone reads: more than the 1 MiB
    // ring buffer holds. The exit() is lost too, so a timer ends the run.
    let many = vec!["%s"; 60].join("");
    let args = vec!["$s"; 60].join(", ");
    let o = trace(
        move |_| {
            format!(
                "BEGIN {{ $s = \"0123456789012345678901234567890123456789012345678901234567890\";
                   $i = 0; while ($i < 300) {{ printf(\"{many}\\n\", {args}); $i++; }} }}
                 interval:ms:300 {{ exit(); }}"
            )
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let lost = o
        .err
        .lines()
        .find_map(|l| {
            l.strip_prefix("Lost ")?
                .strip_suffix(" events")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `Lost N events` line in {:?}", o.err));
    let printed = o.out.lines().filter(|l| l.len() == 61 * 60).count() as u64;
    assert_eq!(printed + lost, 300, "every event is printed or counted");
    assert!(lost > 0);
}

#[test]
fn errors_name_the_problem() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| "t:syscalls:sys_enter_opnat { @ = count(); }".into(),
        || {},
    );
    let Err(RunError::Program(text)) = o.result else {
        panic!("expected a program error, got {:?}", o.result);
    };
    assert_eq!(
        text,
        "stdin:1:1: error: tracepoint not found: syscalls:sys_enter_opnat\n\
         t:syscalls:sys_enter_opnat { @ = count(); }\n\
         ^~~~~~~~~~~~~~~~~~~~~~~~~~\n\
         help: did you mean `tracepoint:syscalls:sys_enter_openat`?\n"
    );

    let o = trace(|_| "BEGIN { @x = 1; } END { @x = comm; }".into(), || {});
    let Err(RunError::Program(text)) = o.result else {
        panic!("expected a program error, got {:?}", o.result);
    };
    assert!(text.starts_with("stdin:1:30: error: type mismatch for @x: assigning string[16] to a map that holds int64\n"), "{text}");
    assert!(
        text.contains("stdin:1:14: note: @x first holds int64 here\n"),
        "{text}"
    );

    // system() runs only with --unsafe, as in bpftrace.
    let o = trace(|_| r#"BEGIN { system("true"); }"#.into(), || {});
    let Err(RunError::Program(text)) = o.result else {
        panic!("expected a program error, got {:?}", o.result);
    };
    assert_eq!(
        text,
        "stdin:1:9: error: system() is an unsafe function being used in safe mode\n\
         BEGIN { system(\"true\"); }\n        ^~~~~~~~~~~~~~\n\
         help: run with --unsafe to allow it\n"
    );
}

#[test]
fn verifier_rejections_are_summarized() {
    let Some(_serial) = serial() else {
        return;
    };
    // A loop the verifier has to walk a million instructions into.
    let o = trace(
        |_| "BEGIN { $i = 0; while ($i < 100000000) { $i++; } }".into(),
        || {},
    );
    match o.result {
        Err(RunError::Verifier {
            probe,
            summary,
            log,
        }) => {
            assert_eq!(probe, "BEGIN");
            assert!(
                summary.contains("too large") || summary.contains("complex"),
                "{summary}"
            );
            assert!(log.len() > summary.len());
        }
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
}

#[test]
fn profile_samples_every_cpu() {
    let Some(_serial) = serial() else {
        return;
    };
    let spin = || {
        let end = std::time::Instant::now() + Duration::from_millis(400);
        let mut x = 0u64;
        while std::time::Instant::now() < end {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    };
    let o = trace(
        |_| {
            "profile:hz:199 { @[cpu] = count(); @total = count(); } interval:ms:500 { exit(); }"
                .into()
        },
        spin,
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.err, "Attached 2 probes\n");
    // `@[N]: count` per CPU that sampled, then the total, all counts > 0.
    let lines: Vec<&str> = o
        .out
        .strip_prefix("\n\n")
        .expect("leading blank lines")
        .lines()
        .collect();
    let (total, per_cpu) = lines.split_last().expect("some output");
    let count = |line: &str, prefix: &str| -> u64 {
        line.strip_prefix(prefix)
            .and_then(|rest| rest.split_once("]: ").map(|(_, n)| n).or(Some(rest)))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?} in {:?}", o.out))
    };
    let sum: u64 = per_cpu.iter().map(|l| count(l, "@[")).sum();
    assert!(!per_cpu.is_empty());
    assert_eq!(count(total, "@total: "), sum);
    assert!(
        sum >= 20,
        "only {sum} samples in 500 ms at 199 Hz with a busy thread"
    );
}

#[test]
fn full_maps_are_reported() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| {
            "config = { max_map_keys = 2 }
             BEGIN { @m[1] = 1; @m[2] = 2; @m[3] = 3; @c[1] = count(); @c[2] = count(); @c[3] = count(); exit(); }"
                .into()
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "\n\n@c[1]: 1\n@c[2]: 1\n@m[1]: 1\n@m[2]: 2\n");
    assert_eq!(
        o.err,
        "Attached 1 probe\nwarning: 2 map update(s) were dropped because a map was full (2 entries); \
         raise the limit with `config = { max_map_keys = N }`\n"
    );
}

#[test]
fn traces_a_command_until_it_exits() {
    let Some(_serial) = serial() else {
        return;
    };
    let mut opts = RunOptions::default();
    opts.command = vec![
        "cat".into(),
        "/etc/hostname".into(),
        "/etc/os-release".into(),
    ];
    let o = trace_with(
        |_| {
            r#"t:syscalls:sys_enter_openat /comm == "cat"/ { @[str(args.filename)] = count(); }
               END { printf("done\n"); }"#
                .into()
        },
        opts,
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.out.starts_with("done\n\n\n"), "{}", o.out);
    for file in ["/etc/hostname", "/etc/os-release"] {
        assert!(
            o.out.contains(&format!("@[{file}]: 1\n")),
            "{file} missing in {}",
            o.out
        );
    }
}

/// `name+offset` of a kernel address, straight from `/proc/kallsyms`.
fn kallsyms_name(addr: u64) -> String {
    let text = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms");
    let best = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let a = u64::from_str_radix(f.next()?, 16).ok()?;
            let name = f.nth(1)?;
            (a != 0 && a <= addr).then(|| (a, name.to_string()))
        })
        .max_by_key(|(a, _)| *a)
        .expect("a symbol below the address");
    format!("{}+{}", best.1, addr - best.0)
}

#[test]
fn stacks_in_printf_keys_and_modes() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "t:syscalls:sys_enter_openat /tid == {tid}/ {{
                   printf(\"%s|\\n\", kstack(2));
                   @k[kstack(2)] = count();
                   @p[kstack(perf, 1)] = count();
                   @r[kstack(raw, 1)] = count();
                   @u[ustack(1), 7] = count();
                   @v[ustack(perf, 1)] = count();
                   exit(); }}"
            )
        },
        || {
            let _ = std::fs::File::open("/etc/hostname");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // The raw address of the innermost kernel frame names the others.
    let raw = o
        .out
        .split("@r[\n")
        .nth(1)
        .and_then(|s| s.lines().next())
        .expect("a raw stack");
    let addr = u64::from_str_radix(raw, 16).expect("hex address");
    let k1 = kallsyms_name(addr);
    let printf_frames: Vec<&str> = o.out.lines().skip(1).take(2).collect();
    assert_eq!(printf_frames[0], format!("        {k1}"), "{}", o.out);
    let k2 = printf_frames[1].trim_start().to_string();
    assert!(
        printf_frames[1].starts_with("        ") && k2.contains('+'),
        "{}",
        o.out
    );
    // User frames: the libc function behind File::open, with its offset.
    let u1 = o
        .out
        .split("@u[\n    ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .expect("a user stack")
        .to_string();
    assert!(u1.contains("open") && u1.contains('+'), "{}", o.out);
    let v1 = o
        .out
        .split("@v[\n\t")
        .nth(1)
        .and_then(|s| s.lines().next())
        .expect("a perf user stack")
        .to_string();
    assert!(
        v1.ends_with(".so.6)") && v1.contains(&format!(" {u1} (/")),
        "{}",
        o.out
    );
    assert_eq!(
        o.out,
        format!(
            "\n        {k1}\n        {k2}\n|\n\n\n\
             @k[\n    {k1}\n    {k2}\n]: 1\n\
             @p[\n\t{addr:x} {k1}\n]: 1\n\
             @r[\n{addr:x}\n]: 1\n\
             @u[\n    {u1}\n, 7]: 1\n\
             @v[\n\t{v1}\n]: 1\n"
        )
    );
}

#[test]
fn ksym_usym_and_kaddr() {
    let Some(_serial) = serial() else {
        return;
    };
    let getpid = libc::getpid as *const () as usize;
    let o = trace_with(
        |_| {
            r#"BEGIN {
                 printf("%s|%s|%s\n", ksym(kaddr("vfs_read")), ksym(kaddr("vfs_read") + 5), ksym(1));
                 @[ksym(kaddr("ksys_read"))] = count();
                 @u = usym(0);
                 print(ksym(kaddr("vfs_write")));
                 printf("%s\n", usym($1));
                 exit();
               }"#
            .into()
        },
        RunOptions::with_params(vec![getpid.to_string()]),
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // bpftrace 0.17 prints the same for everything but the libc name,
    // which it cannot see in this process.
    let (head, getpid_line) = o.out.split_once("vfs_write\n").expect("print(ksym)");
    assert_eq!(head, "vfs_read|vfs_read|0x1\n");
    let (name, rest) = getpid_line.split_once('\n').expect("usym line");
    assert!(name.contains("getpid"), "{}", o.out);
    assert_eq!(rest, "\n\n@[ksys_read]: 1\n@u: 0\n");
}

#[test]
fn hist_with_sub_buckets() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| {
            "BEGIN { @h = hist(0, 2); @h = hist(1, 2); @h = hist(3, 2); @h = hist(4, 2);
                     @h = hist(5, 2); @h = hist(7, 2); @h = hist(8, 2); @h = hist(9, 2);
                     @h = hist(12, 2); @h = hist(100, 2); @h = hist(-1, 2);
                     @g = hist(3000000, 3); exit() }"
                .into()
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // bpftrace 0.21's layout: single values up to 2^(k+1), then 2^k
    // intervals per power of two, labels with K/M suffixes.
    let row = |label: &str, n: u64| {
        let bar = "@".repeat(if n == 0 {
            0
        } else if n == 1 {
            26
        } else {
            52
        });
        format!("{label:<16}{n:>8} |{bar:<52}|\n")
    };
    let mut want = String::from("\n\n@g: \n");
    want.push_str(&row("[2816K, 3072K)", 2).replace("       2", "       1"));
    want.push_str("\n@h: \n");
    for (label, n) in [
        ("(..., 0)", 1),
        ("[0]", 1),
        ("[1]", 1),
        ("[2]", 0),
        ("[3]", 1),
        ("[4]", 1),
        ("[5]", 1),
        ("[6]", 0),
        ("[7]", 1),
        ("[8, 10)", 2),
        ("[10, 12)", 0),
        ("[12, 14)", 1),
        ("[14, 16)", 0),
        ("[16, 20)", 0),
        ("[20, 24)", 0),
        ("[24, 28)", 0),
        ("[28, 32)", 0),
        ("[32, 40)", 0),
        ("[40, 48)", 0),
        ("[48, 56)", 0),
        ("[56, 64)", 0),
        ("[64, 80)", 0),
        ("[80, 96)", 0),
        ("[96, 112)", 1),
    ] {
        want.push_str(&row(label, n));
    }
    want.push('\n');
    assert_eq!(o.out, want);
}

#[test]
fn for_loops_over_maps_and_ranges() {
    let Some(_serial) = serial() else {
        return;
    };
    // Hash order is the kernel's: the loops only sum, count and copy.
    let o = trace(
        |tid| {
            format!(
                "t:syscalls:sys_enter_openat /tid == {tid}/ {{ @files[str(args.filename)] = 1; }}
                 t:syscalls:sys_enter_close /tid == {tid}/ {{
                   let $n = 0;
                   for ($kv : @files) {{ $n += $kv.1; @copy[$kv.0] = $kv.1 + 1; }}
                   $odd = 0;
                   for ($i : 0..10) {{ if ($i % 2 == 0) {{ continue; }} if ($i > 7) {{ break; }} $odd += $i; }}
                   for ($kv : @files) {{ if ($kv.0 == \"/dev/null\") {{ printf(\"files %d odd %d\\n\", $n, $odd); exit(); }} }}
                   printf(\"not reached\\n\");
                 }}"
            )
        },
        || {
            let _a = std::fs::File::open("/etc/hostname");
            let _b = std::fs::File::open("/dev/null");
            let _c = std::fs::File::open("/etc/passwd");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        "files 3 odd 16\n\n\n\
         @copy[/dev/null]: 2\n@copy[/etc/hostname]: 2\n@copy[/etc/passwd]: 2\n\
         @files[/dev/null]: 1\n@files[/etc/hostname]: 1\n@files[/etc/passwd]: 1\n"
    );
}

#[test]
fn macros_expand_where_called() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |_| {
            "macro add_one(x) { x + 1 }
             macro bump($a, @m) { let $step = 1; $a += $step; @m[$a] = count(); }
             macro twice(x) { add_one(add_one(x)) }
             BEGIN { $v = 1; $step = 10; bump($v, @hits); bump($v, @hits);
                     printf(\"%d %d %d\\n\", add_one($v), twice(1), $step); exit(); }"
                .into()
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // `$step` of the macro is its own: the probe's stays 10.
    assert_eq!(o.out, "4 3 10\n\n\n@hits[2]: 1\n@hits[3]: 1\n");
}

#[test]
fn join_prints_the_argv_of_exec() {
    let Some(_serial) = serial() else {
        return;
    };
    // Until it execs, the child has the worker thread's name.
    let o = trace(
        |_| {
            r#"t:syscalls:sys_enter_execve /comm == "scorch-worker"/ {
                 join(args.argv); join(args->argv, "--");
                 @n += 1; if (@n == 2) { exit(); }
               }"#
            .into()
        },
        || {
            let run = |cmd: &str, args: &[&str]| {
                std::process::Command::new(cmd)
                    .args(args)
                    .output()
                    .expect("run the command");
            };
            // An empty argument ends the list, as in bpftrace.
            run("/bin/echo", &["join", "a b", "", "after"]);
            let many: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
            let many: Vec<&str> = many.iter().map(String::as_str).collect();
            run("/bin/true", &many);
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // bpftrace 0.17 prints the same: at most 16 strings.
    let first16: Vec<String> = (1..=15).map(|i| i.to_string()).collect();
    assert_eq!(
        o.out,
        format!(
            "/bin/echo join a b\n/bin/echo--join--a b\n/bin/true {}\n/bin/true--{}\n\n\n@n: 2\n",
            first16.join(" "),
            first16.join("--")
        )
    );
}

/// The system clock as seconds since the epoch.
fn epoch_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

#[test]
fn strftime_turns_boot_time_into_wall_time() {
    let Some(_serial) = serial() else {
        return;
    };
    let before = epoch_secs();
    // `%s` is seconds since the epoch, the same in every time zone.
    let o = trace(
        |_| {
            r#"BEGIN {
                 printf("%s\n", strftime("%s.%f", nsecs));
                 print(strftime("%s", 0));
                 @t = strftime("[%s]", 2000000000);
                 exit();
               }"#
            .into()
        },
        || {},
    );
    let after = epoch_secs();
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let mut lines = o.out.lines();
    let now: f64 = lines.next().and_then(|l| l.parse().ok()).expect("%s.%f");
    assert!(
        before - 0.01 <= now && now <= after + 0.01,
        "{before} {now} {after}"
    );
    let boot: i64 = lines.next().and_then(|l| l.parse().ok()).expect("boot");
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let btime: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .expect("btime in /proc/stat");
    assert!((boot - btime).abs() <= 1, "boot {boot}, btime {btime}");
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["", "", &format!("@t: [{}]", boot + 2)[..]]
    );
}

#[test]
fn signal_kills_the_current_process() {
    use std::os::unix::process::ExitStatusExt;

    let Some(_serial) = serial() else {
        return;
    };
    // A name of our own, so no other `sleep` on the machine is signalled.
    let dir = std::env::temp_dir().join(format!("scorch-signal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let victim = dir.join("scorch-victim");
    let _ = std::fs::remove_file(&victim);
    std::os::unix::fs::symlink("/bin/sleep", &victim).expect("symlink to sleep");
    let mut opts = RunOptions::default();
    opts.unsafe_ = true;
    let status = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = status.clone();
    let o = trace_with(
        |_| {
            r#"t:syscalls:sys_enter_clock_nanosleep /comm == "scorch-victim"/ {
                 signal("SIGUSR1"); printf("sent\n"); exit();
               }"#
            .into()
        },
        opts,
        move || {
            let s = std::process::Command::new(&victim)
                .arg("10")
                .status()
                .expect("run the victim");
            *seen.lock().unwrap() = Some(s);
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "sent\n\n\n");
    let status = status.lock().unwrap().expect("the victim ran");
    assert_eq!(status.signal(), Some(libc::SIGUSR1), "{status:?}");
}

#[test]
fn buf_prints_user_memory_escaped() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_write /tid == {tid}/ {{
                     printf("%r|%rx\n", buf(args.buf, args.count), buf(args.buf, 2));
                     exit();
                   }}"#
            )
        },
        || {
            use std::io::Write as _;
            let mut null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null");
            null.write_all(b"hi\x00\x01\xfe~").expect("write");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "hi\\x00\\x01\\xfe~|\\x68\\x69\n\n\n");
}

#[test]
fn ntop_formats_ipv4_and_ipv6() {
    let Some(_serial) = serial() else {
        return;
    };
    // bpftrace reads 16-byte addresses from arrays; scorch also from buf().
    let o = trace(
        |_| {
            r#"BEGIN {
                 printf("%s|%s|%s\n", ntop(0x0100007f),
                        ntop(buf("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04", 16)),
                        ntop(10, buf("\xfe\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16)));
                 exit();
               }"#
            .into()
        },
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "127.0.0.1|::ffff:1.2.3.4|fe80::1\n\n\n");
}

#[test]
fn len_counts_the_keys_of_a_map() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_read /tid == {tid}/ {{
                     @sizes[args.count] = count();
                     @total += 1;
                     if (@total == 5) {{ printf("%d\n", len(@sizes)); exit(); }}
                   }}
                   END {{ delete(@sizes[1]); print(len(@sizes)); }}"#
            )
        },
        read_sizes(&[1, 2, 1, 3, 2]),
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.out.starts_with("3\n2\n\n\n"), "{}", o.out);
    assert!(o.out.contains("@sizes[2]: 2\n"), "{}", o.out);
    assert!(!o.out.contains("@sizes[1]"), "{}", o.out);
}

/// `bswap` reverses bytes by the size of its argument's type, of values
/// computed in the program and read from a tracepoint.
#[test]
fn bswap_by_the_size_of_the_type() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "BEGIN {{
                   $x = 0x0102030405060708; $d = -2;
                   printf(\"%x %x %lx %d %x %d\\n\", bswap((uint16)$x), bswap((uint32)$x), bswap($x),
                          bswap((int16)$d), bswap((uint8)$x), bswap(bswap((uint32)$x)) == 0x05060708);
                 }}
                 t:syscalls:sys_enter_read /tid == {tid}/ {{
                   printf(\"%lx %d\\n\", bswap(args.count), bswap((uint16)args.count));
                   exit(); }}"
            )
        },
        read_sizes(&[258]),
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        "807 8070605 807060504030201 65279 8 1\n201000000000000 513\n\n\n"
    );
}

/// `kaddr()` of a variable: its address where the kernel lists data
/// symbols (CONFIG_KALLSYMS_ALL); elsewhere an error that says why, also
/// for bpftrace's loads.bt (run from /usr/sbin when installed).
#[test]
fn kaddr_of_a_variable_or_why_not() {
    let Some(_serial) = serial() else {
        return;
    };
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let listed = |name: &str| {
        kallsyms
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(name))
    };
    let program = r#"BEGIN { printf("%d\n", kaddr("avenrun") != 0); exit(); }"#;
    let o = trace_with(|_| program.into(), RunOptions::default(), || {});
    if listed("init_task") {
        assert_eq!(o.result, Ok(0), "{}", o.err);
        assert_eq!(o.out, "1\n\n\n");
        return;
    }
    let Err(RunError::Program(e)) = o.result else {
        panic!(
            "kaddr(\"avenrun\") compiled without data symbols: {}",
            o.out
        );
    };
    assert!(
        e.contains("stdin:1:30: error: no kernel symbol `avenrun`"),
        "{e}"
    );
    assert!(e.contains("built without CONFIG_KALLSYMS_ALL"), "{e}");
    let loads = std::path::Path::new("/usr/sbin/loads.bt");
    if !loads.exists() {
        eprintln!("skipped loads.bt: bpftrace's tools are not installed");
        return;
    }
    let source = scorch_lang::SourceFile::from_bytes(
        loads.display().to_string(),
        &std::fs::read(loads).unwrap(),
    );
    let e = scorch_lang::run(
        &source,
        &RunOptions::default(),
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/usr/sbin/loads.bt:"), "{e}");
    assert!(e.contains("no kernel symbol `avenrun`"), "{e}");
    assert!(e.contains("CONFIG_KALLSYMS_ALL=y"), "{e}");
    // Not followed by errors about the variable that got no value.
    assert_eq!(e.matches("error:").count(), 1, "{e}");
}

#[test]
fn strncmp_and_strcontains_filter_opened_paths() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_openat /tid == {tid}/ {{
                     $p = str(args.filename);
                     if (strncmp($p, "/nonexistent/", 13) == 0 && strcontains($p, "needle")) {{
                       printf("%s\n", $p);
                       exit();
                     }}
                   }}"#
            )
        },
        || {
            for path in [
                "/tmp/scorch-needle",
                "/nonexistent/needl",
                "/nonexistent-needle",
                "/nonexistent/a-needle-b",
            ] {
                let _ = std::fs::File::open(path);
            }
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.out.starts_with("/nonexistent/a-needle-b\n"), "{}", o.out);
}

#[test]
fn uptr_reads_user_memory_and_kptr_kernel_memory() {
    let Some(_serial) = serial() else {
        return;
    };
    // The same user address read as user memory gives the bytes written;
    // read as kernel memory the read fails and gives 0.
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_write /tid == {tid}/ {{
                     $a = (uint64)args.buf;
                     printf("%x %x\n", *(uint32 *)uptr($a), *(uint32 *)kptr($a));
                     exit();
                   }}"#
            )
        },
        || {
            use std::io::Write as _;
            let mut null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null");
            null.write_all(&[0x01, 0x02, 0x03, 0x04]).expect("write");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.out.starts_with("4030201 0\n"), "{}", o.out);
}

/// A cgroup made for one test, removed when dropped.
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn cgroupid_matches_the_cgroup_of_a_process_moved_into_it() {
    if !privileged() {
        return;
    }
    use std::os::unix::fs::MetadataExt as _;
    let root = std::path::Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.procs").exists() || !root.join("cgroup.controllers").exists() {
        eprintln!("skipped: cgroup v2 is not mounted at /sys/fs/cgroup");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cgroup = TestCgroup(root.join(format!("scorch-cgroupid-{}", std::process::id())));
    if let Err(err) = std::fs::create_dir(&cgroup.0) {
        // A read-only cgroup tree (some containers) cannot hold a test cgroup.
        assert!(
            matches!(
                err.raw_os_error(),
                Some(libc::EROFS | libc::EACCES | libc::EPERM)
            ),
            "create {}: {err}",
            cgroup.0.display()
        );
        eprintln!("skipped: cannot create a cgroup here: {err}");
        return;
    }
    // cgroup v2 ids are the inode numbers of the cgroup directories.
    let inode = std::fs::metadata(&cgroup.0).expect("cgroup").ino();
    let path = cgroup.0.display().to_string();
    let procs = cgroup.0.join("cgroup.procs").display().to_string();
    let o = trace(
        |_| {
            format!(
                r#"t:syscalls:sys_enter_execve /cgroup == cgroupid("{path}")/ {{
                     printf("%s %d %d\n", str(args.filename), cgroup, cgroupid("{path}"));
                     exit();
                   }}"#
            )
        },
        move || {
            let status = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("echo $$ > {procs} && exec /bin/true"))
                .status()
                .expect("run sh");
            assert!(status.success());
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(
        o.out.starts_with(&format!("/bin/true {inode} {inode}\n")),
        "{}",
        o.out
    );
}

#[test]
fn macaddr_prints_six_bytes_in_printf_keys_and_values() {
    let Some(_serial) = serial() else {
        return;
    };
    // bpftrace 0.17 prints the same for this program and write.
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_write /tid == {tid}/ {{
                     printf("%s\n", macaddr(args->buf));
                     @m[macaddr(args->buf)] = count();
                     @v = macaddr(args->buf);
                     exit();
                   }}"#
            )
        },
        || {
            use std::io::Write as _;
            let mut null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null");
            null.write_all(&[0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc, 0x11])
                .expect("write");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(
        o.out,
        "00:1B:21:AA:BB:CC\n\n\n@m[00:1B:21:AA:BB:CC]: 1\n@v: 00:1B:21:AA:BB:CC\n"
    );
}

#[test]
fn strcontains_of_two_read_strings_passes_the_verifier() {
    let Some(_serial) = serial() else {
        return;
    };
    // The largest unrolled search: two 64-byte strings read at run time.
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_openat /tid == {tid}/ {{
                     $p = str(args.filename);
                     printf("%d %d %d\n", strcontains($p, $p), strcontains($p, str(args.filename, 5)),
                            strcontains(str(args.filename, 3), $p));
                     exit();
                   }}"#
            )
        },
        || {
            let _ = std::fs::File::open("/nonexistent/scorch-strcontains");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.out.starts_with("1 1 0\n"), "{}", o.out);
}

#[test]
fn macaddr_of_a_six_byte_array_copies_it() {
    let Some(_serial) = serial() else {
        return;
    };
    // `str(p, 5)` is a `string[6]`, as a `char h_source[6]` member reads
    // (bpftrace 0.17 refuses str() here; its members stay arrays).
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_write /tid == {tid}/ {{
                     printf("%s\n", macaddr(str(args->buf, 5)));
                     exit();
                   }}"#
            )
        },
        || {
            use std::io::Write as _;
            let mut null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null");
            null.write_all(b"ABCDEFG").expect("write");
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert!(o.out.starts_with("41:42:43:44:45:00\n"), "{}", o.out);
}

/// The rows of the chart of `@name` in `out`: each row's time label and
/// value (`None` for `-`).
fn tseries_rows(out: &str, name: &str) -> Vec<(String, Option<i64>)> {
    let mut lines = out.lines().skip_while(|l| *l != format!("{name}:")).skip(3);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if line.trim_start().starts_with('v') {
            break;
        }
        let (time, rest) = line.split_once(' ').expect("a row");
        let value = rest.rsplit(' ').next().expect("a value");
        rows.push((time.to_string(), value.parse().ok()));
    }
    rows
}

#[test]
fn tseries_records_values_per_interval() {
    let Some(_serial) = serial() else {
        return;
    };
    // Five events within one or two 10 s intervals (a boundary may fall
    // between them): sums add up to 5, maxima end at 4, the last value
    // is always 7.
    let o = trace(
        |tid| {
            format!(
                r#"t:syscalls:sys_enter_getppid /tid == {tid}/ {{
                     @s = tseries(1, 10s, 3, "sum");
                     @last = tseries(7, 10s, 3);
                     @max = tseries(@i, 10s, 3, "max");
                     @i++;
                     if (@i == 5) {{ exit(); }}
                   }}"#
            )
        },
        || {
            for _ in 0..5 {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let sums = tseries_rows(&o.out, "@s");
    assert!((1..=2).contains(&sums.len()), "{}", o.out);
    assert_eq!(sums.iter().filter_map(|r| r.1).sum::<i64>(), 5, "{}", o.out);
    let last = tseries_rows(&o.out, "@last");
    assert!(last.iter().all(|r| r.1 == Some(7)), "{}", o.out);
    let max = tseries_rows(&o.out, "@max");
    assert_eq!(max.last().and_then(|r| r.1), Some(4), "{}", o.out);
    // Labels are local times of day: with one row bpftrace shows
    // nanoseconds, with more whole seconds (the interval's unit).
    for (time, _) in sums.iter().chain(&last).chain(&max) {
        let digits = if sums.len() == 1 { 18 } else { 8 };
        assert_eq!(time.len(), digits, "{}", o.out);
        assert_eq!(&time[2..3], ":", "{}", o.out);
    }
    if last.len() == 1 {
        // One value: the scale is widened by one on each side.
        assert!(
            o.out.contains(&format!(
                "@last:\n{}6{}8\nhh:mm:ss.ns        |",
                " ".repeat(19),
                " ".repeat(51)
            )),
            "{}",
            o.out
        );
    }
}

/// `begin` runs before the other probes are attached, as in bpftrace:
/// what it sets up is there for their first event (capable.bt names
/// capabilities in `begin`). Attaching makes syscalls that would fire
/// `sys_enter` before a late `begin`.
#[test]
fn begin_runs_before_the_other_probes_attach() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace_with(
        |_| {
            "t:raw_syscalls:sys_enter /@ready == 0/ { @early = count(); }
             BEGIN { @ready = 1; }
             interval:ms:100 { exit(); }"
                .into()
        },
        RunOptions::default(),
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    // @early never got a key: an empty map prints as an empty line.
    assert_eq!(o.out, "\n\n\n@ready: 1\n", "{}", o.err);
}

/// `bswap()` of a variable swaps the bytes of the type it was first
/// given, as bpftrace's does (tcpconnect.bt: `$dport = bswap($dport)` of
/// a `__be16`); bpftrace 0.17 prints the same three numbers.
#[test]
fn bswap_of_a_variable_swaps_its_first_types_bytes() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace_with(
        |_| {
            "BEGIN { $p = (uint16)0x9210; $p = bswap($p);
                     $w = (uint32)0x9210; $w = bswap($w);
                     $q = 0x9210; $q = bswap($q);
                     printf(\"%d %d %d\\n\", $p, $w, $q); exit(); }"
                .into()
        },
        RunOptions::default(),
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "4242 278003712 0\n\n\n");
}

/// An attach point whose target does not exist is skipped with a warning
/// when the probe has others, as in bpftrace (tools list the names a
/// function had across kernels); alone, it is an error.
#[test]
fn a_missing_attach_point_is_skipped_when_the_probe_has_others() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace_with(
        |tid| {
            format!(
                "BEGIN {{ @ = 0; }}
                 t:syscalls:sys_enter_scorch_nosuch, t:syscalls:sys_enter_getppid /tid == {tid}/ {{ @ = @ + 1; }}
                 t:syscalls:sys_exit_getppid /tid == {tid} && @ == 3/ {{ exit(); }}"
            )
        },
        RunOptions::default(),
        || {
            for _ in 0..3 {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::getppid() };
            }
        },
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "\n\n@: 3\n");
    assert!(
        o.err.contains(
            "stdin:2:18: warning: tracepoint not found: syscalls:sys_enter_scorch_nosuch: skipping this attach point"
        ),
        "{}",
        o.err
    );
    let o = trace_with(
        |_| "t:syscalls:sys_enter_scorch_nosuch { }".into(),
        RunOptions::default(),
        || {},
    );
    let Err(RunError::Program(e)) = o.result else {
        panic!("a probe on nothing ran: {:?}", o.result);
    };
    assert!(
        e.contains("error: tracepoint not found: syscalls:sys_enter_scorch_nosuch"),
        "{e}"
    );
}

/// `*` of an integer reads an integer of its type at that address, as
/// bpftrace does (loads.bt: `*kaddr("avenrun")`).
#[test]
fn dereferencing_an_integer_reads_one_of_its_type() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace_with(
        |_| {
            "BEGIN { $t = (uint64)curtask; printf(\"%d\\n\", *$t == *(uint64 *)curtask); exit(); }"
                .into()
        },
        RunOptions::default(),
        || {},
    );
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out, "1\n\n\n");
}
