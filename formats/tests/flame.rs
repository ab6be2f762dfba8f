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
        .map(|&i| &*tree.names[i as usize])
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

/// A profile whose stacks are given root first as names; every name is a
/// user frame of its own location.
fn profile_of(stacks: &[(&[&str], u64)]) -> scorch_formats::Profile {
    let mut b = ProfileBuilder::new(Meta::default());
    for (frames, count) in stacks {
        let mut user: Vec<usize> = frames
            .iter()
            .map(|name| {
                b.location(Location {
                    address: 0,
                    mapping: None,
                    kind: FrameKind::User,
                    lines: vec![Line {
                        function: name.to_string(),
                        file: None,
                        line: None,
                    }],
                })
            })
            .collect();
        user.reverse();
        b.sample(Sample {
            pid: 1,
            tid: None,
            comm: "app".into(),
            user: Stack::Frames(user),
            kernel: Stack::Absent,
            count: *count,
        });
    }
    b.build()
}

/// Checks the invariants the page relies on: pre-order, totals add up.
fn check_tree(tree: &FlameTree) {
    let n = tree.nodes.name.len();
    let mut children_total = vec![0u64; n];
    for i in 1..n {
        let p = tree.nodes.parent[i];
        assert!(p >= 0 && (p as usize) < i, "node {i} not in pre-order");
        children_total[p as usize] += tree.nodes.total[i];
        assert!((tree.nodes.name[i] as usize) < tree.names.len());
    }
    for (i, below) in children_total.iter().enumerate() {
        assert_eq!(
            below + tree.nodes.self_count[i],
            tree.nodes.total[i],
            "node {i} ({}) does not add up",
            tree.names[tree.nodes.name[i] as usize]
        );
    }
}

#[test]
fn inlined_frames_and_unknown_locations_are_frames() {
    let mut b = ProfileBuilder::new(Meta::default());
    let inlined = b.location(Location {
        address: 1,
        mapping: None,
        kind: FrameKind::User,
        // Innermost first: `helper` was inlined into `caller`.
        lines: vec![
            Line {
                function: "helper".into(),
                file: None,
                line: None,
            },
            Line {
                function: "caller".into(),
                file: None,
                line: None,
            },
        ],
    });
    let bare = b.location(Location {
        address: 0x1234,
        mapping: None,
        kind: FrameKind::Jit,
        lines: Vec::new(),
    });
    for user in [vec![bare, inlined], vec![99, inlined]] {
        b.sample(Sample {
            pid: 1,
            tid: None,
            comm: "app".into(),
            user: Stack::Frames(user),
            kernel: Stack::Absent,
            count: 2,
        });
    }
    let tree = FlameTree::from_profile(&b.build(), 0, 1);
    let names: Vec<&str> = tree
        .nodes
        .name
        .iter()
        .map(|&i| &*tree.names[i as usize])
        .collect();
    assert_eq!(
        names,
        ["all", "app", "caller", "helper", "[unknown]", "[unknown]"]
    );
    // The index pointing nowhere (a user frame) and the bare JIT location
    // share the name `[unknown]`, not the kind; equal totals and names go
    // by kind.
    assert_eq!(tree.nodes.kind, [3, 3, 0, 0, 0, 2]);
    assert_eq!(tree.nodes.parent, [-1, 0, 1, 2, 3, 3]);
    check_tree(&tree);
}

#[test]
fn pruning_keeps_totals_and_says_what_it_left_out() {
    // 100 samples: `big` 60 (with a 1-sample leaf), `mid` 30, and ten
    // 1-sample functions under main.
    let mut stacks: Vec<(&[&str], u64)> = vec![
        (&["main", "big"], 59),
        (&["main", "big", "tiny_leaf"], 1),
        (&["main", "mid"], 30),
    ];
    let small = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];
    let paths: Vec<[&str; 2]> = small.iter().map(|s| ["main", *s]).collect();
    stacks.extend(paths.iter().map(|p| (&p[..], 1)));
    let tree = FlameTree::from_profile(&profile_of(&stacks), 0, 1);
    check_tree(&tree);
    assert_eq!(tree.meta.pruned, 0);

    // 5%: keeps all, app, main, big, mid; the ten small functions become one
    // node under main, the leaf one under big.
    let pruned = tree.pruned(0.05);
    check_tree(&pruned);
    let names: Vec<&str> = pruned
        .nodes
        .name
        .iter()
        .map(|&i| &*pruned.names[i as usize])
        .collect();
    let other = scorch_formats::flame::prune::PRUNED_NAME;
    assert_eq!(names, ["all", "app", "main", "big", other, "mid", other]);
    assert_eq!(pruned.nodes.total, [100, 100, 100, 60, 1, 30, 10]);
    assert_eq!(pruned.nodes.self_count, [0, 0, 0, 59, 1, 30, 10]);
    assert_eq!(pruned.nodes.kind, [3, 3, 0, 0, 4, 0, 4]);
    assert_eq!(pruned.meta.pruned, 11);
    assert_eq!(pruned.meta.samples, tree.meta.samples);
    // Only the names still used, and the pruned node's, are sent.
    assert_eq!(pruned.names.len(), 6);

    // A share of 0 keeps everything; 1 keeps only what holds every sample.
    assert_eq!(tree.pruned(0.0), tree);
    let top = tree.pruned(1.0);
    check_tree(&top);
    assert_eq!(top.nodes.total, [100, 100, 100, 100]);
    assert_eq!(top.nodes.kind, [3, 3, 0, 4]);
    assert_eq!(top.meta.pruned, 13);
}
