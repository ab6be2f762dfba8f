//! bcc `profile` output, byte for byte.
//!
//! bcc's `tools/profile.py` prints a profile two ways, and people feed both
//! to other tools, so scorch prints them exactly the same:
//!
//! - **folded** (`-f`): one line per stack, frames root first, separated by
//!   `;`, then a space and the count:
//!   `comm;user root;…;user leaf;kernel root;…;kernel leaf 42`. This is the
//!   input of `flamegraph.pl` and inferno.
//! - **text** (the default): per stack, the kernel frames leaf first, then
//!   the user frames leaf first, then `-` with the command and pid, then
//!   the count, each stack followed by an empty line.
//!
//! An off-CPU profile prints as bcc's `offcputime` prints it, in the same
//! two forms, its counts in microseconds.
//!
//! Both list stacks by count, smallest first, as bcc does; ties are broken
//! by the rendered text so that output is deterministic, and stacks that
//! render identically are merged by adding their counts (bcc keeps them
//! apart, which shows the same line twice).
//!
//! [`TextOptions`] are bcc's flags: which halves of the stack are wanted
//! (`-U`, `-K`), the `-` / `--` delimiter between them (`-d`), the `_[k]`
//! suffix on kernel frames (`-a`). A stack that could not be recorded prints
//! as `[Missed User Stack]` / `[Missed Kernel Stack]`; a stack that does not
//! exist (a kernel thread's user stack) prints nothing. A location with
//! inlined functions prints one frame per function.
//!
//! [`header`] is the line bcc prints when sampling starts. bcc then prints an
//! empty line when sampling ends, before the report: that line belongs to
//! whoever prints the header, not to [`write_text`].

use std::collections::HashMap;
use std::io::{BufWriter, Write};

use crate::model::{FrameKind, Measure, Profile, Sample, Stack};
use crate::Error;

/// Placeholder for a user stack that was wanted but not recorded.
pub const MISSED_USER: &str = "[Missed User Stack]";
/// Placeholder for a kernel stack that was wanted but not recorded.
pub const MISSED_KERNEL: &str = "[Missed Kernel Stack]";

/// bcc `profile`'s output flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextOptions {
    /// Show user stacks (off with `-K`).
    pub user: bool,
    /// Show kernel stacks (off with `-U`).
    pub kernel: bool,
    /// Suffix kernel frames with `_[k]` (`-a`).
    pub annotate_kernel: bool,
    /// Separate kernel and user stacks, `-` in folded and `--` in text (`-d`).
    pub delimited: bool,
}

impl Default for TextOptions {
    /// Both stacks, no annotations, no delimiter: bcc's defaults.
    fn default() -> Self {
        TextOptions {
            user: true,
            kernel: true,
            annotate_kernel: false,
            delimited: false,
        }
    }
}

impl TextOptions {
    /// Whether the delimiter goes between the two stacks of `sample`: only
    /// when asked, both stacks are shown and both were recorded.
    fn delimit(&self, sample: &Sample) -> bool {
        self.delimited
            && self.user
            && self.kernel
            && matches!(sample.user, Stack::Frames(_))
            && matches!(sample.kernel, Stack::Frames(_))
    }
}

/// What the header line of [`header`] says: bcc `profile`'s arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Sampling frequency (`-F`); wins over `sample_period`, as in bcc.
    pub frequency_hz: Option<u64>,
    /// Sample every N events (`-c`); without either, bcc's 49 Hertz.
    pub sample_period: Option<u64>,
    /// Who is sampled, in bcc's words: `PID 123`, `TID 7`, `all threads`.
    pub target: String,
    /// User stacks are collected (not `-K`).
    pub user: bool,
    /// Kernel stacks are collected (not `-U`).
    pub kernel: bool,
    /// The one CPU sampled (`-C`).
    pub cpu: Option<u32>,
    /// How long sampling lasts; without it, until Ctrl-C.
    pub duration_secs: Option<u64>,
    /// Off-CPU time is traced (bcc `offcputime`'s header), not samples.
    pub off_cpu: bool,
}

/// The line bcc prints when sampling starts, without its newline, e.g.
/// `Sampling at 49 Hertz of PID 123 by user + kernel stack for 2 secs.` or
/// `Sampling at every 1000 events of all threads by user stack... Hit
/// Ctrl-C to end.`; for off-CPU time, `offcputime`'s `Tracing off-CPU time
/// (us) of PID 123 by user + kernel stack for 2 secs.`
pub fn header(h: &Header) -> String {
    let rate = match (
        h.frequency_hz.filter(|&hz| hz > 0),
        h.sample_period.filter(|&n| n > 0),
    ) {
        (Some(hz), _) => format!("{hz} Hertz"),
        (None, Some(events)) => format!("every {events} events"),
        (None, None) => format!("{BCC_DEFAULT_HZ} Hertz"),
    };
    let stacks = match (h.user, h.kernel) {
        (true, true) => "user + kernel",
        (true, false) => "user",
        (false, true) => "kernel",
        (false, false) => "no",
    };
    let mut line = if h.off_cpu {
        format!(
            "Tracing off-CPU time (us) of {} by {stacks} stack",
            h.target
        )
    } else {
        format!("Sampling at {rate} of {} by {stacks} stack", h.target)
    };
    if let Some(cpu) = h.cpu {
        line.push_str(&format!(" on CPU#{cpu}"));
    }
    match h.duration_secs {
        Some(secs) => line.push_str(&format!(" for {secs} secs.")),
        None => line.push_str("... Hit Ctrl-C to end."),
    }
    line
}

/// bcc's sampling frequency when neither `-F` nor `-c` is given.
const BCC_DEFAULT_HZ: u64 = 49;

/// Writes folded stacks, as `profile -f` prints them.
pub fn write_folded<W: Write>(
    profile: &Profile,
    opts: &TextOptions,
    writer: W,
) -> Result<(), Error> {
    let marks = Marks {
        kernel: opts.annotate_kernel,
        jit: false,
    };
    let mut out = BufWriter::new(writer);
    for (line, count) in folded(profile, opts, marks) {
        writeln!(out, "{line} {count}")?;
    }
    out.flush()?;
    Ok(())
}

/// Writes the multi-line report `profile` prints without `-f`.
pub fn write_text<W: Write>(profile: &Profile, opts: &TextOptions, writer: W) -> Result<(), Error> {
    let blocks = profile.samples.iter().map(|sample| {
        let mut block = String::new();
        let mut frame = |name: &str, suffix: &str| {
            block.push_str("    ");
            block.push_str(name);
            block.push_str(suffix);
            block.push('\n');
        };
        if opts.kernel {
            let suffix = if opts.annotate_kernel {
                KERNEL_MARK
            } else {
                ""
            };
            match &sample.kernel {
                Stack::Missed => frame(MISSED_KERNEL, ""),
                Stack::Frames(frames) => {
                    for name in leaf_first(profile, frames) {
                        frame(&name, suffix);
                    }
                }
                Stack::Absent => {}
            }
        }
        if opts.user {
            if opts.delimit(sample) {
                frame("--", "");
            }
            match &sample.user {
                Stack::Missed => frame(MISSED_USER, ""),
                Stack::Frames(frames) => {
                    for name in leaf_first(profile, frames) {
                        frame(&name, "");
                    }
                }
                Stack::Absent => {}
            }
        }
        block.push_str(&format!(
            "    {:<16} {} ({})\n",
            "-", sample.comm, sample.pid
        ));
        (block, sample.count)
    });
    let mut out = BufWriter::new(writer);
    for (block, count) in tally(blocks, profile.meta.measure) {
        write!(out, "{block}        {count}\n\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Suffix that marks a kernel frame in folded stacks.
pub(crate) const KERNEL_MARK: &str = "_[k]";
/// Suffix that marks a JIT frame in folded stacks (flame graph colors).
pub(crate) const JIT_MARK: &str = "_[j]";

/// Which frames folded lines suffix with an annotation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    /// Kernel frames get `_[k]`.
    pub(crate) kernel: bool,
    /// JIT frames get `_[j]`.
    pub(crate) jit: bool,
}

/// Folded lines (without counts) and their counts, merged and sorted by
/// count then text.
pub(crate) fn folded(profile: &Profile, opts: &TextOptions, marks: Marks) -> Vec<(String, u64)> {
    let lines = profile.samples.iter().map(|sample| {
        let mut frames: Vec<String> = vec![sample.comm.clone()];
        if opts.user {
            match &sample.user {
                Stack::Missed => frames.push(MISSED_USER.to_string()),
                Stack::Frames(stack) => {
                    for &index in stack.iter().rev() {
                        let jit = marks.jit
                            && profile
                                .locations
                                .get(index)
                                .is_some_and(|l| l.kind == FrameKind::Jit);
                        let suffix = if jit { JIT_MARK } else { "" };
                        frames.extend(
                            profile
                                .location_names(index)
                                .into_iter()
                                .map(|name| name + suffix),
                        );
                    }
                }
                Stack::Absent => {}
            }
        }
        if opts.kernel {
            if opts.delimit(sample) {
                frames.push("-".to_string());
            }
            match &sample.kernel {
                Stack::Missed => frames.push(MISSED_KERNEL.to_string()),
                Stack::Frames(stack) => {
                    let suffix = if marks.kernel { KERNEL_MARK } else { "" };
                    for &index in stack.iter().rev() {
                        frames.extend(
                            profile
                                .location_names(index)
                                .into_iter()
                                .map(|name| name + suffix),
                        );
                    }
                }
                Stack::Absent => {}
            }
        }
        (frames.join(";"), sample.count)
    });
    tally(lines, profile.meta.measure)
}

/// Names of a leaf-first stack, leaf first, inlined functions expanded.
fn leaf_first<'a>(profile: &'a Profile, frames: &'a [usize]) -> impl Iterator<Item = String> + 'a {
    frames
        .iter()
        .flat_map(move |&index| profile.location_names(index).into_iter().rev())
}

/// Merges identical texts by adding their counts, then sorts by count and
/// text. Off-CPU nanoseconds become microseconds, as bcc's `offcputime`
/// prints them; a stack off CPU for less than one is left out.
fn tally(items: impl Iterator<Item = (String, u64)>, measure: Measure) -> Vec<(String, u64)> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (text, count) in items {
        let total = counts.entry(text).or_insert(0);
        *total = total.saturating_add(count);
    }
    if measure == Measure::OffCpuNanoseconds {
        counts.retain(|_, total| {
            *total /= 1000;
            *total > 0
        });
    }
    let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    sorted
}
