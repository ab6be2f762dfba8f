//! Folded stacks read into the model: the text `flamegraph.pl`, bcc's
//! `profile -f` and Pyroscope's `/ingest?format=folded` use.
//!
//! One stack per line, frames root first separated by `;`, then a space and
//! the sample count: `main;work;compute 100`. The same stack on several
//! lines adds up. In the `lines` form (Pyroscope's `format=lines`) a line
//! has no count and stands for one sample. Empty lines are skipped. Every
//! frame is a user frame with no address; the samples' command name is
//! the caller's (`comm`), so scorch's folded output of the result is the
//! input with `comm;` in front of each line.

use crate::model::{FrameKind, Line, Location, Meta, Profile, ProfileBuilder, Sample, Stack};
use crate::Error;

/// Whether lines end with a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// `frames count`: the folded form.
    Counted,
    /// `frames`: each line is one sample.
    OnePerLine,
}

/// Reads folded stacks; `comm` names the samples' command, `meta` is the
/// profile's.
pub fn parse(text: &str, counts: Counts, comm: &str, meta: Meta) -> Result<Profile, Error> {
    let mut builder = ProfileBuilder::new(meta);
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (stack, count) = match counts {
            Counts::OnePerLine => (line, 1),
            Counts::Counted => {
                let (stack, count) = line.rsplit_once(' ').ok_or_else(|| {
                    Error::InvalidFolded(format!(
                        "line {number}: `{}` does not end with a space and a count",
                        excerpt(line)
                    ))
                })?;
                let count = count.parse::<u64>().map_err(|_| {
                    Error::InvalidFolded(format!(
                        "line {number}: the count `{}` is not a whole number",
                        excerpt(count)
                    ))
                })?;
                (stack.trim_end(), count)
            }
        };
        if stack.is_empty() {
            return Err(Error::InvalidFolded(format!(
                "line {number}: no frames before the count"
            )));
        }
        if count == 0 {
            continue;
        }
        let mut frames: Vec<usize> = stack
            .split(';')
            .map(|name| {
                builder.location(Location {
                    address: 0,
                    mapping: None,
                    kind: FrameKind::User,
                    lines: vec![Line {
                        function: name.to_string(),
                        file: None,
                        line: None,
                    }],
                })
            })
            .collect();
        frames.reverse();
        builder.sample(Sample {
            pid: 0,
            tid: None,
            comm: comm.to_string(),
            user: Stack::Frames(frames),
            kernel: Stack::Absent,
            count,
        });
    }
    Ok(builder.build())
}

/// The start of a long line, for error messages.
fn excerpt(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::write_folded;

    fn folded(p: &Profile) -> String {
        let mut out = Vec::new();
        write_folded(p, &Default::default(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_add_up_and_come_back_with_the_command() {
        let text = "foo;bar 100\nfoo;baz 200\r\n\nfoo;bar 5\nfoo with space;x 1\n";
        let p = parse(text, Counts::Counted, "app", Meta::default()).unwrap();
        assert_eq!(p.total_count(), 306);
        assert_eq!(
            folded(&p),
            "app;foo with space;x 1\napp;foo;bar 105\napp;foo;baz 200\n"
        );
    }

    #[test]
    fn lines_are_one_sample_each() {
        let p = parse("a;b\na;b\na\n", Counts::OnePerLine, "c", Meta::default()).unwrap();
        assert_eq!(folded(&p), "c;a 1\nc;a;b 2\n");
    }

    #[test]
    fn errors_name_the_line() {
        let err = |t| {
            parse(t, Counts::Counted, "c", Meta::default())
                .unwrap_err()
                .to_string()
        };
        assert!(err("a 1\nfoo;bar\n").contains("line 2: `foo;bar` does not end"));
        assert!(err("a x\n").contains("line 1: the count `x`"));
        assert!(err("a -3\n").contains("the count `-3`"));
        assert!(err(" 3\n").contains("line 1: no frames"));
    }
}
