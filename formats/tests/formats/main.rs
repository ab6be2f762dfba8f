//! Tests of every writer of scorch-formats against one hand-made profile.
//!
//! Expected outputs live in `tests/golden/`; run with `SCORCH_BLESS=1` to
//! rewrite them after a deliberate change, and review the diff.

mod fixture;
mod format;
mod json;
mod offcpu;
mod pprof;
mod svg;
mod text;
