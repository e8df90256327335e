//! Output names made from user input. An image's file stem names its
//! sub-folder (`refine IMAGE...`, `eval`'s `runs/`), so a stem is sanitised
//! before it is joined to OUTDIR: `..png` has the stem `.` and `...png` the
//! stem `..`, which would name OUTDIR itself or its parent, and
//! `summary.csv.png` would name a folder where borex writes its summary.

use crate::error::{BorexError, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Names borex writes in a run folder itself; an image stem equal to one
/// (in any case) gets a `_` appended.
pub const RESERVED: &[&str] = &[
    "summary.csv",
    "summary.md",
    "summary.json",
    "results.csv",
    "job.json",
    "shard.json",
    "report.json",
    "runs",
    "plots",
    "maps",
    "parts",
];

/// Longest folder name in bytes, well below NAME_MAX (255) so numbered and
/// staging names (`.NAME.borex-XXXXXX`) still fit.
const MAX_BYTES: usize = 100;

/// A safe folder name for `stem`: letters, digits, `-`, `_` and `.` kept,
/// anything else `_`; no leading dot (so never `.`, `..` or a hidden name);
/// at most 100 bytes; never empty (`image`) nor one of [`RESERVED`].
pub fn sanitise(stem: &str) -> String {
    let mapped: String = stem.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let mut name = String::new();
    for c in mapped.trim_start_matches('.').chars() {
        if name.len() + c.len_utf8() > MAX_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        return "image".into();
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
        name.push('_');
    }
    name
}

/// An input's file stem (the whole name when it has no extension; `image` when it has no name).
pub fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One folder name per input, in input order: its sanitised stem, numbered
/// `-2`, `-3`, … on a clash. Names are compared ignoring case (two inputs
/// must not share a folder on a case-insensitive file system), and a number
/// never takes a name an input has literally (`x`, `x`, `x-2` → `x`, `x-2`, `x-2-2`).
pub fn unique_names(inputs: &[PathBuf]) -> Vec<String> {
    let bases: Vec<String> = inputs.iter().map(|p| sanitise(&stem(p))).collect();
    let mut used: HashSet<String> = HashSet::new();
    let literal: HashSet<String> = bases.iter().map(|b| b.to_lowercase()).collect();
    bases
        .into_iter()
        .map(|base| {
            if used.insert(base.to_lowercase()) {
                return base;
            }
            (2..)
                .map(|n| format!("{base}-{n}"))
                .find(|c| !literal.contains(&c.to_lowercase()) && used.insert(c.to_lowercase()))
                .expect("an unused number exists")
        })
        .collect()
}

/// The entries of a manifest's text: one per line, trimmed; blank lines,
/// `#` comments and a leading UTF-8 byte-order mark (Windows editors write one) skipped.
pub fn manifest_lines(text: &str) -> impl Iterator<Item = &str> {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The images a manifest at `path` lists: its entries relative to its folder. An entry
/// that can only name a folder (`.`, `..`, `x/`, `x/..`) is refused, naming it: it would
/// fail as "Is a directory" after the run, or name the manifest's own folder (found by fuzzing).
pub fn manifest_entries(path: &Path, text: &str) -> Result<Vec<PathBuf>> {
    let base = path.parent().unwrap_or(Path::new(""));
    manifest_lines(text)
        .map(|l| match l.rsplit('/').next() {
            Some("" | "." | "..") => Err(BorexError::invalid(format!(
                "manifest {}: entry {l:?} names a folder, not an image file",
                path.display()
            ))),
            _ => Ok(base.join(l)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[&str]) -> Vec<String> {
        unique_names(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn dot_stems_never_name_the_folder_or_its_parent() {
        // Path::file_stem: "..png" → ".", "...png" → "..", ".png" → ".png" (a hidden file without extension).
        assert_eq!(names(&["a/..png", "b/...png", "c/.png", "d/.hidden.png"]), ["image", "image-2", "png", "hidden"]);
        for n in names(&["..png", "...png", ".png", "..", "."]) {
            assert!(!n.starts_with('.') && !n.is_empty() && !n.contains('/'), "{n}");
        }
    }

    #[test]
    fn borex_file_names_are_not_folder_names() {
        assert_eq!(
            names(&["summary.csv.png", "JOB.json.jpg", "runs.png", "summary.png"]),
            ["summary.csv_", "JOB.json_", "runs_", "summary"]
        );
    }

    #[test]
    fn names_are_unique_ignoring_case_and_never_reuse_a_literal_name() {
        assert_eq!(names(&["a/x.png", "b/x.png", "y.jpg", "c/x.jpg"]), ["x", "x-2", "y", "x-3"]);
        assert_eq!(names(&["x.png", "x.jpg", "x-2.png"]), ["x", "x-3", "x-2"]);
        assert_eq!(names(&["X.png", "x.png"]), ["X", "x-2"]);
        assert_eq!(names(&["tiger cat.png", "a/b\\c.png"]), ["tiger_cat", "b_c"]);
    }

    #[test]
    fn manifests_skip_a_byte_order_mark_comments_and_blank_lines() {
        let lines: Vec<&str> = manifest_lines("\u{feff}a.png\r\n# note\r\n\r\n  b c.png  \n").collect();
        assert_eq!(lines, ["a.png", "b c.png"]);
        // Only at the start: elsewhere it is part of a name.
        assert_eq!(manifest_lines("a.png\n\u{feff}b.png").collect::<Vec<_>>(), ["a.png", "\u{feff}b.png"]);
    }

    #[test]
    fn manifest_entries_that_name_a_folder_are_refused() {
        let list = Path::new("sets/list.txt");
        assert_eq!(
            manifest_entries(list, "a.png\nb/c.png\n").unwrap(),
            [list.with_file_name("a.png"), list.with_file_name("b/c.png")]
        );
        // fuzz/regressions/manifest/dot_entry: "." joined to the manifest's folder is that folder.
        for bad in [".", "..", "./", "b/", "b/..", "b/.", "/"] {
            let e = manifest_entries(list, &format!("a.png\n{bad}\n")).unwrap_err().to_string();
            assert!(e.contains("sets/list.txt") && e.contains(&format!("{bad:?} names a folder")), "{e}");
        }
        // A name that only starts with dots is a file name.
        assert_eq!(manifest_entries(list, "..png").unwrap(), [list.with_file_name("..png")]);
    }

    #[test]
    fn long_stems_are_cut_on_a_character_boundary() {
        let long = format!("{}.png", "é".repeat(200));
        let n = &names(&[&long, &long])[..];
        assert_eq!(n[0], "é".repeat(50));
        assert_eq!(n[1], format!("{}-2", "é".repeat(50)));
    }
}
