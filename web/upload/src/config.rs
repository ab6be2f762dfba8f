//! Where and how to upload: the options as given, and their validated form.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::Url;

use crate::labels::AppName;
use crate::retry::RetryPolicy;
use crate::Error;

/// The receiver's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Pyroscope's Connect `push.v1.PusherService/Push` (what Grafana Alloy uses).
    #[default]
    Push,
    /// Pyroscope's HTTP `/ingest` with a multipart pprof.
    Ingest,
    /// Parca's gRPC `ProfileStoreService/WriteRaw`.
    Parca,
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "push" => Ok(Protocol::Push),
            "ingest" => Ok(Protocol::Ingest),
            "parca" => Ok(Protocol::Parca),
            _ => Err(format!(
                "unknown upload protocol `{s}`: use push, ingest or parca"
            )),
        }
    }
}

impl Protocol {
    /// Whether one request can carry several entries.
    pub fn batches(self) -> bool {
        !matches!(self, Protocol::Ingest)
    }

    /// How old a spooled window may grow before it is dropped unsent:
    /// Pyroscope refuses profiles older than its `validation.reject-older-than`
    /// (1 h by default); Parca has no such limit, so a day bounds how long
    /// one window can be retried.
    pub fn default_max_age(self) -> Duration {
        match self {
            Protocol::Push | Protocol::Ingest => Duration::from_secs(3600),
            Protocol::Parca => Duration::from_secs(24 * 3600),
        }
    }
}

/// Upload options as the user gave them.
#[derive(Clone)]
pub struct UploadOptions {
    /// Base URL of the receiver, e.g. `http://pyroscope:4040`; may carry `user:password@`.
    pub url: String,
    /// The receiver's API.
    pub protocol: Protocol,
    /// Application-name template (`None`: the executable's name).
    pub app_name: Option<String>,
    /// File holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// `user:password` for basic auth (instead of putting it in the URL).
    pub basic_auth: Option<String>,
    /// Extra headers, each `Name: value`.
    pub headers: Vec<String>,
    /// Longest a request may take, connection included.
    pub timeout: Duration,
    /// Waits between attempts.
    pub retry: RetryPolicy,
    /// Oldest a spooled window may be and still be sent (`None`: the
    /// protocol's [`Protocol::default_max_age`]).
    pub max_age: Option<Duration>,
}

impl std::fmt::Debug for UploadOptions {
    /// Credentials and header values hidden: they may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|h| match h.split_once(':') {
                Some((name, _)) => format!("{name}: ***"),
                None => "***".to_string(),
            })
            .collect();
        f.debug_struct("UploadOptions")
            .field("url", &redact(&self.url))
            .field("protocol", &self.protocol)
            .field("app_name", &self.app_name)
            .field("token_file", &self.token_file)
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "***"))
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl UploadOptions {
    /// Options for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        UploadOptions {
            url: url.into(),
            protocol: Protocol::default(),
            app_name: None,
            token_file: None,
            basic_auth: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_age: None,
        }
    }
}

/// Validated options: a URL without credentials and the headers to send
/// (all marked sensitive, so `Debug` hides their values).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, credentials removed.
    pub base: Url,
    /// The receiver's API.
    pub protocol: Protocol,
    /// Application names.
    pub app: AppName,
    /// Headers of every request, authorization included.
    pub headers: HeaderMap,
    /// Longest a request may take.
    pub timeout: Duration,
    /// Waits between attempts.
    pub retry: RetryPolicy,
    /// Oldest a spooled window may be and still be sent.
    pub max_age: Option<Duration>,
}

impl Endpoint {
    /// Checks `options` and reads the token file.
    pub fn new(options: &UploadOptions) -> Result<Endpoint, Error> {
        let url_error = |reason: &str| Error::Url {
            url: redact(&options.url),
            reason: reason.to_string(),
        };
        let mut base = Url::parse(&options.url).map_err(|e| url_error(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(url_error("use http:// or https://"));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(url_error("it names no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(url_error(
                "give the server's base URL, without ?query or #fragment",
            ));
        }
        let mut headers = HeaderMap::new();
        for line in &options.headers {
            let (name, mut value) = parse_header(line)?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let mut credentials = Vec::new();
        if !base.username().is_empty() {
            let user = percent_decode(base.username());
            let password = percent_decode(base.password().unwrap_or(""));
            credentials.push(("the URL", basic(&format!("{user}:{password}"))?));
            let _ = base.set_username("");
            let _ = base.set_password(None);
        }
        if let Some(pair) = &options.basic_auth {
            if !pair.contains(':') {
                return Err(Error::Auth(
                    "--upload-basic-auth takes user:password".into(),
                ));
            }
            credentials.push(("--upload-basic-auth", basic(pair)?));
        }
        if let Some(path) = &options.token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| Error::io("cannot read the upload token file", path, e))?;
            let token = token.trim();
            if token.is_empty() {
                return Err(Error::Auth(format!(
                    "the token file {} is empty",
                    path.display()
                )));
            }
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::Auth(format!(
                    "the token in {} has characters a header cannot carry",
                    path.display()
                ))
            })?;
            credentials.push(("--upload-token-file", value));
        }
        if headers.contains_key(AUTHORIZATION) {
            credentials.push(("--upload-header", HeaderValue::from_static("")));
        }
        match credentials.as_slice() {
            [] => {}
            [(_, value)] => {
                if !value.is_empty() {
                    let mut value = value.clone();
                    value.set_sensitive(true);
                    headers.insert(AUTHORIZATION, value);
                }
            }
            many => {
                let from: Vec<&str> = many.iter().map(|(from, _)| *from).collect();
                return Err(Error::Auth(format!(
                    "credentials given by {}: give only one",
                    from.join(" and ")
                )));
            }
        }
        let app = match &options.app_name {
            Some(template) => AppName::parse(template)?,
            None => AppName::default(),
        };
        Ok(Endpoint {
            base,
            protocol: options.protocol,
            app,
            headers,
            timeout: options.timeout,
            retry: options.retry,
            max_age: Some(
                options
                    .max_age
                    .unwrap_or(options.protocol.default_max_age()),
            ),
        })
    }

    /// `path` (with its `?query`, already encoded) under the base URL,
    /// e.g. `/ingest` under `http://h/pyroscope/`.
    pub fn url(&self, path_and_query: &str) -> Url {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url.set_query(query);
        url
    }
}

/// `Name: value` as a header.
fn parse_header(line: &str) -> Result<(HeaderName, HeaderValue), Error> {
    let bad = || Error::Header(line.to_string());
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

/// A basic-auth header value for `user:password`.
fn basic(pair: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(&format!("Basic {}", base64(pair.as_bytes())))
        .map_err(|_| Error::Auth("the basic-auth credentials cannot be sent in a header".into()))
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `%XX` escapes of a URL's user or password decoded.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
/// The URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth() {
        let options = UploadOptions::new("https://123456:glc%2Fkey+x@example.com/prefix/");
        let endpoint = Endpoint::new(&options).unwrap();
        assert_eq!(endpoint.base.as_str(), "https://example.com/prefix/");
        assert_eq!(
            endpoint.url("/ingest").as_str(),
            "https://example.com/prefix/ingest"
        );
        assert_eq!(
            endpoint.url("/ingest?name=a%7B%7D&from=1").as_str(),
            "https://example.com/prefix/ingest?name=a%7B%7D&from=1"
        );
        assert_eq!(
            endpoint.headers[AUTHORIZATION],
            format!("Basic {}", base64(b"123456:glc/key+x"))
        );
        assert_eq!(
            redact(&options.url),
            "https://123456:***@example.com/prefix/"
        );
    }

    #[test]
    fn headers_and_conflicts() {
        let mut options = UploadOptions::new("http://h:4040");
        options.headers = vec!["X-Scope-OrgID: tenant-1".into(), "X-A:b".into()];
        let endpoint = Endpoint::new(&options).unwrap();
        assert_eq!(endpoint.headers["x-scope-orgid"], "tenant-1");
        assert_eq!(
            endpoint.url("/push.v1.PusherService/Push").as_str(),
            "http://h:4040/push.v1.PusherService/Push"
        );

        let shown = format!("{endpoint:?}");
        assert!(!shown.contains("tenant-1"), "{shown}");

        options.headers = vec!["no colon".into()];
        assert!(matches!(Endpoint::new(&options), Err(Error::Header(_))));
        options.headers = vec!["Authorization: Bearer x".into()];
        options.basic_auth = Some("u:p".into());
        let err = Endpoint::new(&options).unwrap_err().to_string();
        assert!(err.contains("give only one"), "{err}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let dir = std::env::temp_dir().join(format!("scorch-token-{}", std::process::id()));
        std::fs::write(&dir, "tok3n\n").unwrap();
        let mut options = UploadOptions::new("https://user:pa55@h/");
        options.headers = vec!["X-Api-Key: k3y".into()];
        options.basic_auth = Some("u:b4sic".into());
        let shown = format!("{options:?}");
        for secret in ["pa55", "k3y", "b4sic"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("X-Api-Key: ***"), "{shown}");
        options.basic_auth = None;
        options.url = "https://h/".into();
        options.token_file = Some(dir.clone());
        let endpoint = Endpoint::new(&options).unwrap();
        let shown = format!("{endpoint:?}");
        let _ = std::fs::remove_file(&dir);
        for secret in ["tok3n", "k3y"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let mut url = UploadOptions::new("https://user:pa55@h/");
        url.protocol = Protocol::Parca;
        let endpoint = Endpoint::new(&url).unwrap();
        assert!(!format!("{endpoint:?}").contains("pa55"));
        assert_eq!(endpoint.max_age, Some(Duration::from_secs(24 * 3600)));
    }

    #[test]
    fn bad_urls_are_explained() {
        for url in ["pyroscope:4040", "ftp://h/", "http://h/?x=1", "not a url"] {
            let err = Endpoint::new(&UploadOptions::new(url)).unwrap_err();
            assert!(matches!(err, Error::Url { .. }), "{url}: {err}");
        }
    }
}
