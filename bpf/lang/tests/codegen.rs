//! Golden tests of code generation: each `tests/codegen/NAME.bt` is
//! compiled against the tracefs slice in `tests/fixtures/tracefs` and its
//! maps and disassembled programs must equal `NAME.bpf`.
//!
//! Regenerate with `SCORCH_BLESS=1 cargo test -p scorch-lang --test codegen`
//! and review the diff: it is the generated code.

mod golden;

use scorch_lang::{codegen, runtime};

#[test]
fn programs_match_their_disassembly() {
    let mut failures = Vec::new();
    let files = golden::programs("codegen");
    assert!(files.len() >= 8, "the codegen corpus shrank");
    let params: Vec<String> = golden::PARAMS.iter().map(|s| s.to_string()).collect();
    for path in files {
        let file = golden::load(&path);
        let mut warnings = Vec::new();
        match runtime::compile(&file, &params, &golden::tracefs(), true, &mut warnings) {
            Ok(compiled) => failures.extend(golden::check(
                &path.with_extension("bpf"),
                &codegen::dump(&compiled),
            )),
            Err(e) => failures.push(format!("{} was rejected:\n{e}", path.display())),
        }
    }
    golden::report(failures);
}
