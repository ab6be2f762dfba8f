//! TEMPORARY: the streamed builder gives exactly the rows of the builder
//! before it, on every shared library of this machine, this test binary
//! and the files named in `SCORCH_COMPARE` (colon-separated).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use scorch_unwind::{build, Row, TableSource};

fn files() -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir("/usr/lib/x86_64-linux-gnu").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".so") {
            if let Ok(real) = path.canonicalize() {
                if real.is_file() {
                    files.insert(real);
                }
            }
        }
    }
    files.insert(std::env::current_exe().unwrap());
    if let Ok(extra) = std::env::var("SCORCH_COMPARE") {
        files.extend(extra.split(':').map(PathBuf::from));
    }
    files.into_iter().collect()
}

fn streamed(path: &Path, chunk_rows: usize) -> Result<(usize, Vec<Row>), String> {
    let counted = TableSource::open(path)
        .and_then(TableSource::count)
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    counted
        .write(chunk_rows, |chunk| {
            rows.extend_from_slice(chunk);
            Ok::<_, ()>(())
        })
        .unwrap();
    Ok((counted.rows(), rows))
}

#[test]
fn streamed_rows_equal_the_old_builders() {
    let (mut compared, mut failed, mut rows_total) = (0, 0, 0);
    for path in files() {
        let old = scorch_unwind::old::build(&path);
        let new = build(&path);
        match (&old, &new) {
            (Ok(old), Ok(new)) => {
                assert_eq!(old, new, "{}", path.display());
                for chunk_rows in [4096, 1000, 7] {
                    let (count, rows) = streamed(&path, chunk_rows).unwrap();
                    assert_eq!(count, rows.len(), "{}", path.display());
                    assert!(
                        rows == old.rows(),
                        "{} in chunks of {chunk_rows}",
                        path.display()
                    );
                }
                compared += 1;
                rows_total += old.rows().len();
            }
            (Err(old), Err(new)) => {
                assert_eq!(old.to_string(), new.to_string());
                assert_eq!(streamed(&path, 4096).unwrap_err(), old.to_string());
                failed += 1;
            }
            _ => panic!(
                "{}: old {:?}, new {:?}",
                path.display(),
                old.as_ref().map(|t| t.rows().len()),
                new.as_ref().map(|t| t.rows().len())
            ),
        }
    }
    println!("{compared} files equal ({rows_total} rows), {failed} failing alike");
    assert!(compared > 100);
}
