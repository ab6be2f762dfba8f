//! What an off-CPU profile needs beyond the CPU profile's path.
//!
//! Kernel stacks of the `sched_switch` program are taken inside the
//! tracepoint, so they start with the program itself (an address no symbol
//! covers), the kernel's `bpf_trace_run*` that called it and, when several
//! programs share the tracepoint, `__traceiter_sched_switch`, above
//! `__schedule`. Those frames say nothing about the wait and are removed,
//! so a stack's kernel leaf is the scheduler, as in bcc's offcputime.

use scorch_formats::{Profile, Stack};

/// Name prefixes of the kernel functions that run tracepoint programs.
const TRACING: [&str; 3] = ["bpf_trace_run", "__bpf_trace_", "__traceiter_"];

/// Removes, from every kernel stack, the frames from the leaf down to the
/// root-most tracing function; a stack without one is kept whole.
pub fn trim_tracing_frames(profile: &mut Profile) {
    let runner_at = |frames: &[usize], profile: &Profile| {
        frames.iter().rposition(|&index| {
            let name = profile.location_name(index);
            TRACING.iter().any(|prefix| name.starts_with(prefix))
        })
    };
    for i in 0..profile.samples.len() {
        let Stack::Frames(frames) = &profile.samples[i].kernel else {
            continue;
        };
        if let Some(at) = runner_at(frames, profile) {
            if let Stack::Frames(frames) = &mut profile.samples[i].kernel {
                frames.drain(..=at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorch_formats::{FrameKind, Line, Location, Meta, ProfileBuilder, Sample};

    fn location(builder: &mut ProfileBuilder, name: Option<&str>, address: u64) -> usize {
        builder.location(Location {
            address,
            mapping: None,
            kind: FrameKind::Kernel,
            lines: name
                .map(|n| Line {
                    function: n.to_string(),
                    file: None,
                    line: None,
                })
                .into_iter()
                .collect(),
        })
    }

    #[test]
    fn the_program_and_its_runner_are_removed() {
        let mut b = ProfileBuilder::new(Meta::default());
        let program = location(&mut b, None, 1);
        let runner = location(&mut b, Some("bpf_trace_run4"), 2);
        let schedule = location(&mut b, Some("__schedule"), 3);
        let syscall = location(&mut b, Some("do_syscall_64"), 4);
        for kernel in [
            vec![program, runner, schedule, syscall],
            vec![schedule, syscall],
        ] {
            b.sample(Sample {
                pid: 1,
                tid: None,
                comm: "a".into(),
                user: Stack::Absent,
                kernel: Stack::Frames(kernel),
                count: 1,
            });
        }
        let mut p = b.build();
        trim_tracing_frames(&mut p);
        for s in &p.samples {
            assert_eq!(s.kernel, Stack::Frames(vec![schedule, syscall]));
        }
    }
}
