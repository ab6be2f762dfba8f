//! Splitting a profile per process keeps every sample and only the
//! locations each part uses.

use scorch_formats::{FrameKind, Line, Location, Mapping, Meta, ProfileBuilder, Sample, Stack};

fn location(
    builder: &mut ProfileBuilder,
    address: u64,
    name: &str,
    mapping: Option<usize>,
) -> usize {
    builder.location(Location {
        address,
        mapping,
        kind: FrameKind::User,
        lines: vec![Line {
            function: name.to_string(),
            file: None,
            line: None,
        }],
    })
}

#[test]
fn split_by_pid_keeps_samples_and_reinterns_locations() {
    let mut b = ProfileBuilder::new(Meta::default());
    let libc = b.mapping(Mapping {
        start: 0x1000,
        limit: 0x9000,
        offset: 0,
        file: "/lib/libc.so.6".into(),
        build_id: Some("abcd".into()),
    });
    let shared = location(&mut b, 0x1100, "write", Some(libc));
    let a_main = location(&mut b, 0x400100, "a_main", None);
    let b_main = location(&mut b, 0x500100, "b_main", None);
    let sample = |pid, comm: &str, frames: Vec<usize>, count| Sample {
        pid,
        tid: None,
        comm: comm.into(),
        user: Stack::Frames(frames),
        kernel: Stack::Missed,
        count,
    };
    b.sample(sample(1, "a", vec![shared, a_main], 3));
    b.sample(sample(2, "b", vec![shared, b_main], 5));
    b.sample(sample(1, "a", vec![a_main], 1));
    let whole = b.build();

    let parts = whole.split_by(|s| s.pid);
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    let a = &parts[&1];
    assert_eq!(a.total_count(), 4);
    assert_eq!(a.locations.len(), 2, "only the locations process 1 uses");
    assert_eq!(a.mappings.len(), 1);
    let Stack::Frames(frames) = &a.samples[0].user else {
        panic!("frames expected");
    };
    let names: Vec<String> = frames.iter().map(|&i| a.location_name(i)).collect();
    assert_eq!(names, ["write", "a_main"]);
    assert_eq!(
        a.mappings[a.locations[frames[0]].mapping.unwrap()].file,
        "/lib/libc.so.6"
    );
    assert_eq!(a.samples[0].kernel, Stack::Missed);
    let b_part = &parts[&2];
    assert_eq!(b_part.total_count(), 5);
    assert_eq!(
        parts.values().map(|p| p.total_count()).sum::<u64>(),
        whole.total_count()
    );
}
