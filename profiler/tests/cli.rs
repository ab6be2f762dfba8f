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
