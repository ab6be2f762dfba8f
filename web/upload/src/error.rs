//! What can go wrong while configuring or running an upload.

use std::path::PathBuf;

/// An upload that could not be configured, spooled or delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `--upload` URL is not a usable http(s) URL.
    #[error("invalid upload URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--upload-header` is not `Name: value`, or its name or value is invalid.
    #[error("invalid upload header `{0}`: write it as 'Name: value'")]
    Header(String),
    /// An `--app-name` template is malformed.
    #[error("invalid --app-name template `{template}`: {reason}")]
    Template {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two ways of authenticating were given at once.
    #[error("{0}")]
    Auth(String),
    /// A file (token, spool entry, spool directory) could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot read the token file".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (TLS roots, settings).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The server refused the profile (a 4xx other than 408/429, or a
    /// gRPC error that retrying cannot fix).
    #[error("the server rejected the upload: {0}")]
    Rejected(String),
    /// Every attempt failed with an error that might have passed later.
    #[error("upload failed after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// One window's profile is larger than the whole spool.
    #[error(
        "a profile of {size} bytes does not fit in a spool of {limit} bytes: raise --spool-size"
    )]
    TooLarge {
        /// Size of the encoded entry.
        size: u64,
        /// The spool's limit.
        limit: u64,
    },
}

impl Error {
    /// An [`Error::Io`] with its context.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
