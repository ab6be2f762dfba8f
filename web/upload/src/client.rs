//! One attempt: send a request and classify the answer.
//!
//! A 2xx delivers (for gRPC, only with `grpc-status: 0`). Connection
//! failures, timeouts, 408, 429 and 5xx may pass later: they are retried,
//! 429 and 503 after the server's `Retry-After` when it gives one; a 500
//! (or gRPC INTERNAL/UNKNOWN) is the server failing on these very entries,
//! which the sender tries a bounded number of times. 501 (not implemented)
//! cannot pass later. A 413 (or gRPC's "larger than max") asks for smaller
//! requests. 401/403 (gRPC UNAUTHENTICATED/PERMISSION_DENIED) are wrong
//! credentials: the entries wait until they are fixed. Any other 4xx (bad
//! labels) would fail again: the entries are dropped and the reason logged. Redirects are not
//! followed (a redirected POST may lose its body): the log names the target.

use std::time::{Duration, SystemTime};

use http_body_util::BodyExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;

use crate::config::{Endpoint, Protocol};
use crate::entry::Entry;
use crate::protocol::{self, parca};
use crate::retry::parse_retry_after;
use crate::Error;

/// Most bytes of an error response kept for the log.
const MAX_ERROR_BODY: usize = 512;
/// Longest wait for a TCP/TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server stored the entries.
    Delivered,
    /// Try again, after `after` if the server said so.
    Retry {
        /// What went wrong.
        reason: String,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// The server answered with an internal error (HTTP 500, gRPC
    /// INTERNAL/UNKNOWN): worth retrying, but perhaps never for these entries.
    ServerError(String),
    /// The server refused the credentials (401, 403): keep the entries.
    Unauthorized(String),
    /// The server refused the entries for good.
    Rejected(String),
    /// The request was too large (413): fewer entries may pass.
    TooLarge(String),
}

/// An HTTP client bound to one endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
}

impl Client {
    /// A client for `endpoint` (HTTP/2 for Parca, negotiated by TLS or assumed in clear).
    pub fn new(endpoint: Endpoint) -> Result<Client, Error> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("scorch/", env!("CARGO_PKG_VERSION")))
            .default_headers(endpoint.headers.clone())
            // A redirected POST may lose its body or method: say where to go instead.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(endpoint.timeout))
            .timeout(endpoint.timeout);
        if endpoint.protocol == Protocol::Parca && endpoint.base.scheme() == "http" {
            builder = builder.http2_prior_knowledge();
        }
        let http = builder.build().map_err(|e| Error::Client(e.to_string()))?;
        Ok(Client { http, endpoint })
    }

    /// The endpoint's settings.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `entries` once.
    pub async fn send(&self, entries: &[Entry]) -> Outcome {
        let request = protocol::request(self.endpoint.protocol, entries);
        let url = self.endpoint.url(&request.path);
        let mut builder = self
            .http
            .post(url)
            .header(CONTENT_TYPE, request.content_type)
            .body(request.body);
        match self.endpoint.protocol {
            Protocol::Push => builder = builder.header("Connect-Protocol-Version", "1"),
            Protocol::Parca => builder = builder.header("TE", "trailers"),
            Protocol::Ingest => {}
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(err) => {
                return Outcome::Retry {
                    reason: describe(&err),
                    after: None,
                }
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if !status.is_success() {
            let body = read_limited(response).await;
            return classify_status(status, &headers, &body);
        }
        if self.endpoint.protocol == Protocol::Parca {
            return grpc_outcome(response).await;
        }
        // Read the (small) answer so the connection can be reused.
        let _ = read_limited(response).await;
        Outcome::Delivered
    }
}

/// The outcome of an HTTP error status.
fn classify_status(status: StatusCode, headers: &HeaderMap, body: &str) -> Outcome {
    let reason = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    let code = status.as_u16();
    if status.is_redirection() {
        let to = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("elsewhere");
        return Outcome::Rejected(format!(
            "HTTP {status}: the server redirects to {to}; give that URL to --upload"
        ));
    }
    if code == 401 || code == 403 {
        return Outcome::Unauthorized(reason);
    }
    if code == 500 {
        return Outcome::ServerError(reason);
    }
    if code == 408 || code == 429 || (status.is_server_error() && code != 501) {
        let after = if code == 429 || code == 503 {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        } else {
            None
        };
        Outcome::Retry { reason, after }
    } else if code == 413 {
        Outcome::TooLarge(reason)
    } else {
        Outcome::Rejected(reason)
    }
}

/// The outcome of a gRPC call that got HTTP 200: its `grpc-status`.
async fn grpc_outcome(response: reqwest::Response) -> Outcome {
    let response: http::Response<reqwest::Body> = response.into();
    let (parts, mut body) = response.into_parts();
    let mut status = grpc_status(&parts.headers);
    let mut read = 0usize;
    while status.is_none() {
        match body.frame().await {
            Some(Ok(frame)) => match frame.into_trailers() {
                Ok(trailers) => status = grpc_status(&trailers),
                Err(data) => {
                    read += data.into_data().map(|d| d.len()).unwrap_or(0);
                    if read > 1 << 20 {
                        return Outcome::Rejected("the gRPC answer is over 1 MiB".into());
                    }
                }
            },
            Some(Err(err)) => {
                return Outcome::Retry {
                    reason: format!("reading the gRPC answer: {err}"),
                    after: None,
                }
            }
            None => break,
        }
    }
    match status {
        Some((0, _)) => Outcome::Delivered,
        Some((code, message)) => {
            let reason = format!("gRPC status {code}: {message}");
            parca::outcome(code, &message, reason)
        }
        None => Outcome::Retry {
            reason: "the gRPC answer has no grpc-status".into(),
            after: None,
        },
    }
}

/// `grpc-status` and `grpc-message` from headers or trailers.
fn grpc_status(headers: &HeaderMap) -> Option<(u32, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| {
            // gRPC percent-encodes the message.
            percent_encoding::percent_decode_str(m)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some((code, message))
}

/// Up to [`MAX_ERROR_BODY`] bytes of the body, as text on one line.
async fn read_limited(response: reqwest::Response) -> String {
    let response: http::Response<reqwest::Body> = response.into();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ERROR_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    bytes.truncate(MAX_ERROR_BODY);
    String::from_utf8_lossy(&bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A transport error with its causes, e.g. "connection refused".
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_are_classified() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        headers.insert(LOCATION, HeaderValue::from_static("https://h/"));
        let retry = |code: u16| classify_status(StatusCode::from_u16(code).unwrap(), &headers, "x");
        assert_eq!(
            retry(429),
            Outcome::Retry {
                reason: "HTTP 429 Too Many Requests: x".into(),
                after: Some(Duration::from_secs(3))
            }
        );
        assert!(matches!(retry(503), Outcome::Retry { after: Some(_), .. }));
        assert!(matches!(retry(408), Outcome::Retry { after: None, .. }));
        assert!(matches!(retry(413), Outcome::TooLarge(_)));
        let Outcome::Rejected(reason) = retry(308) else {
            panic!("a redirect is not followed")
        };
        assert!(reason.contains("redirects to https://h/"), "{reason}");
        for code in [400, 404, 422, 501] {
            assert!(matches!(retry(code), Outcome::Rejected(_)), "{code}");
        }
        for code in [401, 403] {
            assert!(matches!(retry(code), Outcome::Unauthorized(_)), "{code}");
        }
        assert!(matches!(retry(500), Outcome::ServerError(_)));
        assert!(matches!(retry(502), Outcome::Retry { after: None, .. }));
    }

    #[test]
    fn grpc_status_and_message() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "3".parse().unwrap());
        headers.insert("grpc-message", "bad%20labels".parse().unwrap());
        assert_eq!(grpc_status(&headers), Some((3, "bad labels".into())));
    }
}
