//! A C program built with DWARF for unit tests: `cargo test --release`
//! builds the test executables themselves without debug information.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Builds (once, with `gcc -g -O0`) a program that prints the address of
/// its `a_function_to_find`, then waits for stdin to close.
pub(crate) fn build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(compile).clone()
}

fn compile() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scorch-symbolizer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (source, binary) = (dir.join("find.c"), dir.join("find"));
    std::fs::write(
        &source,
        "#include <stdio.h>\n\
         __attribute__((noinline)) long a_function_to_find(void) { return 42; }\n\
         int main(void) {\n\
           printf(\"%p\\n\", (void *)a_function_to_find); fflush(stdout);\n\
           while (getchar() != EOF) {}\n\
           return 0;\n\
         }\n",
    )
    .unwrap();
    let status = Command::new("gcc")
        .args(["-g", "-O0", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc failed");
    binary
}

/// Starts the program and returns it with the address of its function.
pub(crate) fn start() -> (Child, u64) {
    let mut child = Command::new(build())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the test program");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = u64::from_str_radix(line.trim().trim_start_matches("0x"), 16).expect("address");
    (child, address)
}
