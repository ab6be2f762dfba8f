//! One request's allowance of decompressed bytes, samples and symbols,
//! drawn down by each profile it carries, so a request with many profiles
//! costs no more than one with a single big profile.
//!
//! A pprof profile is counted on its protobuf bytes ([`census`]) before
//! prost decodes it: decoding a profile of millions of tiny samples would
//! take many times its size in memory, so such a profile is refused first.

use std::borrow::Cow;

use scorch_formats::gunzip::{human_size, maybe_gunzip, Limits};
use scorch_formats::pprof::{census, proto};
use scorch_formats::Error;

use super::IngestLimits;
use crate::error::ApiError;

/// What is left of a request's allowance.
pub struct Budget {
    limits: IngestLimits,
    decompressed: u64,
    samples: u64,
    symbols: u64,
    decoded: u64,
}

impl Budget {
    /// The whole allowance of `limits`.
    pub fn new(limits: &IngestLimits) -> Budget {
        Budget {
            limits: *limits,
            decompressed: limits.decompressed,
            samples: limits.samples,
            symbols: limits.symbols,
            decoded: limits.decoded,
        }
    }

    /// `data` (gzipped or not) uncompressed, drawn from the allowance.
    pub fn bytes<'a>(
        &mut self,
        what: &'static str,
        data: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, Error> {
        let limits = Limits {
            compressed: self.limits.decompressed,
            decompressed: self.decompressed,
        };
        let out = maybe_gunzip(what, data, &limits).map_err(|e| match e {
            Error::TooLarge { what, size, .. } => Error::TooLarge {
                what,
                size,
                limit: self.limits.decompressed,
                stage: scorch_formats::gunzip::Stage::Decompressed,
            },
            other => other,
        })?;
        self.decompressed -= out.len() as u64;
        Ok(out)
    }

    /// The pprof profile in `data` (gzipped or not), decoded when it fits.
    pub fn pprof(&mut self, data: &[u8]) -> Result<proto::Profile, ApiError> {
        let raw = self
            .bytes("pprof profile", data)
            .map_err(ApiError::from_format)?;
        let count = census(&raw).map_err(ApiError::from_format)?;
        self.draw_samples(count.samples)?;
        for (what, n) in [
            ("locations", count.locations),
            ("functions", count.functions),
            ("strings", count.strings),
        ] {
            if n > self.symbols {
                return Err(ApiError::too_large(format!(
                    "the request's profiles have more than {} {what}, the most this server \
                     decodes in one request; send smaller profiles or several requests",
                    self.limits.symbols
                )));
            }
        }
        self.symbols -= count.locations.max(count.functions).max(count.strings);
        if count.decoded_bytes > self.decoded {
            return Err(ApiError::too_large(format!(
                "the request's profiles would take more than {} of memory decoded, the most \
                 this server spends on one request; send smaller profiles",
                human_size(self.limits.decoded)
            )));
        }
        self.decoded -= count.decoded_bytes;
        prost::Message::decode(&*raw).map_err(|e| ApiError::from_format(Error::PprofDecode(e)))
    }

    /// Draws `n` samples (lines of folded text, pprof samples).
    pub fn draw_samples(&mut self, n: u64) -> Result<(), ApiError> {
        if n > self.samples {
            return Err(ApiError::too_large(format!(
                "the request has more than {} samples (stacks), the most this server \
                 takes in one request; send smaller profiles or several requests",
                self.limits.samples
            )));
        }
        self.samples -= n;
        Ok(())
    }

    /// Most frames kept of a stack.
    pub fn depth(&self) -> usize {
        self.limits.depth
    }
}
