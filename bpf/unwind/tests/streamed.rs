//! The two walks a BPF row map's loader makes — count, then write in
//! chunks — give exactly the rows the in-memory builder holds, whatever
//! the chunk size, on real files: libc, every library this test maps,
//! libstdc++, libLLVM when installed, and this test binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use scorch_unwind::unwind::{executables, Image};
use scorch_unwind::{build, Row, TableSource};

/// The files compared: those mapped by this process and a few large ones.
fn files() -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    for e in executables(std::process::id()).expect("our own mappings") {
        if let Image::File(path) = e.image {
            files.insert(path);
        }
    }
    files.insert(std::env::current_exe().unwrap());
    let lib = Path::new("/usr/lib/x86_64-linux-gnu");
    files.insert(lib.join("libstdc++.so.6"));
    for entry in std::fs::read_dir(lib).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("libLLVM-") && name.ends_with(".so.1") {
            files.insert(path);
        }
    }
    files.into_iter().filter(|p| p.exists()).collect()
}

/// The rows counted, and those written `chunk_rows` at a time.
fn streamed(path: &Path, chunk_rows: usize) -> (usize, Vec<Row>) {
    let counted = TableSource::open(path)
        .and_then(TableSource::count)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rows = Vec::new();
    let mut largest = 0;
    counted
        .write(chunk_rows, |chunk| {
            largest = largest.max(chunk.len());
            rows.extend_from_slice(chunk);
            Ok::<_, ()>(())
        })
        .unwrap();
    assert!(
        largest <= chunk_rows,
        "{}: a chunk of {largest}",
        path.display()
    );
    (counted.rows(), rows)
}

#[test]
fn counted_and_written_rows_are_the_built_rows() {
    let files = files();
    assert!(files.len() >= 3, "{files:?}");
    for path in &files {
        let built = build(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!built.rows().is_empty(), "{}", path.display());
        for chunk_rows in [1, 7, 4096] {
            let (count, rows) = streamed(path, chunk_rows);
            assert_eq!(count, built.rows().len(), "{}", path.display());
            assert!(
                rows == built.rows(),
                "{}: rows written in chunks of {chunk_rows} differ",
                path.display()
            );
        }
    }
}
