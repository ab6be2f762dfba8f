//! BPF for scorch.
