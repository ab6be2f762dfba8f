//! Ingest over real HTTP: pprof (ours and a genuine Go profile sent by a Go
//! client), folded stacks, Connect push with retries, limits and bad input;
//! what is stored is read back through the API and by `go tool pprof`.

mod support;

use prost::Message;
use scorch_formats::pprof::{self, decode, encode};
use scorch_formats::pprof_import::{self, Defaults};
use scorch_formats::push::pyroscope::{
    LabelPair, PushRequest, PushResponse, RawProfileSeries, RawSample,
};
use scorch_formats::{
    FrameKind, Line, Location, Mapping, Meta, Profile, ProfileBuilder, Sample, Stack, TextOptions,
};
use scorch_web::IngestLimits;
use support::*;

/// A scorch profile with kernel and user frames of two processes.
fn scorch_profile(scale: u64) -> Profile {
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(49),
        ..Meta::default()
    });
    let kernel = b.mapping(Mapping {
        start: 0xffff_0000,
        limit: 0xffff_ffff,
        offset: 0,
        file: "[kernel.kallsyms]".into(),
        build_id: None,
    });
    let exe = b.mapping(Mapping {
        start: 0x40_0000,
        limit: 0x50_0000,
        offset: 0,
        file: "/usr/bin/web".into(),
        build_id: Some("feed".into()),
    });
    let mut at = |address, mapping, kind, name: &str| {
        b.location(Location {
            address,
            mapping: Some(mapping),
            kind,
            lines: vec![Line {
                function: name.into(),
                file: None,
                line: None,
            }],
        })
    };
    let syscall = at(0xffff_0100, kernel, FrameKind::Kernel, "entry_SYSCALL_64");
    let write = at(0xffff_0200, kernel, FrameKind::Kernel, "ksys_write");
    let main = at(0x40_1000, exe, FrameKind::User, "main");
    let serve = at(0x40_2000, exe, FrameKind::User, "serve");
    let parse = at(0x40_3000, exe, FrameKind::User, "parse");
    b.sample(Sample {
        pid: 10,
        tid: Some(11),
        comm: "web".into(),
        user: Stack::Frames(vec![serve, main]),
        kernel: Stack::Frames(vec![write, syscall]),
        count: 7 * scale,
    });
    b.sample(Sample {
        pid: 10,
        tid: Some(12),
        comm: "web".into(),
        user: Stack::Frames(vec![parse, serve, main]),
        kernel: Stack::Absent,
        count: 3 * scale,
    });
    b.sample(Sample {
        pid: 20,
        tid: None,
        comm: "worker".into(),
        user: Stack::Missed,
        kernel: Stack::Frames(vec![syscall]),
        count: scale,
    });
    b.build()
}

fn folded(p: &Profile) -> String {
    let mut out = Vec::new();
    scorch_formats::write(
        p,
        scorch_formats::Format::Folded,
        &TextOptions::default(),
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn ingest_path(name: &str, rest: &str) -> String {
    let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!(
        "/ingest?name={name}&from={T0_SECS}&until={}{rest}",
        T0_SECS + 10
    )
}

#[test]
fn pprof_from_scorch_is_stored_with_its_labels_and_read_back() {
    let server = serve(default_limits(), None);
    let profile = scorch_profile(1);
    let r = post(
        server.addr,
        &ingest_path(
            "web.cpu{env=prod,region=eu}",
            "&sampleRate=49&spyName=scorch&format=pprof",
        ),
        "application/octet-stream",
        &encode(&profile),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stored"], 1);
    assert_eq!(r.json()["samples"], 11);

    assert_eq!(folded_of(server.addr, "web.cpu"), folded(&profile));
    let keys = get(server.addr, "/api/labels").json();
    for key in ["__name__", "env", "pyroscope_spy", "region", "service_name"] {
        assert!(
            keys["keys"].as_array().unwrap().iter().any(|k| k == key),
            "{key}: {keys}"
        );
    }
    let range = format!("from={}&until={}", T0_SECS - 60, T0_SECS + 60);
    let values = |key: &str| {
        get(server.addr, &format!("/api/label-values?key={key}&{range}")).json()["values"].clone()
    };
    assert_eq!(values("__name__"), serde_json::json!(["process_cpu"]));
    assert_eq!(values("pyroscope_spy"), serde_json::json!(["scorch"]));
    assert_eq!(values("env"), serde_json::json!(["prod"]));

    // The window is where from/until put it, and nowhere else.
    let before = get(
        server.addr,
        &format!(
            "/api/profile?format=folded&from={}&until={T0_SECS}",
            T0_SECS - 60
        ),
    );
    assert_eq!(before.text(), "");
    // Label filters pick it.
    let r = get(
        server.addr,
        &format!("/api/profile?format=folded&{range}&label=env:prod&label=region:eu"),
    );
    assert_eq!(r.text(), folded(&profile));

    // The stored profile as pprof: same stacks and values.
    let r = get(server.addr, &format!("/api/profile?format=pprof&{range}"));
    let mut back = pprof::stacks(&decode(&r.body).unwrap()).unwrap();
    let mut sent = pprof::stacks(&decode(&encode(&profile)).unwrap()).unwrap();
    back.sort();
    sent.sort();
    assert_eq!(back, sent);
}

#[test]
fn every_body_form_of_pprof_and_folded_is_read() {
    let server = serve(default_limits(), None);
    let profile = scorch_profile(2);
    let gzipped = encode(&profile);
    let raw = pprof::to_proto(&profile).encode_to_vec();
    let (form_type, form) = multipart(&[
        ("profile", &gzipped),
        ("sample_type_config", br#"{"cpu":{"units":"samples"}}"#),
    ]);
    // (app, query, Content-Type, body, Content-Encoding)
    let cases = [
        (
            "gz",
            "&format=pprof",
            "application/octet-stream",
            gzipped.clone(),
            None,
        ),
        ("plain", "&format=pprof", "binary/octet-stream", raw, None),
        // A multipart body means pprof when `format` is not given.
        ("form", "", form_type.as_str(), form.clone(), None),
        ("formpprof", "&format=pprof", form_type.as_str(), form, None),
        // Content-Encoding: gzip around a gzipped pprof.
        (
            "encoded",
            "&format=pprof",
            "application/octet-stream",
            gzip(&gzipped),
            Some("gzip"),
        ),
    ];
    for (app, rest, content_type, body, encoding) in cases {
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(e) = encoding {
            headers.push(("Content-Encoding", e));
        }
        let r = request(
            server.addr,
            "POST",
            &ingest_path(app, rest),
            &headers,
            &body,
            false,
        );
        assert_eq!(r.status, 200, "{app}: {}", r.text());
        assert_eq!(folded_of(server.addr, app), folded(&profile), "{app}");
    }
    // Folded, gzipped in the body and with Content-Encoding.
    let text = b"main;a 5\nmain;b 6\n";
    let r = post(
        server.addr,
        &ingest_path("fgz", ""),
        "text/plain",
        &gzip(text),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        folded_of(server.addr, "fgz"),
        "fgz;main;a 5\nfgz;main;b 6\n"
    );
    let r = request(
        server.addr,
        "POST",
        &ingest_path("fenc", "&format=folded"),
        &[("Content-Encoding", "gzip")],
        &gzip(text),
        true,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        folded_of(server.addr, "fenc"),
        "fenc;main;a 5\nfenc;main;b 6\n"
    );
}

#[test]
fn folded_sent_with_curl_reads_back_as_sent() {
    let server = serve(default_limits(), None);
    let url = format!(
        "http://{}/ingest?name=flat.app.cpu%7Benv%3Ddev%7D&from={T0_SECS}&until={}&spyName=curl",
        server.addr,
        T0_SECS + 10
    );
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--data-binary", "@-", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"foo;bar 100\nfoo;baz 200\n")?;
            child.wait_with_output()
        });
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: curl is not installed");
            return;
        }
        Err(e) => panic!("curl: {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        folded_of(server.addr, "flat.app"),
        "flat.app;foo;bar 100\nflat.app;foo;baz 200\n"
    );
    // `lines`: one sample per line.
    let r = post(
        server.addr,
        &ingest_path("lines", "&format=lines"),
        "text/plain",
        b"a;b\na;b\na;c\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        folded_of(server.addr, "lines"),
        "lines;a;c 1\nlines;a;b 2\n"
    );
}

fn series(service: &str, extra: (&str, &str), samples: Vec<RawSample>) -> RawProfileSeries {
    let pair = |name: &str, value: &str| LabelPair {
        name: name.into(),
        value: value.into(),
    };
    RawProfileSeries {
        labels: vec![
            pair("__name__", "process_cpu"),
            pair("service_name", service),
            pair(extra.0, extra.1),
        ],
        samples,
    }
}

fn raw(profile: &Profile, id: &str) -> RawSample {
    let mut profile = profile.clone();
    profile.meta.start_unix_ns = T0_SECS * 1_000_000_000;
    profile.meta.duration_ns = 10_000_000_000;
    RawSample {
        raw_profile: encode(&profile),
        id: id.into(),
    }
}

fn push(server: &Server, body: &[u8], headers: &[(&str, &str)]) -> Response {
    let mut all = vec![
        ("Content-Type", "application/proto"),
        ("Connect-Protocol-Version", "1"),
    ];
    all.extend_from_slice(headers);
    request(
        server.addr,
        "POST",
        "/push.v1.PusherService/Push",
        &all,
        body,
        false,
    )
}

#[test]
fn connect_push_stores_two_series_once_each() {
    let server = serve(default_limits(), None);
    let a = scorch_profile(1);
    let b = scorch_profile(5);
    let request = PushRequest {
        series: vec![
            series(
                "alpha",
                ("namespace", "prod"),
                vec![raw(&a, "id-a1"), raw(&a, "id-a2")],
            ),
            series("beta", ("pod", "beta-0"), vec![raw(&b, "id-b1")]),
        ],
    };
    let body = request.encode_to_vec();
    let r = push(&server, &body, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/proto"));
    assert_eq!(PushResponse::decode(&r.body[..]).unwrap(), PushResponse {});
    assert_eq!(r.header("x-scorch-stored"), Some("3"));
    assert_eq!(r.header("x-scorch-duplicates"), Some("0"));

    let twice: Profile = {
        let mut p = a.clone();
        for s in &mut p.samples {
            s.count *= 2;
        }
        p
    };
    assert_eq!(folded_of(server.addr, "alpha"), folded(&twice));
    assert_eq!(folded_of(server.addr, "beta"), folded(&b));
    let pods = get(
        server.addr,
        &format!(
            "/api/label-values?key=pod&from={}&until={}",
            T0_SECS - 1,
            T0_SECS + 60
        ),
    );
    assert_eq!(pods.json()["values"], serde_json::json!(["beta-0"]));

    // The client did not get the answer and sends it all again: nothing new.
    let r = push(&server, &body, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-scorch-stored"), Some("0"));
    assert_eq!(r.header("x-scorch-duplicates"), Some("3"));
    assert_eq!(folded_of(server.addr, "alpha"), folded(&twice));
    assert_eq!(folded_of(server.addr, "beta"), folded(&b));
    assert_eq!(server.store.stats().unwrap().windows, 3);

    // Gzipped request, one new id and one old; a sample without id is
    // always stored; a heap profile is skipped.
    let mut heap = pprof::to_proto(&a);
    let alloc = heap.string_table.len() as i64;
    heap.string_table
        .extend(["alloc_space".to_string(), "bytes".to_string()]);
    heap.sample_type = vec![pprof::proto::ValueType {
        r#type: alloc,
        unit: alloc + 1,
    }];
    heap.period_type = None;
    let request = PushRequest {
        series: vec![series(
            "alpha",
            ("namespace", "prod"),
            vec![
                raw(&a, "id-a1"),
                raw(&a, "id-a3"),
                raw(&a, ""),
                RawSample {
                    raw_profile: gzip(&heap.encode_to_vec()),
                    id: "heap".into(),
                },
            ],
        )],
    };
    let r = push(
        &server,
        &gzip(&request.encode_to_vec()),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-scorch-stored"), Some("2"));
    assert_eq!(r.header("x-scorch-duplicates"), Some("1"));
    assert_eq!(r.header("x-scorch-skipped"), Some("1"));
    assert_eq!(server.store.stats().unwrap().windows, 5);
}

#[test]
fn a_genuine_go_cpu_profile_sent_by_a_go_client() {
    let server = serve(default_limits(), None);
    let work = TempDir::new("gocpu");
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gocpu/main.go");
    let binary = work.path().join("gocpu");
    let Some(build) = go(
        &[
            "build",
            "-o",
            binary.to_str().unwrap(),
            source.to_str().unwrap(),
        ],
        work.path(),
    ) else {
        eprintln!("skipped: Go is not installed (Debian: apt-get install golang-go)");
        return;
    };
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // No from/until: the profile's own time is used, as Pyroscope does.
    let url = format!(
        "http://{}/ingest?name=gocpu%7Blang%3Dgo%7D&spyName=gospy&sampleRate=100",
        server.addr
    );
    let file = work.path().join("cpu.pprof");
    let run = std::process::Command::new(&binary)
        .args([file.to_str().unwrap(), &url])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{answer} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(answer.starts_with("200 "), "{answer}");

    // What Go wrote, read by our importer, is what the server stored.
    let bytes = std::fs::read(&file).unwrap();
    let message = decode(&bytes).unwrap();
    let counted: i64 = message.sample.iter().map(|s| s.value[0]).sum();
    assert!(counted > 0, "the Go profile has no samples");
    let expected = pprof_import::to_model(
        &message,
        &Defaults {
            comm: "gocpu".into(),
            ..Defaults::default()
        },
    )
    .unwrap();
    assert_eq!(expected.total_count(), counted as u64);
    let start = message.time_nanos as u64 / 1_000_000_000;
    let range = format!("from={}&until={}", start - 60, start + 60);
    let stored = get(
        server.addr,
        &format!("/api/profile?format=folded&{range}&label=service_name:gocpu"),
    )
    .text();
    assert_eq!(stored, folded(&expected));
    assert!(
        stored.contains("gocpu;runtime.main;main.main;main.burn"),
        "{stored}"
    );

    // `go tool pprof` reads what we serve of it.
    let url = format!(
        "http://{}/api/profile?format=pprof&{range}&label=lang:go",
        server.addr
    );
    let top = go(&["tool", "pprof", "-top", &url], work.path()).unwrap();
    let top_out = String::from_utf8_lossy(&top.stdout).to_string();
    assert!(
        top.status.success(),
        "{top_out} {}",
        String::from_utf8_lossy(&top.stderr)
    );
    assert!(top_out.contains("main.burn"), "{top_out}");
    let raw = go(&["tool", "pprof", "-raw", &url], work.path()).unwrap();
    let raw_out = String::from_utf8_lossy(&raw.stdout).to_string();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert!(
        raw_out.contains("samples/count cpu/nanoseconds"),
        "{raw_out}"
    );
    // Its sample counts add up to what Go counted.
    let total: i64 = raw_out
        .lines()
        .skip_while(|l| !l.starts_with("samples/count"))
        .skip(1)
        .take_while(|l| !l.starts_with("Locations"))
        // Sample lines: `count nanos: location ids`; label lines between.
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|n| n.ends_with(':'))
        })
        .map(|l| l.split_whitespace().next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, counted, "{raw_out}");
}

/// Limits small enough to reach in a test: 256 KiB received, 4 MiB
/// decompressed.
fn small_limits() -> Option<IngestLimits> {
    Some(IngestLimits {
        compressed: 256 << 10,
        decompressed: 4 << 20,
        ..IngestLimits::default()
    })
}

#[test]
fn bad_and_oversized_input_gets_4xx_and_the_server_keeps_serving() {
    let server = serve(small_limits(), None);
    let mut good = 0u64;
    let mut still_serving = |what: &str| {
        good += 1;
        let r = post(
            server.addr,
            &ingest_path("ok", ""),
            "text/plain",
            b"main;ok 1\n",
        );
        assert_eq!(r.status, 200, "after {what}: {}", r.text());
        assert_eq!(
            folded_of(server.addr, "ok"),
            format!("ok;main;ok {good}\n"),
            "after {what}"
        );
    };
    let pprof_path = ingest_path("bad", "&format=pprof");
    let big = vec![b'x'; 1 << 20];
    let bomb = gzip_bomb(64);
    let truncated = {
        let bytes = encode(&scorch_profile(1));
        bytes[..bytes.len() / 2].to_vec()
    };
    let (no_profile_type, no_profile) = multipart(&[("other", b"x")]);
    let connect = |body: &[u8], content_type: &str| -> Response {
        request(
            server.addr,
            "POST",
            "/push.v1.PusherService/Push",
            &[("Content-Type", content_type)],
            body,
            false,
        )
    };

    // (what, request, status, part of the message): each is sent just
    // before its answer is checked, and the server checked after each.
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Box<dyn Fn() -> Response + '_>, u16, &str)> =
        vec![
        (
            "an oversized body",
            Box::new(|| {
                post(server.addr, &pprof_path, "application/octet-stream", &big)
            }),
            413,
            "the request body is 1 MiB, more than the limit of 256 KiB",
        ),
        (
            "an oversized chunked body",
            Box::new(|| {
                request(server.addr, "POST", &pprof_path, &[], &big, true)
            }),
            413,
            "more than the limit of 256 KiB",
        ),
        (
            "a gzip bomb as pprof",
            Box::new(|| {
                post(server.addr, &pprof_path, "application/octet-stream", &bomb)
            }),
            413,
            "the pprof profile decompresses to more than the limit of 4 MiB",
        ),
        (
            "a gzip bomb as folded",
            Box::new(|| {
                post(server.addr, &ingest_path("bad", ""), "text/plain", &bomb)
            }),
            413,
            "the folded profile decompresses to more than the limit of 4 MiB",
        ),
        (
            "a gzip bomb as Content-Encoding",
            Box::new(|| {
                request(
                    server.addr,
                    "POST",
                    &ingest_path("bad", ""),
                    &[("Content-Encoding", "gzip")],
                    &bomb,
                    false,
                )
            }),
            413,
            "the request body decompresses to more than",
        ),
        (
            "a truncated gzipped pprof",
            Box::new(|| {
                post(server.addr, &pprof_path, "application/octet-stream", &truncated)
            }),
            400,
            "cannot decompress",
        ),
        (
            "bytes that are no protobuf",
            Box::new(|| {
                post(server.addr, &pprof_path, "application/octet-stream", b"\xff\xff\xff\xff")
            }),
            400,
            "invalid pprof profile: a varint is cut off",
        ),
        (
            "a multipart form without a profile",
            Box::new(|| {
                post(server.addr, &ingest_path("bad", ""), &no_profile_type, &no_profile)
            }),
            400,
            "no `profile` part",
        ),
        (
            "a broken multipart form",
            Box::new(|| {
                post(
                    server.addr,
                    &ingest_path("bad", ""),
                    "multipart/form-data; boundary=zz",
                    b"--zz\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nabc",
                )
            }),
            400,
            "ends before its closing boundary",
        ),
        (
            "a bad name",
            Box::new(|| {
                post(server.addr, &ingest_path("app{env}", ""), "text/plain", b"a 1\n")
            }),
            400,
            "label `env` has no `=value` at character 5 of `app{env}`",
        ),
        (
            "no name",
            Box::new(|| {
                post(server.addr, "/ingest?from=1", "text/plain", b"a 1\n")
            }),
            400,
            "`name` is missing",
        ),
        (
            "a bad folded line",
            Box::new(|| {
                post(server.addr, &ingest_path("bad", ""), "text/plain", b"a 1\nb;c many\n")
            }),
            400,
            "line 2: the count `many` is not a whole number",
        ),
        (
            "a binary body as folded",
            Box::new(|| {
                post(server.addr, &ingest_path("bad", ""), "text/plain", b"a\xff 1\n")
            }),
            400,
            "not UTF-8",
        ),
        (
            "from after until",
            Box::new(|| {
                post(server.addr, "/ingest?name=bad&from=20&until=10", "text/plain", b"a 1\n")
            }),
            400,
            "is after `until`",
        ),
        (
            "an unknown format",
            Box::new(|| {
                post(server.addr, &ingest_path("bad", "&format=jfr"), "text/plain", b"x")
            }),
            400,
            "`format=jfr` is not supported",
        ),
        (
            "a bad sample rate",
            Box::new(|| {
                post(server.addr, &ingest_path("bad", "&sampleRate=0"), "text/plain", b"a 1\n")
            }),
            400,
            "`sampleRate` must be a positive number",
        ),
        (
            "an unknown Content-Encoding",
            Box::new(|| {
                request(
                    server.addr,
                    "POST",
                    &ingest_path("bad", ""),
                    &[("Content-Encoding", "br")],
                    b"a 1\n",
                    false,
                )
            }),
            415,
            "`Content-Encoding: br` is not supported",
        ),
        (
            "a push that is no protobuf",
            Box::new(|| {
                connect(b"\x0a\xff\xff\xff\x0f", "application/proto")
            }),
            400,
            "cannot decode the push.v1.PushRequest",
        ),
        (
            "a push of XML",
            Box::new(|| {
                connect(b"<x/>", "text/xml")
            }),
            415,
            "`Content-Type: text/xml` is not supported",
        ),
        (
            "a push of broken JSON",
            Box::new(|| {
                connect(br#"{"series": [{"samples": [{"rawProfile": "!!"}]}]}"#, "application/json")
            }),
            400,
            "cannot read the push.v1.PushRequest JSON: invalid base64",
        ),
        (
            "a push over gRPC",
            Box::new(|| {
                connect(b"", "application/grpc")
            }),
            415,
            "gRPC is not served here",
        ),
        (
            "a push with a gzip bomb inside",
            Box::new(|| {
                connect(
                    &PushRequest {
                        series: vec![series(
                            "bad",
                            ("a", "b"),
                            vec![RawSample {
                                raw_profile: bomb.clone(),
                                id: "bomb".into(),
                            }],
                        )],
                    }
                    .encode_to_vec(),
                    "application/proto",
                )
            }),
            413,
            "series 0, sample 0: the pprof profile decompresses to more than the limit of 4 MiB",
        ),
        (
            "a push with a broken profile inside",
            Box::new(|| {
                connect(
                    &PushRequest {
                        series: vec![series(
                            "bad",
                            ("a", "b"),
                            vec![raw(&scorch_profile(1), "fine"), RawSample {
                                raw_profile: b"nonsense".to_vec(),
                                id: "broken".into(),
                            }],
                        )],
                    }
                    .encode_to_vec(),
                    "application/proto",
                )
            }),
            400,
            "series 0, sample 1: invalid pprof profile",
        ),
    ];
    for (what, send, status, message) in cases {
        let r = send();
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            r.header("content-type")
                .unwrap_or("")
                .starts_with("application/json"),
            "{what}: {:?}",
            r.headers
        );
        assert!(r.error().contains(message), "{what}: {}", r.error());
        still_serving(what);
    }
    // Connect's error shape for Connect clients: `code` and `message`
    // only; 415 for a codec it does not serve, as the Connect protocol
    // answers one.
    let r = connect(b"\x0a\xff", "application/proto");
    assert_eq!(r.json()["code"], "invalid_argument");
    assert_eq!(r.json().as_object().unwrap().len(), 2, "{}", r.text());
    let r = connect(b"", "application/grpc");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (415, "internal".into())
    );
    let r = connect(&gzip_bomb(64), "application/proto");
    assert_eq!(r.status, 400, "a bomb is no PushRequest either");

    // Nothing of the bad requests was stored, not even the good half of
    // the last push.
    let keys = get(
        server.addr,
        &format!(
            "/api/label-values?key=service_name&from={}&until={}",
            T0_SECS - 60,
            T0_SECS + 60
        ),
    );
    assert_eq!(keys.json()["values"], serde_json::json!(["ok"]));
    assert_eq!(server.store.stats().unwrap().windows, good);
}

#[test]
fn a_gigabyte_gzip_bomb_is_refused_with_the_default_limits() {
    let server = serve(default_limits(), None);
    let bomb = gzip_bomb(1024);
    assert!(bomb.len() < 2 << 20);
    let r = post(
        server.addr,
        &ingest_path("bomb", "&format=pprof"),
        "application/octet-stream",
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        r.error(),
        "the pprof profile decompresses to more than the limit of 16 MiB \
         (decompression stopped there)"
    );
    let r = post(server.addr, &ingest_path("ok", ""), "text/plain", b"a 1\n");
    assert_eq!(r.status, 200);
}

#[test]
fn ingest_needs_the_token_when_there_is_one() {
    let server = serve(default_limits(), Some("s3cret"));
    let body = b"main;x 3\n";
    let r = post(server.addr, &ingest_path("app", ""), "text/plain", body);
    assert_eq!(r.status, 401);
    let r = request(
        server.addr,
        "POST",
        &ingest_path("app", ""),
        &[("Authorization", "Bearer s3cret")],
        body,
        false,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let push_body = PushRequest {
        series: vec![series(
            "app",
            ("a", "b"),
            vec![raw(&scorch_profile(1), "x")],
        )],
    }
    .encode_to_vec();
    assert_eq!(push(&server, &push_body, &[]).status, 401);
    let r = push(&server, &push_body, &[("Authorization", "Bearer s3cret")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-scorch-stored"), Some("1"));
    // Basic auth with the token as the password (`pyroscope:s3cret`).
    let basic = format!("Basic {}", base64(b"pyroscope:s3cret"));
    let r = request(
        server.addr,
        "POST",
        &ingest_path("basic", ""),
        &[("Authorization", basic.as_str())],
        body,
        false,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wrong = format!("Basic {}", base64(b"pyroscope:nope"));
    let r = request(
        server.addr,
        "POST",
        &ingest_path("basic", ""),
        &[("Authorization", wrong.as_str())],
        body,
        false,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn without_ingest_pushes_get_503_with_the_reason() {
    let server = serve(None, None);
    let r = post(server.addr, &ingest_path("app", ""), "text/plain", b"a 1\n");
    assert_eq!(r.status, 503);
    assert!(
        r.error().contains("does not accept profiles"),
        "{}",
        r.error()
    );
    let r = push(&server, &PushRequest::default().encode_to_vec(), &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["code"], "unavailable");
    assert_eq!(server.store.stats().unwrap().windows, 0);
}

/// Standard base64 with padding, as proto3 JSON writes bytes.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        out.push_str(&"=".repeat(3 - chunk.len()));
    }
    out
}

#[test]
fn connect_push_in_json_dedups_by_id_in_either_spelling() {
    let server = serve(default_limits(), None);
    let profile = scorch_profile(3);
    let sample = raw(&profile, "json-1");
    // push.proto's field is `string ID = 2`, so proto3 JSON names it `ID`;
    // `id` is read too.
    let body_with = |id_key: &str| {
        serde_json::json!({
            "series": [{
                "labels": [
                    {"name": "service_name", "value": "jsonapp"},
                    {"name": "__name__", "value": "process_cpu"}
                ],
                "samples": [{"rawProfile": base64(&sample.raw_profile), id_key: sample.id}]
            }]
        })
        .to_string()
    };
    let send_with = |body: String| {
        request(
            server.addr,
            "POST",
            "/push.v1.PusherService/Push",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            false,
        )
    };
    let r = send_with(body_with("ID"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-scorch-stored"), Some("1"));
    assert_eq!(
        send_with(body_with("ID")).header("x-scorch-duplicates"),
        Some("1")
    );
    assert_eq!(
        send_with(body_with("id")).header("x-scorch-duplicates"),
        Some("1")
    );
    assert_eq!(server.store.stats().unwrap().windows, 1);
}

#[test]
fn connect_push_in_json_answers_in_json() {
    let server = serve(default_limits(), None);
    let profile = scorch_profile(3);
    let sample = raw(&profile, "json-1");
    let body = serde_json::json!({
        "series": [{
            "labels": [
                {"name": "service_name", "value": "jsonapp"},
                {"name": "__name__", "value": "process_cpu"}
            ],
            "samples": [{"rawProfile": base64(&sample.raw_profile), "id": sample.id}]
        }]
    })
    .to_string();
    let send = || {
        request(
            server.addr,
            "POST",
            "/push.v1.PusherService/Push",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            false,
        )
    };
    let r = send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "{}");
    assert_eq!(folded_of(server.addr, "jsonapp"), folded(&profile));
    assert_eq!(send().header("x-scorch-duplicates"), Some("1"));
}

#[test]
fn profiles_other_than_cpu_are_skipped_and_the_answer_says_why() {
    let server = serve(default_limits(), None);
    let mut heap = pprof::to_proto(&scorch_profile(1));
    let alloc = heap.string_table.len() as i64;
    heap.string_table
        .extend(["inuse_space".to_string(), "bytes".to_string()]);
    heap.sample_type = vec![pprof::proto::ValueType {
        r#type: alloc,
        unit: alloc + 1,
    }];
    let r = post(
        server.addr,
        &ingest_path("heap", "&format=pprof"),
        "application/octet-stream",
        &gzip(&heap.encode_to_vec()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["stored"], 0);
    assert_eq!(answer["skipped"], 1);
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("not a CPU profile: it measures inuse_space/bytes"),
        "{reason}"
    );
    assert_eq!(server.store.stats().unwrap().windows, 0);
}

#[test]
fn a_web_page_of_another_origin_cannot_push() {
    let server = serve(default_limits(), None);
    let path = ingest_path("app.cpu", "");
    let from = |origin: &str| {
        request(
            server.addr,
            "POST",
            &path,
            &[("Content-Type", "text/plain"), ("Origin", origin)],
            b"a;b 1\n",
            false,
        )
    };
    let r = from("https://evil.example");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.error().contains("`https://evil.example` are refused"),
        "{}",
        r.error()
    );
    assert_eq!(from("null").status, 403);
    assert_eq!(server.store.stats().unwrap().windows, 0);
    // The server's own page, and clients that send no Origin, may.
    assert_eq!(from(&format!("http://{}", server.addr)).status, 200);
    assert_eq!(
        post(server.addr, &path, "text/plain", b"a;b 1\n").status,
        200
    );
}

/// Peak resident memory of this process, in bytes, after resetting it.
fn peak_rss_reset() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    peak_rss()
}

/// `VmHWM` of this process, in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn millions_of_tiny_samples_are_refused_without_decoding_them() {
    use std::io::Write;
    let server = serve(default_limits(), None);
    // 2 million samples of one location each, 8 bytes apiece on the wire:
    // 16 MB of protobuf, under the 16 MiB limit, but hundreds of MB once
    // decoded. Written straight into gzip, so the test holds little.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // A valid CPU profile: sample type samples/count, location 1.
    let mut head = vec![
        0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x22, 0x02, 0x08, 0x01, 0x32, 0x00,
    ];
    head.extend(b"\x32\x07samples\x32\x05count");
    gz.write_all(&head).unwrap();
    let sample = [0x12, 0x06, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x01];
    let block = sample.repeat(10_000);
    for _ in 0..200 {
        gz.write_all(&block).unwrap();
    }
    let body = gz.finish().unwrap();
    let Some(before) = peak_rss_reset() else {
        eprintln!("skipped: /proc/self/clear_refs cannot reset VmHWM here");
        return;
    };
    let r = post(
        server.addr,
        &ingest_path("tiny", "&format=pprof"),
        "application/octet-stream",
        &body,
    );
    let grown = peak_rss().unwrap().saturating_sub(before);
    const BOUND: u64 = 96 << 20;
    assert!(
        grown < BOUND,
        "peak memory grew by {grown} bytes, more than {BOUND}"
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.error().contains("more than 100000 samples"),
        "{}",
        r.error()
    );
}

#[test]
fn one_push_of_many_profiles_has_one_decompressed_budget() {
    let server = serve(small_limits(), None);
    // Three profiles of 2 MiB each, gzipped to almost nothing: each fits
    // the 4 MiB limit, together they do not.
    let big = gzip(
        &pprof::proto::Profile {
            string_table: vec![String::new(), "a".repeat(2 << 20)],
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let samples = (0..3)
        .map(|i| RawSample {
            raw_profile: big.clone(),
            id: format!("big-{i}"),
        })
        .collect();
    let request = PushRequest {
        series: vec![series("app", ("k", "v"), samples)],
    };
    let r = push(&server, &request.encode_to_vec(), &[]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid_argument");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("series 0, sample 1"));
    assert_eq!(server.store.stats().unwrap().windows, 0);
}

#[test]
fn goroutine_pprof_with_average_units_is_skipped_not_refused() {
    let server = serve(default_limits(), None);
    let r = post(
        server.addr,
        &ingest_path(
            "goapp",
            "&format=pprof&units=goroutines&aggregationType=average",
        ),
        "application/octet-stream",
        &encode(&scorch_profile(1)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        server.addr,
        &ingest_path("goapp.cpu", "&units=goroutines&aggregationType=average"),
        "text/plain",
        b"a;b 1\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["skipped"], 1);
}

#[test]
fn windows_far_in_the_future_are_refused() {
    let server = serve(default_limits(), None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let path = format!(
        "/ingest?name=app.cpu&from={}&until={}",
        now + 3600,
        now + 3610
    );
    let r = post(server.addr, &path, "text/plain", b"a;b 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("in the future"), "{}", r.error());
}

#[test]
fn requests_past_the_concurrency_limit_get_429_with_retry_after() {
    use std::io::Write;
    let server = serve(
        Some(IngestLimits {
            concurrent: 1,
            ..IngestLimits::default()
        }),
        None,
    );
    let path = ingest_path("slow.cpu", "");
    // A client that sends its headers and half its body, and stalls.
    let stall = || {
        let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
        write!(
            slow,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\na;b 1\n",
            server.addr
        )
        .unwrap();
        slow.flush().unwrap();
        slow.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        slow
    };
    let mut slow = stall();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let busy = loop {
        let r = post(server.addr, &path, "text/plain", b"a;b 1\n");
        if r.status == 429 || std::time::Instant::now() > deadline {
            break r;
        }
        // The stalled request and this one race for the slot: when this one
        // won, the stalled one was answered 429 and a new one stalls.
        let mut byte = [0u8; 1];
        if matches!(slow.peek(&mut byte), Ok(n) if n > 0) {
            slow = stall();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(busy.status, 429, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(busy.error().contains("retry in 1 s"), "{}", busy.error());
    // Once the slow request ends, its slot is free again.
    slow.write_all(b"a;c 1\n").unwrap();
    slow.set_read_timeout(None).unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut slow, &mut answer).ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        post(server.addr, &path, "text/plain", b"a;b 1\n").status,
        200
    );
}

#[test]
fn pushed_labels_with_empty_values_are_absent() {
    let server = serve(default_limits(), None);
    let profile = scorch_profile(1);
    let request = PushRequest {
        series: vec![series("emptylabel", ("pod", ""), vec![raw(&profile, "e1")])],
    };
    let r = push(&server, &request.encode_to_vec(), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-scorch-stored"), Some("1"));
    let keys = get(
        server.addr,
        &format!("/api/labels?from={}&until={}", T0_SECS - 60, T0_SECS + 60),
    );
    let keys = keys.json();
    assert!(keys.to_string().contains("\"service_name\""), "{keys}");
    assert!(
        !keys.to_string().contains("\"pod\""),
        "an empty label was stored: {keys}"
    );
    assert_eq!(folded_of(server.addr, "emptylabel"), folded(&profile));
}
