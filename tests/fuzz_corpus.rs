//! Replays every fuzz corpus file (fuzz/corpus/TARGET/*) and every crash the
//! fuzzers found (fuzz/regressions/TARGET/*) through the targets' own bodies
//! (borex::fuzz), so `cargo test` checks what the fuzzers checked without a
//! fuzzing toolchain. A body panics when a promise breaks (a panic in a parser,
//! an accepted value over borex's limits, an error that does not name the file).

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for (name, body) in borex::fuzz::TARGETS {
        for f in files(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&f).unwrap();
            if let Err(e) = std::panic::catch_unwind(|| body(&data)) {
                let msg =
                    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("{name}: {} failed: {}", f.display(), msg.unwrap_or_default());
            }
            n += 1;
        }
    }
    n
}

#[test]
fn every_target_has_a_fuzzer_and_a_seed_corpus() {
    for (name, _) in borex::fuzz::TARGETS {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let src = std::fs::read_to_string(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        assert!(src.contains(&format!("borex::fuzz::{name}(data)")), "{} calls another body", target.display());
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
        assert!(!files(&fuzz_dir().join("corpus").join(name)).is_empty(), "no seed corpus for {name}");
    }
    // No corpus without a target (a renamed target would silently stop being replayed).
    for d in std::fs::read_dir(fuzz_dir().join("corpus")).unwrap() {
        let name = d.unwrap().file_name().into_string().unwrap();
        assert!(borex::fuzz::TARGETS.iter().any(|(t, _)| *t == name), "fuzz/corpus/{name} has no target");
    }
}

#[test]
fn the_corpora_replay_cleanly() {
    assert!(replay("corpus") >= borex::fuzz::TARGETS.len());
}

#[test]
fn every_crash_the_fuzzers_found_stays_fixed() {
    replay("regressions");
}
