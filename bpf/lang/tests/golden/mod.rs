//! Golden files shared by the test binaries: compare, or rewrite when
//! `SCORCH_BLESS=1` is set.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use scorch_lang::SourceFile;

/// The `*.bt` files of `tests/<dir>`, sorted.
pub fn programs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bt"))
        .collect();
    files.sort();
    files
}

/// The program at `path`, named by its file name.
pub fn load(path: &Path) -> SourceFile {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    SourceFile::from_bytes(name, &bytes)
}

/// Compares `actual` with the golden file, or rewrites it when blessing.
/// Returns a description of the mismatch, if any.
pub fn check(golden: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("SCORCH_BLESS").is_some_and(|v| v == "1") {
        fs::write(golden, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", golden.display()));
        return None;
    }
    match fs::read_to_string(golden) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{} differs\n--- expected\n{expected}--- actual\n{actual}",
            golden.display()
        )),
        Err(e) => Some(format!(
            "{}: {e}; run with SCORCH_BLESS=1 to create it\n--- actual\n{actual}",
            golden.display()
        )),
    }
}

/// Fails with every mismatch.
pub fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The copied tracefs slice the tests compile against.
pub fn tracefs() -> scorch_lang::sema::TraceFs {
    scorch_lang::sema::TraceFs::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tracefs"
    ))
}

/// Positional parameters every golden program is compiled with.
pub const PARAMS: [&str; 2] = ["abc", "42"];
