//! The flame tree built straight from the dictionaries is the tree
//! `FlameTree::from_profile` builds from the merged profile, whatever the
//! frames: inlined functions, unsymbolized addresses with and without a
//! mapping, kernel and JIT frames, missed stacks, names shared by different
//! locations, kinds and commands, and names equal to an address's name.
//! So is the first paint's tree, pruned before its names are read, to the
//! pruned whole tree.

mod common;

use common::*;
use scorch_formats::flame::FlameTree;
use scorch_formats::{
    FrameKind, Line, Location, Mapping, Measure, Meta, Profile, ProfileBuilder, Sample, Stack,
};
use scorch_store::{Query, Store, StoreOptions};

/// A window whose frames collide by name in every way the tree cares about.
fn tricky(seed: u64) -> Profile {
    let mut rng = Rng::new(seed);
    let mut b = ProfileBuilder::new(Meta {
        frequency_hz: Some(99),
        ..Meta::default()
    });
    let app = b.mapping(Mapping {
        start: 0x1000,
        limit: 0x9000,
        offset: 0x200,
        file: "/usr/bin/app".into(),
        build_id: Some("b1d".into()),
    });
    let line = |f: &str| Line {
        function: f.to_string(),
        file: Some("src/x.c".into()),
        line: Some(7),
    };
    let locations: Vec<usize> = [
        // Unsymbolized in a mapping: named `app+0x…`.
        (0x1010, Some(app), FrameKind::User, vec![]),
        (0x1020, Some(app), FrameKind::User, vec![]),
        // Unsymbolized without a mapping: `[unknown]`.
        (0x77, None, FrameKind::User, vec![]),
        (0x78, None, FrameKind::Jit, vec![]),
        // A function named as an unsymbolized address is.
        (0x2000, Some(app), FrameKind::User, vec![line("app+0x210")]),
        // The same name at two locations, and in two kinds.
        (0x2010, Some(app), FrameKind::User, vec![line("parse")]),
        (0x2020, Some(app), FrameKind::User, vec![line("parse")]),
        (0x2030, None, FrameKind::Kernel, vec![line("parse")]),
        (0x2040, None, FrameKind::Jit, vec![line("[unknown]")]),
        // Inlined functions, one named as the command.
        (
            0x2050,
            Some(app),
            FrameKind::User,
            vec![line("inner"), line("web"), line("outer")],
        ),
        // A function named as the root is.
        (0x2070, Some(app), FrameKind::User, vec![line("all")]),
        (0x2060, Some(app), FrameKind::User, vec![line("main")]),
        (0x3000, None, FrameKind::Kernel, vec![line("schedule")]),
    ]
    .into_iter()
    .map(|(address, mapping, kind, lines)| {
        b.location(Location {
            address,
            mapping,
            kind,
            lines,
        })
    })
    .collect();
    for _ in 0..60 {
        let depth = 1 + rng.below(6) as usize;
        let mut user = vec![locations[11]];
        user.extend((0..depth).map(|_| locations[rng.below(11) as usize]));
        let kernel = match rng.below(4) {
            0 => Stack::Absent,
            1 => Stack::Missed,
            _ => Stack::Frames(vec![locations[12], locations[7]]),
        };
        b.sample(Sample {
            pid: 1 + rng.below(2) as u32,
            tid: None,
            comm: ["web", "parse", "app+0x210"][rng.below(3) as usize].into(),
            user: Stack::Frames(user),
            kernel,
            count: 1 + rng.below(9),
        });
    }
    b.build()
}

/// A stripped program: `addresses` distinct unsymbolized addresses under
/// `main`, one of them named as a function of `tricky` is.
fn stripped(addresses: u64) -> Profile {
    let mut b = ProfileBuilder::new(Meta::default());
    let app = b.mapping(Mapping {
        start: 0x1000,
        limit: 0x100_0000,
        offset: 0x200,
        file: "/usr/bin/app".into(),
        build_id: None,
    });
    let main = b.location(Location {
        address: 0x10,
        mapping: None,
        kind: FrameKind::User,
        lines: vec![Line {
            function: "main".into(),
            file: None,
            line: None,
        }],
    });
    // 0x1010 is `app+0x210`, the name of a function in `tricky`.
    for i in 0..addresses {
        let leaf = b.location(Location {
            address: 0x1010 + i * 16,
            mapping: Some(app),
            kind: FrameKind::User,
            lines: vec![],
        });
        b.sample(Sample {
            pid: 7,
            tid: None,
            comm: "stripped".into(),
            user: Stack::Frames(vec![leaf, main]),
            kernel: Stack::Absent,
            count: 1 + i % 50,
        });
    }
    b.build()
}

fn assert_same_tree(store: &Store, query: &Query) {
    let profile = store.query(query).unwrap();
    let expected = FlameTree::from_profile(&profile, query.from_unix_ns, query.until_unix_ns);
    let (tree, windows) = store.flame_tree_with_window_set(query).unwrap();
    assert_eq!(windows, store.window_set(query).unwrap());
    assert!(expected.nodes.name.len() > 1, "an empty tree proves little");
    // Equal trees are equal JSON: serialising is a function of the tree.
    assert_eq!(tree, expected);
    // The first paint's tree, named after pruning, is the pruned whole tree.
    for share in [1e-9, 0.0001, 0.02, 0.1, 0.5, 1.0] {
        let (pruned, windows) = store
            .pruned_flame_tree_with_window_set(query, share)
            .unwrap();
        assert_eq!(windows, store.window_set(query).unwrap());
        assert_eq!(pruned, expected.pruned(share), "min_share {share}");
    }
}

#[test]
fn the_tree_from_the_dictionaries_is_the_tree_of_the_merged_profile() {
    let dir = TempDir::new("flame");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut windows = Vec::new();
    for i in 0..8 {
        windows.push(window(i, labels(&[("comm", "tricky")]), tricky(i)));
        windows.push(window(i, labels(&[("comm", "worker")]), profile(i, 200)));
    }
    store.write_windows(&windows).unwrap();
    let all = Query::range(T0, T0 + 8 * TEN_S);
    // Cold dictionary cache, then warm.
    assert_same_tree(&store, &all);
    assert_same_tree(&store, &all);
    assert_same_tree(&store, &all.clone().label("comm", "tricky"));
    assert_same_tree(&store, &all.clone().label("comm", "worker"));
    assert_same_tree(&store, &Query::range(T0 + TEN_S, T0 + 3 * TEN_S));
    // Strings far apart in the dictionary: an old command and function,
    // new functions after hundreds of others.
    let filler: Vec<String> = (0..600).map(|i| format!("filler_{i}")).collect();
    let filler: Vec<&str> = filler.iter().map(String::as_str).collect();
    store
        .write_window(&window(
            8,
            labels(&[("comm", "filler")]),
            stacks("filler", &[(&filler, 1)]),
        ))
        .unwrap();
    let late: [(&[&str], u64); 3] = [
        (&["main", "late_a"], 1),
        (&["main", "late_b"], 2),
        (&["late_a", "main"], 3),
    ];
    store
        .write_window(&window(
            9,
            labels(&[("comm", "late")]),
            stacks("web", &late),
        ))
        .unwrap();
    assert_same_tree(&store, &Query::range(T0 + 9 * TEN_S, T0 + 10 * TEN_S));
    // More unsymbolized names than the pruned build looks up one by one.
    store
        .write_window(&window(10, labels(&[("comm", "stripped")]), stripped(5000)))
        .unwrap();
    assert_same_tree(&store, &Query::range(T0 + 10 * TEN_S, T0 + 11 * TEN_S));
    assert_same_tree(&store, &Query::range(T0, T0 + 11 * TEN_S));
    // Nothing in the range: the empty tree, as from an empty profile.
    let empty = Query::range(T0 + 100 * TEN_S, T0 + 101 * TEN_S);
    let (tree, _) = store.flame_tree_with_window_set(&empty).unwrap();
    let expected = FlameTree::from_profile(
        &store.query(&empty).unwrap(),
        empty.from_unix_ns,
        empty.until_unix_ns,
    );
    assert_eq!(tree, expected);
    // Another measure: its own period.
    let off = Query::range(T0, T0 + 8 * TEN_S).measure(Measure::OffCpuNanoseconds);
    let (tree, _) = store.flame_tree_with_window_set(&off).unwrap();
    assert_eq!(tree.meta.period_ns, 1);
}
