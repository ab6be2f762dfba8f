//! pprof: Google's `profile.proto`, gzipped.
//!
//! pprof is what `go tool pprof`, Pyroscope, Parca and most profile viewers
//! read. Its shape is the model's: samples point at locations (an address in
//! a mapping), a location holds one line per function at that address,
//! inlined callee first, and every string lives once in a string table
//! whose entry 0 is `""`. The messages are written by hand in [`proto`]
//! with prost's derive macros, so no protoc is needed.
//!
//! What [`encode`] writes:
//!
//! - two values per sample: `samples/count` and `cpu/nanoseconds` (count
//!   times [`Meta::period_ns`](crate::Meta::period_ns)); `period_type` is
//!   `cpu/nanoseconds`; for an off-CPU profile one value, `off-cpu/nanoseconds`,
//!   which is also the period type (period 1); `time_nanos` and
//!   `duration_nanos` come from the meta, the target is a comment;
//! - every mapping and location of the model, ids from 1 in model order;
//!   a mapping's `has_*` flags say what symbolization found in it;
//! - functions deduplicated by (name, file); `system_name` is the name;
//! - each sample's location ids leaf first: kernel leaf … kernel root, then
//!   user leaf … user root; a missed stack becomes one pseudo-location whose
//!   function is `[Missed Kernel Stack]` / `[Missed User Stack]`;
//! - labels `pid` and `tid` (numbers) and `comm` (a string).
//!
//! An unsymbolized location has no lines; [`stacks`] names it as the model
//! does (`libfoo.so+0x1a2b`, `[unknown]`), and pprof tools show its address.
//! The whole profile is written: [`TextOptions`](crate::TextOptions) do not
//! apply.
//!
//! [`decode`] reads a profile back (gzipped or not) and [`stacks`] flattens
//! it into named stacks, for tests and for anything that ingests pprof.
//! [`decode_limited`] reads untrusted input: its size, compressed and
//! decompressed, is bounded (see [`crate::gunzip`]), so a gzip bomb or a
//! huge upload is an error, not an exhausted memory.

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use crate::gunzip::{maybe_gunzip, Limits};
use crate::model::{offset_name, Measure, Profile, Stack, UNKNOWN};
use crate::text::{MISSED_KERNEL, MISSED_USER};
use crate::Error;

/// The `profile.proto` messages (package `perftools.profiles`).
pub mod proto {
    /// A whole profile.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Profile {
        /// What each sample value measures.
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        /// The samples.
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        /// Address ranges of mapped binaries.
        #[prost(message, repeated, tag = "3")]
        pub mapping: Vec<Mapping>,
        /// Program locations (addresses).
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        /// Functions referred to by locations' lines.
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        /// Every string of the profile; entry 0 is `""`.
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        /// Regexp (string index) of frames to drop with their callees.
        #[prost(int64, tag = "7")]
        pub drop_frames: i64,
        /// Regexp (string index) of frames to keep despite `drop_frames`.
        #[prost(int64, tag = "8")]
        pub keep_frames: i64,
        /// Start of collection, nanoseconds since the Unix epoch.
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        /// Length of collection, nanoseconds.
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        /// What the period counts.
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        /// Events between two samples.
        #[prost(int64, tag = "12")]
        pub period: i64,
        /// Free-form comments (string indices).
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
        /// Preferred sample type (string index); 0 means the last one.
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    /// A type and unit, both string indices.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ValueType {
        /// Type, e.g. `cpu` (string index).
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        /// Unit, e.g. `nanoseconds` (string index).
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// Values measured at one stack.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Sample {
        /// Location ids, leaf first.
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        /// One value per sample type.
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        /// Extra context such as the thread id.
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    /// A key with a string or a number.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Label {
        /// Key (string index).
        #[prost(int64, tag = "1")]
        pub key: i64,
        /// String value (string index), 0 for a numeric label.
        #[prost(int64, tag = "2")]
        pub str: i64,
        /// Numeric value.
        #[prost(int64, tag = "3")]
        pub num: i64,
        /// Unit of `num` (string index).
        #[prost(int64, tag = "4")]
        pub num_unit: i64,
    }

    /// A binary mapped into memory.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Mapping {
        /// Unique nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// First mapped address.
        #[prost(uint64, tag = "2")]
        pub memory_start: u64,
        /// One past the last mapped address.
        #[prost(uint64, tag = "3")]
        pub memory_limit: u64,
        /// File offset of `memory_start`.
        #[prost(uint64, tag = "4")]
        pub file_offset: u64,
        /// Path of the file (string index).
        #[prost(int64, tag = "5")]
        pub filename: i64,
        /// Build id (string index).
        #[prost(int64, tag = "6")]
        pub build_id: i64,
        /// Some location in it has function names.
        #[prost(bool, tag = "7")]
        pub has_functions: bool,
        /// Some location in it has source file names.
        #[prost(bool, tag = "8")]
        pub has_filenames: bool,
        /// Some location in it has line numbers.
        #[prost(bool, tag = "9")]
        pub has_line_numbers: bool,
        /// Some location in it has inlined functions.
        #[prost(bool, tag = "10")]
        pub has_inline_frames: bool,
    }

    /// An address and the functions at it.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Location {
        /// Unique nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Mapping id, 0 when unknown.
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        /// Instruction address.
        #[prost(uint64, tag = "3")]
        pub address: u64,
        /// Functions at the address, inlined callee first, caller last.
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
        /// Several symbols share this address (identical code folding).
        #[prost(bool, tag = "5")]
        pub is_folded: bool,
    }

    /// A function and a source line in it.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Line {
        /// Function id.
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        /// Source line, 0 when unknown.
        #[prost(int64, tag = "2")]
        pub line: i64,
        /// Source column, 0 when unknown.
        #[prost(int64, tag = "3")]
        pub column: i64,
    }

    /// A function.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Function {
        /// Unique nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Human-readable name (string index).
        #[prost(int64, tag = "2")]
        pub name: i64,
        /// Name as the system knows it, e.g. mangled (string index).
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        /// Source file (string index).
        #[prost(int64, tag = "4")]
        pub filename: i64,
        /// First line of the function, 0 when unknown.
        #[prost(int64, tag = "5")]
        pub start_line: i64,
    }
}

/// Writes `profile` as gzipped pprof.
pub fn write<W: Write>(profile: &Profile, mut writer: W) -> Result<(), Error> {
    writer.write_all(&encode(profile))?;
    writer.flush()?;
    Ok(())
}

/// `profile` as gzipped pprof bytes.
pub fn encode(profile: &Profile) -> Vec<u8> {
    let bytes = to_proto(profile).encode_to_vec();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to memory cannot fail: neither result can be an error.
    let _ = gzip.write_all(&bytes);
    gzip.finish().unwrap_or_default()
}

/// Reads a pprof profile, gzipped (it starts with the gzip magic) or not,
/// within the default [`Limits`].
pub fn decode(data: &[u8]) -> Result<proto::Profile, Error> {
    decode_limited(data, &Limits::default())
}

/// Reads a pprof profile from untrusted input: gzipped or not, at most
/// `limits.compressed` bytes as given and `limits.decompressed` bytes of
/// protobuf; a larger one is [`Error::TooLarge`] and is never decompressed
/// past the limit.
pub fn decode_limited(data: &[u8], limits: &Limits) -> Result<proto::Profile, Error> {
    let raw = maybe_gunzip("pprof profile", data, limits)?;
    Ok(proto::Profile::decode(&*raw)?)
}

/// How much a pprof profile holds, counted on its protobuf bytes without
/// decoding them: what decoding would cost is known before it is paid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Samples.
    pub samples: u64,
    /// Locations.
    pub locations: u64,
    /// Functions.
    pub functions: u64,
    /// Mappings.
    pub mappings: u64,
    /// Entries of the string table.
    pub strings: u64,
    /// Most location ids of one sample: the deepest stack.
    pub max_depth: u64,
    /// Bytes the decoded messages take at most (a bound, not a measure).
    pub decoded_bytes: u64,
}

/// Counts what the (uncompressed) `profile.proto` bytes in `data` hold;
/// malformed protobuf is [`Error::InvalidPprof`].
pub fn census(data: &[u8]) -> Result<Census, Error> {
    use std::mem::size_of;
    let mut census = Census::default();
    let mut wire = Wire(data);
    // Decoded, every element costs its struct, and a message's own
    // repeated scalars cost eight bytes per wire byte at most.
    let mut decoded = data.len() as u64;
    while let Some((field, value)) = wire.field()? {
        let (element, count) = match (field, value) {
            (2, Value::Bytes(sample)) => {
                census.samples += 1;
                let depth = census_sample(sample)?;
                census.max_depth = census.max_depth.max(depth);
                decoded += 8 * sample.len() as u64;
                (size_of::<proto::Sample>(), &mut census.samples)
            }
            (3, _) => (size_of::<proto::Mapping>(), &mut census.mappings),
            (4, Value::Bytes(location)) => {
                decoded += size_of::<proto::Line>() as u64 * location.len() as u64 / 2;
                (size_of::<proto::Location>(), &mut census.locations)
            }
            (5, _) => (size_of::<proto::Function>(), &mut census.functions),
            (6, _) => (size_of::<String>(), &mut census.strings),
            (13, Value::Bytes(packed)) => {
                decoded += 8 * packed.len() as u64;
                continue;
            }
            _ => {
                decoded += size_of::<proto::ValueType>() as u64;
                continue;
            }
        };
        decoded += element as u64;
        if field != 2 {
            *count += 1;
        }
    }
    census.decoded_bytes = decoded;
    Ok(census)
}

/// The number of location ids of one `Sample` message.
fn census_sample(data: &[u8]) -> Result<u64, Error> {
    let mut wire = Wire(data);
    let mut depth = 0;
    while let Some((field, value)) = wire.field()? {
        match (field, value) {
            (1, Value::Varint) => depth += 1,
            // Packed varints: one ends at each byte below 0x80.
            (1, Value::Bytes(packed)) => {
                depth += packed.iter().filter(|&&b| b < 0x80).count() as u64
            }
            _ => {}
        }
    }
    Ok(depth)
}

/// A protobuf field's value, as far as counting needs it.
enum Value<'a> {
    Varint,
    Fixed,
    Bytes(&'a [u8]),
}

/// Protobuf wire format, read field by field.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(Error::InvalidPprof(
            "a varint is cut off or too long".into(),
        ))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Error> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.0.len())
            .ok_or_else(|| {
                Error::InvalidPprof(format!(
                    "a field of {n} bytes runs past the end of its message"
                ))
            })?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next field number and value; `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, Error> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => {
                self.varint()?;
                Value::Varint
            }
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            other => {
                return Err(Error::InvalidPprof(format!(
                    "wire type {other} of field {} is not one pprof uses",
                    key >> 3
                )))
            }
        };
        Ok(Some((key >> 3, value)))
    }
}

/// `profile` as a pprof message.
pub fn to_proto(profile: &Profile) -> proto::Profile {
    let mut encoder = Encoder::default();
    encoder.encode(profile);
    encoder.out
}

/// A sample's stack as names, root first, and its values.
pub type NamedStack = (Vec<String>, Vec<i64>);

/// Each sample's stack as names, root first, with its values (for
/// profiles written by [`encode`]: the count, then CPU nanoseconds; for
/// off-CPU profiles, nanoseconds off CPU).
///
/// Names follow the model: a location's functions outermost first, an
/// unsymbolized one as `module+0xoffset` or `[unknown]`.
pub fn stacks(profile: &proto::Profile) -> Result<Vec<NamedStack>, Error> {
    let locations: HashMap<u64, &proto::Location> =
        profile.location.iter().map(|l| (l.id, l)).collect();
    let functions: HashMap<u64, &proto::Function> =
        profile.function.iter().map(|f| (f.id, f)).collect();
    let mappings: HashMap<u64, &proto::Mapping> =
        profile.mapping.iter().map(|m| (m.id, m)).collect();
    let string = |index: i64| -> Result<&str, Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map(String::as_str)
            .ok_or_else(|| Error::InvalidPprof(format!("string index {index} is out of the table")))
    };
    let mut result = Vec::with_capacity(profile.sample.len());
    for sample in &profile.sample {
        let mut stack = Vec::new();
        for id in sample.location_id.iter().rev() {
            let location = locations
                .get(id)
                .ok_or_else(|| Error::InvalidPprof(format!("no location with id {id}")))?;
            if location.line.is_empty() {
                let name = match mappings.get(&location.mapping_id) {
                    Some(m) => offset_name(
                        string(m.filename)?,
                        m.memory_start,
                        m.file_offset,
                        location.address,
                    ),
                    None => UNKNOWN.to_string(),
                };
                stack.push(name);
            }
            for line in location.line.iter().rev() {
                let function = functions.get(&line.function_id).ok_or_else(|| {
                    Error::InvalidPprof(format!("no function with id {}", line.function_id))
                })?;
                stack.push(string(function.name)?.to_string());
            }
        }
        result.push((stack, sample.value.clone()));
    }
    Ok(result)
}

/// Builds a pprof message, interning strings and functions.
#[derive(Default)]
struct Encoder {
    out: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, Option<String>), u64>,
    /// Ids of pseudo-locations made on demand, by function name (`None`
    /// for a sample's index that points at no location).
    pseudo: HashMap<Option<&'static str>, u64>,
}

impl Encoder {
    fn encode(&mut self, profile: &Profile) {
        self.string("");
        let meta = &profile.meta;
        let off_cpu = meta.measure == Measure::OffCpuNanoseconds;
        if off_cpu {
            let nanos = self.value_type("off-cpu", "nanoseconds");
            self.out.sample_type = vec![nanos.clone()];
            self.out.period_type = Some(nanos);
        } else {
            let count = self.value_type("samples", "count");
            let cpu = self.value_type("cpu", "nanoseconds");
            self.out.sample_type = vec![count, cpu.clone()];
            self.out.period_type = Some(cpu);
        }
        self.out.period = saturate(meta.period_ns());
        self.out.time_nanos = saturate(meta.start_unix_ns);
        self.out.duration_nanos = saturate(meta.duration_ns);
        if !meta.target.is_empty() {
            let comment = self.string(&meta.target);
            self.out.comment.push(comment);
        }

        for (i, m) in profile.mappings.iter().enumerate() {
            let mapping = proto::Mapping {
                id: i as u64 + 1,
                memory_start: m.start,
                memory_limit: m.limit,
                file_offset: m.offset,
                filename: self.string(&m.file),
                build_id: m.build_id.as_deref().map_or(0, |b| self.string(b)),
                ..Default::default()
            };
            self.out.mapping.push(mapping);
        }
        for l in &profile.locations {
            if let Some(mapping) = l.mapping.and_then(|m| self.out.mapping.get_mut(m)) {
                mapping.has_functions |= !l.lines.is_empty();
                mapping.has_filenames |= l.lines.iter().any(|line| line.file.is_some());
                mapping.has_line_numbers |= l.lines.iter().any(|line| line.line.is_some());
                mapping.has_inline_frames |= l.lines.len() > 1;
            }
        }

        for (i, l) in profile.locations.iter().enumerate() {
            let line = l
                .lines
                .iter()
                .map(|line| proto::Line {
                    function_id: self.function(&line.function, line.file.as_deref()),
                    line: line.line.map_or(0, i64::from),
                    column: 0,
                })
                .collect();
            let mapping_id = match l.mapping {
                Some(m) if m < profile.mappings.len() => m as u64 + 1,
                _ => 0,
            };
            self.out.location.push(proto::Location {
                id: i as u64 + 1,
                mapping_id,
                address: l.address,
                line,
                is_folded: false,
            });
        }

        let pid = self.string("pid");
        let tid = self.string("tid");
        let comm = self.string("comm");
        for s in &profile.samples {
            let mut location_id = Vec::new();
            for (stack, missed) in [(&s.kernel, MISSED_KERNEL), (&s.user, MISSED_USER)] {
                match stack {
                    Stack::Frames(frames) => {
                        for &index in frames {
                            let id = if index < profile.locations.len() {
                                index as u64 + 1
                            } else {
                                self.pseudo_location(None)
                            };
                            location_id.push(id);
                        }
                    }
                    Stack::Missed => location_id.push(self.pseudo_location(Some(missed))),
                    Stack::Absent => {}
                }
            }
            let mut label = vec![proto::Label {
                key: pid,
                num: i64::from(s.pid),
                ..Default::default()
            }];
            if let Some(t) = s.tid {
                label.push(proto::Label {
                    key: tid,
                    num: i64::from(t),
                    ..Default::default()
                });
            }
            label.push(proto::Label {
                key: comm,
                str: self.string(&s.comm),
                ..Default::default()
            });
            let count = saturate(s.count);
            let value = if off_cpu {
                vec![count]
            } else {
                vec![count, saturate(s.count.saturating_mul(meta.period_ns()))]
            };
            self.out.sample.push(proto::Sample {
                location_id,
                value,
                label,
            });
        }
    }

    /// Index of `s` in the string table, adding it if new.
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.out.string_table.len() as i64;
        self.out.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    fn value_type(&mut self, r#type: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(r#type),
            unit: self.string(unit),
        }
    }

    /// Id of the function (`name`, `file`), adding it if new.
    fn function(&mut self, name: &str, file: Option<&str>) -> u64 {
        let key = (name.to_string(), file.map(str::to_string));
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.out.function.len() as u64 + 1;
        let name = self.string(name);
        let filename = file.map_or(0, |f| self.string(f));
        self.out.function.push(proto::Function {
            id,
            name,
            system_name: name,
            filename,
            start_line: 0,
        });
        self.functions.insert(key, id);
        id
    }

    /// Id of a location outside the model: one with a single function
    /// `name`, or with nothing for `None`.
    fn pseudo_location(&mut self, name: Option<&'static str>) -> u64 {
        if let Some(&id) = self.pseudo.get(&name) {
            return id;
        }
        let id = self.out.location.len() as u64 + 1;
        let line = match name {
            Some(name) => vec![proto::Line {
                function_id: self.function(name, None),
                line: 0,
                column: 0,
            }],
            None => Vec::new(),
        };
        self.out.location.push(proto::Location {
            id,
            line,
            ..Default::default()
        });
        self.pseudo.insert(name, id);
        id
    }
}

/// `value` as pprof's int64, saturating.
fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod census_tests {
    use super::*;

    #[test]
    fn counts_match_the_decoded_profile() {
        let profile = proto::Profile {
            sample: vec![
                proto::Sample {
                    location_id: vec![1, 2, 300],
                    value: vec![1],
                    label: vec![],
                },
                proto::Sample {
                    location_id: vec![2],
                    value: vec![5],
                    label: vec![],
                },
            ],
            location: vec![proto::Location::default(); 4],
            function: vec![proto::Function::default(); 2],
            mapping: vec![proto::Mapping::default()],
            string_table: vec![String::new(), "main".into(), "cpu".into()],
            comment: vec![1, 2],
            ..Default::default()
        };
        let bytes = profile.encode_to_vec();
        let c = census(&bytes).unwrap();
        assert_eq!(
            (
                c.samples,
                c.locations,
                c.functions,
                c.mappings,
                c.strings,
                c.max_depth
            ),
            (2, 4, 2, 1, 3, 3)
        );
        assert!(c.decoded_bytes >= bytes.len() as u64);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        assert!(census(&[0x12, 0x05, 1]).is_err());
        assert!(census(&[0xff; 11]).is_err());
        assert!(census(&[0x0b]).is_err());
        assert_eq!(census(&[]).unwrap(), Census::default());
    }
}
