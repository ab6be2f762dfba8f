//! Decoding the records programs send through the ring buffer.

use crate::codegen::layout::{EventKind, HEADER, JOIN_ARGS, JOIN_ARG_SIZE};

/// What to do with the text of a formatted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Print it.
    Print,
    /// Run it as a shell command.
    System,
    /// Print the file it names.
    Cat,
}

/// One decoded record; payloads are still raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event<'a> {
    /// `printf` number `id` with its argument record (header included);
    /// also `system` and `cat`, as `action` says.
    Printf {
        id: usize,
        record: &'a [u8],
        action: Action,
    },
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
    /// `join()` with delimiter number `id` and the strings read.
    Join { id: usize, strings: Vec<&'a [u8]> },
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
        EventKind::Printf => Event::Printf {
            id,
            record,
            action: Action::Print,
        },
        EventKind::System => Event::Printf {
            id,
            record,
            action: Action::System,
        },
        EventKind::Cat => Event::Printf {
            id,
            record,
            action: Action::Cat,
        },
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
        EventKind::Join => Event::Join {
            id,
            strings: join_strings(record.get(HEADER as usize..)?),
        },
    })
}

/// The strings of a `join()` record: each slot up to its NUL, until the
/// first empty slot.
fn join_strings(payload: &[u8]) -> Vec<&[u8]> {
    payload
        .chunks(JOIN_ARG_SIZE as usize)
        .take(JOIN_ARGS as usize)
        .map(|slot| &slot[..slot.iter().position(|&b| b == 0).unwrap_or(slot.len())])
        .take_while(|s| !s.is_empty())
        .collect()
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
        let mut join = header(EventKind::Join, 1).to_ne_bytes().to_vec();
        for arg in [&b"ls"[..], b"-l", b"", b"stale"] {
            let mut slot = arg.to_vec();
            slot.resize(JOIN_ARG_SIZE as usize, 0);
            join.extend(slot);
        }
        assert_eq!(
            decode(&join),
            Some(Event::Join {
                id: 1,
                strings: vec![&b"ls"[..], b"-l"]
            })
        );
        assert_eq!(decode(&exit[..10]), None);
        assert_eq!(decode(&[99, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[]), None);
    }
}
