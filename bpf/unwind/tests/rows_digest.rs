//! The rows of real files against digests taken with the builder before
//! streaming (which held a file's rows whole): streaming changed no row.
//!
//! `tests/data/rows.digest` lists, per file, its build id, its rows and an
//! FNV-1a digest of them ([`digest`]). A file whose build id differs (a
//! newer package) is not compared: the test says so, and its rows are still
//! checked against the in-memory builder in `streamed.rs`.

use std::path::Path;

use scorch_unwind::{build, Cfa, FileKey, Rbp, Row};

/// FNV-1a (64 bits) of the rows, each as `pc`, then the CFA rule's kind and
/// offset (a PLT's threshold after), then the RBP rule's kind and offset.
fn digest(rows: &[Row]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for row in rows {
        eat(&row.pc.to_le_bytes());
        let (kind, offset, threshold) = match row.cfa {
            Cfa::Missing => (0u8, 0, 0),
            Cfa::Rsp(offset) => (1, offset, 0),
            Cfa::Rbp(offset) => (2, offset, 0),
            Cfa::Plt { offset, threshold } => (3, offset, threshold),
            Cfa::Signal => (4, 0, 0),
            Cfa::End => (5, 0, 0),
            Cfa::Unsupported => (6, 0, 0),
        };
        eat(&[kind]);
        eat(&offset.to_le_bytes());
        eat(&[threshold]);
        let (kind, offset) = match row.rbp {
            Rbp::Same => (0u8, 0),
            Rbp::AtCfa(offset) => (1, offset),
            Rbp::Unsupported => (2, 0),
        };
        eat(&[kind]);
        eat(&offset.to_le_bytes());
    }
    hash
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rows_equal_the_digests_of_the_builder_before_streaming() {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rows.digest");
    let list = std::fs::read_to_string(&list).expect("tests/data/rows.digest");
    let mut compared = 0;
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [path, build_id, rows, expected] = fields[..] else {
            panic!("rows.digest: `{line}` is not `path build-id rows digest`");
        };
        let Ok(table) = build(Path::new(path)) else {
            println!("{path}: not on this machine, not compared");
            continue;
        };
        let FileKey::BuildId(id) = table.key() else {
            panic!("{path} has no build id");
        };
        if hex(id) != build_id {
            println!(
                "{path}: build id {} is not the digested {build_id} (another package version), not compared",
                hex(id)
            );
            continue;
        }
        assert_eq!(table.rows().len().to_string(), rows, "{path}: rows");
        assert_eq!(
            format!("{:016x}", digest(table.rows())),
            expected,
            "{path}: digest"
        );
        compared += 1;
    }
    assert!(compared >= 1, "no digested file is on this machine");
}
