//! JIT symbolization through perf maps.

use std::fs;
use std::process::{Command, Stdio};

use scorch_formats::FrameKind;
use scorch_symbolizer::Symbolizer;

/// A spawned process, killed when dropped, and its perf map removed.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = fs::remove_file(format!("/tmp/perf-{}.map", self.0.id()));
    }
}

#[test]
fn perf_map_names_addresses_outside_file_mappings_even_after_exit() {
    let mut sleeper = Sleeper(
        Command::new("sleep")
            .arg("60")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleeper.0.id();
    // The first page is never mapped, so these addresses are JIT territory.
    fs::write(
        format!("/tmp/perf-{pid}.map"),
        "1000 40 LazyCompile:*fib /app/fib.js:3\n1100 0x20 Builtin: [stub]\n",
    )
    .unwrap();

    let mut s = Symbolizer::new();
    s.capture(pid).unwrap();
    let check = |s: &mut Symbolizer| {
        let resolved = s.user(pid, &[0x1010, 0x1110, 0x1050]);
        assert_eq!(resolved[0].kind, FrameKind::Jit);
        assert_eq!(resolved[0].mapping, None);
        assert_eq!(resolved[0].lines.len(), 1);
        assert_eq!(
            resolved[0].lines[0].function,
            "LazyCompile:*fib /app/fib.js:3"
        );
        assert_eq!(resolved[1].lines[0].function, "Builtin: [stub]");
        assert_eq!(resolved[2].kind, FrameKind::User);
        assert!(resolved[2].lines.is_empty());
    };
    check(&mut s);

    let _ = sleeper.0.kill();
    let _ = sleeper.0.wait();
    fs::remove_file(format!("/tmp/perf-{pid}.map")).unwrap();
    check(&mut s);
}

#[test]
fn perf_map_written_after_capture_is_read_at_resolve_time() {
    let sleeper = Sleeper(
        Command::new("sleep")
            .arg("60")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleeper.0.id();
    let mut s = Symbolizer::new();
    s.capture(pid).unwrap();
    fs::write(format!("/tmp/perf-{pid}.map"), "2000 10 late_jit_fn\n").unwrap();
    let resolved = s.user(pid, &[0x2008]).remove(0);
    assert_eq!(resolved.kind, FrameKind::Jit);
    assert_eq!(resolved.lines[0].function, "late_jit_fn");
}
