//! The JSON API over a real store: answers, formats and bad requests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scorch_formats::{FrameKind, Line, Location, Measure, Meta, ProfileBuilder, Sample, Stack};
use scorch_store::{Store, StoreOptions, Window};
use tower::ServiceExt;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn window(start: u64, comm: &str, frames: &[&str], count: u64) -> Window {
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(19),
        ..Meta::default()
    });
    let locations: Vec<usize> = frames
        .iter()
        .enumerate()
        .map(|(i, name)| {
            b.location(Location {
                address: 0x1000 + i as u64,
                mapping: None,
                kind: FrameKind::User,
                lines: vec![Line {
                    function: name.to_string(),
                    file: None,
                    line: None,
                }],
            })
        })
        .collect();
    b.sample(Sample {
        pid: 42,
        tid: None,
        comm: comm.into(),
        user: Stack::Frames(locations.into_iter().rev().collect()),
        kernel: Stack::Absent,
        count,
    });
    Window {
        start_unix_ns: start,
        end_unix_ns: start + 10 * SEC,
        labels: BTreeMap::from([
            ("comm".to_string(), comm.to_string()),
            ("host".to_string(), "h1".to_string()),
        ]),
        profile: b.build(),
    }
}

fn store() -> Arc<Store> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("scorch-web-api-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(
        &dir,
        StoreOptions::new(Duration::from_secs(7 * 86400), 1 << 30),
    )
    .unwrap();
    store
        .write_windows(&[
            window(T0, "app", &["main", "work"], 6),
            window(T0 + 10 * SEC, "app", &["main", "idle"], 2),
            window(T0 + 20 * SEC, "db", &["main", "query"], 5),
        ])
        .unwrap();
    Arc::new(store)
}

async fn get(store: &Arc<Store>, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let response = scorch_web::router(Arc::clone(store), None, None)
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, content_type, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn profile_json_merges_the_range_and_filters() {
    let store = store();
    let range = format!("from={T0}&until={}", T0 + 60 * SEC);
    let (status, _, body) = get(&store, &format!("/api/profile?{range}")).await;
    assert_eq!(status, StatusCode::OK);
    let tree = json(&body);
    assert_eq!(tree["meta"]["samples"], 13);
    let names: Vec<&str> = tree["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for name in ["all", "app", "db", "main", "work", "idle", "query"] {
        assert!(names.contains(&name), "{name} missing: {names:?}");
    }
    assert_eq!(tree["nodes"]["total"][0], 13);

    let (_, _, body) = get(&store, &format!("/api/profile?{range}&label=comm:db")).await;
    assert_eq!(json(&body)["meta"]["samples"], 5);
    // Only the first window.
    let (_, _, body) = get(
        &store,
        &format!("/api/profile?from={T0}&until={}", T0 + 5 * SEC),
    )
    .await;
    assert_eq!(json(&body)["meta"]["samples"], 6);
}

#[tokio::test]
async fn profile_exports_folded_pprof_and_svg() {
    let store = store();
    let range = format!("from={T0}&until={}&label=comm:app", T0 + 60 * SEC);
    let (status, content_type, body) =
        get(&store, &format!("/api/profile?{range}&format=folded")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "app;main;idle 2\napp;main;work 6\n"
    );

    let (_, _, body) = get(&store, &format!("/api/profile?{range}&format=pprof")).await;
    let decoded = scorch_formats::pprof::decode(&body).unwrap();
    let total: i64 = scorch_formats::pprof::stacks(&decoded)
        .unwrap()
        .iter()
        .map(|(_, v)| v[0])
        .sum();
    assert_eq!(total, 8);

    let (_, content_type, body) = get(&store, &format!("/api/profile?{range}&format=svg")).await;
    assert_eq!(content_type, "image/svg+xml");
    assert!(String::from_utf8(body).unwrap().contains("work"));
}

#[tokio::test]
async fn timeline_and_labels() {
    let store = store();
    let uri = format!(
        "/api/timeline?from={T0}&until={}&step={}",
        T0 + 30 * SEC,
        10 * SEC
    );
    let (status, _, body) = get(&store, &uri).await;
    assert_eq!(status, StatusCode::OK);
    let timeline = json(&body);
    assert_eq!(timeline["step"], 10 * SEC);
    let samples: Vec<u64> = timeline["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .collect();
    assert_eq!(samples.iter().sum::<u64>(), 13);
    assert!(samples.contains(&6) && samples.contains(&5), "{samples:?}");

    let (_, _, body) = get(&store, "/api/labels").await;
    assert_eq!(json(&body)["keys"], serde_json::json!(["comm", "host"]));
    let uri = format!(
        "/api/label-values?key=comm&from={T0}&until={}",
        T0 + 60 * SEC
    );
    let (_, _, body) = get(&store, &uri).await;
    assert_eq!(json(&body)["values"], serde_json::json!(["app", "db"]));
}

#[tokio::test]
async fn bad_requests_get_a_4xx_with_a_message() {
    let store = store();
    let cases = [
        ("/api/profile?from=10&until=5", "must be before"),
        ("/api/profile?from=x", "`from`"),
        ("/api/profile?label=nope:1", "unknown label `nope`"),
        ("/api/profile?format=xml", "unknown format"),
        ("/api/timeline?step=0", "`step`"),
        ("/api/timeline?from=0&until=100000000000&step=1", "buckets"),
        ("/api/label-values", "`key` is missing"),
        ("/api/profile?label=%ZZ", "key:value"),
        ("/api/profile?measure=wall", "unknown measure `wall`"),
        (
            "/api/profile?measure=off-cpu&format=pprof&label=x:1",
            "unknown label",
        ),
        ("/api/timeline?measure=offcpu", "unknown measure"),
        ("/api/label-values?key=comm&measure=", "unknown measure"),
    ];
    for (uri, message) in cases {
        let (status, content_type, body) = get(&store, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(content_type.starts_with("application/json"), "{uri}");
        let error = json(&body)["error"].as_str().unwrap().to_string();
        assert!(error.contains(message), "{uri}: {error}");
    }
}

/// The store of [`store`] plus off-CPU windows of the same series.
fn store_with_off_cpu() -> Arc<Store> {
    let store = store();
    let off = |start, frames: &[&str], ns| {
        let mut w = window(start, "app", frames, ns);
        w.profile.meta.measure = Measure::OffCpuNanoseconds;
        w.profile.meta.frequency_hz = None;
        w
    };
    store
        .write_windows(&[
            off(T0, &["main", "sleep"], 3 * SEC),
            off(T0 + 10 * SEC, &["main", "read"], SEC / 2),
        ])
        .unwrap();
    store
}

#[tokio::test]
async fn on_and_off_cpu_are_asked_for_apart_and_never_summed() {
    let store = store_with_off_cpu();
    let range = format!("from={T0}&until={}", T0 + 60 * SEC);
    let (_, _, body) = get(&store, &format!("/api/profile?{range}")).await;
    assert_eq!(json(&body)["meta"]["samples"], 13);
    let (_, _, body) = get(&store, &format!("/api/profile?{range}&measure=cpu")).await;
    assert_eq!(json(&body)["meta"]["samples"], 13);
    // Asked twice: the second answer comes from the cache, still off-CPU.
    for _ in 0..2 {
        let (status, _, body) = get(&store, &format!("/api/profile?{range}&measure=off-cpu")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json(&body)["meta"]["samples"], 3 * SEC + SEC / 2);
    }
    let (_, _, body) = get(&store, &format!("/api/profile?{range}")).await;
    assert_eq!(json(&body)["meta"]["samples"], 13);

    let (_, _, body) = get(
        &store,
        &format!("/api/profile?{range}&measure=off-cpu&format=folded&label=comm:app"),
    )
    .await;
    // Folded off-CPU counts are microseconds, as offcputime writes them.
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "app;main;read 500000\napp;main;sleep 3000000\n"
    );
    let (_, _, body) = get(
        &store,
        &format!("/api/profile?{range}&measure=off-cpu&format=pprof"),
    )
    .await;
    let decoded = scorch_formats::pprof::decode(&body).unwrap();
    let types: Vec<(&str, &str)> = decoded
        .sample_type
        .iter()
        .map(|t| {
            (
                decoded.string_table[t.r#type as usize].as_str(),
                decoded.string_table[t.unit as usize].as_str(),
            )
        })
        .collect();
    assert_eq!(types, [("off-cpu", "nanoseconds")]);

    let uri = format!(
        "/api/timeline?from={T0}&until={}&step={}&measure=off-cpu",
        T0 + 30 * SEC,
        10 * SEC
    );
    let (_, _, body) = get(&store, &uri).await;
    let buckets: Vec<u64> = json(&body)["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .collect();
    assert_eq!(buckets, [3 * SEC, SEC / 2, 0]);
}

#[tokio::test]
async fn serves_every_file_of_the_page() {
    let store = store();
    let (status, content_type, body) = get(&store, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"));
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("<title>scorch</title>"));
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("page");
    for entry in std::fs::read_dir(page).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let (status, _, body) = get(&store, &format!("/{name}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{name} is not embedded: add it to web/src/page.rs"
        );
        let source = std::fs::read(&path).unwrap();
        if name == "index.html" {
            // Served loading the bundle instead of the modules: the same
            // lines otherwise.
            let source = String::from_utf8(source).unwrap();
            let expected: Vec<String> = source
                .lines()
                .filter(|l| !l.starts_with("<link rel=\"modulepreload\""))
                .map(|l| l.replace("src=\"app.js\"", "src=\"bundle.js\""))
                .collect();
            let served = String::from_utf8(body).unwrap();
            assert_eq!(served.lines().collect::<Vec<_>>(), expected);
            assert!(served.contains("<script type=\"module\" src=\"bundle.js\"></script>"));
        } else {
            assert_eq!(body, source, "{name} differs from web/page");
        }
    }
    // The bundle: every module of the page, in one script with no imports.
    let (status, content_type, body) = get(&store, "/bundle.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/javascript"));
    let bundle = String::from_utf8(body).unwrap();
    for module in [
        "api", "app", "diff", "flame", "format", "render", "sandwich", "search", "table",
        "timeline", "tree", "urlstate",
    ] {
        assert!(
            bundle.contains(&format!("// ---- {module}.js\n")),
            "{module}.js is in the bundle"
        );
    }
    assert!(!bundle
        .lines()
        .any(|l| l.starts_with("import ") || l.starts_with("export ")));
    let (status, _, _) = get(&store, "/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_guards_every_request() {
    let store = store();
    let app = scorch_web::router(Arc::clone(&store), None, Some("s3cret".into()));
    let status_of = |request: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(request).await.unwrap().status() }
    };
    let plain = Request::get("/api/labels").body(Body::empty()).unwrap();
    assert_eq!(status_of(plain).await, StatusCode::UNAUTHORIZED);
    let wrong = Request::get("/")
        .header("authorization", "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status_of(wrong).await, StatusCode::UNAUTHORIZED);
    let bearer = Request::get("/api/labels")
        .header("authorization", "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status_of(bearer).await, StatusCode::OK);
    let query = Request::get("/?token=s3cret").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(query).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The page's own requests then carry the cookie.
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let by_cookie = Request::get("/api/labels")
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(status_of(by_cookie).await, StatusCode::OK);
}
