//! A pprof profile written by any profiler, read into the model.
//!
//! The model counts samples, so a profile is read by the value that counts
//! them: a `samples/count` sample type when there is one (Go, scorch), else
//! `cpu/nanoseconds` divided by the profile's period (eBPF profilers such as
//! Grafana Alloy's send only CPU time). A profile with neither (heap,
//! goroutines, locks) is [`Error::NotCpu`]: the store keeps CPU samples.
//!
//! Mappings, locations and inlined lines carry over as they are. A location
//! in a kernel mapping (`[kernel.kallsyms]`, `[kernel]`, …) is a kernel
//! frame, so a stack that starts (leaf first) with kernel frames is split
//! into its kernel and user halves as scorch writes them; the pseudo-frames
//! `[Missed Kernel Stack]` / `[Missed User Stack]` become missed stacks.
//! Sample labels `pid`, `tid` (numbers) and `comm` (a string) are the
//! sample's process; a sample without `comm` gets [`Defaults::comm`].

use std::collections::HashMap;

use crate::model::{
    FrameKind, Line, Location, Mapping, Measure, Meta, Profile, ProfileBuilder, Sample, Stack,
};
use crate::pprof::proto;
use crate::text::{MISSED_KERNEL, MISSED_USER};
use crate::Error;

/// What a profile that does not say it is taken to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    /// The command name of samples without a `comm` label (e.g. the
    /// application's name).
    pub comm: String,
    /// The sampling frequency when the profile has no CPU period.
    pub frequency_hz: Option<u64>,
    /// Most frames kept of a stack; deeper stacks lose their leaf-most
    /// frames, so the flame graph keeps its shape from the root (Pyroscope
    /// truncates at 1000 frames). `None` keeps every frame.
    pub max_depth: Option<usize>,
}

/// Which sample value counts samples, and how.
#[derive(Debug, Clone, Copy)]
enum Counter {
    /// The value is a count.
    Count(usize),
    /// The value is CPU nanoseconds; one sample is `period` of them.
    CpuTime(usize, u64),
}

/// Reads `profile` into the model.
pub fn to_model(profile: &proto::Profile, defaults: &Defaults) -> Result<Profile, Error> {
    let strings = Strings(&profile.string_table);
    let period = cpu_period(profile, &strings)?;
    let counter = counter(profile, &strings, period)?;
    let meta = Meta {
        target: String::new(),
        start_unix_ns: u64::try_from(profile.time_nanos).unwrap_or(0),
        duration_ns: u64::try_from(profile.duration_nanos).unwrap_or(0),
        frequency_hz: period
            .map(|p| (1_000_000_000 + p / 2) / p)
            .filter(|&hz| hz > 0)
            .or(defaults.frequency_hz),
        sample_period: None,
        measure: Measure::OnCpuSamples,
    };
    let mut reader = Reader {
        builder: ProfileBuilder::new(meta),
        strings,
        mappings: profile.mapping.iter().map(|m| (m.id, m)).collect(),
        functions: profile.function.iter().map(|f| (f.id, f)).collect(),
        locations: profile.location.iter().map(|l| (l.id, l)).collect(),
        mapped: HashMap::new(),
        located: HashMap::new(),
    };
    let keys = LabelKeys {
        pid: strings.find("pid"),
        tid: strings.find("tid"),
        comm: strings.find("comm"),
    };
    for sample in &profile.sample {
        let count = match counter {
            Counter::Count(i) => sample.value.get(i).copied().unwrap_or(0).max(0) as u64,
            Counter::CpuTime(i, period) => {
                let nanos = sample.value.get(i).copied().unwrap_or(0).max(0) as u64;
                match nanos {
                    0 => 0,
                    n => (n.saturating_add(period / 2) / period).max(1),
                }
            }
        };
        if count == 0 {
            continue;
        }
        let ids = match defaults.max_depth {
            Some(max) if sample.location_id.len() > max => {
                &sample.location_id[sample.location_id.len() - max..]
            }
            _ => &sample.location_id[..],
        };
        let mut frames = Vec::with_capacity(ids.len());
        for &id in ids {
            frames.push(reader.location(id)?);
        }
        let (kernel, user) = reader.split(&frames);
        let (pid, tid, comm) = reader.process(sample, &keys, defaults)?;
        reader.builder.sample(Sample {
            pid,
            tid,
            comm,
            user,
            kernel,
            count,
        });
    }
    Ok(reader.builder.build())
}

/// The string table, with errors for indices outside it.
#[derive(Clone, Copy)]
struct Strings<'a>(&'a [String]);

impl<'a> Strings<'a> {
    fn get(&self, index: i64) -> Result<&'a str, Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                Error::InvalidPprof(format!(
                    "string index {index} is outside the string table of {} entries",
                    self.0.len()
                ))
            })
    }

    /// The index of `s`, if the table has it (never 0, the empty string).
    fn find(&self, s: &str) -> Option<i64> {
        self.0
            .iter()
            .skip(1)
            .position(|t| t == s)
            .map(|i| i as i64 + 1)
    }
}

/// The sample type that counts samples.
fn counter(
    profile: &proto::Profile,
    strings: &Strings,
    period: Option<u64>,
) -> Result<Counter, Error> {
    let mut types = Vec::with_capacity(profile.sample_type.len());
    for t in &profile.sample_type {
        types.push((strings.get(t.r#type)?, strings.get(t.unit)?));
    }
    if let Some(i) = types.iter().position(|&t| t == ("samples", "count")) {
        return Ok(Counter::Count(i));
    }
    if let Some(i) = types.iter().position(|&t| t == ("cpu", "nanoseconds")) {
        if let Some(period) = period {
            return Ok(Counter::CpuTime(i, period));
        }
        return Err(Error::NotCpu(
            "it has CPU time but no period (`period_type` cpu/nanoseconds), \
             so its samples cannot be counted"
                .into(),
        ));
    }
    let listed: Vec<String> = types.iter().map(|(t, u)| format!("{t}/{u}")).collect();
    Err(Error::NotCpu(if listed.is_empty() {
        "it has no sample type".into()
    } else {
        format!("it measures {}", listed.join(", "))
    }))
}

/// The CPU time one sample stands for, when the profile says.
fn cpu_period(profile: &proto::Profile, strings: &Strings) -> Result<Option<u64>, Error> {
    let Some(t) = &profile.period_type else {
        return Ok(None);
    };
    let is_cpu = (strings.get(t.r#type)?, strings.get(t.unit)?) == ("cpu", "nanoseconds");
    Ok(u64::try_from(profile.period)
        .ok()
        .filter(|&p| is_cpu && p > 0))
}

/// String indices of the sample labels that name a process.
struct LabelKeys {
    pid: Option<i64>,
    tid: Option<i64>,
    comm: Option<i64>,
}

/// Converts ids to model indices, each once.
struct Reader<'a> {
    builder: ProfileBuilder,
    strings: Strings<'a>,
    mappings: HashMap<u64, &'a proto::Mapping>,
    functions: HashMap<u64, &'a proto::Function>,
    locations: HashMap<u64, &'a proto::Location>,
    /// Mapping id → model index and kind.
    mapped: HashMap<u64, (usize, FrameKind)>,
    /// Location id → what it is in the model.
    located: HashMap<u64, Frame>,
}

/// A location of a sample, as the split into halves needs it.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// A model location of this kind.
    At(usize, FrameKind),
    /// scorch's placeholder for a stack that was not recorded.
    Missed(FrameKind),
}

impl Reader<'_> {
    fn mapping(&mut self, id: u64) -> Result<Option<(usize, FrameKind)>, Error> {
        if id == 0 {
            return Ok(None);
        }
        if let Some(&found) = self.mapped.get(&id) {
            return Ok(Some(found));
        }
        let m = self
            .mappings
            .get(&id)
            .ok_or_else(|| Error::InvalidPprof(format!("no mapping with id {id}")))?;
        let file = self.strings.get(m.filename)?.to_string();
        let build_id = Some(self.strings.get(m.build_id)?)
            .filter(|b| !b.is_empty())
            .map(str::to_string);
        let kind = if file.starts_with("[kernel") || file == "[vmlinux]" {
            FrameKind::Kernel
        } else {
            FrameKind::User
        };
        let index = self.builder.mapping(Mapping {
            start: m.memory_start,
            limit: m.memory_limit,
            offset: m.file_offset,
            file,
            build_id,
        });
        self.mapped.insert(id, (index, kind));
        Ok(Some((index, kind)))
    }

    fn location(&mut self, id: u64) -> Result<Frame, Error> {
        if let Some(&frame) = self.located.get(&id) {
            return Ok(frame);
        }
        let l = *self
            .locations
            .get(&id)
            .ok_or_else(|| Error::InvalidPprof(format!("no location with id {id}")))?;
        let mapping = self.mapping(l.mapping_id)?;
        let mut lines = Vec::with_capacity(l.line.len());
        for line in &l.line {
            let f = self.functions.get(&line.function_id).ok_or_else(|| {
                Error::InvalidPprof(format!("no function with id {}", line.function_id))
            })?;
            let file = self.strings.get(f.filename)?;
            lines.push(Line {
                function: self.strings.get(f.name)?.to_string(),
                file: (!file.is_empty()).then(|| file.to_string()),
                line: u32::try_from(line.line).ok().filter(|&n| n > 0),
            });
        }
        let frame = match (&mapping, lines.as_slice()) {
            (None, [only]) if only.function == MISSED_KERNEL => Frame::Missed(FrameKind::Kernel),
            (None, [only]) if only.function == MISSED_USER => Frame::Missed(FrameKind::User),
            _ => {
                let kind = mapping.map_or(FrameKind::User, |(_, kind)| kind);
                let index = self.builder.location(Location {
                    address: l.address,
                    mapping: mapping.map(|(index, _)| index),
                    kind,
                    lines,
                });
                Frame::At(index, kind)
            }
        };
        self.located.insert(id, frame);
        Ok(frame)
    }

    /// A sample's frames (leaf first) as its kernel and user stacks.
    fn split(&self, frames: &[Frame]) -> (Stack, Stack) {
        let is_kernel = |f: &Frame| {
            matches!(
                f,
                Frame::At(_, FrameKind::Kernel) | Frame::Missed(FrameKind::Kernel)
            )
        };
        let cut = frames
            .iter()
            .position(|f| !is_kernel(f))
            .unwrap_or(frames.len());
        let stack = |part: &[Frame]| match part {
            [] => Stack::Absent,
            [Frame::Missed(_)] => Stack::Missed,
            frames => Stack::Frames(
                frames
                    .iter()
                    .filter_map(|f| match f {
                        Frame::At(index, _) => Some(*index),
                        Frame::Missed(_) => None,
                    })
                    .collect(),
            ),
        };
        (stack(&frames[..cut]), stack(&frames[cut..]))
    }

    /// The sample's pid, tid and comm from its labels.
    fn process(
        &self,
        sample: &proto::Sample,
        keys: &LabelKeys,
        defaults: &Defaults,
    ) -> Result<(u32, Option<u32>, String), Error> {
        let mut pid = 0;
        let mut tid = None;
        let mut comm = None;
        for label in &sample.label {
            let key = Some(label.key);
            if key == keys.pid {
                pid = u32::try_from(label.num).unwrap_or(0);
            } else if key == keys.tid {
                tid = u32::try_from(label.num).ok();
            } else if key == keys.comm {
                comm = Some(self.strings.get(label.str)?.to_string());
            }
        }
        Ok((pid, tid, comm.unwrap_or_else(|| defaults.comm.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::{decode, encode, to_proto};

    fn strings(table: &[&str]) -> Vec<String> {
        table.iter().map(|s| s.to_string()).collect()
    }

    /// A profile as Alloy's eBPF profiler sends it: CPU time only, 99 Hz.
    fn cpu_time_only() -> proto::Profile {
        proto::Profile {
            sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
            period_type: Some(proto::ValueType { r#type: 1, unit: 2 }),
            period: 10_101_010,
            string_table: strings(&["", "cpu", "nanoseconds", "main", "work"]),
            function: vec![
                proto::Function {
                    id: 1,
                    name: 3,
                    ..Default::default()
                },
                proto::Function {
                    id: 2,
                    name: 4,
                    ..Default::default()
                },
            ],
            location: vec![
                proto::Location {
                    id: 10,
                    line: vec![proto::Line {
                        function_id: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                proto::Location {
                    id: 20,
                    line: vec![proto::Line {
                        function_id: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            sample: vec![proto::Sample {
                location_id: vec![20, 10],
                value: vec![3 * 10_101_010],
                label: vec![],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn cpu_time_is_divided_by_the_period() {
        let defaults = Defaults {
            comm: "app".into(),
            ..Defaults::default()
        };
        let p = to_model(&cpu_time_only(), &defaults).unwrap();
        assert_eq!(p.meta.frequency_hz, Some(99));
        assert_eq!(p.samples.len(), 1);
        let s = &p.samples[0];
        assert_eq!((s.count, s.comm.as_str(), s.pid), (3, "app", 0));
        let Stack::Frames(frames) = &s.user else {
            panic!("{s:?}")
        };
        let names: Vec<String> = frames.iter().map(|&i| p.location_name(i)).collect();
        assert_eq!(names, ["work", "main"]);
        assert_eq!(s.kernel, Stack::Absent);
    }

    #[test]
    fn deep_stacks_keep_their_root_most_frames() {
        let defaults = Defaults {
            comm: "app".into(),
            max_depth: Some(1),
            ..Defaults::default()
        };
        let p = to_model(&cpu_time_only(), &defaults).unwrap();
        let Stack::Frames(frames) = &p.samples[0].user else {
            panic!("{:?}", p.samples[0])
        };
        let names: Vec<String> = frames.iter().map(|&i| p.location_name(i)).collect();
        assert_eq!(names, ["main"]);
    }

    #[test]
    fn heap_profiles_are_refused() {
        let mut p = cpu_time_only();
        p.string_table = strings(&["", "alloc_space", "bytes", "main", "work"]);
        let err = to_model(&p, &Defaults::default()).unwrap_err().to_string();
        assert!(err.contains("alloc_space/bytes"), "{err}");
    }

    #[test]
    fn bad_references_are_errors() {
        let mut p = cpu_time_only();
        p.sample[0].location_id.push(99);
        let err = to_model(&p, &Defaults::default()).unwrap_err().to_string();
        assert!(err.contains("no location with id 99"), "{err}");
        let mut p = cpu_time_only();
        p.function[0].name = 1000;
        let err = to_model(&p, &Defaults::default()).unwrap_err().to_string();
        assert!(err.contains("string index 1000"), "{err}");
    }

    /// A scorch profile: kernel and user frames, a missed stack, threads.
    fn scorch_profile() -> Profile {
        let mut b = ProfileBuilder::new(Meta {
            frequency_hz: Some(49),
            ..Meta::default()
        });
        let kernel = b.mapping(Mapping {
            start: 0xffff_0000,
            limit: 0xffff_ffff,
            offset: 0,
            file: "[kernel.kallsyms]".into(),
            build_id: None,
        });
        let exe = b.mapping(Mapping {
            start: 0x1000,
            limit: 0x9000,
            offset: 0,
            file: "/usr/bin/app".into(),
            build_id: Some("abcd".into()),
        });
        let at = |b: &mut ProfileBuilder, address, mapping, kind, name: &str| {
            b.location(Location {
                address,
                mapping: Some(mapping),
                kind,
                lines: vec![Line {
                    function: name.into(),
                    file: Some("x.c".into()),
                    line: Some(7),
                }],
            })
        };
        let sys = at(&mut b, 0xffff_0100, kernel, FrameKind::Kernel, "do_syscall");
        let read = at(&mut b, 0xffff_0200, kernel, FrameKind::Kernel, "ksys_read");
        let main = at(&mut b, 0x1100, exe, FrameKind::User, "main");
        let work = at(&mut b, 0x1200, exe, FrameKind::User, "work");
        let bare = b.location(Location {
            address: 0x1300,
            mapping: Some(exe),
            kind: FrameKind::User,
            lines: vec![],
        });
        b.sample(Sample {
            pid: 7,
            tid: Some(8),
            comm: "app".into(),
            user: Stack::Frames(vec![work, main]),
            kernel: Stack::Frames(vec![read, sys]),
            count: 5,
        });
        b.sample(Sample {
            pid: 7,
            tid: Some(9),
            comm: "app".into(),
            user: Stack::Missed,
            kernel: Stack::Frames(vec![sys]),
            count: 2,
        });
        b.sample(Sample {
            pid: 1,
            tid: None,
            comm: "init".into(),
            user: Stack::Frames(vec![bare, main]),
            kernel: Stack::Missed,
            count: 1,
        });
        b.build()
    }

    fn folded(p: &Profile) -> String {
        let opts = crate::TextOptions {
            annotate_kernel: true,
            delimited: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        crate::text::write_folded(p, &opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scorch_profiles_come_back_as_they_were() {
        let original = scorch_profile();
        let decoded = decode(&encode(&original)).unwrap();
        let back = to_model(&decoded, &Defaults::default()).unwrap();
        assert_eq!(folded(&back), folded(&original));
        assert!(folded(&back).contains("[Missed User Stack]"));
        let process = |p: &Profile| {
            let mut v: Vec<_> = p
                .samples
                .iter()
                .map(|s| (s.pid, s.tid, s.comm.clone(), s.count))
                .collect();
            v.sort();
            v
        };
        assert_eq!(process(&back), process(&original));
        assert_eq!(back.meta.frequency_hz, Some(49));
        let files: Vec<(&str, Option<&str>)> = back
            .mappings
            .iter()
            .map(|m| (m.file.as_str(), m.build_id.as_deref()))
            .collect();
        assert!(files.contains(&("/usr/bin/app", Some("abcd"))), "{files:?}");
        // Line numbers and files survive.
        assert!(back
            .locations
            .iter()
            .flat_map(|l| &l.lines)
            .all(|l| l.file.as_deref() == Some("x.c") && l.line == Some(7)));
        // And encoding the import again gives the same pprof stacks.
        let again = crate::pprof::stacks(&to_proto(&back)).unwrap();
        let mut first = crate::pprof::stacks(&decoded).unwrap();
        let mut again = again;
        first.sort();
        again.sort();
        assert_eq!(first, again);
    }
}
