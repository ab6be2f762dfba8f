//! Tables built from real binaries of this machine, checked row by row
//! against binutils' own CFI interpreter (`readelf --debug-dump=frames-interp`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{c_workload, oracle, run, rust_release_workload, symbols, LIBC};
use scorch_unwind::{build, Cfa, Error, FileKey, Rbp, TableCache, TableSource};

#[test]
fn libc_matches_readelf() {
    let table = build(Path::new(LIBC)).expect("libc's table");
    let compared = oracle::compare(Path::new(LIBC), &table);
    // Debian's libc has thousands of FDEs, a lazy-binding .plt and __restore_rt.
    assert!(compared.fdes > 1000, "{compared:?}");
    assert!(
        compared.plt_rows >= 1,
        "the .plt rule was not recognised: {compared:?}"
    );
    assert_eq!(compared.signal_rows, 1, "__restore_rt: {compared:?}");
    // Merging equal neighbours leaves fewer rows than readelf prints.
    let known = table
        .rows()
        .iter()
        .filter(|r| r.cfa != Cfa::Missing)
        .count();
    assert!(known < compared.rows, "{known} rows of {compared:?}");
    assert!(table
        .rows()
        .windows(2)
        .all(|w| w[0].pc < w[1].pc && !w[0].same_rules(&w[1])));
}

#[test]
fn libc_known_functions() {
    let table = build(Path::new(LIBC)).expect("libc's table");
    let syms = symbols(Path::new(LIBC));
    let find = |name: &str| {
        syms.iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not in libc's symbols"))
    };
    // Every function starts with the return address at RSP: CFA = RSP + 8.
    for name in ["qsort_r", "malloc", "memcpy", "__libc_start_main", "raise"] {
        let sym = find(name);
        let row = table.lookup(sym.address).expect("a row");
        assert_eq!((row.cfa, row.rbp), (Cfa::Rsp(8), Rbp::Same), "{name}");
    }
    // qsort_r saves registers, RBP among them, and moves RSP.
    let qsort = find("qsort_r");
    let inside: Vec<_> = table
        .rows()
        .iter()
        .filter(|r| r.pc > qsort.address && r.pc < qsort.address + qsort.size)
        .collect();
    assert!(
        inside.iter().any(|r| matches!(r.rbp, Rbp::AtCfa(_))),
        "qsort_r never saves RBP: {inside:?}"
    );
    // The signal trampoline's FDE starts one byte early (for lookups at a
    // return address - 1) before `mov $15, %rax; syscall` (rt_sigreturn).
    let signal: Vec<_> = table
        .rows()
        .iter()
        .filter(|r| r.cfa == Cfa::Signal)
        .collect();
    assert_eq!(signal.len(), 1, "{signal:?}");
    let at = signal[0].pc + 1;
    let segment = table
        .segments()
        .iter()
        .find(|s| at >= s.vaddr && at < s.vaddr + s.size)
        .expect("a segment holding __restore_rt");
    let offset = (at - segment.vaddr + segment.offset) as usize;
    let bytes = std::fs::read(LIBC).unwrap();
    assert_eq!(
        &bytes[offset..offset + 9],
        &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]
    );
}

#[test]
fn c_without_frame_pointers_matches_readelf() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let table = build(&exe).expect("workload table");
    let compared = oracle::compare(&exe, &table);
    assert!(compared.plt_rows >= 1, "{compared:?}");
    assert!(compared.end_rows >= 1, "_start marks the end: {compared:?}");
    let syms = symbols(&exe);
    let start = syms.iter().find(|s| s.name == "_start").unwrap();
    assert_eq!(table.lookup(start.address).unwrap().cfa, Cfa::End);
    let main = syms.iter().find(|s| s.name == "main").unwrap();
    assert_eq!(table.lookup(main.address).unwrap().cfa, Cfa::Rsp(8));
    // Without a frame pointer, main's CFA is RSP-based throughout.
    assert!(table
        .rows()
        .iter()
        .filter(|r| r.pc >= main.address && r.pc < main.address + main.size)
        .all(|r| matches!(r.cfa, Cfa::Rsp(_))));
}

#[test]
fn c_with_frame_pointers_uses_rbp_rules() {
    let exe = c_workload("qsort_spin", "qsort_spin_fp", &["-fno-omit-frame-pointer"]);
    let table = build(&exe).expect("workload table");
    oracle::compare(&exe, &table);
    let syms = symbols(&exe);
    let main = syms.iter().find(|s| s.name == "main").unwrap();
    let rows: Vec<_> = table
        .rows()
        .iter()
        .filter(|r| r.pc >= main.address && r.pc < main.address + main.size)
        .collect();
    assert!(
        rows.iter()
            .any(|r| r.cfa == Cfa::Rbp(16) && r.rbp == Rbp::AtCfa(-16)),
        "{rows:?}"
    );
}

#[test]
fn rust_release_binary_matches_readelf() {
    let exe = rust_release_workload("burn_rs");
    let table = build(&exe).expect("rust table");
    let compared = oracle::compare(&exe, &table);
    assert!(compared.fdes > 100, "{compared:?}");
}

#[test]
fn debug_frame_through_a_debug_link() {
    // No unwind tables in the code: gcc puts its CFI in .debug_frame, which
    // strip moves to a separate file named by .gnu_debuglink.
    let exe = c_workload(
        "qsort_spin",
        "qsort_spin_debuglink",
        &[
            "-g",
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
        ],
    );
    let debug = exe.with_extension("debug");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&exe)
        .arg(&debug));
    let stripped = exe.with_extension("stripped");
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(format!("--add-gnu-debuglink={}", debug.display()))
        .arg(&exe)
        .arg(&stripped));
    let syms = symbols(&stripped);
    let compare_fn = syms.iter().find(|s| s.name == "compare").unwrap();

    let table = build(&stripped).expect("table through the debug link");
    let row = table
        .lookup(compare_fn.address + 1)
        .expect("a row in compare");
    assert_ne!(
        row.cfa,
        Cfa::Missing,
        "compare has no CFI: the debug link was not followed"
    );
    // The debug file's .debug_frame, as readelf reads it, is the oracle.
    let compared = oracle::compare_all(&[&stripped, &debug], &table);
    assert!(compared.end_rows >= 1, "{compared:?}");

    // Without the debug file, only crt's .eh_frame is left: compare is not covered.
    std::fs::remove_file(&debug).unwrap();
    let table = build(&stripped).expect("table without the debug file");
    assert_eq!(
        table.lookup(compare_fn.address + 1).map(|r| r.cfa),
        Some(Cfa::Missing)
    );
}

#[test]
fn processes_sharing_a_file_share_its_table() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let copy = exe.with_extension("copy");
    std::fs::copy(&exe, &copy).unwrap();
    let mut cache = TableCache::new();
    let a = cache.get(&exe).unwrap();
    let b = cache.get(&copy).unwrap();
    let libc = cache.get(Path::new(LIBC)).unwrap();
    // Same build id, different inode: one table.
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(matches!(a.key(), FileKey::BuildId(id) if id.len() == 20));
    assert!(!std::sync::Arc::ptr_eq(&a, &libc));
    assert_eq!(cache.len(), 2);
    // Without a build id the key is the inode.
    let no_id = exe.with_extension("no-build-id");
    run(Command::new("objcopy")
        .arg("--remove-section=.note.gnu.build-id")
        .arg(&exe)
        .arg(&no_id));
    assert!(matches!(
        build(&no_id).unwrap().key(),
        FileKey::Inode { .. }
    ));
}

#[test]
fn bad_input_is_a_clear_error() {
    let missing = build(Path::new("/nonexistent/libfoo.so")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    assert!(missing.to_string().contains("/nonexistent/libfoo.so"));

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let text = dir.join("not-an-elf");
    std::fs::write(&text, b"#!/bin/sh\necho hello\n").unwrap();
    assert!(matches!(build(&text), Err(Error::NotElf { .. })));

    // A copy of the workload with garbage over its .eh_frame.
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let (offset, size) = section_range(&exe, ".eh_frame");
    let mut bytes = std::fs::read(&exe).unwrap();
    for (i, b) in bytes[offset + 0x20..offset + size].iter_mut().enumerate() {
        *b = 0xff ^ (i as u8);
    }
    let corrupt = dir.join("corrupt-eh-frame");
    std::fs::write(&corrupt, &bytes).unwrap();
    let err = build(&corrupt).unwrap_err();
    assert!(matches!(err, Error::Cfi { .. }), "{err}");
    assert!(err.to_string().contains("corrupt-eh-frame"), "{err}");
    // The row map's loader learns it when counting, before taking room.
    let counted = TableSource::open(&corrupt).and_then(TableSource::count);
    assert!(matches!(counted, Err(Error::Cfi { .. })), "{counted:?}");

    // A truncated file.
    let truncated = dir.join("truncated-elf");
    std::fs::write(&truncated, &std::fs::read(&exe).unwrap()[..100]).unwrap();
    assert!(build(&truncated).is_err());
}

#[test]
fn one_bad_fde_leaves_only_its_function_without_rows() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let good = build(&exe).expect("table");
    assert_eq!(good.skipped_fdes(), 0);
    let syms = symbols(&exe);
    let sort_all = syms
        .iter()
        .find(|s| s.name.starts_with("sort_all"))
        .unwrap();
    let main = syms.iter().find(|s| s.name == "main").unwrap();
    assert_ne!(good.lookup(sort_all.address).unwrap().cfa, Cfa::Missing);

    // sort_all's FDE, as readelf lists it: "OFFSET LENGTH CIE_PTR FDE cie=… pc=START..END".
    let frames = run(Command::new("readelf").arg("--debug-dump=frames").arg(&exe));
    let fde = frames
        .lines()
        .filter(|l| l.contains(" FDE "))
        .find(|l| {
            l.split("pc=").nth(1).and_then(|r| r.split("..").next())
                == Some(&format!("{:016x}", sort_all.address)[..])
        })
        .expect("sort_all's FDE");
    let fde_offset = usize::from_str_radix(fde.split_whitespace().next().unwrap(), 16).unwrap();
    // Its first CFA instruction follows length, CIE pointer, start, size
    // and the augmentation length: an opcode DWARF does not define.
    let (section, _) = section_range(&exe, ".eh_frame");
    let mut bytes = std::fs::read(&exe).unwrap();
    bytes[section + fde_offset + 17] = 0x3c;
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qsort-spin-one-bad-fde");
    std::fs::write(&bad, &bytes).unwrap();

    let table = build(&bad).expect("a table despite one bad FDE");
    assert_eq!(table.skipped_fdes(), 1);
    assert_eq!(table.lookup(sort_all.address).unwrap().cfa, Cfa::Missing);
    assert_eq!(table.lookup(main.address).unwrap().cfa, Cfa::Rsp(8));
    // Every other address keeps its rules.
    let inside = |pc: u64| pc >= sort_all.address && pc < sort_all.address + sort_all.size;
    for row in good.rows().iter().filter(|r| !inside(r.pc)) {
        let rules = |r: scorch_unwind::Row| (r.cfa, r.rbp);
        assert_eq!(
            table.lookup(row.pc).map(rules),
            Some(rules(*row)),
            "at {:#x}",
            row.pc
        );
    }
}

#[test]
fn an_undefined_rbp_is_unsupported_not_unchanged() {
    // `clobbers` declares RBP undefined once it overwrites it: its caller's
    // RBP is lost, not the current one.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("undefined_rbp.c");
    std::fs::write(
        &src,
        r#"
__asm__(".text\n.globl clobbers\n.type clobbers, @function\nclobbers:\n"
        ".cfi_startproc\n    nop\n    xor %ebp, %ebp\n.cfi_undefined %rbp\n"
        "    nop\n    ret\n.cfi_endproc\n.size clobbers, .-clobbers\n");
void clobbers(void);
int main(void) { clobbers(); return 0; }
"#,
    )
    .unwrap();
    let exe = dir.join("undefined_rbp");
    run(Command::new("gcc").arg("-O2").arg("-o").arg(&exe).arg(&src));
    let table = build(&exe).expect("table");
    let clobbers = symbols(&exe)
        .into_iter()
        .find(|s| s.name == "clobbers")
        .unwrap();
    // nop (1 byte), xor %ebp, %ebp (2 bytes), then the rule changes.
    assert_eq!(table.lookup(clobbers.address).unwrap().rbp, Rbp::Same);
    assert_eq!(
        table.lookup(clobbers.address + 3).unwrap().rbp,
        Rbp::Unsupported
    );
}

#[test]
fn eh_frame_without_a_usable_header_is_scanned() {
    let exe = c_workload("qsort_spin", "qsort_spin", &[]);
    let with_hdr = build(&exe).expect("table");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));

    let no_hdr = dir.join("qsort-spin-no-eh-frame-hdr");
    run(Command::new("objcopy")
        .arg("--remove-section=.eh_frame_hdr")
        .arg(&exe)
        .arg(&no_hdr));
    assert_eq!(build(&no_hdr).expect("table").rows(), with_hdr.rows());

    // A header whose version byte is wrong: gimli refuses it.
    let (offset, _) = section_range(&exe, ".eh_frame_hdr");
    let mut bytes = std::fs::read(&exe).unwrap();
    bytes[offset] = 0x7f;
    let bad_hdr = dir.join("qsort-spin-bad-eh-frame-hdr");
    std::fs::write(&bad_hdr, &bytes).unwrap();
    assert_eq!(build(&bad_hdr).expect("table").rows(), with_hdr.rows());

    // A header whose search table is out of order (its first two entries,
    // 8 bytes each after a 12-byte header, swapped): not read in place but
    // indexed and sorted.
    let mut bytes = std::fs::read(&exe).unwrap();
    let table = offset + 12;
    let first: Vec<u8> = bytes[table..table + 8].to_vec();
    bytes.copy_within(table + 8..table + 16, table);
    bytes[table + 8..table + 16].copy_from_slice(&first);
    let unsorted = dir.join("qsort-spin-unsorted-eh-frame-hdr");
    std::fs::write(&unsorted, &bytes).unwrap();
    assert_eq!(build(&unsorted).expect("table").rows(), with_hdr.rows());
}

/// File offset and size of section `name` of `path`, from `readelf -SW`.
fn section_range(path: &Path, name: &str) -> (usize, usize) {
    let headers = run(Command::new("readelf").arg("-SW").arg(path));
    let line = headers
        .lines()
        .find(|l| l.split_whitespace().any(|f| f == name))
        .unwrap_or_else(|| panic!("no {name} in {}", path.display()));
    let f: Vec<&str> = line.split_whitespace().collect();
    let at = f.iter().position(|s| *s == name).unwrap();
    (
        usize::from_str_radix(f[at + 3], 16).unwrap(),
        usize::from_str_radix(f[at + 4], 16).unwrap(),
    )
}

#[test]
fn the_vdso_image_matches_readelf() {
    // The vDSO has no file: its image is read from memory (here our own).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| l.ends_with("[vdso]"))
        .expect("a [vdso] mapping");
    let (start, end) = line.split(' ').next().unwrap().split_once('-').unwrap();
    let start = u64::from_str_radix(start, 16).unwrap();
    let end = u64::from_str_radix(end, 16).unwrap();
    let mut image = vec![0u8; (end - start) as usize];
    let mem = std::fs::File::open("/proc/self/mem").unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut image, start).unwrap();

    let table = scorch_unwind::build_image(&image, Path::new("[vdso]")).expect("vDSO table");
    assert!(matches!(table.key(), FileKey::BuildId(_)));
    let dumped = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vdso.so");
    std::fs::write(&dumped, &image).unwrap();
    let compared = oracle::compare(&dumped, &table);
    assert!(compared.fdes >= 2, "{compared:?}");

    let mut not_elf = image.clone();
    not_elf[..4].copy_from_slice(b"\0\0\0\0");
    assert!(matches!(
        scorch_unwind::build_image(&not_elf, Path::new("[vdso]")),
        Err(Error::NotElf { .. })
    ));
}
