//! uprobes, uretprobes and USDT probes on programs built here, and
//! bpftrace's own tools that use them, run unmodified from /usr/sbin.
//!
//! Each test builds its workload under a name of its own (a probe on a
//! file fires in every process running it, and test binaries run at
//! once), starts it blocked on stdin, traces with `-p` on its pid (so the
//! run ends when it exits), and lets it go once the probes are attached.
//! Needs root, gcc and `sys/sdt.h` (systemtap-sdt-dev); skips without root.

// This file drives runs with its own output hooks: not every helper is used.
#[allow(dead_code)]
mod harness;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{privileged, serial, Outcome};
use scorch_lang::{run, RunError, RunOptions, SourceFile};

/// Builds C `source` as `name` with gcc and `flags`.
fn build_c(name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("user_probes");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(name);
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "building {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// `probed(i, j)` returns `2 i + j`, called for i in 0..N (its argument)
/// with j = 1; `greet(7)` returns "hello7". A large `.bss` lies past the
/// end of the file.
const TARGET: &str = "#include <stdio.h>\n#include <stdlib.h>\n\
    char scorch_big[1 << 20];\n\
    __attribute__((noinline)) long probed(long i, long j) { return 2 * i + j; }\n\
    __attribute__((noinline)) char *greet(int n) { static char b[32]; snprintf(b, sizeof b, \"hello%d\", n); return b; }\n\
    int main(int argc, char **argv) {\n\
      char line[8]; volatile long s = 0; long n = atol(argv[1]);\n\
      if (!fgets(line, sizeof line, stdin)) return 1;\n\
      for (long i = 0; i < n; i++) s += probed(i, 1);\n\
      puts(greet(7));\n\
      scorch_big[n] = 1;\n\
      return 0;\n\
    }\n";

/// The same, in Rust.
const RUST_TARGET: &str = "use std::io::BufRead;\n\
    #[no_mangle]\n#[inline(never)]\n\
    pub extern \"C\" fn probed(i: u64, j: u64) -> u64 { std::hint::black_box(2 * i + j) }\n\
    fn main() {\n\
      let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();\n\
      let mut line = String::new();\n\
      std::io::stdin().lock().read_line(&mut line).unwrap();\n\
      let mut s = 0;\n\
      for i in 0..n { s += probed(std::hint::black_box(i), 1); }\n\
      std::hint::black_box(s);\n\
    }\n";

/// Starts `exe ARGS…` waiting for a line on stdin.
fn start(exe: &Path, args: &[&str]) -> Child {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the workload")
}

/// Lets `child` go and waits for it.
fn go(mut child: Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child.wait().unwrap();
}

/// Output that tells a channel whenever a complete line arrives.
struct Lines {
    text: Arc<Mutex<Vec<u8>>>,
    seen: mpsc::Sender<String>,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text = self.text.lock().unwrap();
        let before = text.len();
        text.extend_from_slice(buf);
        let start = text[..before]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for line in String::from_utf8_lossy(&text[start..]).split_inclusive('\n') {
            if let Some(line) = line.strip_suffix('\n') {
                let _ = self.seen.send(line.to_string());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `program` with `opts`; once the probes are attached, `workload`
/// runs on its own thread with a receiver of the output's lines.
fn trace(
    program: &SourceFile,
    opts: &RunOptions,
    workload: impl FnOnce(&mpsc::Receiver<String>) + Send + 'static,
) -> Outcome {
    let (attached_tx, attached_rx) = mpsc::channel::<()>();
    let (line_tx, line_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        if attached_rx.recv_timeout(Duration::from_secs(30)).is_ok() {
            workload(&line_rx);
        }
    });
    let err_text = Arc::new(Mutex::new(Vec::new()));
    let mut err = AttachedSignal {
        text: err_text.clone(),
        attached: Some(attached_tx),
    };
    let out_text = Arc::new(Mutex::new(Vec::new()));
    let mut out = Lines {
        text: out_text.clone(),
        seen: line_tx,
    };
    let result = run(program, opts, &mut out, &mut err);
    drop(err);
    drop(out);
    worker.join().expect("workload thread");
    let text = |t: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&t.lock().unwrap()).into_owned();
    Outcome {
        result,
        out: text(&out_text),
        err: text(&err_text),
    }
}

/// Stderr that signals when `Attached N probes` is printed.
struct AttachedSignal {
    text: Arc<Mutex<Vec<u8>>>,
    attached: Option<mpsc::Sender<()>>,
}

impl Write for AttachedSignal {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text = self.text.lock().unwrap();
        text.extend_from_slice(buf);
        if String::from_utf8_lossy(&text).contains("Attached") {
            if let Some(tx) = self.attached.take() {
                let _ = tx.send(());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with_pid(pid: u32) -> RunOptions {
    let mut opts = RunOptions::default();
    opts.pid = Some(pid);
    opts
}

/// Waits (at most 30 s) for an output line that satisfies `wanted`.
fn wait_for(lines: &mpsc::Receiver<String>, mut wanted: impl FnMut(&str) -> bool) {
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        if wanted(&line) {
            return;
        }
    }
}

/// The value printed for map `name` (`@name: VALUE`).
fn map_value(out: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
        .to_string()
}

/// Counts and sums over arguments and return values of a C program built
/// with and without frame pointers, and of a Rust program.
#[test]
fn uprobe_arguments_and_uretprobe_return_values() {
    let Some(_serial) = serial() else {
        return;
    };
    let c_fp = build_c("args_fp", TARGET, &["-O1", "-fno-omit-frame-pointer"]);
    let c_nofp = build_c("args_nofp", TARGET, &["-O2", "-fomit-frame-pointer"]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("user_probes");
    std::fs::write(dir.join("args_rs.rs"), RUST_TARGET).unwrap();
    let rust = dir.join("args_rs");
    let built = Command::new("rustc")
        .args(["-C", "opt-level=1", "-o"])
        .arg(&rust)
        .arg(dir.join("args_rs.rs"))
        .status()
        .expect("rustc");
    assert!(built.success());
    for exe in [&c_fp, &c_nofp, &rust] {
        let bin = exe.display();
        let greet = if exe == &rust {
            String::new()
        } else {
            format!("uretprobe:{bin}:greet {{ printf(\"%s %s\\n\", str(retval), func); }}")
        };
        let program = SourceFile::inline(format!(
            "uprobe:{bin}:probed {{ @n = count(); @i = sum(arg0); @j = sum(arg1); @f[func] = count(); }}
             uretprobe:{bin}:probed {{ @r = sum(retval); }}
             {greet}"
        ));
        let child = start(exe, &["100"]);
        let o = trace(&program, &with_pid(child.id()), move |_| go(child));
        assert_eq!(o.result, Ok(0), "{bin}: {}", o.err);
        assert_eq!(map_value(&o.out, "@n"), "100", "{bin}");
        assert_eq!(map_value(&o.out, "@i"), "4950", "{bin}");
        assert_eq!(map_value(&o.out, "@j"), "100", "{bin}");
        assert_eq!(
            map_value(&o.out, "@r"),
            (2 * 4950 + 100).to_string(),
            "{bin}"
        );
        assert_eq!(map_value(&o.out, "@f[probed]"), "100", "{bin}");
        if exe != &rust {
            assert!(o.out.starts_with("hello7 greet\n"), "{bin}: {}", o.out);
        }
    }
}

/// An argument cast to a pointer to a struct the script declares is read
/// from user memory, as bpftrace reads it in user-space probes (member by
/// member or whole); pointer arithmetic steps over whole structs.
#[test]
fn uprobe_arguments_cast_to_struct_pointers_read_user_memory_and_step_by_structs() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c(
        "structs",
        "#include <stdio.h>\n#include <string.h>\n\
         struct scorch_req { long id; int kind; char name[8]; };\n\
         __attribute__((noinline)) long handle(struct scorch_req *r) { return r->id; }\n\
         int main(void) {\n\
           char line[8]; volatile long s = 0; struct scorch_req r[2];\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < 10; i++) {\n\
             r[0].id = i; r[0].kind = -3; strcpy(r[0].name, \"req\");\n\
             r[1].id = 100 + i; s += handle(r);\n\
           }\n\
           return 0;\n\
         }\n",
        &["-O1"],
    );
    let bin = exe.display();
    let program = SourceFile::inline(format!(
        "struct scorch_req {{ long id; int kind; char name[8]; }}
         uprobe:{bin}:handle {{
           $r = (struct scorch_req *)arg0;
           @id = sum($r->id); @kind = sum($r->kind); @name[$r->name] = count();
           @next = sum(($r + 1)->id); @back = sum(($r + 2 - 1)->id);
           @last = *$r;
         }}"
    ));
    let child = start(&exe, &[]);
    let o = trace(&program, &with_pid(child.id()), move |_| go(child));
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@id"), "45", "{}", o.out);
    assert_eq!(map_value(&o.out, "@kind"), "-30", "{}", o.out);
    assert_eq!(map_value(&o.out, "@name[req]"), "10", "{}", o.out);
    // `p + n` steps over n structs, as in C.
    assert_eq!(map_value(&o.out, "@next"), "1045", "{}", o.out);
    assert_eq!(map_value(&o.out, "@back"), "1045", "{}", o.out);
    // The whole struct, copied from user memory (the last call's).
    assert_eq!(
        map_value(&o.out, "@last"),
        "{ .id = 9, .kind = -3, .name = req }",
        "{}",
        o.out
    );
}

/// A struct copied whole from user memory keeps pointing there: its
/// pointer members (also inside a nested struct, an array, or a copy of
/// the nested struct) are read with `probe_read_user`, as bpftrace does.
/// The string lies on the stack: a page of `.rodata` not yet touched
/// would read as nothing.
#[test]
fn pointers_in_a_struct_copied_from_user_memory_point_into_user_memory() {
    let Some(_serial) = serial() else {
        return;
    };
    let types = "struct scorch_b { long id; };
         struct scorch_i { struct scorch_b *p; };
         struct scorch_a { long id; struct scorch_b *next; const char *name;
                           struct scorch_i in; struct scorch_b *arr[2]; };";
    let exe = build_c(
        "copied_pointers",
        &format!(
            "#include <stdio.h>\n{types}\n\
             __attribute__((noipa)) long handle(struct scorch_a *r) {{ return r->id; }}\n\
             int main(void) {{\n\
               char line[8], name[8] = \"alpha\"; volatile long s = 0;\n\
               struct scorch_b b = {{ 22 }}, c = {{ 33 }}, d = {{ 44 }}, e = {{ 55 }};\n\
               struct scorch_a a = {{ 11, &b, name, {{ &c }}, {{ &d, &e }} }};\n\
               if (!fgets(line, sizeof line, stdin)) return 1;\n\
               s += handle(&a);\n\
               return 0;\n\
             }}\n"
        ),
        &["-O1"],
    );
    let bin = exe.display();
    let program = SourceFile::inline(format!(
        "{types}
         uprobe:{bin}:handle {{
           $v = *(struct scorch_a *)arg0; $w = $v.in;
           printf(\"%d %d %s %d %d %d\\n\", $v.id, $v.next->id, str($v.name),
                  $v.in.p->id, $w.p->id, $v.arr[1]->id);
         }}"
    ));
    let child = start(&exe, &[]);
    let o = trace(&program, &with_pid(child.id()), move |_| go(child));
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(o.out.trim(), "11 22 alpha 33 33 55", "{}", o.out);
}

/// `symbol+offset`, an address, wildcards, and `uaddr`.
#[test]
fn uprobe_offsets_addresses_wildcards_and_uaddr() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c("places", TARGET, &["-O1"]);
    let bin = exe.display().to_string();
    let nm = Command::new("nm").arg(&exe).output().expect("nm");
    let nm = String::from_utf8_lossy(&nm.stdout);
    let address = |name: &str| {
        nm.lines()
            .find_map(|l| l.strip_suffix(&format!(" T {name}")))
            .map(|a| u64::from_str_radix(a, 16).unwrap())
            .unwrap_or_else(|| panic!("no {name} in nm"))
    };
    let (probed, big) = (address("probed"), {
        nm.lines()
            .find_map(|l| l.strip_suffix(" B scorch_big"))
            .map(|a| u64::from_str_radix(a, 16).unwrap())
            .expect("scorch_big in nm")
    });
    let program = SourceFile::inline(format!(
        "uprobe:{bin}:{probed:#x} {{ @by_address = count(); }}
         uprobe:{bin}:probe* {{ @[probe] = count(); }}
         uprobe:{bin}:greet+0 {{ @at_offset = count(); @big = uaddr(\"scorch_big\"); }}"
    ));
    let child = start(&exe, &["7"]);
    let o = trace(&program, &with_pid(child.id()), move |_| go(child));
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@by_address"), "7");
    assert_eq!(map_value(&o.out, &format!("@[uprobe:{bin}:probed]")), "7");
    assert_eq!(map_value(&o.out, "@at_offset"), "1");
    assert_eq!(map_value(&o.out, "@big"), big.to_string());
}

/// Two copies of the program: with `-p`, only the one named is counted.
#[test]
fn uprobe_with_pid_counts_that_process_only() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c("isolated", TARGET, &["-O1"]);
    let program = SourceFile::inline(format!(
        "uprobe:{}:probed {{ @n = count(); @pids[pid] = count(); }}",
        exe.display()
    ));
    let traced = start(&exe, &["10"]);
    let other = start(&exe, &["1000"]);
    let pid = traced.id();
    let o = trace(&program, &with_pid(pid), move |_| {
        // The other copy runs to its end while the probe is attached.
        go(other);
        go(traced);
    });
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@n"), "10");
    assert_eq!(map_value(&o.out, &format!("@pids[{pid}]")), "10");
    assert_eq!(o.out.matches("@pids[").count(), 1, "{}", o.out);
}

/// A USDT probe with a semaphore (its code runs only while attached) and
/// one without; arguments decoded from the notes.
#[test]
fn usdt_probes_with_semaphores_and_arguments() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c(
        "usdt_target",
        "#define _SDT_HAS_SEMAPHORES 1\n\
         #include <stdio.h>\n#include <stdlib.h>\n\
         unsigned short scorch_tick_semaphore __attribute__((section(\".probes\")));\n\
         unsigned short scorch_plain_semaphore __attribute__((section(\".probes\")));\n\
         #include <sys/sdt.h>\n\
         int main(int argc, char **argv) {\n\
           char line[8]; long n = atol(argv[1]); int small = -3;\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < n; i++) {\n\
             if (*(volatile unsigned short *)&scorch_tick_semaphore)\n\
               STAP_PROBE3(scorch, tick, i, 2 * i + 1, small);\n\
             STAP_PROBE1(scorch, plain, -i);\n\
           }\n\
           return 0;\n\
         }\n",
        &["-O1"],
    );
    let bin = exe.display();
    let program = SourceFile::inline(format!(
        "usdt:{bin}:scorch:tick {{ @n = count(); @i = sum(arg0); @odd = sum(arg1); @small = sum((int32)arg2); }}
         U:{bin}:plain {{ @neg = sum((int64)arg0); @[probe] = count(); }}"
    ));
    let child = start(&exe, &["20"]);
    let o = trace(&program, &with_pid(child.id()), move |_| go(child));
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@n"), "20");
    assert_eq!(map_value(&o.out, "@i"), "190");
    assert_eq!(map_value(&o.out, "@odd"), "400");
    assert_eq!(map_value(&o.out, "@small"), "-60");
    assert_eq!(map_value(&o.out, "@neg"), "-190");
    assert_eq!(
        map_value(&o.out, &format!("@[usdt:{bin}:scorch:plain]")),
        "20"
    );
}

/// bpftrace's bashreadline.bt, as installed, against a bash we feed.
#[test]
fn bpftrace_bashreadline_tool() {
    let Some(_serial) = serial() else {
        return;
    };
    let tool = "/usr/sbin/bashreadline.bt";
    let program = SourceFile::from_bytes(tool, &std::fs::read(tool).expect(tool));
    let mut bash = Command::new("bash")
        .args(["--norc", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    let pid = bash.id();
    let mut stdin = bash.stdin.take().unwrap();
    let o = trace(&program, &with_pid(pid), move |_| {
        stdin
            // bash was already inside its first readline() when the
            // uretprobe was attached: that call's return is not seen.
            .write_all(b"true first\necho scorch_readline_1\ntrue scorch_readline_2\nexit\n")
            .unwrap();
        drop(stdin);
        bash.wait().unwrap();
    });
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let mut lines = o.out.lines();
    assert_eq!(
        lines.next(),
        Some("Tracing bash commands... Hit Ctrl-C to end.")
    );
    assert_eq!(lines.next(), Some("TIME      PID    COMMAND"));
    let commands: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            // `HH:MM:SS  PID    COMMAND`
            let (time, rest) = l.split_once("  ").expect("time column");
            assert_eq!(time.len(), 8, "{l}");
            let (pid, command) = rest.split_at(7);
            (pid.trim().to_string(), command.to_string())
        })
        .collect();
    let pid = pid.to_string();
    let commands: Vec<_> = commands
        .into_iter()
        .filter(|(_, c)| c != "true first")
        .collect();
    assert_eq!(
        commands,
        [
            (pid.clone(), "echo scorch_readline_1".to_string()),
            (pid.clone(), "true scorch_readline_2".to_string()),
            (pid.clone(), "exit".to_string()),
        ],
        "{}",
        o.out
    );
}

/// bpftrace's threadsnoop.bt, as installed (it probes
/// `libpthread:pthread_create`, which glibc 2.34 moved into libc), against
/// a program that starts three threads.
#[test]
fn bpftrace_threadsnoop_tool() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c(
        "threads",
        "#include <pthread.h>\n#include <stdio.h>\n\
         void *scorch_thread_main(void *a) { return a; }\n\
         int main(void) {\n\
           char line[8];\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (int i = 0; i < 3; i++) { pthread_t t; pthread_create(&t, 0, scorch_thread_main, 0); pthread_join(t, 0); }\n\
           /* Alive until the tracer has named the thread function. */\n\
           return fgets(line, sizeof line, stdin) ? 0 : 1;\n\
         }\n",
        &["-O1", "-pthread"],
    );
    let tool = "/usr/sbin/threadsnoop.bt";
    let program = SourceFile::from_bytes(tool, &std::fs::read(tool).expect(tool));
    let mut child = start(&exe, &[]);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let o = trace(&program, &with_pid(pid), move |lines| {
        stdin.write_all(b"go\n").unwrap();
        let mut seen = 0;
        wait_for(lines, |l| {
            seen += usize::from(l.contains("scorch_thread_main"));
            seen == 3
        });
        stdin.write_all(b"done\n").unwrap();
        child.wait().unwrap();
    });
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let rows: Vec<Vec<&str>> = o
        .out
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{}", o.out);
    for row in rows {
        assert_eq!(
            row[1..],
            [pid.to_string().as_str(), "threads", "scorch_thread_main"]
        );
    }
}

/// bpftrace's gethostlatency.bt, as installed, against getaddrinfo and
/// gethostbyname calls.
#[test]
fn bpftrace_gethostlatency_tool() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c(
        "resolver",
        "#include <netdb.h>\n#include <stdio.h>\n#include <string.h>\n\
         int main(void) {\n\
           char line[8]; struct addrinfo *ai, hints; memset(&hints, 0, sizeof hints);\n\
           if (!fgets(line, sizeof line, stdin)) return 1;\n\
           for (int i = 0; i < 2; i++) if (getaddrinfo(\"localhost\", 0, &hints, &ai) == 0) freeaddrinfo(ai);\n\
           gethostbyname(\"localhost\");\n\
           return 0;\n\
         }\n",
        &["-O1"],
    );
    let tool = "/usr/sbin/gethostlatency.bt";
    let program = SourceFile::from_bytes(tool, &std::fs::read(tool).expect(tool));
    let child = start(&exe, &[]);
    let pid = child.id();
    let o = trace(&program, &with_pid(pid), move |_| go(child));
    assert_eq!(o.result, Ok(0), "{}", o.err);
    let rows: Vec<Vec<&str>> = o
        .out
        .lines()
        .skip(2)
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{}", o.out);
    for row in rows {
        // TIME PID COMM LATms HOST
        assert_eq!(row.len(), 5, "{}", o.out);
        assert_eq!(row[1..3], [pid.to_string().as_str(), "resolver"]);
        assert!(row[3].parse::<u64>().is_ok(), "{}", o.out);
        assert_eq!(row[4], "localhost");
    }
}

/// The error a program gets before anything is loaded.
fn program_error(text: &str, opts: &RunOptions) -> String {
    match run(
        &SourceFile::inline(text),
        opts,
        &mut Vec::new(),
        &mut Vec::new(),
    ) {
        Err(RunError::Program(text)) => text,
        other => panic!("expected a program error for {text}, got {other:?}"),
    }
}

/// Bad probes are errors at the spec, with a way forward.
#[test]
fn bad_user_probes_are_clear_errors() {
    if !privileged() {
        return;
    }
    let exe = build_c("bad_input", TARGET, &["-O1"]);
    let bin = exe.display().to_string();
    let stripped = PathBuf::from(format!("{bin}-stripped"));
    std::fs::copy(&exe, &stripped).unwrap();
    assert!(Command::new("strip")
        .arg(&stripped)
        .status()
        .unwrap()
        .success());
    let opts = RunOptions::default();

    let e = program_error(&format!("uprobe:{bin}:probd {{ }}"), &opts);
    assert!(e.contains(&format!("{bin} has no function `probd`")), "{e}");
    assert!(e.contains("help: did you mean `probed`?"), "{e}");

    let e = program_error(
        &format!("uprobe:{}:probed {{ }}", stripped.display()),
        &opts,
    );
    assert!(e.contains("it is stripped"), "{e}");

    let e = program_error("uprobe:/nonexistent/scorch:main { }", &opts);
    assert!(e.contains("/nonexistent/scorch does not exist"), "{e}");
    assert!(e.starts_with("stdin:1:1: error:"), "{e}");

    let e = program_error("uprobe:/dev/zero:main { }", &opts);
    assert!(e.contains("/dev/zero is not a regular file"), "{e}");

    let e = program_error(&format!("usdt:{bin}:scorch:tock {{ }}"), &opts);
    assert!(e.contains("has no USDT probe `scorch:tock`"), "{e}");
    assert!(e.contains("declares no USDT probes"), "{e}");

    let e = program_error(&format!("uprobe:{bin}:nomatch_* {{ }}"), &opts);
    assert!(e.contains("no function of"), "{e}");

    let e = program_error(
        &format!("uretprobe:{bin}:probed {{ @ = arg0; }} uprobe:{bin}:probed {{ @r = retval; }}"),
        &opts,
    );
    assert!(
        e.contains("`arg0` cannot be used in uretprobe probes"),
        "{e}"
    );
    assert!(
        e.contains("`retval` cannot be used in uprobe probes"),
        "{e}"
    );

    let e = program_error(&format!("uprobe:{bin}:probed {{ @ = arg6; }}"), &opts);
    assert!(e.contains("arg0 to arg5"), "{e}");

    let e = program_error("interval:s:1 { @ = uaddr(\"main\"); }", &opts);
    assert!(e.contains("uaddr() cannot be used in interval"), "{e}");
}

/// A process that is gone: the attach fails, naming it, and exits 1.
#[test]
fn uprobe_on_a_process_that_exited() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c("gone", TARGET, &["-O1"]);
    let mut child = start(&exe, &["1"]);
    let pid = child.id();
    go_now(&mut child);
    let o = run(
        &SourceFile::inline(format!("uprobe:{}:probed {{ }}", exe.display())),
        &with_pid(pid),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    match o {
        Err(RunError::Bpf(e)) => {
            assert!(e.contains(&format!("process {pid} does not exist")), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

fn go_now(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child.wait().unwrap();
}

/// The perf events this process holds open.
fn perf_event_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("perf_event"))
        .count()
}

/// When one attach point fails after others attached, the run fails and
/// detaches those: no perf event stays open.
#[test]
fn a_failed_attach_detaches_what_was_attached() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c("half", TARGET, &["-O1"]);
    let bin = exe.display();
    let nm = Command::new("nm").arg(&exe).output().expect("nm");
    let big = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .find_map(|l| l.strip_suffix(" B scorch_big").map(str::to_string))
        .expect("scorch_big");
    // The end of .bss lies past the end of the file: the kernel refuses
    // a uprobe there.
    let past_end = u64::from_str_radix(&big, 16).unwrap() + (1 << 20) - 16;
    let before = perf_event_fds();
    let mut err = Vec::new();
    let o = run(
        &SourceFile::inline(format!(
            "uprobe:{bin}:probed {{ }} uprobe:{bin}:greet {{ }} uprobe:{bin}:{past_end:#x} {{ }}"
        )),
        &RunOptions::default(),
        &mut Vec::new(),
        &mut err,
    );
    match o {
        Err(RunError::Bpf(e)) => assert!(
            e.contains(&format!("attaching uprobe:{bin}:{past_end:#x}")),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(perf_event_fds(), before, "perf events left open");
}

/// `-l` lists a binary's functions and USDT probes.
#[test]
fn lists_functions_and_usdt_probes_of_a_binary() {
    let exe = build_c("listed", TARGET, &["-O1"]);
    let bin = exe.display();
    let mut out = Vec::new();
    scorch_lang::runtime::list(
        &format!("uprobe:{bin}:pro*"),
        &scorch_lang::sema::TraceFs::new("/sys/kernel/tracing"),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("uprobe:{bin}:probed\n")
    );
    let usdt = build_c(
        "listed_usdt",
        "#include <sys/sdt.h>\nint main(int argc, char **argv) { STAP_PROBE1(scorch, one, argc); STAP_PROBE(scorch, two); return 0; }\n",
        &["-O1"],
    );
    let mut out = Vec::new();
    scorch_lang::runtime::list(
        &format!("usdt:{}:*", usdt.display()),
        &scorch_lang::sema::TraceFs::new("/sys/kernel/tracing"),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("usdt:{0}:scorch:one\nusdt:{0}:scorch:two\n", usdt.display())
    );
}

/// `-lv` lists a user function's parameters from the binary's DWARF, as
/// bpftrace (built with libdw) prints them; without DWARF only the name.
#[test]
fn lists_user_function_parameters_from_dwarf() {
    let source = "struct req { long id; };\n\
        __attribute__((noinline)) int handle(struct req *r, const char *name, unsigned long n, char **argv) {\n\
          return r->id + n + name[0] + argv[0][0];\n\
        }\n\
        int main(int argc, char **argv) { struct req r = { argc }; return handle(&r, \"x\", 2, argv); }\n";
    let list = |exe: &Path| {
        let mut out = Vec::new();
        scorch_lang::runtime::list_with(
            &format!("uprobe:{}:hand*", exe.display()),
            &scorch_lang::sema::TraceFs::new("/sys/kernel/tracing"),
            true,
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    let exe = build_c("dwarf_params", source, &["-O1", "-g"]);
    let expected = format!(
        "uprobe:{}:handle\n    struct req* r\n    const char* name\n    long unsigned int n\n    char** argv\n",
        exe.display()
    );
    assert_eq!(list(&exe), expected);
    if let Ok(out) = Command::new("/usr/bin/bpftrace")
        .arg("-lv")
        .arg(format!("uprobe:{}:hand*", exe.display()))
        .output()
    {
        if out.status.success() && !out.stdout.is_empty() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                expected,
                "bpftrace disagrees"
            );
        }
    }
    let stripped = build_c("no_dwarf_params", source, &["-O1"]);
    assert_eq!(
        list(&stripped),
        format!("uprobe:{}:handle\n", stripped.display())
    );
}

/// Qualifiers, function pointers, C++ references and unnamed parameters
/// are spelled as bpftrace 0.17 spells them (it aborts on an unnamed
/// parameter: that one is spelled as its type alone).
#[test]
fn lists_user_function_parameters_as_bpftrace_spells_them() {
    let list = |exe: &Path, pattern: &str| {
        let mut out = Vec::new();
        scorch_lang::runtime::list_with(
            &format!("uprobe:{}:{pattern}", exe.display()),
            &scorch_lang::sema::TraceFs::new("/sys/kernel/tracing"),
            true,
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    let same_as_bpftrace = |exe: &Path, pattern: &str, expected: &str| {
        assert_eq!(list(exe, pattern), expected);
        if let Ok(out) = Command::new("/usr/bin/bpftrace")
            .arg("-lv")
            .arg(format!("uprobe:{}:{pattern}", exe.display()))
            .output()
        {
            if out.status.success() && !out.stdout.is_empty() {
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout),
                    expected,
                    "bpftrace disagrees"
                );
            }
        }
    };
    let c = build_c(
        "dwarf_spellings",
        "__attribute__((noinline)) int quals(char *const p, int (*cb)(int), const char *restrict s,\n\
                                             const volatile int *cv) { return p[0] + cb(1) + s[0] + *cv; }\n\
         __attribute__((noinline)) int unnamed(int, long b) { return b; }\n\
         static int cb(int x) { return x; }\n\
         int main(int argc, char **argv) { int z = 0; return quals(argv[0], cb, argv[0], &z) + unnamed(1, 2); }\n",
        &["-O1", "-g"],
    );
    same_as_bpftrace(
        &c,
        "quals",
        &format!(
            "uprobe:{}:quals\n    char* const p\n    <unknown type>* cb\n    <unknown type> s\n    <unknown type>* cv\n",
            c.display()
        ),
    );
    assert_eq!(
        list(&c, "unnamed"),
        format!("uprobe:{}:unnamed\n    int\n    long int b\n", c.display())
    );
    let cpp = build_c(
        "dwarf_spellings_cpp",
        "struct Req { long id; };\n\
         extern \"C\" __attribute__((noinline)) int work(Req &r, Req &&q, long n) { return r.id + q.id + n; }\n\
         int main() { Req r{1}; return work(r, Req{2}, 0); }\n",
        &["-x", "c++", "-O1", "-g"],
    );
    same_as_bpftrace(
        &cpp,
        "work",
        &format!(
            "uprobe:{}:work\n    <unknown type> r\n    <unknown type> q\n    long int n\n",
            cpp.display()
        ),
    );
    // Types that `dwz` moved to a unit of their own (DW_FORM_ref_addr).
    if Command::new("dwz").arg("--version").output().is_err() {
        eprintln!("skipped the dwz part: dwz is not installed");
        return;
    }
    let types = "struct req { long id; int a, b, c, d; char name[16]; struct req *next; };";
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("user_probes");
    let mut sources = vec![];
    for i in 0..4 {
        let src = dir.join(format!("dwz_{i}.c"));
        std::fs::write(
            &src,
            format!("{types}\n__attribute__((noinline)) long shared{i}(struct req *r, long n) {{ return r->id + n; }}\n"),
        )
        .unwrap();
        sources.push(src);
    }
    let main = dir.join("dwz_main.c");
    std::fs::write(
        &main,
        format!(
            "{types}\nlong shared0(struct req *, long); long shared1(struct req *, long);\n\
             long shared2(struct req *, long); long shared3(struct req *, long);\n\
             int main(int c, char **v) {{ struct req r = {{ c }};\n\
               return shared0(&r, 0) + shared1(&r, 1) + shared2(&r, 2) + shared3(&r, 3); }}\n"
        ),
    )
    .unwrap();
    let exe = dir.join("dwz_types_shared");
    let built = Command::new("gcc")
        .args(["-O1", "-g", "-o"])
        .arg(&exe)
        .arg(&main)
        .args(&sources)
        .status()
        .expect("gcc");
    assert!(built.success());
    assert!(Command::new("dwz")
        .arg(&exe)
        .status()
        .expect("dwz")
        .success());
    same_as_bpftrace(
        &exe,
        "shared2",
        &format!(
            "uprobe:{}:shared2\n    struct req* r\n    long int n\n",
            exe.display()
        ),
    );
}

/// A watchpoint on a variable of the `-p` process, or of a `-c` command
/// (set before its exec), counts its writes. The variable is initialized
/// data: in `.bss`, the kernel's zeroing of it at exec would count too.
#[test]
fn watchpoint_counts_writes_in_the_traced_process() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c(
        "watched",
        "#include <stdio.h>\n#include <stdlib.h>\n\
         volatile long scorch_watched = 1;\n\
         int main(int argc, char **argv) {\n\
           char line[8]; long n = atol(argv[1]);\n\
           if (argc < 3 && !fgets(line, sizeof line, stdin)) return 1;\n\
           for (long i = 0; i < n; i++) scorch_watched = i;\n\
           return 0;\n\
         }\n",
        &["-O1", "-no-pie"],
    );
    let nm = Command::new("nm").arg(&exe).output().expect("nm");
    let address = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .find_map(|l| l.strip_suffix(" D scorch_watched").map(str::to_string))
        .expect("scorch_watched in nm");
    let program = SourceFile::inline(format!(
        "watchpoint:0x{address}:8:w {{ @writes = count(); @[comm] = count(); }}"
    ));
    let child = start(&exe, &["50"]);
    let o = trace(&program, &with_pid(child.id()), move |_| go(child));
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@writes"), "50");
    assert_eq!(map_value(&o.out, "@[watched]"), "50");
    let e = program_error(
        &format!("watchpoint:0x{address}:8:w {{ }}"),
        &RunOptions::default(),
    );
    assert!(e.contains("give it with -p PID"), "{e}");
    // With -c, the watchpoint is on the command, set before its exec.
    let mut opts = RunOptions::default();
    opts.command = vec![exe.display().to_string(), "20".into(), "now".into()];
    let o = trace(&program, &opts, |_| {});
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@writes"), "20");
    assert_eq!(map_value(&o.out, "@[watched]"), "20");
}

/// `commanded N stdin`: waits for a line on stdin, then calls `probed`
/// N times. `commanded N until FILE`: calls it N times, then waits for
/// FILE to exist, and exits with status 3.
const COMMANDED: &str =
    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n\
    __attribute__((noinline)) long probed(long i, long j) { return 2 * i + j; }\n\
    int main(int argc, char **argv) {\n\
      char line[8]; volatile long s = 0; long n = atol(argv[1]);\n\
      if (!strcmp(argv[2], \"stdin\") && !fgets(line, sizeof line, stdin)) return 1;\n\
      for (long i = 0; i < n; i++) s += probed(i, 1);\n\
      if (!strcmp(argv[2], \"until\")) while (access(argv[3], F_OK) != 0) usleep(1000);\n\
      return !strcmp(argv[2], \"until\") ? 3 : 0;\n\
    }\n";

/// With `-c`, the command is held until the probes are attached, so a
/// uprobe counts every call of that run and none of another copy's; the
/// probe names the command by its file name, resolved through the
/// command's path. The run's status is the program's, not the command's.
#[test]
fn uprobe_with_command_counts_that_run_only() {
    let Some(_serial) = serial() else {
        return;
    };
    let exe = build_c("commanded", COMMANDED, &["-O1"]);
    let done = exe.with_extension("done");
    let _ = std::fs::remove_file(&done);
    let program =
        SourceFile::inline("uprobe:commanded:probed { @n = count(); @pids[pid] = count(); }");
    let mut opts = RunOptions::default();
    opts.command = vec![
        exe.display().to_string(),
        "10".into(),
        "until".into(),
        done.display().to_string(),
    ];
    let other = start(&exe, &["1000", "stdin"]);
    let other_pid = other.id();
    let release = done.clone();
    let o = trace(&program, &opts, move |_| {
        // The other copy runs to its end while the probe is attached,
        // then the command may exit.
        go(other);
        std::fs::write(&release, "").unwrap();
    });
    assert_eq!(o.result, Ok(0), "{}", o.err);
    assert_eq!(map_value(&o.out, "@n"), "10");
    assert_eq!(o.out.matches("@pids[").count(), 1, "{}", o.out);
    assert!(!o.out.contains(&format!("@pids[{other_pid}]")), "{}", o.out);
}

/// A `-c` command that cannot start is an error before anything runs; a
/// program error leaves the held command unrun.
#[test]
fn bad_commands_are_clear_errors_and_never_run() {
    let Some(_serial) = serial() else {
        return;
    };
    let mut opts = RunOptions::default();
    opts.command = vec!["scorch-no-such-command".into()];
    let e = run(
        &SourceFile::inline("BEGIN { exit(); }"),
        &opts,
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("starting `scorch-no-such-command`"), "{e}");
    assert!(e.contains("in $PATH; give its path"), "{e}");

    let marker = Path::new(env!("CARGO_TARGET_TMPDIR")).join("never_run");
    let _ = std::fs::remove_file(&marker);
    let mut opts = RunOptions::default();
    opts.command = vec!["touch".into(), marker.display().to_string()];
    let e = program_error("uprobe:touch:scorch_no_such_function { }", &opts);
    assert!(e.contains("scorch_no_such_function"), "{e}");
    assert!(
        !marker.exists(),
        "the command ran although the program failed"
    );
}
