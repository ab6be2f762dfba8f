//! The page's flame tree: merged stacks in pre-order with correct totals.

use scorch_formats::flame::FlameTree;
use scorch_formats::{FrameKind, Line, Location, Meta, ProfileBuilder, Sample, Stack};

#[test]
fn stacks_merge_into_a_preorder_tree() {
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(100),
        ..Meta::default()
    });
    let mut loc = |name: &str, kind| {
        b.location(Location {
            address: name.len() as u64,
            mapping: None,
            kind,
            lines: vec![Line {
                function: name.into(),
                file: None,
                line: None,
            }],
        })
    };
    let main = loc("main", FrameKind::User);
    let work = loc("work", FrameKind::User);
    let read = loc("read", FrameKind::User);
    let sys = loc("ksys_read", FrameKind::Kernel);
    let sample = |user: Vec<usize>, kernel: Stack, count| Sample {
        pid: 1,
        tid: None,
        comm: "app".into(),
        user: Stack::Frames(user),
        kernel,
        count,
    };
    // Stacks are leaf first.
    b.sample(sample(vec![work, main], Stack::Absent, 6));
    b.sample(sample(vec![read, main], Stack::Frames(vec![sys]), 3));
    b.sample(sample(vec![main], Stack::Absent, 1));
    let tree = FlameTree::from_profile(&b.build(), 10, 20);

    let names: Vec<&str> = tree
        .nodes
        .name
        .iter()
        .map(|&i| tree.names[i as usize].as_str())
        .collect();
    assert_eq!(names, ["all", "app", "main", "work", "read", "ksys_read"]);
    assert_eq!(tree.nodes.parent, [-1, 0, 1, 2, 2, 4]);
    assert_eq!(tree.nodes.total, [10, 10, 10, 6, 3, 3]);
    assert_eq!(tree.nodes.self_count, [0, 0, 1, 6, 0, 3]);
    assert_eq!(tree.nodes.kind, [3, 3, 0, 0, 0, 1]);
    assert_eq!(
        (tree.meta.samples, tree.meta.period_ns, tree.meta.from),
        (10, 10_000_000, 10)
    );
    let json = serde_json::to_string(&tree).unwrap();
    assert!(json.contains("\"self\":[0,0,1,6,0,3]"), "{json}");
}
