//! Golden tests over `tests/corpus`.
//!
//! - `valid/NAME.bt` must parse; its AST dump must equal `valid/NAME.ast`.
//! - `invalid/NAME.bt` must fail; its rendered diagnostics must equal
//!   `invalid/NAME.err` (the file is named `NAME.bt` in the messages).
//!
//! After a deliberate change, regenerate the expected files with
//! `SCORCH_BLESS=1 cargo test -p scorch-lang --test corpus` and review the diff.

mod golden;

use golden::{check as check_golden, load, programs, report};
use scorch_lang::{dump, parse, render_all};

#[test]
fn valid_programs_match_their_ast_dumps() {
    let files = programs("corpus/valid");
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
    let files = programs("corpus/invalid");
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
