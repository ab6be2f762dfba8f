//! `readelf --debug-dump=frames-interp` as an oracle for our tables.
//!
//! binutils interprets CFI with its own code (not gimli), and prints for
//! every FDE the table of rules: `LOC CFA rbx rbp ... ra`, with values such
//! as `rsp+8`, `rbp+16`, `exp` (a DWARF expression), `c-16` (saved at
//! CFA-16), `u` (undefined), `s` (same value). An FDE without rows of its
//! own is shown without a table: the CIE's initial rules apply.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use scorch_unwind::{Cfa, Rbp, Table};

/// Which section an FDE came from; `.eh_frame` wins at the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    EhFrame,
    DebugFrame,
}

/// One row as readelf prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub loc: u64,
    pub cfa: String,
    pub rbp: String,
    pub ra: String,
}

/// One FDE as readelf prints it.
#[derive(Debug, Clone)]
pub struct Fde {
    pub section: Section,
    pub start: u64,
    pub end: u64,
    pub signal: bool,
    pub rows: Vec<Printed>,
}

/// Every FDE of `path`, with CIE rules filled in where the FDE prints none.
pub fn fdes(path: &Path) -> Vec<Fde> {
    // readelf exits 1 over things unrelated to frames (a debug file's
    // missing interpreter, an unfollowed debug link): judge by its output.
    let out = Command::new("readelf")
        .arg("--debug-dump=frames-interp")
        .arg(path)
        .output()
        .expect("running readelf");
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    assert!(
        text.contains("Contents of the"),
        "readelf printed no frames for {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut section = Section::EhFrame;
    // CIE offset (per section) -> (signal trampoline, initial row).
    let mut cies: HashMap<(Section, String), (bool, Option<Printed>)> = HashMap::new();
    let mut out = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    // What the current entry is: a CIE (its key) or an FDE (index in out).
    enum Current {
        Cie((Section, String)),
        Fde(usize),
        Nothing,
    }
    let mut current = Current::Nothing;
    for line in text.lines() {
        if line.starts_with("Contents of the .eh_frame") {
            section = Section::EhFrame;
            current = Current::Nothing;
            continue;
        }
        if line.starts_with("Contents of the .debug_frame") {
            section = Section::DebugFrame;
            current = Current::Nothing;
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 4 && fields[3] == "CIE" {
            let signal = fields
                .get(4)
                .is_some_and(|aug| aug.trim_matches('"').contains('S'));
            let key = (section, fields[0].to_owned());
            cies.insert(key.clone(), (signal, None));
            current = Current::Cie(key);
            continue;
        }
        if fields.len() >= 6 && fields[3] == "FDE" {
            let cie = fields[4].trim_start_matches("cie=").to_owned();
            let range = fields[5].trim_start_matches("pc=");
            let (start, end) = range.split_once("..").expect("pc range");
            let (signal, initial) = cies.get(&(section, cie)).cloned().unwrap_or((false, None));
            let start = u64::from_str_radix(start, 16).expect("pc start");
            out.push(Fde {
                section,
                start,
                end: u64::from_str_radix(end, 16).expect("pc end"),
                signal,
                rows: initial
                    .map(|r| Printed { loc: start, ..r })
                    .into_iter()
                    .collect(),
            });
            current = Current::Fde(out.len() - 1);
            // Rows printed below replace the CIE's initial row.
            columns.clear();
            continue;
        }
        if fields.first() == Some(&"LOC") {
            columns = fields.iter().map(|s| s.to_string()).collect();
            if let Current::Fde(i) = current {
                out[i].rows.clear();
            }
            continue;
        }
        let Some(loc) = fields
            .first()
            .filter(|f| f.len() == 16)
            .and_then(|f| u64::from_str_radix(f, 16).ok())
        else {
            continue;
        };
        if columns.len() != fields.len() {
            continue;
        }
        let column = |name: &str| -> String {
            columns
                .iter()
                .position(|c| c == name)
                .map_or("u".to_owned(), |i| fields[i].to_owned())
        };
        let row = Printed {
            loc,
            cfa: column("CFA"),
            rbp: column("rbp"),
            ra: column("ra"),
        };
        match &current {
            Current::Cie(key) => {
                if let Some(entry) = cies.get_mut(key) {
                    entry.1.get_or_insert(row);
                }
            }
            Current::Fde(i) => {
                let rows = &mut out[*i].rows;
                // A second row at the same address replaces the first.
                if rows.last().is_some_and(|r| r.loc == loc) {
                    rows.pop();
                }
                rows.push(row);
            }
            Current::Nothing => {}
        }
    }
    out
}

/// What our table must say for a row readelf printed.
pub fn expected(fde: &Fde, row: &Printed) -> (Cfa, Option<Rbp>) {
    if fde.signal {
        return (Cfa::Signal, None);
    }
    if row.ra == "u" {
        return (Cfa::End, None);
    }
    if row.ra != "c-8" {
        return (Cfa::Unsupported, None);
    }
    let offset = |s: &str| s.parse::<i32>().ok();
    let cfa = if let Some(off) = row.cfa.strip_prefix("rsp+").and_then(offset) {
        Cfa::Rsp(off)
    } else if let Some(off) = row.cfa.strip_prefix("rbp+").and_then(offset) {
        Cfa::Rbp(off)
    } else if row.cfa == "exp" {
        // PLT or unsupported: checked by the caller, which knows where .plt is.
        return (Cfa::Unsupported, None);
    } else {
        Cfa::Unsupported
    };
    if cfa == Cfa::Unsupported {
        return (cfa, None);
    }
    let rbp = match row.rbp.as_str() {
        "u" | "s" => Rbp::Same,
        saved => match saved.strip_prefix("c").and_then(offset) {
            Some(off) => Rbp::AtCfa(off),
            None => Rbp::Unsupported,
        },
    };
    (cfa, Some(rbp))
}

/// Counts of what a comparison covered.
#[derive(Debug, Default)]
pub struct Compared {
    pub rows: usize,
    pub fdes: usize,
    pub plt_rows: usize,
    pub signal_rows: usize,
    pub end_rows: usize,
}

/// Checks every row readelf prints for `path` against `table`, panicking on the first difference.
pub fn compare(path: &Path, table: &Table) -> Compared {
    compare_all(&[path], table)
}

/// [`compare`] for a table built from several files (a binary and its debug file).
pub fn compare_all(paths: &[&Path], table: &Table) -> Compared {
    let path = paths[0];
    let mut fdes: Vec<Fde> = paths.iter().flat_map(|p| fdes(p)).collect();
    assert!(
        !fdes.is_empty(),
        "readelf printed no FDE for {}",
        path.display()
    );
    fdes.sort_by_key(|f| (f.start, f.section));
    let mut compared = Compared::default();
    let mut covered_to = 0;
    let starts: Vec<u64> = fdes.iter().map(|f| f.start).collect();
    for fde in &fdes {
        // As the builder: empty, unlinked and overlapping FDEs are skipped.
        if fde.start == 0 || fde.end <= fde.start || fde.start < covered_to {
            continue;
        }
        covered_to = fde.end;
        compared.fdes += 1;
        for row in &fde.rows {
            let ours = table.lookup(row.loc).unwrap_or_else(|| {
                panic!("{}: no row at {:#x} ({row:?})", path.display(), row.loc)
            });
            let (cfa, rbp) = expected(fde, row);
            let what = || {
                format!(
                    "{} at {:#x}: readelf {row:?}, ours {ours:?}",
                    path.display(),
                    row.loc
                )
            };
            match (row.cfa.as_str(), ours.cfa) {
                ("exp", Cfa::Plt { .. }) if !fde.signal && row.ra == "c-8" => {
                    compared.plt_rows += 1
                }
                _ => {
                    assert_eq!(ours.cfa, cfa, "{}", what());
                    if let Some(rbp) = rbp {
                        assert_eq!(ours.rbp, rbp, "{}", what());
                    }
                }
            }
            compared.signal_rows += usize::from(ours.cfa == Cfa::Signal);
            compared.end_rows += usize::from(ours.cfa == Cfa::End);
            compared.rows += 1;
        }
        // Past the end of an FDE that no other FDE follows, nothing is known.
        if !starts.contains(&fde.end) {
            let after = table.lookup(fde.end).map(|r| r.cfa);
            assert_eq!(
                after,
                Some(Cfa::Missing),
                "{}: after the FDE {:#x}..{:#x}",
                path.display(),
                fde.start,
                fde.end
            );
        }
    }
    compared
}
