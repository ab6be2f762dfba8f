//! Golden tests of semantic analysis over `tests/sema`, against the
//! tracefs slice in `tests/fixtures/tracefs` and the parameters `abc 42`.
//!
//! - `valid/NAME.bt` must pass; the analysis dump must equal `NAME.sema`.
//! - `invalid/NAME.bt` must fail; the rendered errors must equal `NAME.err`.
//!
//! Regenerate with `SCORCH_BLESS=1 cargo test -p scorch-lang --test sema`.

mod golden;

use scorch_lang::{parse, render_all, sema};

fn analyze(file: &scorch_lang::SourceFile) -> Result<sema::Analysis, String> {
    let mut program = parse(file).map_err(|d| format!("parse error:\n{}", render_all(&d, file)))?;
    scorch_lang::macros::expand(&mut program).map_err(|d| render_all(&d, file))?;
    let params: Vec<String> = golden::PARAMS.iter().map(|s| s.to_string()).collect();
    sema::analyze(&program, &golden::tracefs(), &params).map_err(|d| render_all(&d, file))
}

#[test]
fn valid_programs_match_their_analysis_dumps() {
    let mut failures = Vec::new();
    let files = golden::programs("sema/valid");
    assert!(files.len() >= 8, "the valid corpus shrank");
    for path in files {
        let file = golden::load(&path);
        match analyze(&file) {
            Ok(analysis) => {
                let mut text = sema::dump::dump(&analysis);
                if !analysis.warnings.is_empty() {
                    text.push_str("--- warnings\n");
                    text.push_str(&render_all(&analysis.warnings, &file));
                }
                failures.extend(golden::check(&path.with_extension("sema"), &text));
            }
            Err(e) => failures.push(format!("{} was rejected:\n{e}", path.display())),
        }
    }
    golden::report(failures);
}

#[test]
fn invalid_programs_match_their_errors() {
    let mut failures = Vec::new();
    let files = golden::programs("sema/invalid");
    assert!(files.len() >= 15, "the invalid corpus shrank");
    for path in files {
        let file = golden::load(&path);
        match analyze(&file) {
            Ok(_) => failures.push(format!("{} was accepted", path.display())),
            Err(e) => failures.extend(golden::check(&path.with_extension("err"), &e)),
        }
    }
    golden::report(failures);
}

#[test]
fn listing_probes_filters_with_globs() {
    let mut out = Vec::new();
    scorch_lang::runtime::list("t:syscalls:sys_enter_*", &golden::tracefs(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "tracepoint:syscalls:sys_enter_close\ntracepoint:syscalls:sys_enter_execve\n\
         tracepoint:syscalls:sys_enter_openat\n\
         tracepoint:syscalls:sys_enter_read\ntracepoint:syscalls:sys_enter_write\n"
    );
    let mut out = Vec::new();
    scorch_lang::runtime::list("*sched_switch*", &golden::tracefs(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "rawtracepoint:sched_switch\ntracepoint:sched:sched_switch\n"
    );
    let mut out = Vec::new();
    scorch_lang::runtime::list("rt:sys_*", &golden::tracefs(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "rawtracepoint:sys_enter\nrawtracepoint:sys_exit\n"
    );
    let mut out = Vec::new();
    scorch_lang::runtime::list("s:*faults*", &golden::tracefs(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "software:alignment-faults:\nsoftware:emulation-faults:\nsoftware:major-faults:\n\
         software:minor-faults:\nsoftware:page-faults:\n"
    );
    let mut out = Vec::new();
    scorch_lang::runtime::list("hardware:*", &golden::tracefs(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 10, "{text}");
    assert!(text.starts_with("hardware:backend-stalls:\n"), "{text}");
}

/// A kernel without BTF (and without tracepoints).
struct NoBtf;

impl sema::Kernel for NoBtf {
    fn tracepoints(&self) -> std::io::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    fn tracepoint_format(&self, _: &str, _: &str) -> std::io::Result<String> {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

#[test]
fn script_types_work_without_kernel_btf() {
    let file = scorch_lang::SourceFile::inline(
        "struct a { int x; char name[4]; }; struct b { struct a inner; struct a *next; };
         BEGIN { @s = sizeof(struct b); @o = offsetof(struct b, inner.name); @v = ((struct b *)0)->next->x; }",
    );
    let program = parse(&file).unwrap();
    sema::analyze(&program, &NoBtf, &[]).unwrap_or_else(|d| panic!("{}", render_all(&d, &file)));
    let file = scorch_lang::SourceFile::inline("BEGIN { @v = curtask->pid; }");
    let program = parse(&file).unwrap();
    let errors = render_all(&sema::analyze(&program, &NoBtf, &[]).unwrap_err(), &file);
    assert!(
        errors.contains("a value of type uint64 has no fields")
            || errors.contains("cannot read field `pid`"),
        "{errors}"
    );
}
