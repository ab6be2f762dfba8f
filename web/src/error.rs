//! API errors: a status and a message, sent as `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A 403 with `message`: the request is not allowed from where it comes.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// A 429 with `message`: too many requests at once; retry in a second.
    pub fn busy(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
        }
    }

    /// A 413 with `message`: the request is larger than a limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: message.into(),
        }
    }

    /// A 415 with `message`: a content type or encoding we do not read.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: message.into(),
        }
    }

    /// A 503 with `message`: the server cannot do this now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    /// The answer to a profile that could not be read: 413 past a size
    /// limit, 400 for bad data.
    pub fn from_format(error: scorch_formats::Error) -> Self {
        match error {
            scorch_formats::Error::TooLarge { .. } => Self::too_large(error.to_string()),
            _ => Self::bad_request(error.to_string()),
        }
    }

    /// The answer to a failed store call: 400 for a window the store
    /// refuses, 503 when it cannot write now, else 500.
    pub fn from_store(error: scorch_store::Error) -> Self {
        match error {
            scorch_store::Error::InvalidWindow(_) => Self::bad_request(error.to_string()),
            scorch_store::Error::DiskFull { .. } | scorch_store::Error::ReadOnly { .. } => {
                Self::unavailable(error.to_string())
            }
            _ => Self::internal(error.to_string()),
        }
    }

    /// A 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        response
    }
}

/// Seconds a client told 429 waits before retrying.
pub const RETRY_AFTER_SECS: u32 = 1;
