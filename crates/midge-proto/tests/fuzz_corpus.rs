//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) in the ordinary test suite.
//!
//! Every file of every corpus goes through every check the fuzz targets make: decoding with
//! the server decoder and with a decoder per version (each decoded packet round-tripped),
//! decoding split in two and byte by byte, and the topic checks. The checks are the fuzz
//! crate's own (`fuzz/src/lib.rs`), included here so that there is one copy of them.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod checks;

use checks::DecoderKind;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus");

/// The fuzz targets; each must have a non-empty corpus.
const TARGETS: [&str; 6] = [
    "decode_server",
    "decode_v3",
    "decode_v31",
    "decode_v5",
    "decode_split",
    "topic",
];

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS).join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn run_all_checks(data: &[u8]) {
    for kind in DecoderKind::ALL {
        checks::check_decode(data, kind);
    }
    checks::check_split(data);
    checks::check_topic(data);
}

#[test]
fn every_target_has_a_corpus() {
    for kind in DecoderKind::ALL {
        assert!(TARGETS.contains(&kind.target()), "{kind:?}");
    }
    for target in TARGETS {
        assert!(
            !corpus_files(target).is_empty(),
            "fuzz/corpus/{target} holds no file"
        );
    }
}

#[test]
fn corpus_inputs_pass_every_check() {
    let mut replayed = 0;
    for target in TARGETS {
        for path in corpus_files(target) {
            let data = fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| run_all_checks(&data));
            if let Err(panic) = result {
                eprintln!("failing corpus input: {}", path.display());
                std::panic::resume_unwind(panic);
            }
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} corpus files");
}

/// The reference matcher itself, on the specification's examples (MQTT 5.0 §4.7), so that
/// the fuzz target's oracle is known to be right.
#[test]
fn reference_matcher_follows_the_spec_examples() {
    let cases: &[(&str, &str, bool)] = &[
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("sport/#", "sports", false),
        ("#", "/", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("#", "$SYS/x", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/x", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$share/g/sport/+", "sport/tennis", true),
        ("$share/g/#", "$SYS/x", false),
        ("$share/g/$share/h/x", "$share/h/x", true),
        ("a/b", "a/b/", false),
    ];
    for &(filter, name, expected) in cases {
        assert!(checks::reference_filter_valid(filter), "{filter:?}");
        assert!(checks::reference_name_valid(name), "{name:?}");
        assert_eq!(
            checks::reference_matches(filter, name),
            expected,
            "{filter:?} {name:?}"
        );
    }
    for invalid in [
        "",
        "a#",
        "#/a",
        "a+",
        "+a/b",
        "$share/",
        "$share/g",
        "$share/+/a",
        "a\0",
    ] {
        assert!(!checks::reference_filter_valid(invalid), "{invalid:?}");
    }
    for invalid in ["", "a/+", "#", "a\0"] {
        assert!(!checks::reference_name_valid(invalid), "{invalid:?}");
    }
}
