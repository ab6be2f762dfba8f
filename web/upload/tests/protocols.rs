//! Each protocol's requests, checked field by field against the
//! receivers' published API descriptions, over real HTTP on loopback.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message;
use scorch_formats::push::{parca, pyroscope};
use scorch_upload::{send_now, Endpoint, Error, Protocol, UploadOptions, Uploader};
use support::*;

fn endpoint(url: &str, protocol: Protocol) -> Endpoint {
    let mut options = UploadOptions::new(url);
    options.protocol = protocol;
    options.retry.initial = Duration::from_millis(20);
    options.retry.max = Duration::from_millis(200);
    Endpoint::new(&options).unwrap()
}

fn burn_series() -> Vec<(BTreeMap<String, String>, scorch_formats::Profile)> {
    vec![
        (
            labels(101, "burn"),
            profile(
                101,
                "burn",
                &[(&["main", "outer", "inner"], 40), (&["main", "other"], 2)],
            ),
        ),
        (
            labels(202, "sleepy"),
            profile(202, "sleepy", &[(&["main", "wait"], 3)]),
        ),
    ]
}

fn label_map(labels: &[pyroscope::LabelPair]) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

/// Pyroscope's Connect API (`push.v1.PusherService/Push`, the API Grafana
/// Alloy uses): a POST of a binary `PushRequest`. Its server API reference
/// lists the fields:
///
/// | field | Pyroscope's description | ours |
/// |---|---|---|
/// | `series[].labels[].name` / `.value` | label name / value, e.g. `service_name` | `__name__=process_cpu`, `service_name`, `hostname`, `comm`, `exe`, … |
/// | `series[].samples[].ID` | UUID of the profile | derived from agent, window and series |
/// | `series[].samples[].rawProfile` | the bytes of the pprof profile | gzipped pprof |
#[test]
fn push_sends_a_connect_push_request_with_labels_ids_and_stacks() {
    let server = Server::start(|_, _| Reply::ok());
    let dir = temp_dir("push-wire");
    let mut options = UploadOptions::new(format!("http://tenant:s3cret@{}/", server.addr));
    options.headers = vec!["X-Scope-OrgID: tenant-1".into()];
    // The window is dated 2023, to pin `time_nanos`: it must not expire.
    options.max_age = Some(Duration::MAX);
    let uploader = Uploader::start(Endpoint::new(&options).unwrap(), &dir, 1 << 20).unwrap();
    let series = burn_series();
    assert_eq!(uploader.submit(&window(1_700_000_000, &series)), 2);
    wait_until(Duration::from_secs(10), "delivery", || {
        uploader.stats().delivered == 2
    });
    let requests = server.stop();
    assert_eq!(requests.len(), 1, "both series in one request");
    let request = &requests[0];

    // Request line: POST /push.v1.PusherService/Push (Connect unary).
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.path(), "/push.v1.PusherService/Push");
    assert_eq!(request.uri.query(), None);
    // Connect: a binary protobuf body is `application/proto`.
    assert_eq!(request.header("content-type"), "application/proto");
    assert_eq!(request.header("connect-protocol-version"), "1");
    // Multi-tenancy and auth as Grafana Cloud takes them.
    assert_eq!(request.header("x-scope-orgid"), "tenant-1");
    assert_eq!(
        request.header("authorization"),
        "Basic dGVuYW50OnMzY3JldA=="
    );

    let push = pyroscope::PushRequest::decode(request.body.as_ref()).expect("a PushRequest");
    assert_eq!(push.series.len(), 2);
    let burn = push
        .series
        .iter()
        .find(|s| label_map(&s.labels)["comm"] == "burn")
        .unwrap();
    let labels = label_map(&burn.labels);
    // As Grafana Alloy: no series per process lifetime.
    assert!(!labels.contains_key("pid"), "{labels:?}");
    // series[].labels: `__name__` is the profile kind, `service_name` the application.
    assert_eq!(labels["__name__"], "process_cpu");
    assert_eq!(labels["service_name"], "burn");
    assert_eq!(labels["hostname"], "testhost");
    assert_eq!(labels["comm"], "burn");
    assert_eq!(labels["exe"], "/usr/bin/burn");
    assert_eq!(labels["__delta__"], "false");
    assert_eq!(labels["pyroscope_spy"], "scorch");
    let names: Vec<&str> = burn.labels.iter().map(|l| l.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "labels sorted by name");

    // series[].samples[]: the raw (gzipped) pprof and a UUID.
    assert_eq!(burn.samples.len(), 1);
    let sample = &burn.samples[0];
    assert_eq!(sample.id.len(), 36);
    assert_eq!(sample.id.matches('-').count(), 4);
    assert!(sample.raw_profile.starts_with(&[0x1f, 0x8b]), "gzipped");
    let decoded = scorch_formats::pprof::decode(&sample.raw_profile).unwrap();
    assert_eq!(
        decoded.time_nanos, 1_700_000_000_250_000_000,
        "dated by the window"
    );
    assert_eq!(decoded.duration_nanos, 10_000_000_000);
    let stacks = folded(&sample.raw_profile);
    assert_eq!(stacks["main;outer;inner"], 40);
    assert_eq!(stacks["main;other"], 2);
}

/// Pyroscope's HTTP API (`POST /ingest`), per its server API reference:
///
/// | parameter | Pyroscope's description | ours |
/// |---|---|---|
/// | `name` | application name (required), tags in braces; for pprof a prefix the server completes with the profile type | `APP{tag=value,…}` |
/// | `from`, `until` | UNIX time profiling started / stopped (required) | window start, end rounded up |
/// | `format` | format of the data (default `folded`) | `pprof` |
/// | `sampleRate` | sample rate in Hz (ignored for pprof) | the sampling frequency |
/// | `spyName` | name of the spy used | `scorch` |
/// | `units`, `aggregationType` | ignored for pprof | not sent |
///
/// The pprof goes in the form file field `profile` of a `multipart/form-data`
/// body; no `sample_type_config`, as our sample types are Go's CPU profile's.
#[test]
fn ingest_follows_pyroscopes_http_api() {
    let server = Server::start(|_, _| Reply::ok());
    let endpoint = endpoint(&format!("{}/pyroscope", server.url()), Protocol::Ingest);
    let mut series = burn_series();
    series[0]
        .0
        .insert("cgroup".into(), "/system.slice/a,b}.service".into());
    series[0].0.insert("team name".into(), " core ".into());
    assert_eq!(
        send_now(&endpoint, &window(1_700_000_000, &series), 1).unwrap(),
        2
    );
    let requests = server.stop();
    assert_eq!(requests.len(), 2, "one request per series");
    let request = requests
        .iter()
        .find(|r| {
            r.query()
                .iter()
                .any(|(k, v)| k == "name" && v.starts_with("burn{"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no burn series in {:?}",
                requests.iter().map(|r| r.uri.clone()).collect::<Vec<_>>()
            )
        });

    assert_eq!(request.method, "POST");
    assert_eq!(
        request.uri.path(),
        "/pyroscope/ingest",
        "under the base URL's path"
    );
    let query = request.query();
    let keys: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["name", "from", "until", "sampleRate", "spyName", "format"]
    );
    let param = |key: &str| query.iter().find(|(k, _)| k == key).unwrap().1.as_str();
    // Tags sorted; `,` and `}` would end a value early, so they became `_`;
    // a key outside [A-Za-z0-9_.] too; values are trimmed as the server would.
    assert_eq!(
        param("name"),
        "burn{cgroup=/system.slice/a_b_.service,comm=burn,exe=/usr/bin/burn,hostname=testhost,team_name=core}"
    );
    assert_eq!(param("from"), "1700000000");
    assert_eq!(
        param("until"),
        "1700000011",
        "the end rounded up to a whole second"
    );
    assert_eq!(param("sampleRate"), "49");
    assert_eq!(param("spyName"), "scorch");
    assert_eq!(param("format"), "pprof");
    // Percent-encoded on the wire: braces, `=` and `/` inside the name.
    let raw = request.uri.query().unwrap();
    assert!(
        raw.starts_with("name=burn%7Bcgroup%3D%2Fsystem.slice%2Fa_b_.service%2C"),
        "{raw}"
    );

    let content_type = request.header("content-type");
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("multipart, not {content_type}"));
    let parts = multipart_parts(&request.body, boundary);
    assert_eq!(parts.len(), 1, "only the profile field");
    let (headers, content) = &parts[0];
    assert!(
        headers.contains("Content-Disposition: form-data; name=\"profile\"; filename="),
        "{headers}"
    );
    let stacks = folded(content);
    assert_eq!(stacks["main;outer;inner"], 40);
    assert_eq!(stacks["main;other"], 2);
}

/// The parts of a multipart body (RFC 2046 §5.1.1): each part's header
/// block and content.
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delimiter = format!("\r\n--{boundary}");
    let mut text = b"\r\n".to_vec();
    text.extend_from_slice(body);
    let mut parts = Vec::new();
    let mut rest = &text[..];
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let first = find(rest, delimiter.as_bytes()).expect("a first boundary");
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            assert_eq!(
                &rest[2..],
                b"\r\n",
                "the body ends after the close delimiter"
            );
            return parts;
        }
        rest = rest.strip_prefix(b"\r\n").expect("CRLF after a boundary");
        let end = find(rest, delimiter.as_bytes()).expect("a closing boundary");
        let part = &rest[..end];
        let split = find(part, b"\r\n\r\n").expect("part headers");
        parts.push((
            String::from_utf8(part[..split].to_vec()).unwrap(),
            part[split + 4..].to_vec(),
        ));
        rest = &rest[end + delimiter.len()..];
    }
}

/// Parca's gRPC API (`parca.profilestore.v1alpha1.ProfileStoreService/
/// WriteRaw`): HTTP/2, `application/grpc`, a length-prefixed
/// `WriteRawRequest`, the outcome in the `grpc-status` trailer.
#[test]
fn parca_writes_raw_over_grpc_and_reads_the_status_trailer() {
    let server = Server::start(|_, _| Reply {
        grpc: Some((0, "")),
        ..Reply::ok()
    });
    let endpoint = endpoint(&server.url(), Protocol::Parca);
    let series = burn_series();
    assert_eq!(
        send_now(&endpoint, &window(1_700_000_000, &series), 1).unwrap(),
        2
    );
    let requests = server.stop();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.version, axum::http::Version::HTTP_2);
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.uri.path(),
        "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw"
    );
    assert_eq!(request.header("content-type"), "application/grpc");
    assert_eq!(request.header("te"), "trailers");
    let body = &request.body;
    assert_eq!(body[0], 0, "not compressed");
    let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    assert_eq!(length, body.len() - 5);
    let write = parca::WriteRawRequest::decode(&body[5..]).expect("a WriteRawRequest");
    assert!(!write.normalized);
    assert_eq!(write.series.len(), 2);
    let burn = write
        .series
        .iter()
        .find(|s| {
            s.labels
                .as_ref()
                .unwrap()
                .labels
                .iter()
                .any(|l| l.name == "comm" && l.value == "burn")
        })
        .unwrap();
    let labels: BTreeMap<&str, &str> = burn
        .labels
        .as_ref()
        .unwrap()
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels["__name__"], "process_cpu");
    assert_eq!(labels["service_name"], "burn");
    assert!(!labels.contains_key("pid"), "{labels:?}");
    assert!(
        !labels.contains_key("__delta__") && !labels.contains_key("pyroscope_spy"),
        "Pyroscope's own labels stay out of Parca: {labels:?}"
    );
    assert_eq!(folded(&burn.samples[0].raw_profile)["main;outer;inner"], 40);
}

#[test]
fn parca_errors_in_grpc_status_are_reported() {
    let server = Server::start(|_, _| Reply {
        grpc: Some((3, "invalid%20labels")),
        ..Reply::ok()
    });
    let series = burn_series();
    let target = endpoint(&server.url(), Protocol::Parca);
    let err = send_now(&target, &window(1_700_000_000, &series), 3).unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err}");
    assert!(
        err.to_string().contains("gRPC status 3: invalid labels"),
        "{err}"
    );
    assert_eq!(server.stop().len(), 1, "INVALID_ARGUMENT is not retried");

    let server = Server::start(|n, _| Reply {
        grpc: Some(if n == 0 { (14, "unavailable") } else { (0, "") }),
        ..Reply::ok()
    });
    let target = endpoint(&server.url(), Protocol::Parca);
    assert_eq!(
        send_now(&target, &window(1_700_000_000, &series), 3).unwrap(),
        2
    );
    assert_eq!(server.stop().len(), 2, "UNAVAILABLE is retried");
}

#[test]
fn one_shot_upload_fails_clearly_when_nobody_listens() {
    let server = Server::start(|_, _| Reply::ok());
    let url = server.url();
    drop(server.stop());
    let series = burn_series();
    let err = send_now(&endpoint(&url, Protocol::Push), &window(1, &series), 3).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::GaveUp { attempts: 3, .. }), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn app_name_templates_name_the_service() {
    let server = Server::start(|_, _| Reply::ok());
    let mut options = UploadOptions::new(server.url());
    options.app_name = Some("shop-{comm}".into());
    let series = burn_series();
    send_now(&Endpoint::new(&options).unwrap(), &window(1, &series), 1).unwrap();
    let requests = server.stop();
    let push = pyroscope::PushRequest::decode(requests[0].body.as_ref()).unwrap();
    let mut services: Vec<&str> = push
        .series
        .iter()
        .map(|s| label_map(&s.labels)["service_name"])
        .collect();
    services.sort();
    assert_eq!(services, ["shop-burn", "shop-sleepy"]);
}
