//! The JSON form for the web page.

use scorch_formats::json::{read, to_json, write, JsonProfile};
use scorch_formats::Profile;

use crate::fixture::{golden, profile, render};

fn names(json: &JsonProfile, i: usize) -> Vec<&str> {
    json.samples[i]
        .stack
        .iter()
        .map(|&n| json.names[n].as_str())
        .collect()
}

#[test]
fn json_reads_back() {
    let out = render(|w| write(&profile(), w));
    assert!(
        out.ends_with('\n') && out.lines().count() == 1,
        "compact, one line"
    );
    let read_back = read(out.as_bytes()).expect("valid JSON");
    assert_eq!(read_back, to_json(&profile()));
    golden(
        "profile.json",
        &(serde_json::to_string_pretty(&read_back).expect("serializes") + "\n"),
    );
}

#[test]
fn stacks_are_root_first_user_then_kernel() {
    let json = to_json(&profile());
    assert_eq!(
        names(&json, 0),
        [
            "main",
            "handle_request",
            "parse_header",
            "entry_SYSCALL_64",
            "do_syscall_64",
            "ksys_write",
            "vfs_write"
        ]
    );
    assert_eq!(json.samples[0].kinds, "uuukkkk");
    assert_eq!(
        names(&json, 6),
        [
            "[unknown]",
            "LazyCompile:*fib /srv/fib.js:3",
            "[Missed Kernel Stack]"
        ]
    );
    assert_eq!(json.samples[6].kinds, "ujk");
    assert_eq!(json.samples[6].tid, None);
    assert_eq!(names(&json, 2)[0], "[Missed User Stack]");

    let mut unique = json.names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), json.names.len(), "names are interned once");
    assert_eq!(json.meta.period_ns, 20_408_163);
    assert_eq!(json.meta.sample_period, None);
}

#[test]
fn optional_fields_are_left_out() {
    let out = render(|w| write(&profile(), w));
    assert!(
        !out.contains("sample_period") && !out.contains("null"),
        "{out}"
    );
    let empty = render(|w| write(&Profile::default(), w));
    assert_eq!(
        empty,
        "{\"meta\":{\"target\":\"\",\"start_unix_ns\":0,\"duration_ns\":0,\"period_ns\":0},\
         \"names\":[],\"samples\":[]}\n"
    );
}
