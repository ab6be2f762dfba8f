//! Off-CPU profiles: counts are nanoseconds, shown in microseconds where
//! bcc's `offcputime` shows them, and typed `off-cpu/nanoseconds` in pprof.

use scorch_formats::text::{header, Header};
use scorch_formats::{pprof, svg, text, Measure, Meta, Profile, TextOptions};

use crate::fixture::{profile, render};

/// The fixture with its counts read as nanoseconds: each count becomes
/// `count` ms plus 400 ns, so flooring to microseconds shows.
fn off_cpu() -> Profile {
    let mut p = profile();
    p.meta = Meta {
        measure: Measure::OffCpuNanoseconds,
        frequency_hz: None,
        ..p.meta
    };
    for s in &mut p.samples {
        s.count = s.count * 1_000_000 + 400;
    }
    p
}

#[test]
fn folded_counts_are_microseconds() {
    let on = render(|out| text::write_folded(&profile(), &TextOptions::default(), out));
    let off = render(|out| text::write_folded(&off_cpu(), &TextOptions::default(), out));
    let on_lines: Vec<&str> = on.lines().collect();
    let off_lines: Vec<&str> = off.lines().collect();
    assert_eq!(on_lines.len(), off_lines.len());
    for (on, off) in on_lines.iter().zip(&off_lines) {
        let (stack, count) = on.rsplit_once(' ').unwrap();
        let (off_stack, micros) = off.rsplit_once(' ').unwrap();
        assert_eq!(stack, off_stack);
        // Lines merged from n samples carry n × 400 ns: still under 1 us each.
        let count: u64 = count.parse().unwrap();
        assert!(
            micros == (count * 1000).to_string() || micros == (count * 1000 + 1).to_string(),
            "{off} for {on}"
        );
    }
}

#[test]
fn stacks_under_a_microsecond_are_left_out() {
    let mut p = off_cpu();
    p.samples.truncate(1);
    let folded = |p: &Profile| render(|out| text::write_folded(p, &TextOptions::default(), out));
    p.samples[0].count = 1000;
    assert!(folded(&p).ends_with(" 1\n"), "{}", folded(&p));
    p.samples[0].count = 999;
    assert_eq!(folded(&p), "");
}

#[test]
fn header_is_offcputimes() {
    let h = Header {
        target: "PID 123".to_string(),
        user: true,
        kernel: true,
        duration_secs: Some(5),
        off_cpu: true,
        ..Header::default()
    };
    assert_eq!(
        header(&h),
        "Tracing off-CPU time (us) of PID 123 by user + kernel stack for 5 secs."
    );
}

#[test]
fn pprof_sample_type_is_off_cpu_nanoseconds() {
    let p = off_cpu();
    let proto = pprof::to_proto(&p);
    let name = |i: i64| proto.string_table[i as usize].as_str();
    let types: Vec<(&str, &str)> = proto
        .sample_type
        .iter()
        .map(|t| (name(t.r#type), name(t.unit)))
        .collect();
    assert_eq!(types, [("off-cpu", "nanoseconds")]);
    let period = proto.period_type.as_ref().unwrap();
    assert_eq!(
        (name(period.r#type), name(period.unit)),
        ("off-cpu", "nanoseconds")
    );
    assert_eq!(proto.period, 1);
    let total: i64 = proto.sample.iter().map(|s| s.value[0]).sum();
    assert_eq!(total as u64, p.total_count());
    assert!(proto.sample.iter().all(|s| s.value.len() == 1));
}

#[test]
fn flame_graph_counts_microseconds() {
    let p = off_cpu();
    let out = render(|out| svg::write(&p, &TextOptions::default(), out));
    let micros = p.total_count() / 1000;
    assert!(
        out.contains(&format!(
            "Off-CPU Time Flame Graph — PID 100 — 2.0 s, {micros} us"
        )),
        "title missing"
    );
    assert!(
        out.contains(" us, 100%)") || out.contains(" us, 100.00%)"),
        "no us counts"
    );
    assert!(!out.contains(" samples, "), "frames counted in samples");
}
