//! Accumulates rows in address order, merging and marking gaps.
//!
//! FDEs arrive sorted by start address, each as a run of rows. A row whose
//! rules equal the previous row's adds nothing and is dropped; the space
//! between one FDE's end and the next FDE's start gets a [`Cfa::Missing`]
//! row, so a lookup there does not borrow the rules of the function before.
//! Overlapping FDEs (rare, from broken linkers) keep the first's rows.

use crate::row::{Cfa, Rbp, Row};

/// The growing, sorted, merged row list.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<Row>,
    /// End of the last FDE, where a [`Cfa::Missing`] row is owed unless the
    /// next FDE starts right there.
    open_end: Option<u64>,
}

impl Rows {
    /// Starts an FDE covering `[start, end)`; false when it overlaps the previous one.
    pub(crate) fn begin_fde(&mut self, start: u64, end: u64) -> bool {
        if start >= end {
            return false;
        }
        if let Some(prev_end) = self.open_end {
            if start < prev_end {
                return false;
            }
            if start > prev_end {
                self.push(Row {
                    pc: prev_end,
                    cfa: Cfa::Missing,
                    rbp: Rbp::Same,
                });
            }
        }
        self.open_end = Some(end);
        true
    }

    /// Adds a row of the current FDE.
    pub(crate) fn push(&mut self, row: Row) {
        match self.rows.last_mut() {
            Some(last) if last.same_rules(&row) => {}
            // A row at the same address as the last replaces it (an FDE
            // whose first row is at its start, after a `Missing` gap row
            // that turned out empty).
            Some(last) if last.pc == row.pc => {
                *last = row;
                let len = self.rows.len();
                if len >= 2 && self.rows[len - 2].same_rules(&row) {
                    self.rows.pop();
                }
            }
            _ => self.rows.push(row),
        }
    }

    /// The finished rows, ending with a [`Cfa::Missing`] row after the last FDE.
    pub(crate) fn finish(mut self) -> Vec<Row> {
        if let Some(end) = self.open_end.take() {
            self.push(Row {
                pc: end,
                cfa: Cfa::Missing,
                rbp: Rbp::Same,
            });
        }
        self.rows.shrink_to_fit();
        self.rows
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

    #[test]
    fn merges_equal_neighbours_and_marks_gaps() {
        let mut rows = Rows::default();
        assert!(rows.begin_fde(0x10, 0x20));
        rows.push(row(0x10, Cfa::Rsp(8)));
        rows.push(row(0x11, Cfa::Rsp(16)));
        rows.push(row(0x18, Cfa::Rsp(8)));
        // Adjacent FDE starting with the same rules: merged away.
        assert!(rows.begin_fde(0x20, 0x30));
        rows.push(row(0x20, Cfa::Rsp(8)));
        // A gap before the next FDE.
        assert!(rows.begin_fde(0x40, 0x50));
        rows.push(row(0x40, Cfa::Rsp(8)));
        assert_eq!(
            rows.finish(),
            vec![
                row(0x10, Cfa::Rsp(8)),
                row(0x11, Cfa::Rsp(16)),
                row(0x18, Cfa::Rsp(8)),
                row(0x30, Cfa::Missing),
                row(0x40, Cfa::Rsp(8)),
                row(0x50, Cfa::Missing),
            ]
        );
    }

    #[test]
    fn overlapping_and_empty_fdes_are_refused() {
        let mut rows = Rows::default();
        assert!(rows.begin_fde(0x10, 0x20));
        rows.push(row(0x10, Cfa::Rsp(8)));
        assert!(!rows.begin_fde(0x18, 0x28));
        assert!(!rows.begin_fde(0x30, 0x30));
        assert_eq!(
            rows.finish(),
            vec![row(0x10, Cfa::Rsp(8)), row(0x20, Cfa::Missing)]
        );
    }
}
