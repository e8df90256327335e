//! The library is free of the command line: no file under src/ but the
//! binary's (src/main.rs, src/cli/) names the argument parser or the
//! progress-bar crate, so `--no-default-features` builds the library without
//! them and a library user never draws a bar or parses an argument.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_library_file_names_clap_or_indicatif() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let binary = |p: &Path| p == src.join("main.rs") || p.starts_with(src.join("cli"));
    let library: Vec<&PathBuf> = files.iter().filter(|p| !binary(p)).collect();
    // The walk found the library (a wrong root would pass vacuously).
    assert!(library.iter().any(|p| p.ends_with("lib.rs")) && library.len() > 40, "{} library files", library.len());
    let mut offenders = vec![];
    for path in library {
        let text = std::fs::read_to_string(path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            if lower.contains("clap") || lower.contains("indicatif") {
                offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "the library names the command line's crates:\n{}", offenders.join("\n"));
}
