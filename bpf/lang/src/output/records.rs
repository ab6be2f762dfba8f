//! Decoding a struct or union copied whole ([`Type::Record`]) into its
//! members' values, as bpftrace shows them.

use super::Value;
use crate::sema::records::{FieldKind, Record};

/// The members of `r` from its bytes; bytes past the end read as zeros.
pub(super) fn decode(bytes: &[u8], r: &Record) -> Value {
    Value::Record(
        r.fields
            .iter()
            .filter(|f| f.kind != FieldKind::Opaque)
            .map(|f| (f.name.clone(), field(bytes, f.offset_bits, &f.kind)))
            .collect(),
    )
}

fn field(bytes: &[u8], offset_bits: u32, kind: &FieldKind) -> Value {
    let at = (offset_bits / 8) as usize;
    match kind {
        FieldKind::Int { size, signed, bits } => {
            let (width, shift) = if *bits > 0 {
                (u32::from(*bits), offset_bits % 8)
            } else {
                (u32::from(*size) * 8, 0)
            };
            let raw = word(bytes, at) >> shift;
            let raw = if width >= 64 {
                raw
            } else {
                raw & ((1u64 << width) - 1)
            };
            if *signed && width < 64 && raw >> (width - 1) & 1 == 1 {
                Value::Int((raw | !((1u64 << width) - 1)) as i64)
            } else if *signed {
                Value::Int(raw as i64)
            } else {
                Value::Uint(raw)
            }
        }
        FieldKind::Ptr => Value::Ptr(word(bytes, at)),
        FieldKind::Str(len) => {
            let s = bytes
                .get(at..at.saturating_add(*len as usize).min(bytes.len()))
                .unwrap_or(&[]);
            let nul = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            Value::Str(s[..nul].to_vec())
        }
        FieldKind::Array {
            element,
            len,
            stride,
        } => Value::Array(
            (0..*len)
                .map(|i| field(bytes, offset_bits + i * stride * 8, element))
                .collect(),
        ),
        FieldKind::Record(r) => decode(bytes.get(at..).unwrap_or(&[]), r),
        FieldKind::Opaque => Value::Str(Vec::new()),
    }
}

/// Eight bytes from `at`, little-endian as the machine stores them.
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = bytes.get(at..) {
        let n = b.len().min(8);
        w[..n].copy_from_slice(&b[..n]);
    }
    u64::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::output::text;
    use crate::sema::records::Field;
    use crate::sema::types::AddrSpace;
    use crate::sema::CTypeId;

    fn field(name: &str, offset_bits: u32, kind: FieldKind) -> Field {
        Field {
            name: name.into(),
            offset_bits,
            kind,
        }
    }

    fn int(size: u8, signed: bool, bits: u8) -> FieldKind {
        FieldKind::Int { size, signed, bits }
    }

    #[test]
    fn members_decode_by_kind() {
        let inner = Record {
            id: CTypeId::Kernel(2),
            name: "struct in".into(),
            size: 4,
            fields: vec![field("v", 0, int(4, true, 0))],
            pointers: AddrSpace::Kernel,
        };
        let r = Record {
            id: CTypeId::Kernel(1),
            name: "struct s".into(),
            size: 32,
            fields: vec![
                field("lo", 0, int(4, false, 3)),
                field("hi", 3, int(4, true, 5)),
                field("name", 8, FieldKind::Str(4)),
                field("p", 64, FieldKind::Ptr),
                field("a", 128, {
                    FieldKind::Array {
                        element: Box::new(int(2, false, 0)),
                        len: 2,
                        stride: 2,
                    }
                }),
                field("in", 192, FieldKind::Record(Arc::new(inner))),
                field("f", 224, FieldKind::Opaque),
            ],
            pointers: AddrSpace::Kernel,
        };
        let mut bytes = vec![0u8; 32];
        // lo = 5 (bits 0..3), hi = -2 (bits 3..8, two's complement 11110).
        bytes[0] = 5 | (0b11110 << 3);
        bytes[1..4].copy_from_slice(b"ab\0");
        bytes[8..16].copy_from_slice(&(-16i64 as u64).to_ne_bytes());
        bytes[16..18].copy_from_slice(&7u16.to_ne_bytes());
        bytes[18..20].copy_from_slice(&9u16.to_ne_bytes());
        bytes[24..28].copy_from_slice(&(-3i32).to_ne_bytes());
        let v = decode(&bytes, &r);
        assert_eq!(
            text::value(&v),
            "{ .lo = 5, .hi = -2, .name = ab, .p = -16, .a = [7,9], .in = { .v = -3 } }"
        );
        assert_eq!(
            text::key_field(&v),
            "{.lo=5,.hi=-2,.name=ab,.p=0xfffffffffffffff0,.a=[7,9],.in={.v=-3}}"
        );
        assert_eq!(
            crate::output::json::value(&v),
            "{ \"lo\": 5, \"hi\": -2, \"name\": \"ab\", \"p\": -16, \"a\": [7,9], \"in\": { \"v\": -3 } }"
        );
    }
}
