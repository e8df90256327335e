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

// ---- The module dependency graph against the layers in docs/architecture.md ----

/// One reference from a file to a top-level module: (module, 1-based line).
type Reference = (String, usize);

/// `text` with comments blanked and string/char literals' contents blanked
/// (newlines kept, so lines still count). A string that is exactly a crate path
/// (`"crate::metrics::stats::f64_or_nan"`, serde's `with =`) is kept: it is a
/// reference the compiler resolves.
fn strip_comments_and_strings(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| out.extend(s.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            let end = c[i..].iter().position(|&ch| ch == '\n').map_or(c.len(), |p| i + p);
            blank(&mut out, &c[i..end]);
            i = end;
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &c[i..j]);
            i = j;
        } else if c[i] == '"'
            || (c[i] == 'r' && (i == 0 || !ident(c[i - 1]) || c[i - 1] == 'b') && raw_start(&c[i + 1..]).is_some())
        {
            // A string: "…" with escapes, or r#"…"# (any number of #).
            let (body, end) = if c[i] == '"' {
                let mut j = i + 1;
                while j < c.len() && c[j] != '"' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                (i + 1..j.min(c.len()), (j + 1).min(c.len()))
            } else {
                let hashes = raw_start(&c[i + 1..]).unwrap();
                let open = i + 2 + hashes;
                let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let j = (open..c.len()).find(|&j| c[j..].starts_with(&close)).unwrap_or(c.len());
                (open..j, (j + close.len()).min(c.len()))
            };
            let content: String = c[body.clone()].iter().collect();
            let is_path = content.starts_with("crate::") && content.chars().all(|ch| ident(ch) || ch == ':');
            if is_path {
                out.push(' ');
                out.push_str(&content);
                blank(&mut out, &c[body.end..end]);
            } else {
                blank(&mut out, &c[i..end]);
            }
            i = end;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '"'), or a lifetime ('a), left as it is.
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'' && j > i + 2).map_or(c.len(), |j| j + 1)
            } else if c.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            };
            if end == i + 1 {
                out.push('\'');
            } else {
                blank(&mut out, &c[i..end]);
            }
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// After an `r`: the number of `#` before the opening quote of a raw string.
fn raw_start(rest: &[char]) -> Option<usize> {
    let hashes = rest.iter().take_while(|&&ch| ch == '#').count();
    (rest.get(hashes) == Some(&'"')).then_some(hashes)
}

/// Tokens of stripped source: identifiers (with `$crate` as `crate`), `::`, and
/// single punctuation characters, each with its line.
fn tokens(stripped: &str) -> Vec<(String, usize)> {
    let (mut out, mut line) = (vec![], 1);
    let c: Vec<char> = stripped.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((c[start..i].iter().collect(), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(("::".into(), line));
            i += 2;
        } else if ch == '$' && c[i + 1..].starts_with(&['c', 'r', 'a', 't', 'e']) {
            i += 1; // `$crate` is `crate`
        } else {
            out.push((ch.to_string(), line));
            i += 1;
        }
    }
    out
}

/// The crate-root names one file refers to, with their lines: `crate::x`,
/// each first segment of a grouped `crate::{x::A, y}`, and `super::` paths that
/// climb to the crate root. `depth` is the file's module depth (src/a.rs and
/// src/a/mod.rs: 1; src/a/b.rs: 2); inline `mod m { … }` blocks add one each.
fn crate_references(text: &str, depth: usize) -> Vec<Reference> {
    let t = tokens(&strip_comments_and_strings(text));
    let is = |k: usize, s: &str| t.get(k).is_some_and(|(tok, _)| tok == s);
    let mut refs = vec![];
    // Braces: whether each open `{` began an inline module.
    let mut braces: Vec<bool> = vec![];
    let mut k = 0;
    while k < t.len() {
        let here = depth + braces.iter().filter(|&&m| m).count();
        if t[k].0 == "{" {
            braces.push(k >= 2 && t[k - 2].0 == "mod");
            k += 1;
            continue;
        }
        if t[k].0 == "}" {
            braces.pop();
            k += 1;
            continue;
        }
        // Where a path reaches the crate root: after `crate::` or after enough `super::`.
        let at_root = if t[k].0 == "crate" && is(k + 1, "::") && !(k > 0 && is(k - 1, "::")) {
            Some(k + 2)
        } else if t[k].0 == "super" && !(k > 0 && is(k - 1, "::")) {
            let mut n = 0;
            while is(k + 2 * n, "super") && is(k + 2 * n + 1, "::") {
                n += 1;
            }
            let after = k + 2 * n;
            if n >= here {
                Some(after)
            } else {
                k = after.max(k + 1);
                continue;
            }
        } else {
            None
        };
        let Some(at) = at_root else {
            k += 1;
            continue;
        };
        if is(at, "{") {
            // A group: the first segment of each item at the group's top level.
            let (mut level, mut j, mut expect) = (0, at, true);
            while j < t.len() {
                match t[j].0.as_str() {
                    "{" => {
                        level += 1;
                        if level == 1 {
                            expect = true;
                        }
                    }
                    "}" => {
                        level -= 1;
                        if level == 0 {
                            break;
                        }
                    }
                    "," if level == 1 => expect = true,
                    tok if level == 1 && expect => {
                        if tok != "self" {
                            refs.push((tok.to_string(), t[j].1));
                        }
                        expect = false;
                    }
                    _ => {}
                }
                j += 1;
            }
            k = j + 1;
        } else if let Some((name, line)) =
            t.get(at).filter(|(n, _)| n.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        {
            refs.push((name.clone(), *line));
            k = at + 1;
        } else {
            k = at;
        }
    }
    refs
}

/// The layers written in docs/architecture.md: each line's modules, lowest first.
fn layers() -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let block = doc
        .split_once("layers:\n\n```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("{}: no \"layers:\" block", path.display()))
        .0;
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|m| m.trim().to_string()).collect())
        .collect()
}

/// The top-level modules `src/lib.rs` declares (`pub mod x;`, `mod x;`), the
/// root names it re-exports (`pub use x::{A, B};`, each to its module), and the
/// modules only a cargo feature compiles (`#[cfg(feature = "jobs")]` above them).
struct Lib {
    modules: Vec<String>,
    reexports: Vec<(String, String)>,
    gated: Vec<String>,
}

fn read_lib(src: &Path) -> Lib {
    let text = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut lib = Lib { modules: vec![], reexports: vec![], gated: vec![] };
    let mut cfg = false;
    for line in text.lines() {
        let l = line.trim_start_matches("pub ").trim();
        if line.starts_with("#[cfg(feature") {
            cfg = true;
        } else if line.starts_with("pub mod ") || line.starts_with("mod ") {
            if let Some(name) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                lib.modules.push(name.to_string());
                if cfg {
                    lib.gated.push(name.to_string());
                }
            }
            cfg = false;
        } else if let Some(rest) = line.strip_prefix("pub use ") {
            let (module, names) = rest.trim_end_matches(';').split_once("::").unwrap();
            for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
                lib.reexports.push((name.trim().to_string(), module.to_string()));
            }
            cfg = false;
        } else if !line.starts_with("#[") {
            cfg = false;
        }
    }
    lib
}

/// Every offence against the layers: `file:line: a imports b, …`.
fn layering_offences(src: &Path, layers: &[Vec<String>]) -> (Vec<String>, usize) {
    let rank = |m: &str| layers.iter().position(|l| l.iter().any(|x| x == m));
    let Lib { modules, reexports, gated } = read_lib(src);
    let mut files = vec![];
    rust_files(src, &mut files);
    files.sort();
    let (mut offences, mut checked) = (vec![], 0);
    for path in files {
        let rel = path.strip_prefix(src).unwrap();
        // Named as from the repository's root, as an editor jumps to it.
        let shown = Path::new("src").join(rel);
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let top = parts[0].trim_end_matches(".rs").to_string();
        if ["main", "cli", "lib"].contains(&top.as_str()) {
            continue;
        }
        let depth = if parts.last().unwrap() == "mod.rs" { parts.len() - 1 } else { parts.len() };
        let Some(own) = rank(&top) else {
            offences.push(format!("{}: module {top} is not in docs/architecture.md's layers", shown.display()));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, line) in crate_references(&text, depth) {
            let module = if modules.contains(&name) {
                name.clone()
            } else if let Some((_, m)) = reexports.iter().find(|(n, _)| *n == name) {
                m.clone()
            } else {
                offences.push(format!(
                    "{}:{line}: crate::{name} is neither a top-level module nor a root re-export \
                     (import it from the module that defines it)",
                    shown.display()
                ));
                continue;
            };
            checked += 1;
            if module == top {
                continue;
            }
            // A module every build has must not need one only a feature compiles
            // (the Python package builds without `jobs`).
            if gated.contains(&module) && !gated.contains(&top) {
                offences.push(format!(
                    "{}:{line}: {top} imports {module}, which only a cargo feature compiles (src/lib.rs)",
                    shown.display()
                ));
            }
            match rank(&module) {
                Some(r) if r < own => {}
                _ => offences.push(format!(
                    "{}:{line}: {top} imports {module}, which is not below it in docs/architecture.md's layers",
                    shown.display()
                )),
            }
        }
    }
    (offences, checked)
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let layers = layers();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let Lib { modules, gated, .. } = read_lib(&src);
    // The reading of src/lib.rs saw the feature-gated jobs.
    assert!(gated.contains(&"eval".to_string()) && !gated.contains(&"engine".to_string()), "{gated:?}");
    let mut listed: Vec<String> = layers.concat();
    listed.sort();
    let mut declared: Vec<String> = modules.clone();
    declared.sort();
    assert_eq!(listed, declared, "docs/architecture.md's layers list each module src/lib.rs declares, once");
    let (offences, checked) = layering_offences(&src, &layers);
    // The walk saw the library's references (a wrong root or a broken parser would pass vacuously).
    assert!(checked > 400, "only {checked} crate references found");
    eprintln!("{checked} references to crate modules checked");
    assert!(offences.is_empty(), "imports against the layers:\n{}", offences.join("\n"));
}

#[test]
fn the_reference_parser_reads_every_way_a_module_is_named() {
    let names = |text: &str, depth: usize| -> Vec<(String, usize)> { crate_references(text, depth) };
    let r = |v: &[(&str, usize)]| -> Vec<(String, usize)> { v.iter().map(|(n, l)| (n.to_string(), *l)).collect() };
    // A plain use, a grouped one, a multi-line grouped one with nested groups and `self`.
    assert_eq!(names("use crate::error::Result;", 1), r(&[("error", 1)]));
    assert_eq!(names("use crate::{a::X, b::Y};", 1), r(&[("a", 1), ("b", 1)]));
    assert_eq!(
        names("use crate::{\n    self,\n    job::{Shard, JobKind},\n    output::lock::DirLock,\n};", 2),
        r(&[("job", 3), ("output", 4)])
    );
    // Fully qualified in an expression, in a type, and with spaces around `::`.
    assert_eq!(
        names("fn f() { let x = crate::refine::run(1) + crate :: video::g(); }", 1),
        r(&[("refine", 1), ("video", 1)])
    );
    // Comments, doc comments, block comments (nested) and strings do not count; a serde path does.
    let ignored = "// crate::a::b\n/// [`crate::c`]\n/* crate::d /* crate::e */ crate::f */\nlet s = \"crate::g::h() is \\\"quoted\\\"\";\nlet r = r#\"crate::i::f() in \"quotes\"\"#;\nlet q = '\"'; let u = crate::j::k;";
    assert_eq!(names(ignored, 1), r(&[("j", 6)]));
    assert_eq!(names("#[serde(deserialize_with = \"crate::metrics::stats::f64_or_nan\")]", 1), r(&[("metrics", 1)]));
    // A lifetime is not a char literal: the reference after it is still seen.
    assert_eq!(names("fn f<'a>(x: &'a crate::image::Crop) {}", 1), r(&[("image", 1)]));
    // `super::` climbs: out of src/a/b.rs (depth 2) after two steps, not one.
    assert_eq!(names("use super::sibling::X;\nuse super::super::video::tool;", 2), r(&[("video", 2)]));
    // An inline `mod tests { use super::*; }` is one level deeper; `super::super::x` there escapes a depth-1 file.
    assert_eq!(names("mod tests {\n use super::*;\n use super::super::eval::Record;\n}", 1), r(&[("eval", 3)]));
    assert_eq!(names("fn f() { { use super::x; } }", 1), r(&[("x", 1)]));
    assert_eq!(names("use super::{a::X, b};", 1), r(&[("a", 1), ("b", 1)]));
    // `$crate` in a macro is `crate`; `other_crate::x` and `foo::crate` are not.
    assert_eq!(names("$crate::limits::MAX", 1), r(&[("limits", 1)]));
    assert_eq!(names("use serde::Deserialize; my_crate::x();", 1), r(&[]));
}

#[test]
fn an_upward_import_fails_naming_the_file_and_line() {
    // A copy of two modules where the lower one (image) imports the higher one (refine).
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("image")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod image;\npub mod refine;\n#[cfg(feature = \"jobs\")]\n#[doc(hidden)]\npub mod eval;\npub mod engine;\n",
    )
    .unwrap();
    std::fs::write(src.join("image/mod.rs"), "mod map;\n").unwrap();
    std::fs::write(src.join("image/map.rs"), "use super::Crop;\n\nfn f() { crate::refine::run(); }\n").unwrap();
    std::fs::write(src.join("refine.rs"), "use crate::image::Crop;\n").unwrap();
    // The engine (above eval in the layers) importing eval, which only the `jobs` feature compiles.
    std::fs::write(src.join("eval.rs"), "use crate::refine::run;\n").unwrap();
    std::fs::write(src.join("engine.rs"), "use crate::{eval::Record, refine::run};\n").unwrap();
    let layers: Vec<Vec<String>> = ["image", "refine", "eval", "engine"].iter().map(|m| vec![m.to_string()]).collect();
    let (offences, _) = layering_offences(src, &layers);
    assert_eq!(offences.len(), 2, "{offences:?}");
    assert_eq!(offences[0], "src/engine.rs:1: engine imports eval, which only a cargo feature compiles (src/lib.rs)");
    let offences = &offences[1..];
    assert!(
        offences[0]
            .ends_with("image/map.rs:3: image imports refine, which is not below it in docs/architecture.md's layers"),
        "{}",
        offences[0]
    );
}
