//! SVG flame graphs, drawn by inferno.
//!
//! A flame graph is the folded stacks drawn as boxes: the root at the
//! bottom, callees stacked on their callers, each box as wide as the share
//! of samples it was on the stack for. The SVG is interactive (click to
//! zoom, Ctrl-F to search) through the script inferno embeds.
//!
//! The input is exactly the folded output of [`crate::text`] with the same
//! [`TextOptions`], except that kernel frames always carry `_[k]` and JIT
//! frames `_[j]`: inferno's `js` palette colors them (kernel orange, JIT
//! green, or aqua when the name has no `/`; C++/Rust `::` names yellow,
//! other native code red) and strips the suffixes from the names it shows.
//! Frames that stand for missing knowledge (`[Missed User Stack]`,
//! `[Missed Kernel Stack]`, a user `[unknown]`) are grey. Colors come from a hash of the name, so
//! the same profile always gives the same SVG.
//!
//! The title says what was profiled, for how long and how many samples,
//! e.g. `scorch profile — PID 1234 — 2.0 s, 197 samples`. An off-CPU
//! profile is drawn as `flamegraph.pl --title="Off-CPU Time Flame Graph"
//! --countname=us` draws bcc's `offcputime -f`: counts in microseconds. A profile with
//! no samples gives a small SVG that says so, not an error.

use std::io::Write;

use inferno::flamegraph::color::{Color, MultiPalette, Palette, PaletteMap};
use inferno::flamegraph::{self, Options};

use crate::model::{Measure, Profile, UNKNOWN};
use crate::text::{self, Marks, TextOptions, MISSED_KERNEL, MISSED_USER};
use crate::Error;

/// Writes `profile` as an SVG flame graph.
pub fn write<W: Write>(profile: &Profile, opts: &TextOptions, mut writer: W) -> Result<(), Error> {
    let title = title(profile);
    let marks = Marks {
        kernel: true,
        jit: true,
    };
    let lines: Vec<String> = text::folded(profile, opts, marks)
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .map(|(line, count)| format!("{} {count}", xml_safe(&line)))
        .collect();
    let mut svg = Vec::new();
    if lines.is_empty() {
        write_empty(&title, &mut svg);
    } else {
        let mut placeholders = PaletteMap::default();
        for name in [MISSED_USER, MISSED_KERNEL, UNKNOWN] {
            placeholders.insert(name, PLACEHOLDER_GREY);
        }
        let mut options = Options::default();
        options.title = title;
        if profile.meta.measure == Measure::OffCpuNanoseconds {
            options.count_name = "us".to_string();
        }
        options.colors = Palette::Multi(MultiPalette::Js);
        options.hash = true;
        options.palette_map = Some(&mut placeholders);
        flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
            .map_err(Error::FlameGraph)?;
    }
    writer.write_all(&svg)?;
    writer.flush()?;
    Ok(())
}

/// Color of frames that stand for missing knowledge.
const PLACEHOLDER_GREY: Color = Color {
    r: 180,
    g: 180,
    b: 180,
};

/// `scorch profile — TARGET — 2.0 s, 197 samples`, or for off-CPU time
/// `Off-CPU Time Flame Graph — TARGET — 2.0 s, 1834000 us`.
fn title(profile: &Profile) -> String {
    let meta = &profile.meta;
    let off_cpu = meta.measure == Measure::OffCpuNanoseconds;
    let mut title = String::from(if off_cpu {
        "Off-CPU Time Flame Graph"
    } else {
        "scorch profile"
    });
    if !meta.target.is_empty() {
        title.push_str(" — ");
        title.push_str(&xml_safe(&meta.target));
    }
    title.push_str(" — ");
    if meta.duration_ns > 0 {
        title.push_str(&format!("{:.1} s, ", meta.duration_ns as f64 / 1e9));
    }
    let count = profile.total_count();
    if off_cpu {
        title.push_str(&format!("{} us", count / 1000));
        return title;
    }
    let unit = if count == 1 { "sample" } else { "samples" };
    title.push_str(&format!("{count} {unit}"));
    title
}

/// Replaces what may not appear in XML text or would split a folded line
/// (control characters, U+FFFE, U+FFFF) with `?`.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Escapes the five XML special characters.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The SVG for a profile without samples: the title and a notice.
fn write_empty(title: &str, svg: &mut Vec<u8>) {
    let page = format!(
        concat!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n",
            "<svg version=\"1.1\" width=\"1200\" height=\"90\" viewBox=\"0 0 1200 90\" ",
            "xmlns=\"http://www.w3.org/2000/svg\">\n",
            "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n",
            "<text x=\"600\" y=\"24\" text-anchor=\"middle\" font-family=\"Verdana\" ",
            "font-size=\"17\">{}</text>\n",
            "<text x=\"600\" y=\"60\" text-anchor=\"middle\" font-family=\"Verdana\" ",
            "font-size=\"12\">No samples were collected.</text>\n",
            "</svg>\n",
        ),
        escape(title)
    );
    svg.extend_from_slice(page.as_bytes());
}
