//! Wire compatibility with Grafana Pyroscope's published ingest APIs: one
//! check per query parameter of `POST /ingest` (as the "Pyroscope server
//! HTTP API" page lists them), per multipart part its clients send, and per
//! protobuf field of `push.v1.PushRequest` (as `api/push/v1/push.proto` and
//! `api/types/v1/types.proto` number them), each against a real server.

mod support;

use scorch_formats::pprof::{self, decode, encode};
use scorch_formats::{FrameKind, Line, Location, Meta, Profile, ProfileBuilder, Sample, Stack};
use support::*;

/// A profile of one stack, `comm;function count`.
fn one_frame(meta: Meta, comm: &str, function: &str, count: u64) -> Profile {
    let mut b = ProfileBuilder::new(meta);
    let location = b.location(Location {
        address: 1,
        mapping: None,
        kind: FrameKind::User,
        lines: vec![Line {
            function: function.into(),
            file: None,
            line: None,
        }],
    });
    b.sample(Sample {
        pid: 1,
        tid: None,
        comm: comm.into(),
        user: Stack::Frames(vec![location]),
        kernel: Stack::Absent,
        count,
    });
    b.build()
}

fn ok(server: &Server, path: &str, content_type: &str, body: &[u8]) -> serde_json::Value {
    let r = post(server.addr, path, content_type, body);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

fn refused(server: &Server, path: &str, body: &[u8]) -> String {
    let r = post(server.addr, path, "text/plain", body);
    assert_eq!(r.status, 400, "{path}: {}", r.text());
    r.error()
}

fn range() -> String {
    format!("from={}&until={}", T0_SECS - 3600, T0_SECS + 3600)
}

/// `/ingest` query parameters: name, from, until, format, sampleRate,
/// spyName, units, aggregationType.
#[test]
fn ingest_query_parameters() {
    let server = serve(default_limits(), None);
    let window = format!("from={T0_SECS}&until={}", T0_SECS + 10);

    // name (required): `app.name.TYPE{label=value,…}` → `service_name` and
    // labels; the last `.` segment is the profile type (Pyroscope's
    // ingest adapter, `convertMetadata`).
    ok(
        &server,
        &format!(
            "/ingest?name=my.awesome.app.cpu%7Benv%3Dstaging%2Cregion%3Dus-west-1%7D&{window}"
        ),
        "text/plain",
        b"a;b 1\n",
    );
    let values = |key: &str| {
        get(
            server.addr,
            &format!("/api/label-values?key={key}&{}", range()),
        )
        .json()["values"]
            .clone()
    };
    assert_eq!(
        values("service_name"),
        serde_json::json!(["my.awesome.app"])
    );
    assert_eq!(values("env"), serde_json::json!(["staging"]));
    assert_eq!(values("region"), serde_json::json!(["us-west-1"]));
    // `itimer` is CPU too; a name without a dot is CPU.
    ok(
        &server,
        &format!("/ingest?name=timer.app.itimer&{window}"),
        "text/plain",
        b"a 1
",
    );
    assert_eq!(folded_of(server.addr, "timer.app"), "timer.app;a 1\n");
    // A `service_name` label names the application; the name is kept as
    // `app_name`. Labels starting with `__` are dropped without a word.
    ok(
        &server,
        &format!("/ingest?name=legacy.cpu%7Bservice_name%3Dsvc%2C__session_id__%3Dx%7D&{window}"),
        "text/plain",
        b"s 1\n",
    );
    assert_eq!(folded_of(server.addr, "svc"), "svc;s 1\n");
    assert_eq!(values("app_name"), serde_json::json!(["legacy"]));
    assert_eq!(values("__session_id__"), serde_json::json!([]));
    // Other profile types Pyroscope knows are answered, not stored.
    for kind in [
        "alloc_space",
        "inuse_objects",
        "goroutines",
        "mutex_count",
        "wall",
    ] {
        let answer = ok(
            &server,
            &format!("/ingest?name=mem.app.{kind}&{window}"),
            "text/plain",
            b"m 1\n",
        );
        assert_eq!(
            (answer["stored"].clone(), answer["skipped"].clone()),
            (0.into(), 1.into()),
            "{kind}"
        );
        assert!(
            answer["reason"].as_str().unwrap().contains(kind),
            "{answer}"
        );
    }
    assert_eq!(folded_of(server.addr, "mem.app"), "");
    // An unknown type is a 400, as Pyroscope's "unknown profile type".
    assert!(
        refused(&server, &format!("/ingest?name=my.app&{window}"), b"a 1\n")
            .contains("unknown profile type `app`")
    );
    assert!(refused(&server, &format!("/ingest?{window}"), b"a 1\n").contains("`name` is missing"));

    // from, until (Unix time, required by the docs): the window's range.
    // Clients send seconds or nanoseconds (Pyroscope's Go SDK); all units
    // are told apart by magnitude.
    let ns = T0_SECS * 1_000_000_000;
    ok(
        &server,
        &format!(
            "/ingest?name=t_ns&from={}&until={}",
            ns + 20_000_000_000,
            ns + 30_000_000_000
        ),
        "text/plain",
        b"x 2\n",
    );
    ok(
        &server,
        &format!(
            "/ingest?name=t_ms&from={}&until={}",
            (T0_SECS + 20) * 1000,
            (T0_SECS + 30) * 1000
        ),
        "text/plain",
        b"x 3\n",
    );
    for (app, count) in [("t_ns", 2), ("t_ms", 3)] {
        let inside = format!(
            "/api/profile?format=folded&from={}&until={}&label=service_name:{app}",
            T0_SECS + 20,
            T0_SECS + 21
        );
        assert_eq!(
            get(server.addr, &inside).text(),
            format!("{app};x {count}\n")
        );
        let outside = format!(
            "/api/profile?format=folded&from={}&until={}&label=service_name:{app}",
            T0_SECS,
            T0_SECS + 19
        );
        assert_eq!(get(server.addr, &outside).text(), "");
    }
    assert!(refused(&server, "/ingest?name=a&from=yesterday", b"a 1\n")
        .contains("`from` must be a Unix time"));

    // format (default folded): folded, lines, pprof. Not: trie, tree, jfr.
    ok(
        &server,
        &format!("/ingest?name=f_default&{window}"),
        "text/plain",
        b"x;y 4\n",
    );
    assert_eq!(folded_of(server.addr, "f_default"), "f_default;x;y 4\n");
    let pprof_body = encode(&one_frame(Meta::default(), "p", "main", 5));
    ok(
        &server,
        &format!("/ingest?name=f.pprof&format=pprof&{window}"),
        "application/octet-stream",
        &pprof_body,
    );
    assert_eq!(
        folded_of(server.addr, "f.pprof"),
        "p;main 5
"
    );
    for format in ["trie", "tree", "jfr", "speedscope"] {
        assert!(refused(
            &server,
            &format!("/ingest?name=a&format={format}&{window}"),
            b"x"
        )
        .contains("not supported"));
    }

    // sampleRate (Hz, default 100): the period of the stored profile.
    let period = |app: &str| {
        let r = get(
            server.addr,
            &format!(
                "/api/profile?format=pprof&{}&label=service_name:{app}",
                range()
            ),
        );
        decode(&r.body).unwrap().period
    };
    assert_eq!(period("f_default"), 10_000_000, "default 100 Hz");
    ok(
        &server,
        &format!("/ingest?name=rate&sampleRate=49&{window}"),
        "text/plain",
        b"x 1\n",
    );
    assert_eq!(period("rate"), 1_000_000_000 / 49);

    // spyName (optional): label `pyroscope_spy`.
    ok(
        &server,
        &format!("/ingest?name=spy&spyName=gospy&{window}"),
        "text/plain",
        b"x 1\n",
    );
    assert_eq!(values("pyroscope_spy"), serde_json::json!(["gospy"]));

    // units (default samples), for text formats: other units are not CPU
    // samples, and are answered "skipped".
    let skipped = |path: String| {
        let answer = ok(&server, &path, "text/plain", b"x 1\n");
        assert_eq!(answer["skipped"], 1, "{path}: {answer}");
        answer["reason"].as_str().unwrap().to_string()
    };
    ok(
        &server,
        &format!("/ingest?name=u&units=samples&{window}"),
        "text/plain",
        b"x 1\n",
    );
    assert!(skipped(format!("/ingest?name=u&units=bytes&{window}")).contains("`units=bytes`"));

    // aggregationType (default sum; the docs also spell it
    // aggregrationType), for text formats: sum — samples add up.
    ok(
        &server,
        &format!("/ingest?name=agg&aggregationType=sum&{window}"),
        "text/plain",
        b"x 1\n",
    );
    for key in ["aggregationType", "aggregrationType"] {
        let reason = skipped(format!("/ingest?name=agg&{key}=average&{window}"));
        assert!(reason.contains("`aggregationType=average`"), "{reason}");
    }
    // A pprof body says its own units: pyroscope-go sends goroutine
    // profiles with units=goroutines&aggregationType=average.
    ok(
        &server,
        &format!(
            "/ingest?name=goro&format=pprof&units=goroutines&aggregationType=average&{window}"
        ),
        "application/octet-stream",
        &pprof_body,
    );

    // Every stored series is a CPU profile: `__name__=process_cpu`.
    assert_eq!(values("__name__"), serde_json::json!(["process_cpu"]));
}

/// The multipart form Pyroscope's SDKs send: `profile` (the pprof),
/// `prev_profile` (cumulative profiles only) and `sample_type_config`
/// (JSON), each a form file.
#[test]
fn ingest_multipart_parts() {
    let server = serve(default_limits(), None);
    let profile = one_frame(Meta::default(), "sdk", "main", 9);
    let (content_type, body) = multipart(&[
        ("profile", &encode(&profile)),
        ("prev_profile", &encode(&profile)),
        (
            "sample_type_config",
            br#"{"cpu":{"units":"samples","sampled":true}}"#,
        ),
    ]);
    let path = format!(
        "/ingest?name=sdk&spyName=gospy&from={T0_SECS}&until={}",
        T0_SECS + 10
    );
    ok(&server, &path, &content_type, &body);
    // `profile` is what is stored; `prev_profile` is not added to it.
    assert_eq!(folded_of(server.addr, "sdk"), "sdk;main 9\n");
    let stored = get(
        server.addr,
        &format!("/api/profile?format=pprof&{}", range()),
    );
    let stacks = pprof::stacks(&decode(&stored.body).unwrap()).unwrap();
    assert_eq!(stacks.iter().map(|(_, v)| v[0]).sum::<i64>(), 9);
}

/// A protobuf field, hand-encoded: length-delimited fields only.
fn field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let varint = |mut v: u64, out: &mut Vec<u8>| loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    };
    varint(u64::from(number << 3 | 2), &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// `push.v1.PushRequest` fields by number, as the published `.proto` has
/// them: PushRequest.series = 1; RawProfileSeries.labels = 1, .samples = 2;
/// types.v1.LabelPair.name = 1, .value = 2; RawSample.raw_profile = 1,
/// .id = 2. The request is encoded by hand, not by our messages.
#[test]
fn push_request_fields() {
    let server = serve(default_limits(), None);
    let meta = Meta {
        start_unix_ns: T0_SECS * 1_000_000_000,
        duration_ns: 10_000_000_000,
        frequency_hz: Some(100),
        ..Meta::default()
    };
    let raw_profile = encode(&one_frame(meta, "alloy", "handler", 4));
    let label = |name: &str, value: &str| {
        field(
            1,
            &[field(1, name.as_bytes()), field(2, value.as_bytes())].concat(),
        )
    };
    let sample = [field(1, &raw_profile), field(2, b"0b8e-uuid")].concat();
    let series = [
        label("__name__", "process_cpu"),
        label("service_name", "wire"),
        label("cluster", "c1"),
        field(2, &sample),
    ]
    .concat();
    let request = field(1, &series);
    let r = request_to(&server, &request);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // PushResponse is empty: an empty body.
    assert!(r.body.is_empty());
    assert_eq!(r.header("x-scorch-stored"), Some("1"));
    assert_eq!(folded_of(server.addr, "wire"), "alloy;handler 4\n");
    let values = get(
        server.addr,
        &format!("/api/label-values?key=cluster&{}", range()),
    );
    assert_eq!(values.json()["values"], serde_json::json!(["c1"]));
    // RawSample.id: the same id again is not stored twice.
    let r = request_to(&server, &request);
    assert_eq!(r.header("x-scorch-duplicates"), Some("1"));
    assert_eq!(folded_of(server.addr, "wire"), "alloy;handler 4\n");
}

/// The Connect unary request line and headers: `POST
/// /push.v1.PusherService/Push`, `Content-Type: application/proto`,
/// `Connect-Protocol-Version: 1`.
fn request_to(server: &Server, body: &[u8]) -> Response {
    request(
        server.addr,
        "POST",
        scorch_web::PUSH_PATH,
        &[
            ("Content-Type", scorch_web::CONNECT_PROTO),
            ("Connect-Protocol-Version", "1"),
            ("Accept-Encoding", "gzip"),
        ],
        body,
        false,
    )
}
