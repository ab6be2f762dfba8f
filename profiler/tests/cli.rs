//! Argument handling of the binary; needs no privileges.

use std::process::Command;

fn scorch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scorch"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn user_only_and_kernel_only_conflict() {
    let out = scorch(&["profile", "-U", "-K", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn frequency_and_count_conflict() {
    let out = scorch(&["profile", "-F", "99", "-c", "1000"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_bcc_flags() {
    let out = scorch(&["profile", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--frequency",
        "--user-stacks-only",
        "--kernel-stacks-only",
        "--stack-storage-size",
        "--folded",
        "--output",
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

/// Wide probe wildcards need many descriptors: the soft limit on open
/// files is raised to the hard one at start, as bpftrace raises it.
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let dir = std::env::temp_dir().join(format!("scorch-cli-limits-{}", std::process::id()));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256 && exec {} serve --listen 127.0.0.1:0 --data-dir {}",
            env!("CARGO_BIN_EXE_scorch"),
            dir.display()
        ))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (limits, exe) = (
        format!("/proc/{}/limits", child.id()),
        format!("/proc/{}/exe", child.id()),
    );
    let scorch = std::fs::canonicalize(env!("CARGO_BIN_EXE_scorch")).unwrap();
    // Scorch's limits, once sh has lowered its own and exec'd scorch.
    let open_files = || -> Option<(String, String)> {
        if std::fs::read_link(&exe).ok()? != scorch {
            return None;
        }
        let text = std::fs::read_to_string(&limits).ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        let mut fields = line["Max open files".len()..].split_whitespace();
        Some((fields.next()?.to_string(), fields.next()?.to_string()))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = open_files();
    // Between the exec and scorch's first step, the soft limit is 256.
    while seen.as_ref().is_none_or(|(soft, hard)| soft != hard)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = open_files();
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (soft, hard) = seen.expect("scorch's limits");
    assert_eq!(soft, hard, "soft limit not raised");
    assert_ne!(soft, "256");
}
