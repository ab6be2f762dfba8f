//! The canonical profile model of scorch and its codecs.
//!
//! Design constraints: this crate is pure. It knows nothing of BPF, of the
//! operating system or of symbolization; it turns a [`Profile`] into bytes
//! (folded stacks, bcc-style text, SVG flame graphs, pprof, JSON) and reads
//! pprof back. Everything here can be used from tests and from the web layer.
//!
//! What you bring: a [`Profile`], usually made with a [`ProfileBuilder`]
//! from symbolized stacks. What you get: [`write()`] renders it in any
//! [`Format`]; the modules hold each format's details.
//!
//! - [`text`]: bcc `profile` output, byte for byte: folded stacks (`-f`),
//!   the default multi-line report and the header line.
//! - [`svg`]: an interactive flame graph, drawn by inferno.
//! - [`pprof`]: gzipped `profile.proto`, and a decoder to read it back.
//! - [`pprof_import`]: a pprof profile from another profiler into the model.
//! - [`folded`]: folded stacks (`foo;bar 100`) into the model.
//! - [`gunzip`]: size limits and bounded decompression for untrusted input.
//! - [`json`]: a compact form for the web page.
//! - [`push`]: the requests that carry pprof to Pyroscope and Parca.
//!
//! A sample's count is a number of CPU samples, or nanoseconds off CPU
//! when [`Meta::measure`] says so; each format shows it the way its tools
//! expect (bcc's offcputime microseconds, pprof's `off-cpu/nanoseconds`).
//!
//! Unknown is data: an address nobody could symbolize is still a frame
//! (`libfoo.so+0x1a2b` or `[unknown]`), a stack that could not be recorded
//! shows as `[Missed User Stack]`. No input makes a writer panic; a profile
//! whose indices point nowhere shows those frames as `[unknown]`.

pub mod fast_hash;
pub mod flame;
pub mod folded;
pub mod gunzip;
pub mod json;
pub mod model;
pub mod pprof;
pub mod pprof_import;
pub mod push;
pub mod svg;
pub mod text;

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

pub use model::{
    FrameKind, Line, Location, Mapping, Measure, Meta, Profile, ProfileBuilder, Sample, Stack,
};
pub use text::TextOptions;

/// What can go wrong while writing or reading a profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The output could not be written (disk full, closed pipe, ...).
    #[error("cannot write the profile: {0}")]
    Io(#[from] io::Error),
    /// inferno refused to draw the flame graph.
    #[error("cannot draw the flame graph: {0} (the folded output, `-f`, still works)")]
    FlameGraph(#[source] io::Error),
    /// A format name that is none of ours.
    #[error("unknown output format `{0}`: use one of folded, text, svg, pprof, json")]
    UnknownFormat(String),
    /// Gzipped pprof data could not be decompressed.
    #[error("cannot decompress the gzipped pprof profile: {0}")]
    Gzip(#[source] io::Error),
    /// The bytes are not a pprof profile (nor a gzipped one).
    #[error("cannot decode the pprof profile: {0}")]
    PprofDecode(#[from] prost::DecodeError),
    /// A decoded pprof profile refers to an id or string that it lacks.
    #[error("invalid pprof profile: {0}")]
    InvalidPprof(String),
    /// JSON could not be read or written.
    #[error("cannot read or write the JSON profile: {0}")]
    Json(#[from] serde_json::Error),
    /// Untrusted input is larger than a [`gunzip::Limits`] allows.
    #[error("{}", too_large(what, *size, *limit, *stage))]
    TooLarge {
        /// What was being read, e.g. `pprof profile`.
        what: &'static str,
        /// Its size, when known (decompression stops at the limit).
        size: Option<u64>,
        /// The limit it exceeds.
        limit: u64,
        /// Whether the limit is on the received or the decompressed size.
        stage: gunzip::Stage,
    },
    /// A valid pprof profile that does not count CPU samples.
    #[error(
        "the pprof profile is not a CPU profile: {0}; scorch stores CPU samples \
         (a `samples/count` or `cpu/nanoseconds` sample type)"
    )]
    NotCpu(String),
    /// Folded stacks that are not `frame;frame;… count` lines.
    #[error("invalid folded stacks: {0}")]
    InvalidFolded(String),
}

/// The message of [`Error::TooLarge`].
fn too_large(what: &str, size: Option<u64>, limit: u64, stage: gunzip::Stage) -> String {
    let limit = gunzip::human_size(limit);
    match (stage, size) {
        (gunzip::Stage::Received, Some(size)) => format!(
            "the {what} is {}, more than the limit of {limit}",
            gunzip::human_size(size)
        ),
        (gunzip::Stage::Received, None) => {
            format!("the {what} is more than the limit of {limit}")
        }
        (gunzip::Stage::Decompressed, Some(size)) => format!(
            "the {what} is {} uncompressed, more than the limit of {limit}",
            gunzip::human_size(size)
        ),
        (gunzip::Stage::Decompressed, None) => format!(
            "the {what} decompresses to more than the limit of {limit} \
             (decompression stopped there)"
        ),
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// bcc `profile -f`: one line per stack, for flame graph tools.
    Folded,
    /// bcc `profile` default output: multi-line stacks with counts.
    Text,
    /// Interactive SVG flame graph.
    Svg,
    /// Gzipped pprof `profile.proto`.
    Pprof,
    /// Compact JSON for the web page.
    Json,
}

impl Format {
    /// Every format, in the order they are listed to users.
    pub const ALL: [Format; 5] = [
        Format::Folded,
        Format::Text,
        Format::Svg,
        Format::Pprof,
        Format::Json,
    ];

    /// The format a file name asks for, by its extension: `.folded`,
    /// `.collapsed`; `.txt`; `.svg`; `.pb.gz`, `.pb`, `.pprof`; `.json`.
    pub fn from_extension(path: impl AsRef<Path>) -> Option<Format> {
        let name = path.as_ref().file_name()?.to_str()?.to_ascii_lowercase();
        const EXTENSIONS: [(&str, Format); 8] = [
            (".folded", Format::Folded),
            (".collapsed", Format::Folded),
            (".txt", Format::Text),
            (".svg", Format::Svg),
            (".pb.gz", Format::Pprof),
            (".pb", Format::Pprof),
            (".pprof", Format::Pprof),
            (".json", Format::Json),
        ];
        EXTENSIONS
            .iter()
            .find(|(ext, _)| name.len() > ext.len() && name.ends_with(ext))
            .map(|&(_, format)| format)
    }

    /// The name of the format, as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Folded => "folded",
            Format::Text => "text",
            Format::Svg => "svg",
            Format::Pprof => "pprof",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownFormat(s.to_string()))
    }
}

/// Writes `profile` in `format`.
///
/// `opts` selects stacks and decorations for the bcc-style formats (folded,
/// text) and the flame graph; pprof and JSON always carry the whole profile.
pub fn write<W: Write>(
    profile: &Profile,
    format: Format,
    opts: &TextOptions,
    writer: W,
) -> Result<(), Error> {
    match format {
        Format::Folded => text::write_folded(profile, opts, writer),
        Format::Text => text::write_text(profile, opts, writer),
        Format::Svg => svg::write(profile, opts, writer),
        Format::Pprof => pprof::write(profile, writer),
        Format::Json => json::write(profile, writer),
    }
}
