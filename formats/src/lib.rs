//! The canonical profile model of scorch and its codecs.
//!
//! Design constraints: this crate is pure. It knows nothing of BPF, of the
//! operating system or of symbolization; it turns a [`Profile`] into bytes
//! (folded stacks, bcc-style text, SVG flame graphs, pprof, JSON) and reads
//! pprof back. Everything here can be used from tests and from the web layer.

pub mod model;

pub use model::{FrameKind, Line, Location, Mapping, Meta, Profile, ProfileBuilder, Sample, Stack};
