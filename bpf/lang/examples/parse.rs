//! Parses a bpftrace program and prints its AST dump or its diagnostics.
//!
//! `cargo run -p scorch-lang --example parse -- FILE` or `-e 'PROGRAM'`.

use scorch_lang::{dump, parse, render_all, SourceFile};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = match args.as_slice() {
        [flag, program] if flag == "-e" => SourceFile::inline(program.as_str()),
        [path] => match std::fs::read(path) {
            Ok(bytes) => SourceFile::from_bytes(path.as_str(), &bytes),
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!("usage: parse FILE | parse -e PROGRAM");
            std::process::exit(2);
        }
    };
    match parse(&file) {
        Ok(program) => print!("{}", dump::dump(&program)),
        Err(diagnostics) => {
            eprint!("{}", render_all(&diagnostics, &file));
            std::process::exit(1);
        }
    }
}
