//! Byte layouts: the dictionary entries and the window blobs.
//!
//! Everything the store keeps besides plain columns is a little byte string
//! made of LEB128 varints. These layouts are part of the on-disk format
//! (schema version 1); changing one means a new version.
//!
//! - A dictionary entry ([`MappingEntry`], [`LocationEntry`], a stack, a
//!   [`TraceEntry`], a string) refers to other entries by id. Optional ids
//!   and numbers are stored plus one, with 0 for "none".
//! - A window blob is `[format byte][raw length][zstd frame]`; the frame
//!   (with its content checksum, so damage is detected) holds the number of
//!   traces, the byte length of the id column, the trace ids as ascending
//!   deltas, then the counts. Columns compress better than pairs.
//!
//! Decoders never panic and never trust a length: every malformed input is a
//! [`DecodeError`].

use std::sync::Arc;

use scorch_formats::FrameKind;

use crate::error::Error;

/// What is wrong with a byte string that should be one of our layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads varints and byte strings from a slice, checking every bound.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next unsigned varint.
    #[inline]
    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        // Most varints in a window blob are one byte: small id deltas and
        // small counts.
        match self.buf.get(self.pos) {
            Some(&byte) if byte < 0x80 => {
                self.pos += 1;
                Ok(u64::from(byte))
            }
            _ => self.long_uvarint(),
        }
    }

    /// A varint of any length.
    #[cold]
    fn long_uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError("varint longer than 10 bytes"));
            }
        }
    }

    /// The next varint as a dictionary id (1 ..= i64::MAX).
    pub(crate) fn id(&mut self) -> Result<i64, DecodeError> {
        match i64::try_from(self.uvarint()?) {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(DecodeError("dictionary id out of range")),
        }
    }

    /// The next varint as an optional id stored plus one.
    pub(crate) fn opt_id(&mut self) -> Result<Option<i64>, DecodeError> {
        match self.uvarint()? {
            0 => Ok(None),
            v => i64::try_from(v - 1)
                .ok()
                .filter(|&id| id > 0)
                .map(Some)
                .ok_or(DecodeError("dictionary id out of range")),
        }
    }

    /// The next varint, which must fit in 32 bits.
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.uvarint()?).map_err(|_| DecodeError("number exceeds 32 bits"))
    }

    /// The next varint as an optional 32-bit number stored plus one.
    pub(crate) fn opt_u32(&mut self) -> Result<Option<u32>, DecodeError> {
        match self.uvarint()? {
            0 => Ok(None),
            v => u32::try_from(v - 1)
                .map(Some)
                .map_err(|_| DecodeError("number exceeds 32 bits")),
        }
    }

    /// A length that cannot exceed what is left of the input.
    pub(crate) fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(DecodeError("length exceeds the data")),
        }
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(DecodeError("truncated data"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError("string is not UTF-8"))
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

fn put_id(buf: &mut Vec<u8>, id: i64) {
    put_uvarint(buf, id as u64);
}

fn put_opt(buf: &mut Vec<u8>, v: Option<u64>) {
    put_uvarint(buf, v.map_or(0, |v| v + 1));
}

/// A memory mapping; strings by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappingEntry {
    pub(crate) start: u64,
    pub(crate) limit: u64,
    pub(crate) offset: u64,
    pub(crate) file: i64,
    pub(crate) build_id: Option<i64>,
}

impl MappingEntry {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, self.start);
        put_uvarint(buf, self.limit);
        put_uvarint(buf, self.offset);
        put_id(buf, self.file);
        put_opt(buf, self.build_id.map(|id| id as u64));
    }

    pub(crate) fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let entry = Self {
            start: r.uvarint()?,
            limit: r.uvarint()?,
            offset: r.uvarint()?,
            file: r.id()?,
            build_id: r.opt_id()?,
        };
        r.finish()?;
        Ok(entry)
    }
}

/// One source-level frame of a location; strings by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LineEntry {
    pub(crate) function: i64,
    pub(crate) file: Option<i64>,
    pub(crate) line: Option<u32>,
}

/// An address with its mapping (by id) and functions. Cheap to clone: the
/// lines are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocationEntry {
    pub(crate) address: u64,
    pub(crate) mapping: Option<i64>,
    pub(crate) kind: FrameKind,
    pub(crate) lines: Arc<[LineEntry]>,
}

impl LocationEntry {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, self.address);
        put_opt(buf, self.mapping.map(|id| id as u64));
        put_uvarint(
            buf,
            match self.kind {
                FrameKind::Kernel => 0,
                FrameKind::User => 1,
                FrameKind::Jit => 2,
            },
        );
        put_uvarint(buf, self.lines.len() as u64);
        for line in self.lines.iter() {
            put_id(buf, line.function);
            put_opt(buf, line.file.map(|id| id as u64));
            put_opt(buf, line.line.map(u64::from));
        }
    }

    pub(crate) fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let address = r.uvarint()?;
        let mapping = r.opt_id()?;
        let kind = match r.uvarint()? {
            0 => FrameKind::Kernel,
            1 => FrameKind::User,
            2 => FrameKind::Jit,
            _ => return Err(DecodeError("unknown frame kind")),
        };
        let n = r.len()?;
        let lines = shared_slice::<_, 8>(n, || {
            Ok(LineEntry {
                function: r.id()?,
                file: r.opt_id()?,
                line: r.opt_u32()?,
            })
        })?;
        r.finish()?;
        Ok(Self {
            address,
            mapping,
            kind,
            lines,
        })
    }
}

/// Encodes a stack: location ids, leaf first.
pub(crate) fn encode_stack(locations: &[i64], buf: &mut Vec<u8>) {
    put_uvarint(buf, locations.len() as u64);
    for &id in locations {
        put_id(buf, id);
    }
}

/// Decodes a stack into location ids, leaf first.
pub(crate) fn decode_stack(data: &[u8]) -> Result<Arc<[i64]>, DecodeError> {
    let mut r = Reader::new(data);
    let n = r.len()?;
    let ids = shared_slice::<_, 128>(n, || r.id())?;
    r.finish()?;
    Ok(ids)
}

/// `n` items read by `item`, in one allocation when `n <= N` (the usual
/// case: this runs for every entry a cold query reads).
fn shared_slice<T: Copy + Default, const N: usize>(
    n: usize,
    mut item: impl FnMut() -> Result<T, DecodeError>,
) -> Result<Arc<[T]>, DecodeError> {
    if n <= N {
        let mut items = [T::default(); N];
        for slot in &mut items[..n] {
            *slot = item()?;
        }
        Ok(Arc::from(&items[..n]))
    } else {
        (0..n).map(|_| item()).collect()
    }
}

/// One half of a sample's stack, as a trace refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StackRef {
    /// No such stack.
    Absent,
    /// The stack could not be recorded.
    Missed,
    /// The stack with this id.
    Frames(i64),
}

impl StackRef {
    fn encode(self, buf: &mut Vec<u8>) {
        put_uvarint(
            buf,
            match self {
                StackRef::Absent => 0,
                StackRef::Missed => 1,
                StackRef::Frames(id) => id as u64 + 1,
            },
        );
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.uvarint()? {
            0 => StackRef::Absent,
            1 => StackRef::Missed,
            v => StackRef::Frames(
                i64::try_from(v - 1).map_err(|_| DecodeError("stack id out of range"))?,
            ),
        })
    }
}

/// Everything that identifies a sample except its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceEntry {
    pub(crate) pid: u32,
    pub(crate) tid: Option<u32>,
    pub(crate) comm: i64,
    pub(crate) user: StackRef,
    pub(crate) kernel: StackRef,
}

impl TraceEntry {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, u64::from(self.pid));
        put_opt(buf, self.tid.map(u64::from));
        put_id(buf, self.comm);
        self.user.encode(buf);
        self.kernel.encode(buf);
    }

    pub(crate) fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let entry = Self {
            pid: r.u32()?,
            tid: r.opt_u32()?,
            comm: r.id()?,
            user: StackRef::decode(&mut r)?,
            kernel: StackRef::decode(&mut r)?,
        };
        r.finish()?;
        Ok(entry)
    }
}

/// Encodes a label set (already sorted by key) canonically.
pub(crate) fn encode_labels<'a>(
    labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    buf: &mut Vec<u8>,
) {
    put_uvarint(buf, labels.len() as u64);
    for (key, value) in labels {
        put_uvarint(buf, key.len() as u64);
        buf.extend_from_slice(key.as_bytes());
        put_uvarint(buf, value.len() as u64);
        buf.extend_from_slice(value.as_bytes());
    }
}

/// Decodes a label set.
pub(crate) fn decode_labels(data: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut r = Reader::new(data);
    let n = r.len()?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.str()?.to_string();
        let value = r.str()?.to_string();
        labels.push((key, value));
    }
    r.finish()?;
    Ok(labels)
}

/// The first byte of every window blob.
const BLOB_FORMAT: u8 = 1;

/// Largest decompressed window blob accepted (a corrupt length must not make
/// us allocate without bound).
const MAX_RAW_BLOB: usize = 256 << 20;

/// Compresses windows: a zstd context and a scratch buffer, reused.
pub(crate) struct BlobEncoder {
    compressor: zstd::bulk::Compressor<'static>,
    raw: Vec<u8>,
    counts: Vec<u8>,
}

impl BlobEncoder {
    /// An encoder at the given zstd level.
    pub(crate) fn new(level: i32) -> std::io::Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
        Ok(Self {
            compressor,
            raw: Vec::new(),
            counts: Vec::new(),
        })
    }

    /// Encodes `(trace id, count)` pairs, sorted by strictly ascending id.
    pub(crate) fn encode(&mut self, traces: &[(i64, u64)]) -> Result<Vec<u8>, Error> {
        self.raw.clear();
        self.counts.clear();
        let mut deltas = Vec::with_capacity(traces.len() * 2);
        let mut previous = 0i64;
        for &(id, count) in traces {
            put_uvarint(&mut deltas, (id - previous) as u64);
            put_uvarint(&mut self.counts, count);
            previous = id;
        }
        put_uvarint(&mut self.raw, traces.len() as u64);
        put_uvarint(&mut self.raw, deltas.len() as u64);
        self.raw.extend_from_slice(&deltas);
        self.raw.extend_from_slice(&self.counts);
        if self.raw.len() > MAX_RAW_BLOB {
            return Err(Error::InvalidWindow(format!(
                "{} distinct stacks make a window larger than the {} MiB a window may hold; \
                 write shorter windows",
                traces.len(),
                MAX_RAW_BLOB >> 20
            )));
        }
        let frame = self
            .compressor
            .compress(&self.raw)
            .map_err(|e| Error::InvalidWindow(format!("zstd cannot compress the window: {e}")))?;
        let mut blob = Vec::with_capacity(frame.len() + 6);
        blob.push(BLOB_FORMAT);
        put_uvarint(&mut blob, self.raw.len() as u64);
        blob.extend_from_slice(&frame);
        Ok(blob)
    }
}

/// Decompresses windows: a zstd context and buffers, reused.
pub(crate) struct BlobDecoder {
    decompressor: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    traces: Vec<(i64, u64)>,
}

impl BlobDecoder {
    /// A decoder.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            decompressor: zstd::bulk::Decompressor::new()?,
            raw: Vec::new(),
            traces: Vec::new(),
        })
    }

    /// Decodes a whole blob into `(trace id, count)` pairs; nothing is
    /// returned unless all of it is valid.
    pub(crate) fn decode(&mut self, blob: &[u8]) -> Result<&[(i64, u64)], DecodeError> {
        let mut header = Reader::new(blob);
        if header.bytes(1)? != [BLOB_FORMAT] {
            return Err(DecodeError("unknown window blob format"));
        }
        let raw_len = usize::try_from(header.uvarint()?)
            .ok()
            .filter(|&n| n <= MAX_RAW_BLOB)
            .ok_or(DecodeError("window blob length out of range"))?;
        let frame = header.bytes(header.remaining())?;
        self.raw.clear();
        self.raw.reserve(raw_len);
        let n = self
            .decompressor
            .decompress_to_buffer(frame, &mut self.raw)
            .map_err(|_| DecodeError("zstd frame is damaged"))?;
        if n != raw_len {
            return Err(DecodeError("window blob length mismatch"));
        }
        let mut r = Reader::new(&self.raw);
        let count = r.uvarint()?;
        let ids_len = r.len()?;
        let mut ids = Reader::new(r.bytes(ids_len)?);
        let counts_len = r.remaining();
        let mut counts = Reader::new(r.bytes(counts_len)?);
        // Each pair takes at least two bytes, so `count` is bounded by the data.
        if count > self.raw.len() as u64 {
            return Err(DecodeError("trace count exceeds the data"));
        }
        self.traces.clear();
        self.traces.reserve(count as usize);
        let mut id = 0i64;
        for _ in 0..count {
            let delta = ids.uvarint()?;
            id = i64::try_from(delta)
                .ok()
                .and_then(|d| id.checked_add(d))
                .filter(|&next| next > 0)
                .ok_or(DecodeError("trace id out of range"))?;
            self.traces.push((id, counts.uvarint()?));
        }
        ids.finish()?;
        counts.finish()?;
        Ok(&self.traces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.uvarint(), Ok(v));
            assert_eq!(r.finish(), Ok(()));
        }
    }

    #[test]
    fn overlong_varints_are_errors() {
        let eleven = [0xffu8; 11];
        assert!(Reader::new(&eleven).uvarint().is_err());
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow).uvarint().is_err());
        assert!(Reader::new(&[0x80]).uvarint().is_err());
    }

    #[test]
    fn entries_round_trip() {
        let location = LocationEntry {
            address: 0xffff_ffff_8100_0000,
            mapping: Some(3),
            kind: FrameKind::Jit,
            lines: Arc::from([
                LineEntry {
                    function: 1,
                    file: Some(2),
                    line: Some(0),
                },
                LineEntry {
                    function: 9,
                    file: None,
                    line: None,
                },
            ]),
        };
        let mut buf = Vec::new();
        location.encode(&mut buf);
        assert_eq!(LocationEntry::decode(&buf), Ok(location));

        let trace = TraceEntry {
            pid: u32::MAX,
            tid: Some(0),
            comm: 7,
            user: StackRef::Frames(1),
            kernel: StackRef::Missed,
        };
        buf.clear();
        trace.encode(&mut buf);
        assert_eq!(TraceEntry::decode(&buf), Ok(trace));

        let mapping = MappingEntry {
            start: 1,
            limit: 2,
            offset: 3,
            file: 4,
            build_id: None,
        };
        buf.clear();
        mapping.encode(&mut buf);
        assert_eq!(MappingEntry::decode(&buf), Ok(mapping));

        buf.clear();
        encode_stack(&[5, 1, 5], &mut buf);
        assert_eq!(decode_stack(&buf).as_deref(), Ok(&[5, 1, 5][..]));
        // Longer than what is decoded on the stack.
        let deep: Vec<i64> = (1..=300).collect();
        buf.clear();
        encode_stack(&deep, &mut buf);
        assert_eq!(decode_stack(&buf).as_deref(), Ok(&deep[..]));

        buf.clear();
        encode_labels([("host", "a"), ("pid", "")].into_iter(), &mut buf);
        assert_eq!(
            decode_labels(&buf),
            Ok(vec![
                ("host".to_string(), "a".to_string()),
                ("pid".to_string(), String::new())
            ])
        );
    }

    #[test]
    fn blobs_round_trip() {
        let traces: Vec<(i64, u64)> = (1..1000).map(|i| (i * 3, i as u64 % 7 + 1)).collect();
        let blob = BlobEncoder::new(3).unwrap().encode(&traces).unwrap();
        let mut decoder = BlobDecoder::new().unwrap();
        assert_eq!(decoder.decode(&blob).unwrap(), &traces[..]);
        let empty = BlobEncoder::new(3).unwrap().encode(&[]).unwrap();
        assert!(decoder.decode(&empty).unwrap().is_empty());
    }

    /// No byte string makes a decoder panic: every truncation and every
    /// single-byte change of valid data is either decoded or refused.
    #[test]
    fn damaged_data_is_refused_without_panics() {
        let traces: Vec<(i64, u64)> = (1..200).map(|i| (i * 5, 1 << (i % 40))).collect();
        let blob = BlobEncoder::new(1).unwrap().encode(&traces).unwrap();
        let mut decoder = BlobDecoder::new().unwrap();
        for cut in 0..blob.len() {
            assert!(decoder.decode(&blob[..cut]).is_err());
        }
        for i in 0..blob.len() {
            let mut damaged = blob.clone();
            damaged[i] ^= 0x5a;
            let _ = decoder.decode(&damaged);
        }
        let mut location = Vec::new();
        LocationEntry {
            address: 1 << 60,
            mapping: Some(1 << 40),
            kind: FrameKind::User,
            lines: Arc::from([LineEntry {
                function: 1,
                file: Some(2),
                line: Some(3),
            }]),
        }
        .encode(&mut location);
        for cut in 0..location.len() {
            assert!(LocationEntry::decode(&location[..cut]).is_err());
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let len = (seed % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = LocationEntry::decode(&bytes);
            let _ = TraceEntry::decode(&bytes);
            let _ = MappingEntry::decode(&bytes);
            let _ = decode_stack(&bytes);
            let _ = decode_labels(&bytes);
            let _ = decoder.decode(&bytes);
        }
    }
}
