//! The unwound process's memory, as the unwinder reads it.

/// Reads 8-byte words of the unwound process.
pub trait Memory {
    /// The little-endian word at `address`, or `None` when it cannot be read.
    fn read_u64(&self, address: u64) -> Option<u64>;
}

/// A copy of part of a stack, taken while the thread was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSnapshot {
    /// Address of the first copied byte (usually the sampled RSP).
    pub base: u64,
    /// The copied bytes.
    pub bytes: Vec<u8>,
}

impl Memory for StackSnapshot {
    fn read_u64(&self, address: u64) -> Option<u64> {
        let start = usize::try_from(address.checked_sub(self.base)?).ok()?;
        let word = self.bytes.get(start..start.checked_add(8)?)?;
        Some(u64::from_le_bytes(word.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_inside_the_snapshot() {
        let snapshot = StackSnapshot {
            base: 0x1000,
            bytes: (0u8..16).collect(),
        };
        assert_eq!(snapshot.read_u64(0x1000), Some(0x0706050403020100));
        assert_eq!(snapshot.read_u64(0x1008), Some(0x0f0e0d0c0b0a0908));
        assert_eq!(snapshot.read_u64(0x1009), None);
        assert_eq!(snapshot.read_u64(0xfff), None);
        assert_eq!(snapshot.read_u64(u64::MAX), None);
    }
}
