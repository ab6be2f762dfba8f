//! pprof: round trip, structure, golden of the decoded message.

use prost::Message;
use scorch_formats::gunzip::{Limits, Stage};
use scorch_formats::pprof::{decode, decode_limited, encode, stacks, to_proto};
use scorch_formats::{Error, Profile, Stack};

use crate::fixture::{golden, profile, TOTAL};

fn names(stack: &[&str]) -> Vec<String> {
    stack.iter().map(|s| s.to_string()).collect()
}

/// (pid, tid, comm) of a sample, read through the string table.
fn labels(p: &scorch_formats::pprof::proto::Profile, i: usize) -> (i64, Option<i64>, String) {
    let s = &p.string_table;
    let mut pid = None;
    let mut tid = None;
    let mut comm = None;
    for label in &p.sample[i].label {
        match s[label.key as usize].as_str() {
            "pid" => pid = Some(label.num),
            "tid" => tid = Some(label.num),
            "comm" => comm = Some(s[label.str as usize].clone()),
            other => panic!("unexpected label {other}"),
        }
    }
    (pid.expect("pid label"), tid, comm.expect("comm label"))
}

#[test]
fn round_trip_keeps_stacks_values_and_labels() {
    let bytes = encode(&profile());
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "output is gzipped");
    let decoded = decode(&bytes).expect("decodes");

    let kernel_write = [
        "entry_SYSCALL_64",
        "do_syscall_64",
        "ksys_write",
        "vfs_write",
    ];
    let full: Vec<&str> = ["main", "handle_request", "parse_header"]
        .into_iter()
        .chain(kernel_write)
        .collect();
    let missed_user: Vec<&str> = ["[Missed User Stack]"]
        .into_iter()
        .chain(kernel_write)
        .collect();
    let expected = vec![
        (names(&full), 5),
        (names(&full), 2),
        (names(&missed_user), 2),
        (names(&["main", "libfoo.so+0x1a2b"]), 7),
        (
            names(&["ret_from_fork", "worker_thread", "process_one_work"]),
            3,
        ),
        (names(&["main", "libfoo.so+0x1a2b"]), 4),
        (
            names(&[
                "[unknown]",
                "LazyCompile:*fib /srv/fib.js:3",
                "[Missed Kernel Stack]",
            ]),
            1,
        ),
        (names(&["main", "entry_SYSCALL_64", "do_syscall_64"]), 3),
    ];
    let period = 1_000_000_000 / 49;
    let expected: Vec<(Vec<String>, Vec<i64>)> = expected
        .into_iter()
        .map(|(stack, count)| (stack, vec![count, count * period]))
        .collect();
    assert_eq!(stacks(&decoded).expect("valid references"), expected);
    let expected_labels = [
        (100, Some(100), "app"),
        (100, Some(101), "app"),
        (100, Some(101), "app"),
        (100, Some(100), "app"),
        (20, Some(20), "kworker/0:1"),
        (200, Some(200), "app"),
        (300, None, "node"),
        (100, Some(100), "app"),
    ];
    for (i, (pid, tid, comm)) in expected_labels.into_iter().enumerate() {
        assert_eq!(
            labels(&decoded, i),
            (pid, tid, comm.to_string()),
            "sample {i}"
        );
    }
    let total: i64 = expected.iter().map(|(_, values)| values[0]).sum();
    assert_eq!(total as u64, TOTAL);
}

#[test]
fn header_fields() {
    let p = decode(&encode(&profile())).expect("decodes");
    let s = |i: i64| p.string_table[i as usize].as_str();
    assert_eq!(p.string_table[0], "");
    let types: Vec<(&str, &str)> = p
        .sample_type
        .iter()
        .map(|t| (s(t.r#type), s(t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    let period_type = p.period_type.as_ref().expect("period type");
    assert_eq!(
        (s(period_type.r#type), s(period_type.unit)),
        ("cpu", "nanoseconds")
    );
    assert_eq!(p.period, 20_408_163);
    assert_eq!(p.time_nanos, 1_700_000_000_123_456_789);
    assert_eq!(p.duration_nanos, 2_000_000_000);
    assert_eq!(
        p.comment.iter().map(|&c| s(c)).collect::<Vec<_>>(),
        ["PID 100"]
    );
}

#[test]
fn mappings_locations_functions() {
    let p = decode(&encode(&profile())).expect("decodes");
    let s = |i: i64| p.string_table[i as usize].as_str();

    let ids: Vec<u64> = p.mapping.iter().map(|m| m.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    let app = &p.mapping[0];
    assert_eq!(
        (
            s(app.filename),
            s(app.build_id),
            app.memory_start,
            app.memory_limit,
            app.file_offset
        ),
        (
            "/usr/bin/app",
            "0123abcd",
            0x5555_0000_0000,
            0x5555_0010_0000,
            0
        )
    );
    assert!(
        app.has_functions && app.has_filenames && app.has_line_numbers && app.has_inline_frames
    );
    let libfoo = &p.mapping[1];
    assert_eq!(
        (s(libfoo.filename), libfoo.build_id, libfoo.file_offset),
        ("/usr/lib/libfoo.so", 0, 0x1000)
    );
    assert!(!libfoo.has_functions && !libfoo.has_filenames && !libfoo.has_line_numbers);
    let kernel = &p.mapping[2];
    assert!(kernel.has_functions && !kernel.has_filenames && !kernel.has_inline_frames);

    // Every location id is unique, every reference resolves.
    let mut location_ids: Vec<u64> = p.location.iter().map(|l| l.id).collect();
    location_ids.sort();
    location_ids.dedup();
    assert_eq!(location_ids.len(), p.location.len());
    for sample in &p.sample {
        for id in &sample.location_id {
            assert!(location_ids.contains(id), "dangling location {id}");
        }
    }
    for l in &p.location {
        assert!(l.mapping_id == 0 || ids.contains(&l.mapping_id));
        for line in &l.line {
            assert!(p.function.iter().any(|f| f.id == line.function_id));
        }
    }

    // The inlined location: innermost function first, with its lines.
    let inlined = p
        .location
        .iter()
        .find(|l| l.line.len() == 2)
        .expect("inlined location");
    let function = |id: u64| p.function.iter().find(|f| f.id == id).expect("function");
    let lines: Vec<(&str, &str, i64)> = inlined
        .line
        .iter()
        .map(|l| {
            let f = function(l.function_id);
            (s(f.name), s(f.filename), l.line)
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("parse_header", "parse.h", 7),
            ("handle_request", "app.c", 42)
        ]
    );
    assert_eq!((inlined.address, inlined.mapping_id), (0x5555_0000_1200, 1));

    // Functions are unique by (name, file) and carry a system name.
    let mut keys: Vec<(i64, i64)> = p.function.iter().map(|f| (f.name, f.filename)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), p.function.len());
    assert!(p.function.iter().all(|f| f.system_name == f.name));

    // Unsymbolized locations have no lines; missed stacks are pseudo-locations.
    let unsymbolized = p.location.iter().filter(|l| l.line.is_empty()).count();
    assert_eq!(unsymbolized, 2);
    for missed in ["[Missed User Stack]", "[Missed Kernel Stack]"] {
        let f = p
            .function
            .iter()
            .find(|f| s(f.name) == missed)
            .expect("missed function");
        assert_eq!(
            p.location
                .iter()
                .filter(|l| l.line.iter().any(|x| x.function_id == f.id))
                .count(),
            1
        );
    }
}

#[test]
fn decoded_message_golden() {
    let p = decode(&encode(&profile())).expect("decodes");
    golden("pprof.txt", &format!("{p:#?}\n"));
}

#[test]
fn decode_takes_raw_protobuf_too() {
    let message = to_proto(&profile());
    assert_eq!(decode(&message.encode_to_vec()).expect("decodes"), message);
    assert_eq!(decode(&encode(&profile())).expect("decodes"), message);
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        decode(&[0x1f, 0x8b, 1, 2, 3]),
        Err(Error::Gzip(_))
    ));
    assert!(matches!(decode(&[0xff; 16]), Err(Error::PprofDecode(_))));

    let mut p = to_proto(&profile());
    p.sample[0].location_id.push(9999);
    assert!(matches!(stacks(&p), Err(Error::InvalidPprof(_))));
    let mut p = to_proto(&profile());
    p.function[0].name = 1 << 40;
    assert!(matches!(stacks(&p), Err(Error::InvalidPprof(_))));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_gzip_bomb_is_refused_at_the_decompressed_limit() {
    // 1 GiB of zeros: 1024 gzip members of 1 MiB each, about 1 MiB in all.
    let bomb = gzip(&vec![0u8; 1 << 20]).repeat(1024);
    assert!(bomb.len() < 2 << 20);
    let limits = Limits {
        compressed: 4 << 20,
        decompressed: 16 << 20,
    };
    let err = decode_limited(&bomb, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                stage: Stage::Decompressed,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the pprof profile decompresses to more than the limit of 16 MiB \
         (decompression stopped there)"
    );
    // The default limits refuse it too.
    assert!(matches!(decode(&bomb), Err(Error::TooLarge { .. })));
}

#[test]
fn the_received_size_is_limited() {
    let bytes = encode(&profile());
    let limits = Limits {
        compressed: bytes.len() as u64 - 1,
        decompressed: 1 << 20,
    };
    let err = decode_limited(&bytes, &limits).unwrap_err().to_string();
    assert!(err.starts_with("the pprof profile is "), "{err}");
    assert!(err.contains("more than the limit of"), "{err}");
    // Uncompressed protobuf counts against the decompressed limit.
    let raw = to_proto(&profile()).encode_to_vec();
    let limits = Limits {
        compressed: 1 << 20,
        decompressed: raw.len() as u64 - 1,
    };
    assert!(matches!(
        decode_limited(&raw, &limits),
        Err(Error::TooLarge {
            stage: Stage::Decompressed,
            size: Some(_),
            ..
        })
    ));
    let limits = Limits {
        compressed: bytes.len() as u64,
        decompressed: raw.len() as u64,
    };
    assert_eq!(
        decode_limited(&bytes, &limits).unwrap(),
        to_proto(&profile())
    );
}

#[test]
fn truncated_and_malformed_protobuf_are_errors() {
    let raw = to_proto(&profile()).encode_to_vec();
    for cut in [1, raw.len() / 3, raw.len() / 2, raw.len() - 1] {
        let err = decode(&raw[..cut]);
        assert!(
            matches!(err, Err(Error::PprofDecode(_))),
            "cut {cut}: {err:?}"
        );
        // The same, gzipped: gzip is fine, the protobuf inside is not.
        let err = decode(&gzip(&raw[..cut]));
        assert!(
            matches!(err, Err(Error::PprofDecode(_))),
            "cut {cut}: {err:?}"
        );
    }
    // A truncated gzip stream.
    let bytes = encode(&profile());
    assert!(matches!(
        decode(&bytes[..bytes.len() - 10]),
        Err(Error::Gzip(_))
    ));
    // A field with the wrong wire type (sample_type as a varint).
    assert!(matches!(decode(&[0x08, 0x01]), Err(Error::PprofDecode(_))));
    // A length that runs past the end.
    let err = decode(&[0x0a, 0x7f, 0x00]).unwrap_err().to_string();
    assert!(err.starts_with("cannot decode the pprof profile"), "{err}");
}

#[test]
fn empty_profile() {
    let p = decode(&encode(&Profile::default())).expect("decodes");
    assert!(p.sample.is_empty() && p.location.is_empty());
    assert_eq!(p.string_table[0], "");
    assert_eq!(p.period, 0);
}

#[test]
fn counts_saturate() {
    let mut profile = profile();
    profile.samples[0].count = u64::MAX;
    profile.samples[0].user = Stack::Absent;
    let p = to_proto(&profile);
    assert_eq!(p.sample[0].value, vec![i64::MAX, i64::MAX]);
}
