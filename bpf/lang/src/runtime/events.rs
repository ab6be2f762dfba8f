//! Decoding the records programs send through the ring buffer.

use crate::codegen::layout::{EventKind, HEADER};

/// One decoded record; payloads are still raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event<'a> {
    /// `printf` number `id` with its argument record (header included).
    Printf { id: usize, record: &'a [u8] },
    /// `exit(code)`.
    Exit(i64),
    /// `print(@map, top, div)`.
    PrintMap { map: usize, top: u32, div: u32 },
    /// `clear(@map)`.
    Clear(usize),
    /// `zero(@map)`.
    Zero(usize),
    /// `time(fmt)` with format number `id`.
    Time(usize),
    /// `print(value)` with value type number `id`.
    Value { id: usize, record: &'a [u8] },
}

fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        bytes.get(off..off + 4)?.try_into().ok()?,
    ))
}

/// Decodes `record`; `None` for anything malformed.
pub(super) fn decode(record: &[u8]) -> Option<Event<'_>> {
    let kind = EventKind::from_raw(u32_at(record, 0)?)?;
    let id = u32_at(record, 4)? as usize;
    Some(match kind {
        EventKind::Printf => Event::Printf { id, record },
        EventKind::Exit => {
            let code = record.get(HEADER as usize..HEADER as usize + 8)?;
            Event::Exit(i64::from_ne_bytes(code.try_into().ok()?))
        }
        EventKind::PrintMap => Event::PrintMap {
            map: id,
            top: u32_at(record, 8)?,
            div: u32_at(record, 12)?,
        },
        EventKind::ClearMap => Event::Clear(id),
        EventKind::ZeroMap => Event::Zero(id),
        EventKind::Time => Event::Time(id),
        EventKind::PrintValue => Event::Value { id, record },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::layout::header;

    #[test]
    fn decodes_headers_and_payloads() {
        let mut exit = header(EventKind::Exit, 0).to_ne_bytes().to_vec();
        exit.extend(3i64.to_ne_bytes());
        assert_eq!(decode(&exit), Some(Event::Exit(3)));
        let mut print = header(EventKind::PrintMap, 2).to_ne_bytes().to_vec();
        print.extend(5u32.to_ne_bytes());
        print.extend(1u32.to_ne_bytes());
        assert_eq!(
            decode(&print),
            Some(Event::PrintMap {
                map: 2,
                top: 5,
                div: 1
            })
        );
        assert_eq!(decode(&exit[..10]), None);
        assert_eq!(decode(&[9, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[]), None);
    }
}
