//! Address → frame resolution.
