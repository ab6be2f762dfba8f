//! Bounded reading of untrusted input: size limits and a gzip reader that
//! stops at a limit instead of filling memory.
//!
//! A few kilobytes of gzip can expand to gigabytes (a "decompression
//! bomb"), so compressed input is never decompressed without a bound: the
//! decoder is read through `take(limit + 1)`, and reading one byte past the
//! limit is an error that names the limit. Nothing past it is decompressed.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::Error;

/// The first two bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How much untrusted input a decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of the input as received (gzipped or not).
    pub compressed: u64,
    /// Most bytes after decompression.
    pub decompressed: u64,
}

impl Default for Limits {
    /// 16 MiB received, 16 MiB decompressed: four times Pyroscope's
    /// default `max-profile-size-bytes` (4 MiB), room for a whole host's
    /// eBPF profile, while the decoded form of that much pprof (several
    /// times larger) stays well under a gigabyte.
    fn default() -> Self {
        Limits {
            compressed: 16 << 20,
            decompressed: 16 << 20,
        }
    }
}

impl Limits {
    /// Fails when `data` is longer than [`Limits::compressed`].
    pub fn check_compressed(&self, what: &'static str, data: &[u8]) -> Result<(), Error> {
        if data.len() as u64 > self.compressed {
            return Err(Error::TooLarge {
                what,
                size: Some(data.len() as u64),
                limit: self.compressed,
                stage: Stage::Received,
            });
        }
        Ok(())
    }
}

/// Which size a [`Error::TooLarge`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The bytes as they were received.
    Received,
    /// The bytes after gzip decompression.
    Decompressed,
}

/// Decompresses gzip `data` (all its members), failing with
/// [`Error::TooLarge`] as soon as the output would exceed `limit` bytes;
/// `what` names the data in errors. The output grows in bounded steps, so
/// it never holds more than `limit` plus one step, whatever the input.
pub fn gunzip(what: &'static str, data: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    const STEP: usize = 64 << 10;
    let too_large = || Error::TooLarge {
        what,
        size: None,
        limit,
        stage: Stage::Decompressed,
    };
    let mut decoder = MultiGzDecoder::new(data);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; STEP];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Gzip(e)),
        };
        if (out.len() + n) as u64 > limit {
            return Err(too_large());
        }
        if out.len() + n > out.capacity() {
            // Grow by doubling, but never past the limit.
            let room = usize::try_from(limit).unwrap_or(usize::MAX);
            let target = (out.capacity() * 2).max(STEP).min(room).max(out.len() + n);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// `data` as it is, or decompressed (within `limits`) when it starts with
/// the gzip magic; `what` names the data in errors.
pub fn maybe_gunzip<'a>(
    what: &'static str,
    data: &'a [u8],
    limits: &Limits,
) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    limits.check_compressed(what, data)?;
    if data.starts_with(&GZIP_MAGIC) {
        Ok(gunzip(what, data, limits.decompressed)?.into())
    } else if data.len() as u64 > limits.decompressed {
        Err(Error::TooLarge {
            what,
            size: Some(data.len() as u64),
            limit: limits.decompressed,
            stage: Stage::Decompressed,
        })
    } else {
        Ok(data.into())
    }
}

/// `bytes` for people: `512 bytes`, `16 MiB`, `1.5 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    /// 1 GiB of zeros as gzip: one member of 1 MiB of zeros, repeated
    /// 1024 times (readers take concatenated members as one stream).
    pub(crate) fn bomb() -> Vec<u8> {
        let member = gzip(&vec![0u8; 1 << 20]);
        member.repeat(1024)
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = bomb();
        assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
        let err = gunzip("pprof profile", &bomb, 8 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    stage: Stage::Decompressed,
                    limit: 0x80_0000,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("pprof profile"), "{message}");
        assert!(message.contains("8 MiB"), "{message}");
        assert!(message.contains("decompress"), "{message}");
    }

    #[test]
    fn exactly_the_limit_is_accepted() {
        let data = vec![7u8; 1000];
        assert_eq!(gunzip("x", &gzip(&data), 1000).unwrap(), data);
        assert!(gunzip("x", &gzip(&data), 999).is_err());
    }

    #[test]
    fn concatenated_members_are_read() {
        let mut two = gzip(b"foo;bar 1\n");
        two.extend(gzip(b"foo;baz 2\n"));
        assert_eq!(gunzip("x", &two, 100).unwrap(), b"foo;bar 1\nfoo;baz 2\n");
    }

    #[test]
    fn received_size_is_checked_first() {
        let limits = Limits {
            compressed: 10,
            decompressed: 100,
        };
        let err = maybe_gunzip("body", &[0; 11], &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the body is 11 bytes, more than the limit of 10 bytes"
        );
        assert_eq!(&*maybe_gunzip("body", b"plain", &limits).unwrap(), b"plain");
    }

    #[test]
    fn the_output_never_holds_much_more_than_the_limit() {
        let limit = (3 << 20) + 12345;
        let data = vec![1u8; limit as usize];
        let out = gunzip("x", &gzip(&data), limit).unwrap();
        assert_eq!(out.len() as u64, limit);
        assert!(
            out.capacity() as u64 <= limit + (64 << 10),
            "capacity {} for a limit of {limit}",
            out.capacity()
        );
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data = gzip(&[1u8; 5000]);
        let err = gunzip("x", &data[..data.len() / 2], 1 << 20).unwrap_err();
        assert!(matches!(err, Error::Gzip(_)), "{err:?}");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(10), "10 bytes");
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
