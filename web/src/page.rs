//! The flame-graph page, embedded in the binary: no files to install, no
//! external request. The files are the ones in `web/page/`, except that
//! the page loads its modules as one script, `bundle.js`, which the build
//! script makes from them together with the `index.html` that loads it
//! (see `bundle`). The module files are still served, for debugging.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Every file of the page: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/api.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/app.js"),
    ),
    (
        "boot.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/boot.js"),
    ),
    (
        "diff.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/diff.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../page/favicon.svg"),
    ),
    (
        "flame.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/flame.js"),
    ),
    (
        "format.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/format.js"),
    ),
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/index.html")),
    ),
    (
        "bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/bundle.js")),
    ),
    (
        "render.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/render.js"),
    ),
    (
        "sandwich.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/sandwich.js"),
    ),
    (
        "search.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/search.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../page/style.css"),
    ),
    (
        "table.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/table.js"),
    ),
    (
        "timeline.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/timeline.js"),
    ),
    (
        "tree.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/tree.js"),
    ),
    (
        "urlstate.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../page/urlstate.js"),
    ),
];

/// `GET /`: the page.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /FILE`: one of the page's files.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
