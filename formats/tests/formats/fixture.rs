//! The profile every test renders, and the golden-file check.

use std::fs;
use std::path::PathBuf;

use scorch_formats::{
    FrameKind, Line, Location, Mapping, Measure, Meta, Profile, ProfileBuilder, Sample, Stack,
};

/// Total of the fixture's counts.
pub const TOTAL: u64 = 27;

/// A profile that exercises every rule of the writers:
///
/// - kernel + user stacks, with an inlined function (`parse_header` inlined
///   into `handle_request`);
/// - the same stacks from two threads of one process (merged everywhere);
/// - the same folded line from two processes named `app` (merged in folded
///   output only, the text output shows the pid);
/// - a missed user stack, a missed kernel stack, absent stacks (user-only
///   sample, kernel thread);
/// - an unsymbolized frame in a known mapping (`libfoo.so+0x1a2b`) and one
///   in no mapping (`[unknown]`), a JIT frame whose name has a space;
/// - two lines with the same count (order by text).
pub fn profile() -> Profile {
    let mut b = ProfileBuilder::new(Meta {
        target: "PID 100".to_string(),
        start_unix_ns: 1_700_000_000_123_456_789,
        duration_ns: 2_000_000_000,
        frequency_hz: Some(49),
        sample_period: None,
        measure: Measure::OnCpuSamples,
    });
    let app = b.mapping(Mapping {
        start: 0x5555_0000_0000,
        limit: 0x5555_0010_0000,
        offset: 0,
        file: "/usr/bin/app".to_string(),
        build_id: Some("0123abcd".to_string()),
    });
    let libfoo = b.mapping(Mapping {
        start: 0x7f00_0000_0000,
        limit: 0x7f00_0001_0000,
        offset: 0x1000,
        file: "/usr/lib/libfoo.so".to_string(),
        build_id: None,
    });
    let kernel = b.mapping(Mapping {
        start: 0xffff_ffff_8100_0000,
        limit: 0xffff_ffff_8300_0000,
        offset: 0,
        file: "[kernel.kallsyms]".to_string(),
        build_id: None,
    });
    let line = |function: &str, file: Option<&str>, line: Option<u32>| Line {
        function: function.to_string(),
        file: file.map(str::to_string),
        line,
    };
    let main = b.location(Location {
        address: 0x5555_0000_1100,
        mapping: Some(app),
        kind: FrameKind::User,
        lines: vec![line("main", Some("app.c"), Some(10))],
    });
    let handle = b.location(Location {
        address: 0x5555_0000_1200,
        mapping: Some(app),
        kind: FrameKind::User,
        lines: vec![
            line("parse_header", Some("parse.h"), Some(7)),
            line("handle_request", Some("app.c"), Some(42)),
        ],
    });
    let libfoo_frame = b.location(Location {
        address: 0x7f00_0000_0a2b,
        mapping: Some(libfoo),
        kind: FrameKind::User,
        lines: vec![],
    });
    let unknown = b.location(Location {
        address: 0xdead_beef,
        mapping: None,
        kind: FrameKind::User,
        lines: vec![],
    });
    let jit = b.location(Location {
        address: 0x4000_1000,
        mapping: None,
        kind: FrameKind::Jit,
        lines: vec![line("LazyCompile:*fib /srv/fib.js:3", None, None)],
    });
    let mut k = |name: &str, address: u64| {
        b.location(Location {
            address,
            mapping: Some(kernel),
            kind: FrameKind::Kernel,
            lines: vec![line(name, None, None)],
        })
    };
    let entry = k("entry_SYSCALL_64", 0xffff_ffff_8200_0010);
    let do_syscall = k("do_syscall_64", 0xffff_ffff_8100_1000);
    let ksys_write = k("ksys_write", 0xffff_ffff_8130_0000);
    let vfs_write = k("vfs_write", 0xffff_ffff_8130_1000);
    let ret_from_fork = k("ret_from_fork", 0xffff_ffff_8200_0100);
    let worker = k("worker_thread", 0xffff_ffff_8110_0000);
    let work = k("process_one_work", 0xffff_ffff_8110_1000);

    let write_syscall = || Stack::Frames(vec![vfs_write, ksys_write, do_syscall, entry]);
    let sample = |pid, tid, comm: &str, user, kernel, count| Sample {
        pid,
        tid,
        comm: comm.to_string(),
        user,
        kernel,
        count,
    };
    b.sample(sample(
        100,
        Some(100),
        "app",
        Stack::Frames(vec![handle, main]),
        write_syscall(),
        5,
    ));
    b.sample(sample(
        100,
        Some(101),
        "app",
        Stack::Frames(vec![handle, main]),
        write_syscall(),
        2,
    ));
    b.sample(sample(
        100,
        Some(101),
        "app",
        Stack::Missed,
        write_syscall(),
        2,
    ));
    b.sample(sample(
        100,
        Some(100),
        "app",
        Stack::Frames(vec![libfoo_frame, main]),
        Stack::Absent,
        7,
    ));
    b.sample(sample(
        20,
        Some(20),
        "kworker/0:1",
        Stack::Absent,
        Stack::Frames(vec![work, worker, ret_from_fork]),
        3,
    ));
    b.sample(sample(
        200,
        Some(200),
        "app",
        Stack::Frames(vec![libfoo_frame, main]),
        Stack::Absent,
        4,
    ));
    b.sample(sample(
        300,
        None,
        "node",
        Stack::Frames(vec![jit, unknown]),
        Stack::Missed,
        1,
    ));
    b.sample(sample(
        100,
        Some(100),
        "app",
        Stack::Frames(vec![main]),
        Stack::Frames(vec![do_syscall, entry]),
        3,
    ));
    b.build()
}

/// Compares `actual` with `tests/golden/NAME`, or rewrites the file when
/// `SCORCH_BLESS=1`.
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("SCORCH_BLESS").as_deref() == Ok("1") {
        fs::write(&path, actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with SCORCH_BLESS=1",
            path.display()
        )
    });
    if expected != actual {
        let at = expected
            .char_indices()
            .zip(actual.chars())
            .find(|((_, e), a)| e != a)
            .map_or(expected.len().min(actual.len()), |((i, _), _)| i);
        let line = expected[..at].matches('\n').count() + 1;
        let context = |text: &str| -> String {
            text.chars()
                .skip(expected[..at].chars().count().saturating_sub(40))
                .take(100)
                .collect()
        };
        panic!(
            "{} differs from the output at line {line}:\n  expected: {:?}\n  actual:   {:?}\n\
             If the change is deliberate, rerun with SCORCH_BLESS=1 and review the diff.",
            path.display(),
            context(&expected),
            context(actual),
        );
    }
}

/// Output of a writer as a string.
pub fn render(write: impl FnOnce(&mut Vec<u8>) -> Result<(), scorch_formats::Error>) -> String {
    let mut out = Vec::new();
    write(&mut out).expect("writing to memory succeeds");
    String::from_utf8(out).expect("output is UTF-8")
}
