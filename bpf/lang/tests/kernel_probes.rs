//! kprobe, kretprobe, fentry and fexit programs, and kprobes run through
//! fentry/fexit where the kernel has no kprobes.
//!
//! Our development kernel has neither kprobes nor usable trampolines: there
//! the tests check the errors name what is missing. The last test boots
//! Debian's 6.1 kernel (which has both) under QEMU and runs this binary's
//! tests there with `SCORCH_REQUIRE_KPROBES=1`, once as is and once with
//! `SCORCH_KPROBE_VIA_FENTRY=1`, which sends kprobes through fentry. Each
//! program filters on the thread id of a workload that sleeps five times.

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::{privileged, serial, trace, trace_with};
use scorch_lang::{RunError, RunOptions};

/// Whether the kernel must run kprobes and fentry (inside the guest).
fn required() -> bool {
    std::env::var_os("SCORCH_REQUIRE_KPROBES").is_some()
}

fn via_fentry() -> bool {
    std::env::var_os("SCORCH_KPROBE_VIA_FENTRY").is_some()
}

/// Five sleeps (each one `do_nanosleep`), then `getppid` to stop.
fn sleeps_then_getppid() {
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: getppid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getppid) };
}

fn stop_on_getppid(tid: i32) -> String {
    format!("tracepoint:syscalls:sys_enter_getppid /tid == {tid}/ {{ exit(); }}")
}

fn value<'a>(out: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
}

#[test]
fn kprobe_and_kretprobe_count_arguments_and_return_values() {
    let Some(_serial) = serial() else {
        return;
    };
    let mut opts = RunOptions::default();
    opts.verbose = true;
    let o = trace_with(
        |tid| {
            format!(
                "kprobe:do_nanosleep /tid == {tid}/ {{ @k = count(); @mode = sum(arg1); @f[func] = count(); @s[kstack] = count(); }}
                 k:do_nanoslee? /tid == {tid}/ {{ @w[probe] = count(); }}
                 kretprobe:do_nanosleep /tid == {tid}/ {{ @r = count(); @rv = sum(retval); }}
                 {}",
                stop_on_getppid(tid)
            )
        },
        opts,
        sleeps_then_getppid,
    );
    if !required() {
        match &o.result {
            Err(RunError::Bpf(e)) => {
                assert!(e.contains("CONFIG_KPROBES"), "{e}");
                assert!(e.contains("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"), "{e}");
                eprintln!("skipped: this kernel runs neither kprobes nor fentry: {e}");
                return;
            }
            Err(RunError::Program(e)) if e.contains("CONFIG_KPROBES") => {
                eprintln!("skipped: {e}");
                return;
            }
            _ => {}
        }
    }
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(value(&o.out, "@k"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@r"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@rv"), "0", "{}", o.out);
    assert_eq!(value(&o.out, "@f[do_nanosleep]"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@w[kprobe:do_nanosleep]"), "5", "{}", o.out);
    // hrtimer_nanosleep calls do_nanosleep with the mode it was given.
    assert_eq!(value(&o.out, "@mode"), "5", "{}", o.out);
    assert!(o.out.contains("hrtimer_nanosleep"), "{}", o.out);
    let through_fentry = o
        .err
        .contains("attached kprobe:do_nanosleep through fentry");
    assert_eq!(through_fentry, via_fentry(), "{}", o.err);
}

#[test]
fn fentry_and_fexit_read_typed_arguments() {
    let Some(_serial) = serial() else {
        return;
    };
    let o = trace(
        |tid| {
            format!(
                "fentry:do_nanosleep /tid == {tid}/ {{ @n = count(); @mode = sum(args.mode); @f[func] = count(); @own = sum(args.t->task->pid == tid); }}
                 kretfunc:do_nanosleep /tid == {tid}/ {{ @r = count(); @rv = sum(retval); @t = sum(args->mode); }}
                 {}",
                stop_on_getppid(tid)
            )
        },
        sleeps_then_getppid,
    );
    if !required() {
        if let Err(RunError::Bpf(e)) = &o.result {
            assert!(e.contains("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"), "{e}");
            eprintln!("skipped: this kernel refuses fentry: {e}");
            return;
        }
    }
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(value(&o.out, "@n"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@mode"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@f[do_nanosleep]"), "5", "{}", o.out);
    // A typed pointer argument walks through BTF: the sleeper's task is the caller.
    assert_eq!(value(&o.out, "@own"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@r"), "5", "{}", o.out);
    assert_eq!(value(&o.out, "@rv"), "0", "{}", o.out);
    assert_eq!(value(&o.out, "@t"), "5", "{}", o.out);
}

#[test]
fn unknown_kernel_functions_and_arguments_are_program_errors() {
    if !privileged() {
        return;
    }
    let run = |text: &str| {
        scorch_lang::run(
            &scorch_lang::SourceFile::inline(text),
            &RunOptions::default(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
    };
    let Err(RunError::Program(e)) = run("kprobe:do_nanosleeep { }") else {
        panic!("no error for a misspelt kernel function");
    };
    assert!(e.contains("no kernel function `do_nanosleeep`"), "{e}");
    assert!(e.contains("did you mean `kprobe:do_nanosleep`?"), "{e}");
    let Err(RunError::Program(e)) = run("kprobe:xfs:xfs_file_read_iter { }") else {
        panic!("no error for a module-qualified kprobe");
    };
    assert!(e.contains("by module (`xfs:`)"), "{e}");
    assert!(e.contains("`kprobe:xfs_file_read_iter`"), "{e}");
    let Err(RunError::Program(e)) = run("fentry:do_nanosleep { @ = args.moed; }") else {
        panic!("no error for a misspelt argument");
    };
    assert!(e.contains("do_nanosleep has no argument `moed`"), "{e}");
    assert!(e.contains("did you mean `mode`?"), "{e}");
    let Err(RunError::Program(e)) = run("fexit:do_nanosleep { @ = arg0; }") else {
        panic!("no error for arg0 in fexit");
    };
    assert!(e.contains("use `args.NAME`"), "{e}");
}

/// `stat()`s and opens then closes `dir/name`, which the caller made.
fn stat_and_close(dir: &Path, name: &str) {
    let file = dir.join(name);
    std::fs::metadata(&file).expect("stat the file");
    drop(std::fs::File::open(&file).expect("open the file"));
    // SAFETY: getppid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getppid) };
}

#[test]
fn path_prints_full_paths_in_fentry_and_fexit() {
    let Some(_serial) = serial() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("scorch-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = "uniq-d-path-file";
    let other = "uniq-d-path-other";
    std::fs::write(dir.join(name), b"x").unwrap();
    std::fs::write(dir.join(other), b"x").unwrap();
    let workload_dir = dir.clone();
    let o = trace(
        |tid| {
            format!(
                "fentry:security_inode_getattr /tid == {tid}/ {{
                     if (str(args.path->dentry->d_name.name) == \"{name}\") {{ printf(\"getattr %s\\n\", path(args.path)); }}
                 }}
                 fexit:filp_close /tid == {tid}/ {{
                     $n = str(args.filp->f_path.dentry->d_name.name);
                     if ($n == \"{name}\") {{
                         @closed[path(args.filp->f_path)] = count();
                         printf(\"short %s|\\n\", path(args.filp->f_path, 8));
                     }}
                     if ($n == \"{name}\" || $n == \"{other}\") {{
                         @short[path(args.filp->f_path, 8)] = count();
                     }}
                 }}
                 {}",
                stop_on_getppid(tid)
            )
        },
        move || {
            let other = workload_dir.join(other);
            drop(std::fs::File::open(other).expect("open the other file"));
            stat_and_close(&workload_dir, name)
        },
    );
    std::fs::remove_dir_all(&dir).unwrap();
    if !required() {
        if let Err(RunError::Bpf(e)) = &o.result {
            assert!(e.contains("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"), "{e}");
            eprintln!("skipped: this kernel refuses fentry: {e}");
            return;
        }
    }
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let full = dir.join(name).display().to_string();
    assert!(o.out.contains(&format!("getattr {full}\n")), "{}", o.out);
    assert_eq!(value(&o.out, &format!("@closed[{full}]")), "1", "{}", o.out);
    // Too long for 8 bytes: d_path fails and the string is empty.
    assert!(o.out.contains("short |\n"), "{}", o.out);
    // Every failure is the same (empty) key, whatever tail of the path
    // the kernel left in the buffer.
    assert_eq!(value(&o.out, "@short[]"), "2", "{}", o.out);
    assert_eq!(o.out.matches("@short[").count(), 1, "{}", o.out);
}

#[test]
fn path_outside_allowed_functions_is_a_program_error() {
    if !privileged() {
        return;
    }
    let run = |text: &str| {
        scorch_lang::run(
            &scorch_lang::SourceFile::inline(text),
            &RunOptions::default(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
    };
    let Err(RunError::Program(e)) =
        run("tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", path(args.filename)); }")
    else {
        panic!("no error for path() in a tracepoint");
    };
    assert!(
        e.contains(
            "path() needs a fentry/fexit probe on a function the kernel allows bpf_d_path in"
        ),
        "{e}"
    );
    assert!(e.contains("stdin:1:55: error: path() needs"), "{e}");
    let Err(RunError::Program(e)) = run("fentry:vfs_open { printf(\"%s\\n\", path(args.path)); }")
    else {
        panic!("no error for path() in fentry:vfs_open");
    };
    assert!(e.contains("`fentry:vfs_open` is not one"), "{e}");
    assert!(e.contains("filp_close"), "{e}");
    let Err(RunError::Program(e)) =
        run("fentry:filp_close { printf(\"%s\\n\", path(args.filp)); }")
    else {
        panic!("no error for path() of a struct file");
    };
    assert!(
        e.contains("path() takes a `struct path *`, not struct file *"),
        "{e}"
    );
    let Err(RunError::Program(e)) = run(
        "struct path { long x; } fentry:vfs_getattr { printf(\"%s\\n\", path((struct path *)args.path)); }",
    ) else {
        panic!("no error for path() of the script's struct path");
    };
    assert!(e.contains("this `struct path` is the script's own"), "{e}");
    let Err(RunError::Program(e)) = run(
        "fentry:vfs_getattr { @p = args.path; printf(\"%s\\n\", path(@p)); $q = args.path; print(path($q)); }",
    ) else {
        panic!("no error for path() of a stored pointer");
    };
    assert_eq!(
        e.matches("path() reads only a `struct path *` taken from the probe's arguments")
            .count(),
        2,
        "{e}"
    );
    let Err(RunError::Program(e)) =
        run("fentry:vfs_getattr { printf(\"%s\\n\", path(args.path, 0)); }")
    else {
        panic!("no error for path() with size 0");
    };
    assert!(
        e.contains("path() size must be an integer constant from 1 to 4096"),
        "{e}"
    );
}

/// `-l` lists kernel functions for kprobes and, from BTF, for fentry;
/// `-lv` adds fentry's typed arguments.
#[test]
fn lists_kernel_functions_with_their_arguments() {
    if !privileged() {
        return;
    }
    let list = |pattern: &str, verbose: bool| {
        let mut out = Vec::new();
        scorch_lang::runtime::list_with(
            pattern,
            &scorch_lang::sema::TraceFs::new("/sys/kernel/tracing"),
            verbose,
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(list("k:do_nanosleep", false), "kprobe:do_nanosleep\n");
    assert_eq!(
        list("fentry:do_nanosleep", true),
        "fentry:vmlinux:do_nanosleep\n    \
         struct hrtimer_sleeper * t\n    \
         enum hrtimer_mode mode\n    \
         int retval\n"
    );
    assert_eq!(
        list("kfunc:vmlinux:do_nanosleep", false),
        "fentry:vmlinux:do_nanosleep\n"
    );
}

/// Runs the tests above inside Debian's 6.1 kernel: see
/// `tests/guest/boot.sh`.
#[test]
fn kernel_probes_on_linux_6_1() {
    if !privileged() || required() {
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    let tests = "kprobe_and_kretprobe_count_arguments_and_return_values \
                 fentry_and_fexit_read_typed_arguments \
                 unknown_kernel_functions_and_arguments_are_program_errors \
                 lists_kernel_functions_with_their_arguments \
                 path_prints_full_paths_in_fentry_and_fexit \
                 path_outside_allowed_functions_is_a_program_error";
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-kernel-probes.sh");
    std::fs::write(
        &script,
        format!(
            "export SCORCH_REQUIRE_KPROBES=1\n\
             {me} --test-threads 1 --exact {tests} 2>&1 | sed 's/^/KPROBES: /'\n\
             SCORCH_KPROBE_VIA_FENTRY=1 {me} --test-threads 1 --exact \
             kprobe_and_kretprobe_count_arguments_and_return_values 2>&1 | sed 's/^/FALLBACK: /'\n",
            me = me.display()
        ),
    )
    .unwrap();
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/guest/boot.sh");
    let out = Command::new("bash")
        .arg(boot)
        .arg(&script)
        .arg(&me)
        .output()
        .expect("tests/guest/boot.sh");
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success()
            && console.contains("KPROBES: test result: ok. 6 passed")
            && console.contains("FALLBACK: test result: ok. 1 passed"),
        "the kernel probe tests failed on 6.1 ({:?}):\n{console}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
