//! The `Format` choice, the `write` entry point, and robustness.

use std::path::Path;

use scorch_formats::{
    pprof, text, write, Error, Format, FrameKind, Location, Mapping, Profile, Sample, Stack,
    TextOptions,
};

use crate::fixture::{profile, render};

#[test]
fn format_from_extension() {
    let cases = [
        ("out.folded", Some(Format::Folded)),
        ("/tmp/x.collapsed", Some(Format::Folded)),
        ("report.txt", Some(Format::Text)),
        ("flame.SVG", Some(Format::Svg)),
        ("cpu.pb.gz", Some(Format::Pprof)),
        ("cpu.pb", Some(Format::Pprof)),
        ("cpu.pprof", Some(Format::Pprof)),
        ("profile.json", Some(Format::Json)),
        ("archive.tar.gz", None),
        ("noextension", None),
        (".svg", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Format::from_extension(Path::new(path)), expected, "{path}");
    }
}

#[test]
fn format_from_str() {
    for format in Format::ALL {
        assert_eq!(
            format.to_string().parse::<Format>().expect("parses"),
            format
        );
    }
    assert_eq!("PPROF".parse::<Format>().expect("parses"), Format::Pprof);
    let err = "flamegraph".parse::<Format>().expect_err("unknown");
    assert!(matches!(err, Error::UnknownFormat(ref s) if s == "flamegraph"));
    assert_eq!(
        err.to_string(),
        "unknown output format `flamegraph`: use one of folded, text, svg, pprof, json"
    );
}

#[test]
fn write_dispatches_on_format() {
    let p = profile();
    let opts = TextOptions::default();
    let folded = render(|w| write(&p, Format::Folded, &opts, w));
    assert_eq!(folded, render(|w| text::write_folded(&p, &opts, w)));
    let report = render(|w| write(&p, Format::Text, &opts, w));
    assert_eq!(report, render(|w| text::write_text(&p, &opts, w)));
    assert!(render(|w| write(&p, Format::Svg, &opts, w)).starts_with("<?xml"));
    assert!(render(|w| write(&p, Format::Json, &opts, w)).starts_with("{\"meta\":"));

    let mut bytes = Vec::new();
    write(&p, Format::Pprof, &opts, &mut bytes).expect("writes");
    assert_eq!(pprof::decode(&bytes).expect("decodes"), pprof::to_proto(&p));
}

/// A writer that always fails, like a closed pipe.
struct Broken;

impl std::io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn write_errors_are_reported() {
    for format in Format::ALL {
        let err = write(&profile(), format, &TextOptions::default(), Broken).expect_err("fails");
        assert!(matches!(err, Error::Io(_)), "{format}: {err:?}");
        assert!(
            err.to_string().starts_with("cannot write the profile: "),
            "{err}"
        );
    }
}

/// A profile whose indices point nowhere and whose numbers overflow.
fn corrupt() -> Profile {
    Profile {
        mappings: vec![Mapping {
            start: 0x1000,
            limit: 0x2000,
            offset: 0,
            file: String::new(),
            build_id: None,
        }],
        locations: vec![
            Location {
                address: 0x10,
                mapping: Some(0),
                kind: FrameKind::User,
                lines: vec![],
            },
            Location {
                address: 0x10,
                mapping: Some(42),
                kind: FrameKind::Kernel,
                lines: vec![],
            },
        ],
        samples: vec![
            Sample {
                pid: u32::MAX,
                tid: Some(u32::MAX),
                comm: String::new(),
                user: Stack::Frames(vec![0, 99]),
                kernel: Stack::Frames(vec![1, usize::MAX]),
                count: u64::MAX,
            },
            Sample {
                pid: 0,
                tid: None,
                comm: String::new(),
                user: Stack::Frames(vec![0, 99]),
                kernel: Stack::Frames(vec![1, usize::MAX]),
                count: u64::MAX,
            },
        ],
        ..Profile::default()
    }
}

#[test]
fn corrupt_profiles_do_not_panic() {
    let p = corrupt();
    let opts = TextOptions {
        annotate_kernel: true,
        delimited: true,
        ..TextOptions::default()
    };
    for format in Format::ALL {
        let mut out = Vec::new();
        write(&p, format, &opts, &mut out).unwrap_or_else(|e| panic!("{format}: {e}"));
    }
    // Dangling indices show as unknown; counts saturate.
    let folded = render(|w| text::write_folded(&p, &opts, w));
    assert_eq!(
        folded,
        format!(
            ";[unknown];+0xfffffffffffff010;-;[unknown]_[k];[unknown]_[k] {}\n",
            u64::MAX
        )
    );
    let decoded = pprof::decode(&pprof::encode(&p)).expect("decodes");
    let stacks = pprof::stacks(&decoded).expect("valid references");
    assert_eq!(
        stacks[0].0,
        ["[unknown]", "+0xfffffffffffff010", "[unknown]", "[unknown]"]
    );
}
