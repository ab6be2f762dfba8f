//! bcc `profile` folded and text output, and the header line.

use scorch_formats::text::{header, write_folded, write_text, Header};
use scorch_formats::{Profile, TextOptions};

use crate::fixture::{golden, profile, render};

fn folded(profile: &Profile, opts: TextOptions) -> String {
    render(|out| write_folded(profile, &opts, out))
}

fn text(profile: &Profile, opts: TextOptions) -> String {
    render(|out| write_text(profile, &opts, out))
}

const BOTH: TextOptions = TextOptions {
    user: true,
    kernel: true,
    annotate_kernel: false,
    delimited: false,
};
const DELIMITED_ANNOTATED: TextOptions = TextOptions {
    annotate_kernel: true,
    delimited: true,
    ..BOTH
};
const USER_ONLY: TextOptions = TextOptions {
    kernel: false,
    delimited: true,
    ..BOTH
};
const KERNEL_ONLY: TextOptions = TextOptions {
    user: false,
    annotate_kernel: true,
    delimited: true,
    ..BOTH
};

#[test]
fn default_options_are_bccs() {
    assert_eq!(TextOptions::default(), BOTH);
}

#[test]
fn folded_matches_bcc() {
    let out = folded(&profile(), BOTH);
    assert_eq!(
        out,
        "node;[unknown];LazyCompile:*fib /srv/fib.js:3;[Missed Kernel Stack] 1\n\
         app;[Missed User Stack];entry_SYSCALL_64;do_syscall_64;ksys_write;vfs_write 2\n\
         app;main;entry_SYSCALL_64;do_syscall_64 3\n\
         kworker/0:1;ret_from_fork;worker_thread;process_one_work 3\n\
         app;main;handle_request;parse_header;entry_SYSCALL_64;do_syscall_64;ksys_write;vfs_write 7\n\
         app;main;libfoo.so+0x1a2b 11\n"
    );
    golden("folded.txt", &out);
}

#[test]
fn folded_delimiter_only_between_two_recorded_stacks() {
    let out = folded(&profile(), DELIMITED_ANNOTATED);
    let lines: Vec<&str> = out.lines().collect();
    // Both stacks recorded: delimiter, kernel frames annotated.
    assert!(lines.contains(
        &"app;main;handle_request;parse_header;-;entry_SYSCALL_64_[k];do_syscall_64_[k];\
          ksys_write_[k];vfs_write_[k] 7"
    ));
    // A missed or absent stack: no delimiter; placeholders not annotated.
    assert!(
        lines.contains(&"node;[unknown];LazyCompile:*fib /srv/fib.js:3;[Missed Kernel Stack] 1")
    );
    assert!(lines.contains(
        &"app;[Missed User Stack];entry_SYSCALL_64_[k];do_syscall_64_[k];ksys_write_[k];vfs_write_[k] 2"
    ));
    assert!(
        lines.contains(&"kworker/0:1;ret_from_fork_[k];worker_thread_[k];process_one_work_[k] 3")
    );
    golden("folded_delimited_annotated.txt", &out);
}

#[test]
fn folded_user_only_and_kernel_only() {
    let user = folded(&profile(), USER_ONLY);
    assert!(
        !user.contains("vfs_write") && !user.contains("Missed Kernel"),
        "{user}"
    );
    assert!(!user.contains(";-;"), "no delimiter with one stack: {user}");
    // The kernel thread has only its command left.
    assert!(user.lines().any(|l| l == "kworker/0:1 3"), "{user}");
    golden("folded_user.txt", &user);

    let kernel = folded(&profile(), KERNEL_ONLY);
    assert!(
        !kernel.contains("main") && !kernel.contains("Missed User"),
        "{kernel}"
    );
    // Identical kernel stacks of different user stacks merge: 5 + 2 + 2.
    assert!(
        kernel
            .lines()
            .any(|l| l
                == "app;entry_SYSCALL_64_[k];do_syscall_64_[k];ksys_write_[k];vfs_write_[k] 9"),
        "{kernel}"
    );
    golden("folded_kernel.txt", &kernel);
}

#[test]
fn folded_sorts_by_count_then_text() {
    let out = folded(&profile(), BOTH);
    let keys: Vec<(u64, &str)> = out
        .lines()
        .map(|l| {
            let (stack, count) = l.rsplit_once(' ').expect("count after the last space");
            (count.parse().expect("count is a number"), stack)
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Two lines have count 3; a line merged from two processes has 7 + 4.
    assert_eq!(keys.iter().filter(|k| k.0 == 3).count(), 2);
    assert_eq!(
        keys.iter()
            .filter(|k| k.1 == "app;main;libfoo.so+0x1a2b")
            .count(),
        1
    );
}

#[test]
fn text_matches_bcc() {
    let out = text(&profile(), BOTH);
    let expected_block = "    vfs_write\n    ksys_write\n    do_syscall_64\n    entry_SYSCALL_64\n\
                          \x20   parse_header\n    handle_request\n    main\n\
                          \x20   -                app (100)\n        7\n\n";
    assert!(out.contains(expected_block), "{out}");
    // Same stacks in two processes stay apart: the pid is shown.
    assert!(out
        .contains("    libfoo.so+0x1a2b\n    main\n    -                app (100)\n        7\n\n"));
    assert!(out
        .contains("    libfoo.so+0x1a2b\n    main\n    -                app (200)\n        4\n\n"));
    assert!(out.starts_with(
        "    [Missed Kernel Stack]\n    LazyCompile:*fib /srv/fib.js:3\n    [unknown]\n"
    ));
    golden("text.txt", &out);
}

#[test]
fn text_delimited_annotated() {
    let out = text(&profile(), DELIMITED_ANNOTATED);
    assert!(
        out.contains("    entry_SYSCALL_64_[k]\n    --\n    parse_header\n"),
        "{out}"
    );
    assert!(
        out.contains("    entry_SYSCALL_64_[k]\n    [Missed User Stack]\n"),
        "{out}"
    );
    assert_eq!(out.matches("    --\n").count(), 2, "{out}");
    golden("text_delimited_annotated.txt", &out);
}

#[test]
fn text_kernel_only() {
    let out = text(&profile(), KERNEL_ONLY);
    assert!(!out.contains("--") && !out.contains("main") && !out.contains("Missed User"));
    golden("text_kernel.txt", &out);
}

#[test]
fn empty_profile_prints_nothing() {
    let empty = Profile::default();
    assert_eq!(folded(&empty, BOTH), "");
    assert_eq!(text(&empty, BOTH), "");
}

#[test]
fn header_wording_matches_bcc() {
    let both = Header {
        frequency_hz: Some(49),
        sample_period: None,
        target: "PID 123".to_string(),
        user: true,
        kernel: true,
        cpu: None,
        duration_secs: Some(2),
        off_cpu: false,
    };
    let cases = [
        header(&both),
        header(&Header {
            frequency_hz: None,
            target: "all threads".to_string(),
            duration_secs: None,
            ..both.clone()
        }),
        header(&Header {
            frequency_hz: Some(99),
            target: "PID 1,2".to_string(),
            kernel: false,
            duration_secs: Some(5),
            ..both.clone()
        }),
        header(&Header {
            frequency_hz: None,
            sample_period: Some(1_000_000),
            target: "TID 7".to_string(),
            user: false,
            cpu: Some(3),
            duration_secs: None,
            ..both.clone()
        }),
        header(&Header {
            target: "all threads".to_string(),
            cpu: Some(0),
            duration_secs: Some(1),
            ..both.clone()
        }),
    ];
    assert_eq!(
        cases[0],
        "Sampling at 49 Hertz of PID 123 by user + kernel stack for 2 secs."
    );
    // Neither -F nor -c: bcc's default rate.
    assert_eq!(
        cases[1],
        "Sampling at 49 Hertz of all threads by user + kernel stack... Hit Ctrl-C to end."
    );
    assert_eq!(
        cases[2],
        "Sampling at 99 Hertz of PID 1,2 by user stack for 5 secs."
    );
    assert_eq!(
        cases[3],
        "Sampling at every 1000000 events of TID 7 by kernel stack on CPU#3... Hit Ctrl-C to end."
    );
    golden("header.txt", &(cases.join("\n") + "\n"));
}
