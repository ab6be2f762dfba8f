//! The answer cache and the pruned first-paint tree, through the API over a
//! real store: repeated requests are answered from the cache, a window
//! written into (or deleted from) the range invalidates the answer, the
//! cache keeps to its budget, `min_share` prunes honestly, concurrent
//! requests build once, and the answers of a many-window range stay
//! byte-identical to `tests/golden/` (rewrite with `SCORCH_BLESS=1`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use scorch_formats::flame::FlameTree;
use scorch_formats::{FrameKind, Line, Location, Mapping, Meta, ProfileBuilder, Sample, Stack};
use scorch_store::{Query, Store, StoreOptions, Window};
use scorch_web::{IngestMode, CACHE_HEADER};
use tower::ServiceExt;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;
const RETENTION: Duration = Duration::from_secs(7 * 86400);

/// A window of `comm` at `start` with one sample per `(leaf, count)` under
/// `main`.
fn window(start: u64, comm: &str, leaves: &[(&str, u64)]) -> Window {
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(19),
        ..Meta::default()
    });
    let mut location = |name: &str| {
        b.location(Location {
            address: name.len() as u64,
            mapping: None,
            kind: FrameKind::User,
            lines: vec![Line {
                function: name.to_string(),
                file: None,
                line: None,
            }],
        })
    };
    let stacks: Vec<(Vec<usize>, u64)> = leaves
        .iter()
        .map(|&(leaf, count)| (vec![location(leaf), location("main")], count))
        .collect();
    for (user, count) in stacks {
        b.sample(Sample {
            pid: 42,
            tid: None,
            comm: comm.into(),
            user: Stack::Frames(user),
            kernel: Stack::Absent,
            count,
        });
    }
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
    let dir = std::env::temp_dir().join(format!("scorch-web-answers-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, StoreOptions::new(RETENTION, 1 << 30)).unwrap();
    store
        .write_windows(&[
            window(T0, "app", &[("work", 6)]),
            window(T0 + 10 * SEC, "app", &[("idle", 2)]),
            window(T0 + 20 * SEC, "db", &[("query", 5)]),
        ])
        .unwrap();
    Arc::new(store)
}

/// A router over `store` whose answer cache holds at most `cache_bytes`.
fn router(store: &Arc<Store>, cache_bytes: u64) -> Router {
    let off = IngestMode::Refuse("no ingest in this test".into());
    scorch_web::router_with_ingest(Arc::clone(store), None, None, off, cache_bytes)
}

struct Answer {
    status: StatusCode,
    /// The `x-scorch-cache` header, if any.
    cache: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn samples(&self) -> u64 {
        self.json()["meta"]["samples"].as_u64().unwrap()
    }
}

async fn get(app: &Router, uri: &str) -> Answer {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get(CACHE_HEADER)
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        cache,
        body: body.to_vec(),
    }
}

fn range() -> String {
    format!("from={T0}&until={}", T0 + 60 * SEC)
}

#[tokio::test]
async fn repeated_requests_are_answered_from_the_cache() {
    let store = store();
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    let url = format!("/api/profile?{}&format=json", range());
    let first = get(&app, &url).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.cache.as_deref(), Some("miss"));
    assert_eq!(first.samples(), 13);
    let again = get(&app, &url).await;
    assert_eq!(again.cache.as_deref(), Some("hit"));
    assert_eq!(again.body, first.body, "the cached answer is the same");
    // The same query written differently is the same answer.
    let filtered = format!("/api/profile?{}&label=host:h1&label=comm:app", range());
    assert_eq!(get(&app, &filtered).await.cache.as_deref(), Some("miss"));
    let reordered = format!("/api/profile?label=comm:app&{}&label=host:h1", range());
    let answer = get(&app, &reordered).await;
    assert_eq!(answer.cache.as_deref(), Some("hit"));
    assert_eq!(answer.samples(), 8);
    // A pruned answer is made from the cached tree.
    let pruned = get(&app, &format!("{url}&min_share=0.5")).await;
    assert_eq!(pruned.cache.as_deref(), Some("hit"));
    // Exports are not cached answers.
    let folded = get(&app, &format!("/api/profile?{}&format=folded", range())).await;
    assert_eq!(folded.status, StatusCode::OK);
    assert_eq!(folded.cache, None);
}

#[tokio::test]
async fn a_first_paint_is_built_pruned_and_matches_the_pruned_whole_tree() {
    let store = store();
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    let url = format!("/api/profile?{}&format=json", range());
    // Nothing cached: built pruned, and kept under its share.
    let first = get(&app, &format!("{url}&min_share=0.2")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.cache.as_deref(), Some("miss"));
    let again = get(&app, &format!("{url}&min_share=0.2")).await;
    assert_eq!(again.cache.as_deref(), Some("hit"));
    assert_eq!(again.body, first.body);
    let other = get(&app, &format!("{url}&min_share=0.3")).await;
    assert_eq!(other.cache.as_deref(), Some("miss"), "another share");
    // The whole tree is an answer of its own; pruned, it gives the same.
    let whole = get(&app, &url).await;
    assert_eq!(whole.cache.as_deref(), Some("miss"));
    assert_eq!(whole.json()["meta"]["pruned"], 0);
    assert_eq!(whole.samples(), first.samples());
    for (share, built) in [("0.2", &first), ("0.3", &other)] {
        let again = get(&app, &format!("{url}&min_share={share}")).await;
        assert_eq!(again.cache.as_deref(), Some("hit"));
        assert_eq!(again.body, built.body, "min_share={share}");
    }
    assert!(first.json()["meta"]["pruned"].as_u64().unwrap() > 0);
    // A share never asked for, with the whole tree held: pruned from it,
    // the same bytes as the store's pruned build.
    let query = Query::range(T0, T0 + 60 * SEC);
    for share in [0.25, 0.0] {
        let from_whole = get(&app, &format!("{url}&min_share={share}")).await;
        assert_eq!(from_whole.cache.as_deref(), Some("hit"));
        let (built, _) = store
            .pruned_flame_tree_with_window_set(&query, share)
            .unwrap();
        assert_eq!(
            from_whole.body,
            serde_json::to_vec(&built).unwrap(),
            "min_share={share}"
        );
    }
    // Nothing in the range: an empty pruned tree.
    let empty = format!(
        "/api/profile?from={}&until={}",
        T0 + 3600 * SEC,
        T0 + 3660 * SEC
    );
    let none = get(&app, &format!("{empty}&min_share=0.01")).await;
    assert_eq!((none.status, none.samples()), (StatusCode::OK, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_one_answer_build_it_once() {
    let store = store();
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    let url = format!("/api/profile?{}&format=json", range());
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (app, url) = (app.clone(), url.clone());
            tokio::spawn(async move { get(&app, &url).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    let sources: Vec<&str> = answers
        .iter()
        .map(|a| a.cache.as_deref().unwrap())
        .collect();
    // Built exactly once however the requests overlapped: every other one
    // waited for that build (`shared`) or came after it (`hit`).
    assert_eq!(
        sources.iter().filter(|&&s| s == "miss").count(),
        1,
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .all(|s| ["miss", "shared", "hit"].contains(s)),
        "{sources:?}"
    );
    assert!(answers.iter().all(|a| a.body == answers[0].body));
    assert_eq!(answers[0].samples(), 13);
}

#[tokio::test]
async fn a_window_written_or_deleted_in_the_range_invalidates_the_answer() {
    let store = store();
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    let url = format!("/api/profile?{}", range());
    assert_eq!(get(&app, &url).await.samples(), 13);
    assert_eq!(get(&app, &url).await.cache.as_deref(), Some("hit"));

    // A window outside the range changes nothing.
    store
        .write_window(&window(T0 + 3600 * SEC, "app", &[("later", 100)]))
        .unwrap();
    assert_eq!(get(&app, &url).await.cache.as_deref(), Some("hit"));

    // A window inside it does.
    store
        .write_window(&window(T0 + 30 * SEC, "app", &[("new", 4)]))
        .unwrap();
    let answer = get(&app, &url).await;
    assert_eq!(answer.cache.as_deref(), Some("miss"));
    assert_eq!(answer.samples(), 17);
    assert!(answer.json()["names"]
        .as_array()
        .unwrap()
        .contains(&"new".into()));
    assert_eq!(get(&app, &url).await.cache.as_deref(), Some("hit"));

    // Retention deleting the oldest window (6 samples) does too.
    let now = T0 + RETENTION.as_nanos() as u64 + 5 * SEC;
    let report = store.enforce_retention(now).unwrap();
    assert_eq!(report.expired_windows, 1, "{report:?}");
    let answer = get(&app, &url).await;
    assert_eq!(answer.cache.as_deref(), Some("miss"));
    assert_eq!(answer.samples(), 11);
}

#[tokio::test]
async fn the_cache_keeps_to_its_budget() {
    let store = store();
    let url = format!("/api/profile?{}", range());
    // Off: every answer is built.
    let off = router(&store, 0);
    for _ in 0..3 {
        let answer = get(&off, &url).await;
        assert_eq!(answer.cache.as_deref(), Some("miss"));
        assert_eq!(answer.samples(), 13);
    }
    // A budget smaller than one tree: nothing is kept, answers stay right.
    let tiny = router(&store, 200);
    for _ in 0..3 {
        assert_eq!(get(&tiny, &url).await.cache.as_deref(), Some("miss"));
    }
    // Room for the larger of two trees, not for both: the second range
    // pushes the first out.
    let other = format!("/api/profile?from={T0}&until={}", T0 + 15 * SEC);
    let size = |until: u64| {
        let query = Query::range(T0, until);
        let tree = FlameTree::from_profile(&store.query(&query).unwrap(), T0, until);
        scorch_web::answer_bytes(&tree)
    };
    let (a, b) = (size(T0 + 60 * SEC), size(T0 + 15 * SEC));
    let one = router(&store, a.max(b) + a.min(b) / 2);
    assert_eq!(get(&one, &url).await.cache.as_deref(), Some("miss"));
    assert_eq!(get(&one, &url).await.cache.as_deref(), Some("hit"));
    assert_eq!(get(&one, &other).await.cache.as_deref(), Some("miss"));
    assert_eq!(get(&one, &other).await.cache.as_deref(), Some("hit"));
    let back = get(&one, &url).await;
    assert_eq!(back.cache.as_deref(), Some("miss"));
    assert_eq!(back.samples(), 13);
}

#[tokio::test]
async fn min_share_prunes_small_frames_into_one_node_per_parent() {
    let store = store();
    let leaves: Vec<(String, u64)> = (0..50).map(|i| (format!("small_{i}"), 1)).collect();
    let wide = format!("{}&label=comm:wide", range());
    let mut all: Vec<(&str, u64)> = leaves.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    all.push(("large", 150));
    store
        .write_window(&window(T0 + 40 * SEC, "wide", &all))
        .unwrap();
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    let whole = get(&app, &format!("/api/profile?{wide}")).await.json();
    let pruned = get(&app, &format!("/api/profile?{wide}&min_share=0.01")).await;
    assert_eq!(pruned.status, StatusCode::OK);
    let pruned = pruned.json();
    // 200 samples: frames under 2 samples go; that is the 50 small ones.
    assert_eq!(whole["meta"]["samples"], 200);
    assert_eq!(pruned["meta"]["samples"], 200);
    assert_eq!(whole["meta"]["pruned"], 0);
    assert_eq!(pruned["meta"]["pruned"], 50);
    let names = pruned["names"].as_array().unwrap();
    assert!(!names
        .iter()
        .any(|n| n.as_str().unwrap().starts_with("small_")));
    let nodes = &pruned["nodes"];
    let kinds = nodes["kind"].as_array().unwrap();
    let other: Vec<usize> = (0..kinds.len()).filter(|&i| kinds[i] == 4).collect();
    assert_eq!(other.len(), 1, "one node for the left-out frames");
    let i = other[0];
    assert_eq!(
        names[nodes["name"][i].as_u64().unwrap() as usize],
        "[smaller frames]"
    );
    assert_eq!(
        (&nodes["total"][i], &nodes["self"][i]),
        (&50.into(), &50.into())
    );
    let parent = nodes["parent"][i].as_u64().unwrap() as usize;
    assert_eq!(
        names[nodes["name"][parent].as_u64().unwrap() as usize],
        "main"
    );
    assert_eq!(nodes["total"][0], 200, "totals are preserved");
    // Everything else is as in the whole tree: all, wide, main, large.
    assert_eq!(nodes["total"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn min_share_must_be_a_fraction_of_a_json_tree() {
    let store = store();
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    for bad in ["2", "-0.1", "abc", "NaN", ""] {
        let answer = get(&app, &format!("/api/profile?{}&min_share={bad}", range())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "min_share={bad}");
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains("`min_share`"), "{error}");
    }
    let answer = get(
        &app,
        &format!("/api/profile?{}&format=folded&min_share=0.1", range()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("format=json"));
}

/// A small deterministic random number generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `n` windows of three processes drawing samples from one pool of stacks:
/// user frames in two mappings (some with an inlined function), kernel and
/// JIT frames, missed stacks.
fn many_windows(n: u64) -> Vec<Window> {
    let mut rng = Rng(0x5eed_1234_abcd);
    let pool: Vec<(Vec<u32>, Option<Vec<u32>>)> = (0..150)
        .map(|_| {
            let depth = 2 + rng.below(12);
            let user = (0..depth).map(|_| rng.below(400) as u32).collect();
            let kernel = (rng.below(3) == 0).then(|| {
                (0..1 + rng.below(5))
                    .map(|_| rng.below(60) as u32)
                    .collect()
            });
            (user, kernel)
        })
        .collect();
    (0..n)
        .map(|w| {
            let mut b = ProfileBuilder::new(Meta {
                frequency_hz: Some(99),
                ..Meta::default()
            });
            let libs = ["/usr/bin/app", "/usr/lib/libc.so.6"].map(|file| {
                b.mapping(Mapping {
                    start: 0x1000,
                    limit: 0x9000,
                    offset: 0,
                    file: file.to_string(),
                    build_id: Some(format!("{:x}", file.len())),
                })
            });
            let comm = ["app", "db", "worker"][(w % 3) as usize];
            for _ in 0..40 {
                let (user, kernel) = &pool[rng.below(pool.len())];
                let mut frame = |f: u32, kind: FrameKind| {
                    let mut lines = vec![Line {
                        function: format!("fn_{f}"),
                        file: Some(format!("src/m{}.rs", f % 7)),
                        line: Some(f),
                    }];
                    if kind == FrameKind::User && f.is_multiple_of(5) {
                        lines.insert(
                            0,
                            Line {
                                function: format!("inlined_{f}"),
                                file: None,
                                line: None,
                            },
                        );
                    }
                    b.location(Location {
                        address: u64::from(f) * 16,
                        mapping: (kind == FrameKind::User).then(|| libs[(f % 2) as usize]),
                        kind,
                        lines,
                    })
                };
                let user_kind = if user[0].is_multiple_of(9) {
                    FrameKind::Jit
                } else {
                    FrameKind::User
                };
                let user = user.iter().map(|&f| frame(f, user_kind)).collect();
                let kernel = match kernel {
                    Some(k) => Stack::Frames(
                        k.iter()
                            .map(|&f| frame(1000 + f, FrameKind::Kernel))
                            .collect(),
                    ),
                    None if rng.below(10) == 0 => Stack::Missed,
                    None => Stack::Absent,
                };
                b.sample(Sample {
                    pid: 100 + (w % 3) as u32,
                    tid: None,
                    comm: comm.into(),
                    user: Stack::Frames(user),
                    kernel,
                    count: 1 + rng.below(5) as u64,
                });
            }
            Window {
                start_unix_ns: T0 + w * 10 * SEC,
                end_unix_ns: T0 + (w + 1) * 10 * SEC,
                labels: BTreeMap::from([
                    ("comm".to_string(), comm.to_string()),
                    ("host".to_string(), "h1".to_string()),
                ]),
                profile: b.build(),
            }
        })
        .collect()
}

/// Compares `actual` with `tests/golden/NAME`, or rewrites the file when
/// `SCORCH_BLESS=1`.
fn golden(name: &str, actual: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("SCORCH_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with SCORCH_BLESS=1",
            path.display()
        )
    });
    if expected != actual {
        let at = expected
            .iter()
            .zip(actual)
            .position(|(e, a)| e != a)
            .unwrap_or(expected.len().min(actual.len()));
        panic!(
            "{} differs from the answer at byte {at} (lengths {} and {}); if the change \
             is deliberate, rerun with SCORCH_BLESS=1 and review the diff",
            path.display(),
            expected.len(),
            actual.len()
        );
    }
}

#[tokio::test]
async fn the_answers_of_many_windows_stay_byte_identical() {
    let dir = std::env::temp_dir().join(format!("scorch-web-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, StoreOptions::new(RETENTION, 1 << 30)).unwrap();
    store.write_windows(&many_windows(240)).unwrap();
    let store = Arc::new(store);
    let app = router(&store, scorch_web::DEFAULT_ANSWER_CACHE_BYTES);
    let range = format!("from={T0}&until={}", T0 + 2400 * SEC);
    for (name, query) in [
        ("many-windows.json", "format=json"),
        ("many-windows-pruned.json", "format=json&min_share=0.004"),
        ("many-windows-worker.json", "format=json&label=comm:worker"),
        ("many-windows.folded", "format=folded"),
    ] {
        let answer = get(&app, &format!("/api/profile?{range}&{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");
        golden(name, &answer.body);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
