//! Optional bearer-token authentication for every request.
//!
//! With a token configured, a request must carry `Authorization: Bearer
//! TOKEN` (scripts, Pyroscope SDKs' auth token, Alloy's `bearer_token`),
//! `Authorization: Basic` with the token as the password, any user (clients
//! that only speak basic auth), or `?token=TOKEN` (a browser opening the
//! page: the answer sets an HttpOnly cookie so the page's own requests
//! carry it too); anything else gets a 401.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;

/// The cookie that carries the token for the page's own requests.
const COOKIE: &str = "scorch_token";

/// Lets a request through only with the right token.
pub(crate) async fn require_token(
    State(token): State<std::sync::Arc<str>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .map(str::to_string)
                .or_else(|| v.strip_prefix("Basic ").and_then(basic_password))
        });
    let from_query = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let from_cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        });
    let by_query = from_query
        .as_deref()
        .is_some_and(|q| constant_time_eq(q.as_bytes(), token.as_bytes()));
    let given = from_header
        .or(from_query)
        .or(from_cookie)
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        let mut response = next.run(request).await;
        if by_query {
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            if let Ok(value) = cookie.parse() {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Ok(response)
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "this server needs a token: send `Authorization: Bearer TOKEN` (or basic \
                      auth with the token as the password), or add `?token=TOKEN`"
                .into(),
        })
    }
}

/// The password of HTTP basic credentials (`base64(user:password)`).
fn basic_password(credentials: &str) -> Option<String> {
    let decoded = scorch_formats::push::decode_base64(credentials.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        // base64("alloy:s3cret"), base64("s3cret"), base64(":s3cret")
        assert_eq!(
            basic_password("YWxsb3k6czNjcmV0").as_deref(),
            Some("s3cret")
        );
        assert_eq!(basic_password("czNjcmV0"), None);
        assert_eq!(basic_password("OnMzY3JldA==").as_deref(), Some("s3cret"));
        assert_eq!(basic_password("!!"), None);
    }

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
