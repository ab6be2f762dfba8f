//! Parse arbitrary bytes; render whatever comes out. Any panic, hang or
//! stack overflow is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scorch_lang::{dump, parse, render_all, SourceFile};

fuzz_target!(|data: &[u8]| {
    let file = SourceFile::from_bytes("fuzz.bt", data);
    match parse(&file) {
        Ok(program) => {
            dump::dump(&program);
        }
        Err(diagnostics) => {
            render_all(&diagnostics, &file);
        }
    }
});
