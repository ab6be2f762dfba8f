//! Golden tests over `tests/corpus`.
//!
//! - `valid/NAME.bt` must parse; its AST dump must equal `valid/NAME.ast`.
//! - `invalid/NAME.bt` must fail; its rendered diagnostics must equal
//!   `invalid/NAME.err` (the file is named `NAME.bt` in the messages).
//!
//! After a deliberate change, regenerate the expected files with
//! `SCORCH_BLESS=1 cargo test -p scorch-lang --test corpus` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use scorch_lang::{dump, parse, render_all, SourceFile};

/// The `*.bt` files of `tests/corpus/<dir>`, sorted.
fn programs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bt"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> SourceFile {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    SourceFile::from_bytes(name, &bytes)
}

/// Compares `actual` with the golden file, or rewrites it when blessing.
/// Returns a description of the mismatch, if any.
fn check_golden(golden: &Path, actual: &str) -> Option<String> {
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

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_programs_match_their_ast_dumps() {
    let files = programs("valid");
    assert!(
        files.len() >= 30,
        "the valid corpus shrank to {} programs",
        files.len()
    );
    let mut failures = Vec::new();
    for path in files {
        let file = load(&path);
        match parse(&file) {
            Ok(program) => failures.extend(check_golden(
                &path.with_extension("ast"),
                &dump::dump(&program),
            )),
            Err(diagnostics) => failures.push(format!(
                "{} should parse but fails:\n{}",
                path.display(),
                render_all(&diagnostics, &file)
            )),
        }
    }
    report(failures);
}

#[test]
fn invalid_programs_match_their_diagnostics() {
    let files = programs("invalid");
    assert!(
        files.len() >= 25,
        "the invalid corpus shrank to {} programs",
        files.len()
    );
    let mut failures = Vec::new();
    for path in files {
        let file = load(&path);
        match parse(&file) {
            Ok(program) => failures.push(format!(
                "{} should fail but parses:\n{}",
                path.display(),
                dump::dump(&program)
            )),
            Err(diagnostics) => {
                failures.extend(check_golden(
                    &path.with_extension("err"),
                    &render_all(&diagnostics, &file),
                ));
            }
        }
    }
    report(failures);
}
