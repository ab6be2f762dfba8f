//! User-space symbolization of real programs built from `fixtures/`.

mod support;

use std::fs;
use std::process::Command;

use scorch_formats::{FrameKind, Line};
use scorch_symbolizer::{Error, Resolved, Symbolizer};
use support::{compile, fixture, have, marked_line, root, run, tmp_dir, Workload, BUILD_ID};

fn line(function: &str, file: &str, line: u32) -> Line {
    Line {
        function: function.to_owned(),
        file: Some(file.to_owned()),
        line: Some(line),
    }
}

/// The first address in the first 32 bytes of `start` that has an inlined frame.
fn first_inlined(s: &mut Symbolizer, pid: u32, start: u64) -> Resolved {
    let addrs: Vec<u64> = (start..start + 32).collect();
    s.user(pid, &addrs)
        .into_iter()
        .find(|r| r.lines.len() > 1)
        .expect("no inlined frame near the start of scorch_outer")
}

#[test]
fn names_files_lines_and_inlines_resolve_and_survive_exit() {
    if !have("gcc") {
        return;
    }
    let source = fixture("workload.c");
    let source_name = source.to_str().unwrap();
    let binary = tmp_dir("survive_exit").join("workload");
    compile("gcc", &source, &binary);
    let mut workload = Workload::spawn(&binary);
    let (pid, leaf, outer) = (workload.pid(), workload.addrs[0], workload.addrs[1]);

    let mut s = Symbolizer::new();
    s.capture(pid).unwrap();
    s.capture(pid).unwrap(); // same process again: a no-op

    let [resolved] = <[Resolved; 1]>::try_from(s.user(pid, &[leaf])).unwrap();
    assert_eq!(resolved.address, leaf);
    assert_eq!(resolved.kind, FrameKind::User);
    assert_eq!(
        resolved.lines,
        [line(
            "scorch_leaf",
            source_name,
            marked_line(&source, "LINE:leaf")
        )]
    );
    let mapping = resolved.mapping.clone().unwrap();
    assert_eq!(mapping.file, binary.to_str().unwrap());
    assert_eq!(mapping.build_id.as_deref(), Some(BUILD_ID));
    assert!(mapping.start <= leaf && leaf < mapping.limit);

    let inlined = first_inlined(&mut s, pid, outer);
    assert_eq!(inlined.lines.len(), 2, "{inlined:?}");
    assert_eq!(inlined.lines[0].function, "scorch_inlined");
    assert_eq!(inlined.lines[0].file.as_deref(), Some(source_name));
    let body = marked_line(&source, "LINE:inlined");
    assert!(
        matches!(inlined.lines[0].line, Some(l) if l == body || l == body + 1),
        "{inlined:?}"
    );
    assert_eq!(
        inlined.lines[1],
        line(
            "scorch_outer",
            source_name,
            marked_line(&source, "LINE:outer_call")
        )
    );

    workload.kill();
    assert!(matches!(s.capture(pid), Err(Error::ProcessGone { pid: p }) if p == pid));
    assert_eq!(s.user(pid, &[leaf]), [resolved]);
    assert_eq!(first_inlined(&mut s, pid, outer), inlined);
}

#[test]
fn binary_deleted_after_start_still_resolves() {
    if !have("gcc") || !root("opening /proc/PID/map_files needs CAP_SYS_ADMIN") {
        return;
    }
    let binary = tmp_dir("deleted").join("doomed");
    compile("gcc", &fixture("workload.c"), &binary);
    let workload = Workload::spawn(&binary);
    fs::remove_file(&binary).unwrap();

    let mut s = Symbolizer::new();
    let resolved = s.user(workload.pid(), &[workload.addrs[0]]).remove(0);
    assert_eq!(resolved.lines[0].function, "scorch_leaf");
    let mapping = resolved.mapping.unwrap();
    assert_eq!(mapping.file, binary.to_str().unwrap());
    assert_eq!(mapping.build_id.as_deref(), Some(BUILD_ID));
}

#[test]
fn stripped_binary_gives_unresolved_frames_that_name_their_file() {
    if !have("gcc") || !have("strip") {
        return;
    }
    let dir = tmp_dir("stripped");
    let (binary, stripped) = (dir.join("full"), dir.join("stripped"));
    compile("gcc", &fixture("workload.c"), &binary);
    run(Command::new("strip").arg("-o").arg(&stripped).arg(&binary));
    let workload = Workload::spawn(&stripped);
    let leaf = workload.addrs[0];

    let mut s = Symbolizer::new();
    let resolved = s.user(workload.pid(), &[leaf]).remove(0);
    assert_eq!(resolved.kind, FrameKind::User);
    assert!(resolved.lines.is_empty(), "{resolved:?}");
    let mapping = resolved.mapping.unwrap();
    assert_eq!(mapping.file, stripped.to_str().unwrap());
    assert_eq!(mapping.build_id.as_deref(), Some(BUILD_ID));
}

#[test]
fn vdso_functions_resolve() {
    if !have("gcc") {
        return;
    }
    let binary = tmp_dir("vdso").join("workload");
    compile("gcc", &fixture("workload.c"), &binary);
    let workload = Workload::spawn(&binary);
    let vdso_fn = workload.addrs[2];
    assert_ne!(vdso_fn, 0, "the fixture found no __vdso_clock_gettime");

    let mut s = Symbolizer::new();
    let resolved = s.user(workload.pid(), &[vdso_fn]).remove(0);
    assert_eq!(resolved.mapping.unwrap().file, "[vdso]");
    assert!(
        resolved
            .lines
            .last()
            .unwrap()
            .function
            .ends_with("clock_gettime"),
        "{:?}",
        resolved.lines
    );
}

#[test]
fn cpp_names_are_demangled() {
    if !have("g++") {
        return;
    }
    let binary = tmp_dir("cpp").join("workload");
    compile("g++", &fixture("workload.cpp"), &binary);
    let workload = Workload::spawn(&binary);

    let mut s = Symbolizer::new();
    let resolved = s.user(workload.pid(), &[workload.addrs[0]]).remove(0);
    let function = &resolved.lines.last().unwrap().function;
    assert!(
        function.starts_with("scorch::demo::Doubler<long>::twice"),
        "{function}"
    );
}

#[test]
fn one_binary_mapped_by_many_processes_is_opened_once() {
    if !have("gcc") {
        return;
    }
    let binary = tmp_dir("shared").join("workload");
    compile("gcc", &fixture("workload.c"), &binary);
    let workloads: Vec<Workload> = (0..3).map(|_| Workload::spawn(&binary)).collect();

    let mut s = Symbolizer::new();
    for w in &workloads {
        let resolved = s.user(w.pid(), &[w.addrs[0]]).remove(0);
        assert_eq!(resolved.lines[0].function, "scorch_leaf");
    }
    // Our handle plus blazesym's own: not one per process.
    let open = fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| *target == binary)
        .count();
    assert!(open <= 2, "{open} descriptors for one binary");
}

#[test]
fn an_exited_process_is_gone_and_its_addresses_unknown() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();

    let mut s = Symbolizer::new();
    let err = s.capture(pid).unwrap_err();
    assert!(matches!(err, Error::ProcessGone { .. }), "{err}");
    assert!(err.to_string().contains("capture a process while it runs"));
    let resolved = s.user(pid, &[0x401000, 0]);
    assert_eq!(resolved.len(), 2);
    for r in resolved {
        assert_eq!(
            (r.kind, r.mapping, r.lines),
            (FrameKind::User, None, vec![])
        );
    }
}

#[test]
fn exec_is_noticed_and_the_new_program_resolves() {
    use std::io::Write;
    use std::process::Stdio;

    let mut shell = Command::new("sh")
        .args(["-c", "read line; exec sleep 60"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = shell.id();
    let mut s = Symbolizer::new();
    s.capture(pid).unwrap();
    let exe = |pid: u32| fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let shell_exe = exe(pid);
    writeln!(shell.stdin.take().unwrap()).unwrap();
    for _ in 0..1000 {
        if exe(pid) != shell_exe {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let sleep_exe = exe(pid);
    s.capture(pid).unwrap();

    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let start = maps
        .lines()
        .find(|l| l.contains(" r-xp ") && l.ends_with(sleep_exe.to_str().unwrap()))
        .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .unwrap();
    let _ = shell.kill();
    let _ = shell.wait();

    let resolved = s.user(pid, &[start]).remove(0);
    assert_eq!(resolved.mapping.unwrap().file, sleep_exe.to_str().unwrap());
}
