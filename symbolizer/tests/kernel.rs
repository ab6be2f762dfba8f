//! Kernel symbolization through the running kernel's /proc/kallsyms.

use std::fs;

use scorch_formats::FrameKind;
use scorch_symbolizer::Symbolizer;

/// The address of `name` in /proc/kallsyms, when the kernel shows addresses.
fn kallsyms_address(name: &str) -> Option<u64> {
    fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut fields = l.split_whitespace();
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _kind = fields.next()?;
            (fields.next()? == name && address != 0).then_some(address)
        })
}

#[test]
fn kernel_functions_resolve_by_name() {
    let Some(schedule) = kallsyms_address("schedule") else {
        println!("skipped: /proc/kallsyms hides addresses (run as root, kernel.kptr_restrict < 2)");
        return;
    };
    let mut s = Symbolizer::new();
    let resolved = s.kernel(&[schedule, schedule + 0x10, 0, 1]);
    for r in &resolved[..2] {
        assert_eq!(r.kind, FrameKind::Kernel);
        assert_eq!(r.mapping, None);
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].function, "schedule");
        assert_eq!((r.lines[0].file.as_deref(), r.lines[0].line), (None, None));
    }
    assert_eq!(resolved[1].address, schedule + 0x10);
    for r in &resolved[2..] {
        assert!(r.lines.is_empty(), "{r:?}");
    }
}

#[test]
fn one_shot_and_table_name_every_kernel_address_alike() {
    let Some(schedule) = kallsyms_address("schedule") else {
        println!("skipped: /proc/kallsyms hides addresses (run as root, kernel.kptr_restrict < 2)");
        return;
    };
    // Addresses spread over kernel text around a known function, plus edges.
    let mut addrs: Vec<u64> = (0..2000u64)
        .map(|i| schedule - 0x10_0000 + i * 0x433)
        .collect();
    addrs.extend([0, 1, u64::MAX, schedule]);
    let table: Vec<_> = Symbolizer::new()
        .kernel(&addrs)
        .into_iter()
        .map(|r| r.lines)
        .collect();
    let once: Vec<_> = Symbolizer::one_shot()
        .kernel(&addrs)
        .into_iter()
        .map(|r| r.lines)
        .collect();
    assert_eq!(table, once);
    assert!(
        table.iter().filter(|l| !l.is_empty()).count() > 1000,
        "few kernel names resolved"
    );
}
