//! Parse, expand macros, analyze and compile arbitrary bytes against the test tracefs
//! slice; render whatever comes out. Any panic, hang or stack overflow is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scorch_lang::{parse, render_all, sema, SourceFile};

fuzz_target!(|data: &[u8]| {
    let file = SourceFile::from_bytes("fuzz.bt", data);
    let Ok(mut program) = parse(&file) else {
        return;
    };
    if let Err(diagnostics) = scorch_lang::macros::expand(&mut program) {
        render_all(&diagnostics, &file);
        return;
    }
    let tracefs = sema::TraceFs::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/tracefs"
    ));
    match sema::analyze(&program, &tracefs, &["abc".to_string(), "42".to_string()]) {
        Ok(analysis) => {
            sema::dump::dump(&analysis);
            match scorch_lang::codegen::compile(&program, &analysis) {
                Ok(compiled) => {
                    scorch_lang::codegen::dump(&compiled);
                }
                Err(diagnostics) => {
                    render_all(&diagnostics, &file);
                }
            }
        }
        Err(diagnostics) => {
            render_all(&diagnostics, &file);
        }
    }
});
