//! A file's FDEs in address order, held as little as possible.
//!
//! `.eh_frame_hdr`'s search table lists every `.eh_frame` FDE sorted by
//! start address (the runtime's unwinder binary-searches it), so when it is
//! sorted — checked once, when the file is opened — it is read in order
//! each time the FDEs are walked and nothing is held for them. Otherwise
//! (no header, a bad one, one out of order) `.eh_frame` is scanned and an
//! index of its FDEs sorted: 24 bytes each. FDEs of `.debug_frame` are in
//! no order and always indexed. The walk merges the header's order with
//! the index, in the order of (address, section, offset): at the same
//! address `.eh_frame` comes first.

use std::iter::Peekable;

use gimli::{
    BaseAddresses, CieOrFde, EhFrameHdr, EhHdrTable, EndianSlice, LittleEndian, ParsedEhFrameHdr,
    UnwindSection,
};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Which section an FDE is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    EhFrame,
    DebugFrame,
}

impl Source {
    /// The section's name, for errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::EhFrame => ".eh_frame",
            Source::DebugFrame => ".debug_frame",
        }
    }
}

/// One FDE: start address, section, offset in the section.
pub(crate) type FdeRef = (u64, Source, usize);

/// Whether `.eh_frame_hdr`'s search table gives the FDEs' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HdrOrder {
    /// Strictly increasing (address, offset): read in order, nothing held.
    Sorted,
    /// Readable but out of order: its FDEs are indexed and sorted.
    Unsorted,
    /// No table, or one that cannot be read: `.eh_frame` is scanned.
    Unusable,
}

/// Parses `.eh_frame_hdr` (`data`); `None` when it cannot be read or has no search table.
pub(crate) fn parse_hdr<'a>(
    data: &'a [u8],
    bases: &BaseAddresses,
) -> Option<ParsedEhFrameHdr<Slice<'a>>> {
    let parsed = EhFrameHdr::new(data, LittleEndian).parse(bases, 8).ok()?;
    parsed.table().is_some().then_some(parsed)
}

/// How `.eh_frame_hdr` (`data`) can give the FDEs' order; reads its table once.
pub(crate) fn hdr_order(data: &[u8], bases: &BaseAddresses) -> HdrOrder {
    let Some(table) = parse_hdr(data, bases) else {
        return HdrOrder::Unusable;
    };
    let Some(table) = table.table() else {
        return HdrOrder::Unusable;
    };
    let mut order = HdrOrder::Sorted;
    let mut previous = None;
    for entry in table.iter(bases) {
        let Ok((start, fde)) = entry else {
            return HdrOrder::Unusable;
        };
        let Ok(offset) = table.pointer_to_offset(fde) else {
            return HdrOrder::Unusable;
        };
        let key = (start.pointer(), offset.0);
        if previous.is_some_and(|p| p >= key) {
            order = HdrOrder::Unsorted;
        }
        previous = Some(key);
    }
    order
}

/// Adds every FDE of the search table of `.eh_frame_hdr` (`data`) to
/// `index`, for a header [`hdr_order`] found readable but unsorted.
pub(crate) fn index_hdr(data: &[u8], bases: &BaseAddresses, index: &mut Vec<FdeRef>) {
    if let Some(table) = parse_hdr(data, bases).as_ref().and_then(|hdr| hdr.table()) {
        index.extend(hdr_fdes(&table, bases));
    }
}

/// The `.eh_frame` FDEs of the table of a header [`sorted_hdr`] accepted, in its order.
pub(crate) fn hdr_fdes<'t>(
    table: &'t EhHdrTable<'t, Slice<'_>>,
    bases: &'t BaseAddresses,
) -> impl Iterator<Item = FdeRef> + 't {
    let mut entries = table.iter(bases);
    // Read without error once already: an error cannot come, and would
    // end every walk of the file at the same entry.
    std::iter::from_fn(move || {
        let (start, fde) = entries.next().ok()??;
        let offset = table.pointer_to_offset(fde).ok()?;
        Some((start.pointer(), Source::EhFrame, offset.0))
    })
}

/// Adds every FDE found by walking `section` to `index`; errors carry the entry's offset.
pub(crate) fn index_scan<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    source: Source,
    index: &mut Vec<FdeRef>,
) -> std::result::Result<(), (usize, gimli::Error)>
where
    S: UnwindSection<Slice<'a>>,
    S::Offset: gimli::UnwindOffset<usize>,
{
    let mut entries = section.entries(bases);
    // Offset of the next entry, for error messages (4-byte length fields;
    // 64-bit DWARF makes it approximate, which is fine for a message).
    let mut at = 0;
    loop {
        match entries.next() {
            Ok(None) => return Ok(()),
            Ok(Some(CieOrFde::Cie(cie))) => at = cie.offset() + cie.entry_len() + 4,
            Ok(Some(CieOrFde::Fde(partial))) => {
                at = partial.offset();
                let fde = partial.parse(S::cie_from_offset).map_err(|e| (at, e))?;
                index.push((fde.initial_address(), source, fde.offset()));
                at += fde.entry_len() + 4;
            }
            Err(e) => return Err((at, e)),
        }
    }
}

/// The union of two sorted sequences of FDEs, sorted.
pub(crate) fn merged<A, B>(a: A, b: B) -> impl Iterator<Item = FdeRef>
where
    A: Iterator<Item = FdeRef>,
    B: Iterator<Item = FdeRef>,
{
    let (mut a, mut b): (Peekable<A>, Peekable<B>) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_address_then_section_order() {
        let eh = vec![
            (0x10, Source::EhFrame, 0),
            (0x30, Source::EhFrame, 8),
            (0x50, Source::EhFrame, 16),
        ];
        let debug = vec![
            (0x05, Source::DebugFrame, 4),
            (0x30, Source::DebugFrame, 0),
            (0x60, Source::DebugFrame, 12),
        ];
        let mut all: Vec<_> = eh.iter().chain(&debug).copied().collect();
        all.sort_unstable();
        let got: Vec<_> = merged(eh.iter().copied(), debug.iter().copied()).collect();
        assert_eq!(got, all);
        assert_eq!(got[2], (0x30, Source::EhFrame, 8), ".eh_frame first");
        let got: Vec<_> = merged(std::iter::empty(), debug.iter().copied()).collect();
        assert_eq!(got, debug);
        let got: Vec<_> = merged(eh.iter().copied(), std::iter::empty()).collect();
        assert_eq!(got, eh);
    }
}
