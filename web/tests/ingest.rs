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
        "http://{}/ingest?name=flat.app%7Benv%3Ddev%7D&from={T0_SECS}&until={}&spyName=curl",
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
            frequency_hz: None,
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

    // (what, answer, status, part of the message)
    let cases: Vec<(&str, Response, u16, &str)> =
        vec![
        (
            "an oversized body",
            post(server.addr, &pprof_path, "application/octet-stream", &big),
            413,
            "the request body is 1 MiB, more than the limit of 256 KiB",
        ),
        (
            "an oversized chunked body",
            request(server.addr, "POST", &pprof_path, &[], &big, true),
            413,
            "more than the limit of 256 KiB",
        ),
        (
            "a gzip bomb as pprof",
            post(server.addr, &pprof_path, "application/octet-stream", &bomb),
            413,
            "the pprof profile decompresses to more than the limit of 4 MiB",
        ),
        (
            "a gzip bomb as folded",
            post(server.addr, &ingest_path("bad", ""), "text/plain", &bomb),
            413,
            "the folded profile decompresses to more than the limit of 4 MiB",
        ),
        (
            "a gzip bomb as Content-Encoding",
            request(
                server.addr,
                "POST",
                &ingest_path("bad", ""),
                &[("Content-Encoding", "gzip")],
                &bomb,
                false,
            ),
            413,
            "the request body decompresses to more than",
        ),
        (
            "a truncated gzipped pprof",
            post(server.addr, &pprof_path, "application/octet-stream", &truncated),
            400,
            "cannot decompress",
        ),
        (
            "bytes that are no protobuf",
            post(server.addr, &pprof_path, "application/octet-stream", b"\xff\xff\xff\xff"),
            400,
            "cannot decode the pprof profile",
        ),
        (
            "a multipart form without a profile",
            post(server.addr, &ingest_path("bad", ""), &no_profile_type, &no_profile),
            400,
            "no `profile` part",
        ),
        (
            "a broken multipart form",
            post(
                server.addr,
                &ingest_path("bad", ""),
                "multipart/form-data; boundary=zz",
                b"--zz\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nabc",
            ),
            400,
            "ends before its closing boundary",
        ),
        (
            "a bad name",
            post(server.addr, &ingest_path("app{env}", ""), "text/plain", b"a 1\n"),
            400,
            "label `env` has no `=value` at character 5 of `app{env}`",
        ),
        (
            "no name",
            post(server.addr, "/ingest?from=1", "text/plain", b"a 1\n"),
            400,
            "`name` is missing",
        ),
        (
            "a bad folded line",
            post(server.addr, &ingest_path("bad", ""), "text/plain", b"a 1\nb;c many\n"),
            400,
            "line 2: the count `many` is not a whole number",
        ),
        (
            "a binary body as folded",
            post(server.addr, &ingest_path("bad", ""), "text/plain", b"a\xff 1\n"),
            400,
            "not UTF-8",
        ),
        (
            "from after until",
            post(server.addr, "/ingest?name=bad&from=20&until=10", "text/plain", b"a 1\n"),
            400,
            "is after `until`",
        ),
        (
            "an unknown format",
            post(server.addr, &ingest_path("bad", "&format=jfr"), "text/plain", b"x"),
            400,
            "`format=jfr` is not supported",
        ),
        (
            "a bad sample rate",
            post(server.addr, &ingest_path("bad", "&sampleRate=0"), "text/plain", b"a 1\n"),
            400,
            "`sampleRate` must be a positive number",
        ),
        (
            "an unknown Content-Encoding",
            request(
                server.addr,
                "POST",
                &ingest_path("bad", ""),
                &[("Content-Encoding", "br")],
                b"a 1\n",
                false,
            ),
            415,
            "`Content-Encoding: br` is not supported",
        ),
        (
            "a push that is no protobuf",
            connect(b"\x0a\xff\xff\xff\x0f", "application/proto"),
            400,
            "cannot decode the push.v1.PushRequest",
        ),
        (
            "a push of XML",
            connect(b"<x/>", "text/xml"),
            415,
            "`Content-Type: text/xml` is not supported",
        ),
        (
            "a push of broken JSON",
            connect(br#"{"series": [{"samples": [{"rawProfile": "!!"}]}]}"#, "application/json"),
            400,
            "cannot read the push.v1.PushRequest JSON: invalid base64",
        ),
        (
            "a push over gRPC",
            connect(b"", "application/grpc"),
            415,
            "gRPC is not served here",
        ),
        (
            "a push with a gzip bomb inside",
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
            ),
            413,
            "series 0, sample 0: the pprof profile decompresses to more than the limit of 4 MiB",
        ),
        (
            "a push with a broken profile inside",
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
            ),
            400,
            "series 0, sample 1: cannot decode the pprof profile",
        ),
    ];
    for (what, r, status, message) in cases {
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
    // Connect's error shape for Connect clients.
    let r = connect(b"\x0a\xff", "application/proto");
    assert_eq!(r.json()["code"], "invalid_argument");
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
        "the pprof profile decompresses to more than the limit of 256 MiB \
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
fn connect_push_in_json() {
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
