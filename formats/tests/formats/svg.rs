//! SVG flame graphs: well-formed, complete, colored, deterministic.

use scorch_formats::{svg, Profile, TextOptions};

use crate::fixture::{golden, profile, render, TOTAL};

/// Parses the SVG, which has a DOCTYPE, as XML; fails if it is not well-formed.
fn parse(svg: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(svg, options).expect("well-formed XML")
}

fn draw(profile: &Profile) -> String {
    render(|out| svg::write(profile, &TextOptions::default(), out))
}

/// Texts of the `<title>` of every frame, e.g. `main (27 samples, 100.00%)`.
fn frame_titles(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

/// The `rgb(r,g,b)` fill of the frame whose title starts with `name (`.
fn fill(doc: &roxmltree::Document<'_>, name: &str) -> (u8, u8, u8) {
    let prefix = format!("{name} (");
    let group = doc
        .descendants()
        .filter(|n| n.has_tag_name("g"))
        .find(|g| {
            g.children().any(|c| {
                c.has_tag_name("title") && c.text().is_some_and(|t| t.starts_with(&prefix))
            })
        })
        .unwrap_or_else(|| panic!("no frame {name}"));
    let rect = group
        .children()
        .find(|c| c.has_tag_name("rect"))
        .expect("frame rect");
    let rgb = rect.attribute("fill").expect("fill");
    let parts: Vec<u8> = rgb
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|p| p.trim().parse().expect("color component"))
        .collect();
    (parts[0], parts[1], parts[2])
}

#[test]
fn flame_graph_is_well_formed_and_has_every_frame() {
    let out = draw(&profile());
    let doc = parse(&out);
    assert!(doc.root_element().has_tag_name("svg"));

    let title = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("title"))
        .and_then(|n| n.text())
        .expect("title");
    assert_eq!(
        title,
        format!("scorch profile — PID 100 — 2.0 s, {TOTAL} samples")
    );

    let titles = frame_titles(&doc);
    for name in [
        "app",
        "node",
        "kworker/0:1",
        "main",
        "handle_request",
        "parse_header",
        "libfoo.so+0x1a2b",
        "[unknown]",
        "LazyCompile:*fib /srv/fib.js:3",
        "[Missed User Stack]",
        "[Missed Kernel Stack]",
        "entry_SYSCALL_64",
        "vfs_write",
        "process_one_work",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(&format!("{name} ("))),
            "no frame {name} in {titles:?}"
        );
    }
    // The merged line: 7 + 4 samples of libfoo under app.
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("libfoo.so+0x1a2b (11 samples")),
        "{titles:?}"
    );
    // Annotations color frames but are not shown.
    assert!(
        titles
            .iter()
            .all(|t| !t.contains("_[k]") && !t.contains("_[j]")),
        "{titles:?}"
    );
}

#[test]
fn kernel_and_jit_frames_have_their_own_colors() {
    let out = draw(&profile());
    let doc = parse(&out);
    // inferno's js palette: kernel orange (no blue), JIT green or aqua
    // (more green than red), native code red (green equals blue).
    for kernel in ["vfs_write", "entry_SYSCALL_64", "process_one_work"] {
        let (r, g, b) = fill(&doc, kernel);
        assert!(b == 0 && r > g, "{kernel}: rgb({r},{g},{b})");
    }
    let (r, g, b) = fill(&doc, "main");
    assert!(r > g && g == b, "main: rgb({r},{g},{b})");
    let (r, g, b) = fill(&doc, "LazyCompile:*fib /srv/fib.js:3");
    assert!(g > r, "jit: rgb({r},{g},{b})");
    for placeholder in ["[Missed User Stack]", "[Missed Kernel Stack]", "[unknown]"] {
        let (r, g, b) = fill(&doc, placeholder);
        assert!(r == g && g == b, "{placeholder}: rgb({r},{g},{b})");
    }
}

#[test]
fn flame_graph_is_deterministic() {
    let first = draw(&profile());
    assert_eq!(first, draw(&profile()));
    golden("flamegraph.svg", &first);
}

#[test]
fn empty_profile_says_so() {
    for empty in [Profile::default(), {
        let mut p = profile();
        p.samples.iter_mut().for_each(|s| s.count = 0);
        p
    }] {
        let out = draw(&empty);
        let doc = parse(&out);
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains(&"No samples were collected."), "{out}");
        assert!(
            texts.iter().any(|t| t.starts_with("scorch profile")),
            "{out}"
        );
    }
}

#[test]
fn hostile_names_keep_the_xml_valid() {
    let mut p = profile();
    p.meta.target = "PID <1> & \"q\"\u{1}".to_string();
    p.samples[0].comm = "a\nb\u{0}<c>&".to_string();
    let out = draw(&p);
    let doc = parse(&out);
    let titles = frame_titles(&doc);
    assert!(
        titles.iter().any(|t| t.starts_with("a?b?<c>& (")),
        "{titles:?}"
    );

    let mut empty = Profile::default();
    empty.meta.target = "<&>\u{7}".to_string();
    parse(&draw(&empty));
}
