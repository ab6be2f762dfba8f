//! Reading a request body within the size limit, and undoing its
//! `Content-Encoding` (within the decompressed limit).
//!
//! The limit is checked against `Content-Length` first (so an honest client
//! sending too much is refused before it uploads anything), then while
//! reading (so a dishonest or chunked one is cut off at the limit).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use scorch_formats::gunzip::{self, human_size, Limits};

use crate::error::ApiError;

/// How the body is encoded (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As it is.
    Identity,
    /// gzip.
    Gzip,
}

impl Encoding {
    /// The request's `Content-Encoding`; 415 for one we do not read.
    pub fn of(headers: &HeaderMap) -> Result<Encoding, ApiError> {
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        match encoding.as_deref() {
            None | Some("" | "identity") => Ok(Encoding::Identity),
            Some("gzip" | "x-gzip") => Ok(Encoding::Gzip),
            Some(other) => Err(ApiError::unsupported(format!(
                "`Content-Encoding: {other}` is not supported: send gzip or identity"
            ))),
        }
    }

    /// `bytes` decoded, within `limits.decompressed`. Runs long on a big
    /// body: call it off the async threads.
    pub fn decode(self, bytes: Bytes, limits: &Limits) -> Result<Bytes, ApiError> {
        match self {
            Encoding::Identity => Ok(bytes),
            Encoding::Gzip => gunzip::gunzip("request body", &bytes, limits.decompressed)
                .map(Bytes::from)
                .map_err(ApiError::from_format),
        }
    }
}

/// The whole body as received, at most `limits.compressed` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limits: &Limits) -> Result<Bytes, ApiError> {
    let limit = limits.compressed;
    let too_large = |size: Option<u64>| {
        let size = match size {
            Some(size) => format!(" is {},", human_size(size)),
            None => String::new(),
        };
        ApiError::too_large(format!(
            "the request body{size} more than the limit of {}; \
             send smaller profiles or raise `scorch serve --max-ingest-size`",
            human_size(limit)
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared.filter(|&size| size > limit) {
        return Err(too_large(Some(size)));
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(None)),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}
