//! Every program of the codegen and semantic corpora must pass the
//! running kernel's verifier. Needs root (CAP_BPF and CAP_PERFMON); skips
//! with the reason printed otherwise.

mod golden;

use scorch_lang::runtime;

fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: loading BPF programs needs root");
    }
    root
}

#[test]
fn the_kernel_accepts_every_generated_program() {
    if !privileged() {
        return;
    }
    let params: Vec<String> = golden::PARAMS.iter().map(|s| s.to_string()).collect();
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in ["codegen", "sema/valid"] {
        for path in golden::programs(dir) {
            let file = golden::load(&path);
            let compiled =
                match runtime::compile(&file, &params, &golden::tracefs(), true, &mut Vec::new()) {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
            count += compiled.programs.len();
            if let Err(e) = runtime::verify(&compiled) {
                let log = match &e {
                    runtime::RunError::Verifier { log, .. } => {
                        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
                    }
                    _ => String::new(),
                };
                failures.push(format!("{}: {e}\n{log}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(count >= 20, "only {count} programs were checked");
}
