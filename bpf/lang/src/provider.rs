//! Probe providers: the word before the first `:` of a probe spec.
//!
//! Each provider has one canonical name and any number of aliases — the
//! short forms (`t` for `tracepoint`), the old names (`kfunc` for
//! `fentry`) and the upper-case `BEGIN`/`END`. The parser normalises them
//! to a [`ProbeKind`] so that later passes match on one value per kind.

use std::fmt;

/// The kind of event a probe attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `begin` / `BEGIN`: once, before all other probes are attached.
    Begin,
    /// `end` / `END`: once, after all other probes are detached.
    End,
    /// `self:signal:SIG…`: events of the tracer process itself.
    SelfEvent,
    /// `bench:name`: a micro benchmark run by `--bench`.
    Bench,
    /// `test:name`: a test run by `--test`.
    Test,
    /// `tracepoint` / `t`.
    Tracepoint,
    /// `rawtracepoint` / `rt`.
    RawTracepoint,
    /// `kprobe` / `k`.
    Kprobe,
    /// `kretprobe` / `kr`.
    Kretprobe,
    /// `uprobe` / `u`.
    Uprobe,
    /// `uretprobe` / `ur`.
    Uretprobe,
    /// `usdt` / `U`.
    Usdt,
    /// `profile` / `p`: timed sampling on every CPU.
    Profile,
    /// `interval` / `i`: timed events on one CPU.
    Interval,
    /// `software` / `s`: kernel software perf events.
    Software,
    /// `hardware` / `h`: PMU perf events.
    Hardware,
    /// `watchpoint` / `w`.
    Watchpoint,
    /// `asyncwatchpoint` / `aw`.
    AsyncWatchpoint,
    /// `fentry` / `f` / `kfunc`.
    Fentry,
    /// `fexit` / `fr` / `kretfunc`.
    Fexit,
    /// `iter` / `it`: BPF iterators.
    Iter,
}

/// Every spelling the parser accepts, canonical names first.
const NAMES: [(&str, ProbeKind); 41] = [
    ("begin", ProbeKind::Begin),
    ("end", ProbeKind::End),
    ("self", ProbeKind::SelfEvent),
    ("bench", ProbeKind::Bench),
    ("test", ProbeKind::Test),
    ("tracepoint", ProbeKind::Tracepoint),
    ("rawtracepoint", ProbeKind::RawTracepoint),
    ("kprobe", ProbeKind::Kprobe),
    ("kretprobe", ProbeKind::Kretprobe),
    ("uprobe", ProbeKind::Uprobe),
    ("uretprobe", ProbeKind::Uretprobe),
    ("usdt", ProbeKind::Usdt),
    ("profile", ProbeKind::Profile),
    ("interval", ProbeKind::Interval),
    ("software", ProbeKind::Software),
    ("hardware", ProbeKind::Hardware),
    ("watchpoint", ProbeKind::Watchpoint),
    ("asyncwatchpoint", ProbeKind::AsyncWatchpoint),
    ("fentry", ProbeKind::Fentry),
    ("fexit", ProbeKind::Fexit),
    ("iter", ProbeKind::Iter),
    ("BEGIN", ProbeKind::Begin),
    ("END", ProbeKind::End),
    ("t", ProbeKind::Tracepoint),
    ("rt", ProbeKind::RawTracepoint),
    ("k", ProbeKind::Kprobe),
    ("kr", ProbeKind::Kretprobe),
    ("u", ProbeKind::Uprobe),
    ("ur", ProbeKind::Uretprobe),
    ("U", ProbeKind::Usdt),
    ("p", ProbeKind::Profile),
    ("i", ProbeKind::Interval),
    ("s", ProbeKind::Software),
    ("h", ProbeKind::Hardware),
    ("w", ProbeKind::Watchpoint),
    ("aw", ProbeKind::AsyncWatchpoint),
    ("f", ProbeKind::Fentry),
    ("fr", ProbeKind::Fexit),
    ("kfunc", ProbeKind::Fentry),
    ("kretfunc", ProbeKind::Fexit),
    ("it", ProbeKind::Iter),
];

impl ProbeKind {
    /// Every kind, in the order `--help` style lists show them.
    pub const ALL: [ProbeKind; 21] = [
        ProbeKind::Begin,
        ProbeKind::End,
        ProbeKind::SelfEvent,
        ProbeKind::Bench,
        ProbeKind::Test,
        ProbeKind::Tracepoint,
        ProbeKind::RawTracepoint,
        ProbeKind::Kprobe,
        ProbeKind::Kretprobe,
        ProbeKind::Uprobe,
        ProbeKind::Uretprobe,
        ProbeKind::Usdt,
        ProbeKind::Profile,
        ProbeKind::Interval,
        ProbeKind::Software,
        ProbeKind::Hardware,
        ProbeKind::Watchpoint,
        ProbeKind::AsyncWatchpoint,
        ProbeKind::Fentry,
        ProbeKind::Fexit,
        ProbeKind::Iter,
    ];

    /// The kind named by `provider`, under any of its spellings.
    pub fn from_name(provider: &str) -> Option<ProbeKind> {
        NAMES
            .iter()
            .find(|(name, _)| *name == provider)
            .map(|&(_, kind)| kind)
    }

    /// The canonical name, e.g. `tracepoint` for `t`.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|&&(_, kind)| kind == self)
            .map_or("?", |(name, _)| name)
    }

    /// The accepted spelling closest to an unknown `provider`, for a
    /// "did you mean" hint. One-letter aliases are never suggested.
    pub fn suggest(provider: &str) -> Option<&'static str> {
        crate::suggest::closest(
            provider,
            NAMES
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| name.len() > 2),
        )
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_normalise() {
        for (alias, canonical) in [
            ("t", "tracepoint"),
            ("rt", "rawtracepoint"),
            ("p", "profile"),
            ("i", "interval"),
            ("s", "software"),
            ("h", "hardware"),
            ("k", "kprobe"),
            ("kr", "kretprobe"),
            ("u", "uprobe"),
            ("ur", "uretprobe"),
            ("U", "usdt"),
            ("f", "fentry"),
            ("fr", "fexit"),
            ("kfunc", "fentry"),
            ("kretfunc", "fexit"),
            ("w", "watchpoint"),
            ("aw", "asyncwatchpoint"),
            ("BEGIN", "begin"),
            ("END", "end"),
            ("it", "iter"),
        ] {
            assert_eq!(
                ProbeKind::from_name(alias).map(ProbeKind::name),
                Some(canonical)
            );
        }
        assert_eq!(ProbeKind::from_name("Tracepoint"), None);
    }

    #[test]
    fn every_kind_has_a_canonical_name() {
        for kind in ProbeKind::ALL {
            assert_eq!(ProbeKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(ProbeKind::suggest("trcepoint"), Some("tracepoint"));
        assert_eq!(ProbeKind::suggest("kprob"), Some("kprobe"));
        assert_eq!(ProbeKind::suggest("Begin"), Some("begin"));
        assert_eq!(ProbeKind::suggest("uprobe2"), Some("uprobe"));
        assert_eq!(ProbeKind::suggest("zz"), None);
    }
}
