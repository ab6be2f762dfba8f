//! The front end must survive any input: no panic, no hang, no stack
//! overflow, and every diagnostic must render. These tests feed it every
//! prefix of the corpus, deterministic random mutations of it, and
//! pathological nesting; whatever parses also goes through semantic
//! analysis and code generation. (A libFuzzer target lives in `fuzz/`.)

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use scorch_lang::{dump, parse, render_all, sema, Diagnostic, SourceFile, Span};

/// Every corpus program, valid and invalid, as bytes.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut programs = Vec::new();
    for dir in [
        "corpus/valid",
        "corpus/invalid",
        "sema/valid",
        "sema/invalid",
    ] {
        let mut paths: Vec<_> = fs::read_dir(root.join(dir))
            .expect("corpus directory")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "bt"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = fs::read(&path).expect("corpus file");
            programs.push((path.display().to_string(), bytes));
        }
    }
    assert!(programs.len() > 50);
    programs
}

/// Parses `bytes` and exercises everything downstream of the result.
fn survive(bytes: &[u8]) {
    let file = SourceFile::from_bytes("fuzz.bt", bytes);
    let len = u32::try_from(file.text().len()).expect("small input");
    match parse(&file) {
        Ok(mut program) => {
            assert!(!dump::dump(&program).is_empty());
            if let Err(diagnostics) = scorch_lang::macros::expand(&mut program) {
                check_diagnostics(&diagnostics, &file, len, true);
                return;
            }
            let analyzed = TYPES.with(|types| {
                let kernel = WithTypes(kernel(), types.as_ref());
                sema::analyze(&program, &kernel, &["abc".to_string()])
            });
            match analyzed {
                Ok(analysis) => {
                    sema::dump::dump(&analysis);
                    match scorch_lang::codegen::compile(&program, &analysis) {
                        Ok(compiled) => {
                            scorch_lang::codegen::dump(&compiled);
                        }
                        Err(diagnostics) => check_diagnostics(&diagnostics, &file, len, true),
                    }
                    check_diagnostics(&analysis.warnings, &file, len, false);
                }
                Err(diagnostics) => check_diagnostics(&diagnostics, &file, len, true),
            }
        }
        Err(diagnostics) => check_diagnostics(&diagnostics, &file, len, true),
    }
}

/// The fixture tracefs, read once: thousands of runs share it.
struct Memory {
    tracepoints: Vec<(String, String)>,
    formats: HashMap<(String, String), String>,
}

impl sema::Kernel for Memory {
    fn tracepoints(&self) -> io::Result<Vec<(String, String)>> {
        Ok(self.tracepoints.clone())
    }

    fn tracepoint_format(&self, category: &str, name: &str) -> io::Result<String> {
        self.formats
            .get(&(category.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

thread_local! {
    /// The fixture's kernel types (a small BTF file), so mutations reach
    /// struct walks, casts and enumerators too.
    static TYPES: Option<scorch_bpf::btf_types::KernelTypes> =
        Some(scorch_bpf::btf_types::KernelTypes::parse(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tracefs/btf"
        ))
        .expect("the fixture's BTF"));
}

/// The in-memory tracefs with kernel types.
struct WithTypes<'a>(&'a Memory, Option<&'a scorch_bpf::btf_types::KernelTypes>);

impl sema::Kernel for WithTypes<'_> {
    fn tracepoints(&self) -> io::Result<Vec<(String, String)>> {
        self.0.tracepoints()
    }

    fn tracepoint_format(&self, category: &str, name: &str) -> io::Result<String> {
        self.0.tracepoint_format(category, name)
    }

    fn types(&self) -> Option<&scorch_bpf::btf_types::KernelTypes> {
        self.1
    }
}

fn kernel() -> &'static Memory {
    static KERNEL: OnceLock<Memory> = OnceLock::new();
    KERNEL.get_or_init(|| {
        use sema::Kernel as _;
        let fs = sema::TraceFs::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tracefs"
        ));
        let tracepoints = fs.tracepoints().expect("fixture tracepoints");
        let formats = tracepoints
            .iter()
            .map(|(c, n)| {
                (
                    (c.clone(), n.clone()),
                    fs.tracepoint_format(c, n).expect("fixture format"),
                )
            })
            .collect();
        Memory {
            tracepoints,
            formats,
        }
    })
}

/// Every diagnostic points inside the text and renders.
fn check_diagnostics(diagnostics: &[Diagnostic], file: &SourceFile, len: u32, errors: bool) {
    {
        {
            assert!(!errors || !diagnostics.is_empty());
            for d in diagnostics {
                assert!(
                    d.span.start <= d.span.end && d.span.end <= len,
                    "{d:?} outside {len}"
                );
                for note in &d.notes {
                    let span = note.span.unwrap_or(Span::empty(0));
                    assert!(
                        span.start <= span.end && span.end <= len,
                        "{note:?} outside {len}"
                    );
                }
            }
            let text = render_all(diagnostics, file);
            assert!(!errors || text.contains("error: "));
        }
    }
}

#[test]
fn every_prefix_of_the_corpus() {
    for (_, bytes) in corpus() {
        for end in 0..=bytes.len() {
            survive(&bytes[..end]);
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the lexer and parser, plus some that never should.
const INTERESTING: &[u8] =
    b"{}()[];:,/*\"'\\$@#.-+<>=!&|^~?%_ \n\t\r0123456789xeabzBEGIN\x00\xff\xc3";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        let byte = INTERESTING[rng.below(INTERESTING.len())];
        match rng.below(5) {
            0 => out.insert(at, byte),
            1 if at < out.len() => {
                out.remove(at);
            }
            2 if at < out.len() => out[at] = byte,
            3 => {
                // Duplicate a slice: builds nesting and repetition.
                let end = (at + rng.below(16)).min(out.len());
                let slice = out[at..end].to_vec();
                out.splice(at..at, slice);
            }
            _ => {
                // Splice in a slice from elsewhere.
                let from = rng.below(out.len());
                let end = (from + rng.below(24)).min(out.len());
                let slice = out[from..end].to_vec();
                out.splice(at..at, slice);
            }
        }
    }
    out
}

#[test]
fn random_mutations_of_the_corpus() {
    let mut rng = Rng(0x5c07_c41a_96b3_d00d);
    for (name, bytes) in corpus() {
        for round in 0..300 {
            let mutant = mutate(&mut rng, &bytes);
            let result = std::panic::catch_unwind(|| survive(&mutant));
            assert!(
                result.is_ok(),
                "{name}, mutation {round} panicked on:\n{}",
                String::from_utf8_lossy(&mutant)
            );
        }
    }
}

#[test]
fn pathological_nesting_and_repetition() {
    let n = 20_000;
    let inputs = [
        format!("BEGIN {{ $x = {}1{}; }}", "(".repeat(n), ")".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "(".repeat(n)),
        format!("BEGIN {{ {} }}", "{".repeat(n)),
        format!("BEGIN {{ {}{} }}", "if (1) { ".repeat(n), "}".repeat(n)),
        format!("BEGIN {{ if (1) {{ }} {} }}", "else if (1) { } ".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "!-~*&".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "(uint64)".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "1 ? 2 : ".repeat(n)),
        format!("BEGIN {{ $x = 1{}; }}", " + 1".repeat(n)),
        format!("BEGIN {{ $x = $y{}; }}", ".a->b[0]".repeat(n)),
        format!("BEGIN {{ $x = @m[{}1; }}", "@m[f(".repeat(n)),
        format!("BEGIN {{ {} }}", "$x = { ".repeat(n)),
        format!("BEGIN {{ $x = (uint8 {})0; }}", "*".repeat(n)),
        format!("{} {{ }}", "kprobe:f,".repeat(n)),
        format!("BEGIN {{ {} }}", "$x = 1; ".repeat(n)),
        format!("BEGIN {{ {} }}", "; ".repeat(n)),
        "}".repeat(n),
        "/*".repeat(n),
        "\"".repeat(n),
        format!("struct s {}", "{".repeat(n)),
    ];
    for input in inputs {
        survive(input.as_bytes());
    }
}

#[test]
fn odd_inputs() {
    for input in [
        "",
        " ",
        "\n\n\n",
        "#!",
        "#!/usr/bin/env bpftrace",
        "#",
        "BEGIN",
        "BEGIN {",
        "BEGIN }",
        "{}",
        "/",
        "kprobe:",
        ":",
        ",",
        "\u{feff}BEGIN { }",
        "BEGIN { $x = \"\\",
        "BEGIN { $x = 0x; $y = 1e; $z = 1_; }",
        "config",
        "config = {",
        "macro",
        "fn f(",
        "let",
        "import",
        "struct",
        "enum {",
        "BEGIN { for",
        "BEGIN { for ($i : ",
        "BEGIN { offsetof(",
        "BEGIN { sizeof(struct",
        "BEGIN { (struct x",
        "BEGIN { @x[1,",
        "kprobe:f / 1",
        "kprobe:f /",
        "uprobe:\"",
        "uprobe:/a/b/c",
        "\0\0\0",
    ] {
        survive(input.as_bytes());
    }
}
