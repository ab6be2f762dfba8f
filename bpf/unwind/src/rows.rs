//! Merges rows arriving in address order and hands them on in chunks.
//!
//! FDEs arrive sorted by start address, each as a run of rows. A row whose
//! rules equal the previous row's adds nothing and is dropped; the space
//! between one FDE's end and the next FDE's start gets a [`Cfa::Missing`]
//! row, so a lookup there does not borrow the rules of the function before.
//! Overlapping FDEs (rare, from broken linkers) keep the first's rows.
//!
//! Only the last row may still change (a row at the same address replaces
//! it, and may then merge into the row before); every row before it is
//! final. So the merger keeps the last row and the last final one, and
//! hands final rows to its sink in chunks of a fixed size: however large
//! the file, it holds one chunk. A row that would go before the last row's
//! address (only CFI advancing past its FDE's end makes one) is dropped,
//! so the rows stay sorted for the binary search that reads them.

use crate::row::{Cfa, Rbp, Row};

/// The sorted, merged rows of one file, on their way to a sink.
pub(crate) struct Merger<'s, E> {
    /// Final rows not handed on yet.
    chunk: Vec<Row>,
    /// Rows handed on at a time.
    chunk_rows: usize,
    /// The last row, which a row at its address may still replace.
    last: Option<Row>,
    /// The final row before `last` (handed on, or in `chunk`).
    before_last: Option<Row>,
    /// Highest address of a row kept so far.
    high_pc: u64,
    /// End of the last FDE, where a [`Cfa::Missing`] row is owed unless the
    /// next FDE starts right there.
    open_end: Option<u64>,
    /// Rows handed on (or waiting in `chunk`).
    finished: usize,
    sink: &'s mut dyn FnMut(&[Row]) -> Result<(), E>,
}

impl<'s, E> Merger<'s, E> {
    /// A merger handing rows to `sink`, `chunk_rows` (at least 1) at a time.
    pub(crate) fn new(chunk_rows: usize, sink: &'s mut dyn FnMut(&[Row]) -> Result<(), E>) -> Self {
        let chunk_rows = chunk_rows.max(1);
        Self {
            chunk: Vec::with_capacity(chunk_rows),
            chunk_rows,
            last: None,
            before_last: None,
            high_pc: 0,
            open_end: None,
            finished: 0,
            sink,
        }
    }

    /// Starts an FDE covering `[start, end)`; false when it overlaps the previous one.
    pub(crate) fn begin_fde(&mut self, start: u64, end: u64) -> Result<bool, E> {
        if start >= end {
            return Ok(false);
        }
        if let Some(prev_end) = self.open_end {
            if start < prev_end {
                return Ok(false);
            }
            if start > prev_end {
                self.push(Row {
                    pc: prev_end,
                    cfa: Cfa::Missing,
                    rbp: Rbp::Same,
                })?;
            }
        }
        self.open_end = Some(end);
        Ok(true)
    }

    /// Adds a row of the current FDE.
    pub(crate) fn push(&mut self, row: Row) -> Result<(), E> {
        if row.pc < self.high_pc {
            return Ok(());
        }
        self.high_pc = row.pc;
        if self
            .last
            .or(self.before_last)
            .is_some_and(|last| last.same_rules(&row))
        {
            return Ok(());
        }
        match self.last {
            // A row at the same address as the last replaces it (an FDE
            // whose first row is at its start, after a `Missing` gap row
            // that turned out empty), and merges into the one before.
            Some(last) if last.pc == row.pc => {
                let merges = self.before_last.is_some_and(|b| b.same_rules(&row));
                self.last = (!merges).then_some(row);
                Ok(())
            }
            _ => match self.last.replace(row) {
                Some(done) => self.finish_row(done),
                None => Ok(()),
            },
        }
    }

    /// Ends the rows with a [`Cfa::Missing`] row after the last FDE, hands
    /// on what is left and returns how many rows were handed on in all.
    pub(crate) fn finish(mut self) -> Result<usize, E> {
        if let Some(end) = self.open_end.take() {
            self.push(Row {
                pc: end,
                cfa: Cfa::Missing,
                rbp: Rbp::Same,
            })?;
        }
        if let Some(done) = self.last.take() {
            self.finish_row(done)?;
        }
        self.flush()?;
        Ok(self.finished)
    }

    /// Makes `row` final, handing on the chunk once full.
    fn finish_row(&mut self, row: Row) -> Result<(), E> {
        self.before_last = Some(row);
        self.chunk.push(row);
        self.finished += 1;
        if self.chunk.len() >= self.chunk_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), E> {
        if !self.chunk.is_empty() {
            (self.sink)(&self.chunk)?;
            self.chunk.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pc: u64, cfa: Cfa) -> Row {
        Row {
            pc,
            cfa,
            rbp: Rbp::Same,
        }
    }

    /// Runs `feed` through a merger handing on `chunk_rows` rows at a
    /// time; returns the rows and the chunk sizes.
    fn merged(chunk_rows: usize, feed: impl FnOnce(&mut Merger<'_, ()>)) -> (Vec<Row>, Vec<usize>) {
        let (mut rows, mut chunks) = (Vec::new(), Vec::new());
        let mut sink = |chunk: &[Row]| -> Result<(), ()> {
            rows.extend_from_slice(chunk);
            chunks.push(chunk.len());
            Ok(())
        };
        let mut merger = Merger::new(chunk_rows, &mut sink);
        feed(&mut merger);
        let count = merger.finish().unwrap();
        assert_eq!(count, rows.len());
        (rows, chunks)
    }

    fn gaps_and_merges(m: &mut Merger<'_, ()>) {
        assert_eq!(m.begin_fde(0x10, 0x20), Ok(true));
        m.push(row(0x10, Cfa::Rsp(8))).unwrap();
        m.push(row(0x11, Cfa::Rsp(16))).unwrap();
        m.push(row(0x18, Cfa::Rsp(8))).unwrap();
        // Adjacent FDE starting with the same rules: merged away.
        assert_eq!(m.begin_fde(0x20, 0x30), Ok(true));
        m.push(row(0x20, Cfa::Rsp(8))).unwrap();
        // A gap before the next FDE.
        assert_eq!(m.begin_fde(0x40, 0x50), Ok(true));
        m.push(row(0x40, Cfa::Rsp(8))).unwrap();
    }

    #[test]
    fn merges_equal_neighbours_and_marks_gaps() {
        let expected = vec![
            row(0x10, Cfa::Rsp(8)),
            row(0x11, Cfa::Rsp(16)),
            row(0x18, Cfa::Rsp(8)),
            row(0x30, Cfa::Missing),
            row(0x40, Cfa::Rsp(8)),
            row(0x50, Cfa::Missing),
        ];
        assert_eq!(merged(4096, gaps_and_merges).0, expected);
    }

    #[test]
    fn chunks_do_not_change_the_rows() {
        let (whole, chunks) = merged(4096, gaps_and_merges);
        assert_eq!(chunks, vec![whole.len()]);
        for chunk_rows in 1..=whole.len() {
            let (rows, chunks) = merged(chunk_rows, gaps_and_merges);
            assert_eq!(rows, whole, "chunks of {chunk_rows}");
            assert!(chunks.iter().all(|&n| n <= chunk_rows), "{chunks:?}");
        }
    }

    #[test]
    fn a_row_at_the_last_address_replaces_it_across_chunks() {
        // With chunks of one row, every row but the last is handed on as
        // soon as the next arrives: the replacement and the merge into the
        // row before must still happen.
        let feed = |m: &mut Merger<'_, ()>| {
            assert_eq!(m.begin_fde(0x10, 0x20), Ok(true));
            m.push(row(0x10, Cfa::Rsp(8))).unwrap();
            m.push(row(0x14, Cfa::Rsp(16))).unwrap();
            // A gap before the next FDE: a `Missing` row at 0x20.
            assert_eq!(m.begin_fde(0x28, 0x30), Ok(true));
            m.push(row(0x28, Cfa::Rsp(16))).unwrap();
            assert_eq!(m.begin_fde(0x30, 0x38), Ok(true));
            // Zero-length rows: the second at 0x30 replaces the first,
            // then equals the row before and merges into it.
            m.push(row(0x30, Cfa::Rsp(24))).unwrap();
            m.push(row(0x30, Cfa::Rsp(16))).unwrap();
            m.push(row(0x34, Cfa::Rsp(8))).unwrap();
        };
        let expected = vec![
            row(0x10, Cfa::Rsp(8)),
            row(0x14, Cfa::Rsp(16)),
            row(0x20, Cfa::Missing),
            row(0x28, Cfa::Rsp(16)),
            row(0x34, Cfa::Rsp(8)),
            row(0x38, Cfa::Missing),
        ];
        for chunk_rows in [1, 2, 3, 4096] {
            assert_eq!(
                merged(chunk_rows, feed).0,
                expected,
                "chunks of {chunk_rows}"
            );
        }
    }

    #[test]
    fn overlapping_and_empty_fdes_are_refused() {
        let (rows, _) = merged(1, |m| {
            assert_eq!(m.begin_fde(0x10, 0x20), Ok(true));
            m.push(row(0x10, Cfa::Rsp(8))).unwrap();
            assert_eq!(m.begin_fde(0x18, 0x28), Ok(false));
            assert_eq!(m.begin_fde(0x30, 0x30), Ok(false));
        });
        assert_eq!(rows, vec![row(0x10, Cfa::Rsp(8)), row(0x20, Cfa::Missing)]);
    }

    #[test]
    fn rows_stay_sorted_when_cfi_runs_past_its_fde() {
        let (rows, _) = merged(2, |m| {
            assert_eq!(m.begin_fde(0x10, 0x20), Ok(true));
            m.push(row(0x10, Cfa::Rsp(8))).unwrap();
            // Advanced past the FDE's end.
            m.push(row(0x28, Cfa::Rsp(16))).unwrap();
            // The gap row at 0x20 and the next FDE's first row at 0x24 go
            // before it: dropped. Its later rows are kept.
            assert_eq!(m.begin_fde(0x24, 0x40), Ok(true));
            m.push(row(0x24, Cfa::Rsp(8))).unwrap();
            m.push(row(0x30, Cfa::Rsp(32))).unwrap();
        });
        assert_eq!(
            rows,
            vec![
                row(0x10, Cfa::Rsp(8)),
                row(0x28, Cfa::Rsp(16)),
                row(0x30, Cfa::Rsp(32)),
                row(0x40, Cfa::Missing),
            ]
        );
        assert!(rows.windows(2).all(|w| w[0].pc < w[1].pc));
    }

    #[test]
    fn a_sink_error_stops_the_merger() {
        let mut sink = |_: &[Row]| -> Result<(), &'static str> { Err("full") };
        let mut m = Merger::new(1, &mut sink);
        assert_eq!(m.begin_fde(0x10, 0x20), Ok(true));
        m.push(row(0x10, Cfa::Rsp(8))).unwrap();
        assert_eq!(m.push(row(0x14, Cfa::Rsp(16))), Err("full"));
    }
}
