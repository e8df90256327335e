//! Bodies of the fuzz targets: one function per parser of user bytes, called
//! by the coverage-guided targets in `fuzz/fuzz_targets/` and by the corpus
//! replay in `cargo test` (tests/fuzz_corpus.rs), so both run the same code.
//! Each body feeds its bytes to borex's real entry point (through a file in a
//! scratch folder where the entry point reads a path) and checks what a user
//! is promised: no panic, an `Ok` value within borex's limits, an error that
//! names the file. A broken promise panics, which the fuzzer reports as a crash.
//!
//! Adding a target: a body here, an entry in [`TARGETS`], a three-line file in
//! `fuzz/fuzz_targets/` (a copy of any other with the name changed), a `[[bin]]`
//! in `fuzz/Cargo.toml` and a seed in `fuzz/corpus/NAME/`.

use crate::error::BorexError;
use crate::limits::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MAX_MAP_ELEMENTS};
use std::path::{Path, PathBuf};

/// A target's body: the fuzzer's input bytes, a panic when a promise breaks.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder of its corpus) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("npy_map", npy_map),
    ("png_map", png_map),
    ("image", image),
    ("manifest", manifest),
    ("labels", labels),
    ("sidecar", sidecar),
    ("onnx_graph", onnx_graph),
    ("job_description", job_description),
    ("video_record", video_record),
    ("refine_shard", refine_shard),
    ("eval_record", eval_record),
];

/// A scratch folder for one call, removed when it is dropped.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Self {
        Self(tempfile::Builder::new().prefix("borex-fuzz-").tempdir().expect("a scratch folder in $TMPDIR"))
    }

    /// `data` written to `name` in the scratch folder.
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("scratch sub-folder");
        }
        std::fs::write(&p, data).expect("scratch file");
        p
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// An error about `path` must name it.
fn names_file(e: &BorexError, path: &Path) {
    let msg = e.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(name.as_ref()), "the error does not name {name}: {msg}");
}

/// A prior map in `.npy` form (`--prior MAP.npy`, `eval --methods file:…`).
pub fn npy_map(data: &[u8]) {
    map_file(data, "map.npy");
}

/// A prior map in PNG form (decoded under the image limits, made grey).
pub fn png_map(data: &[u8]) {
    map_file(data, "map.png");
}

fn map_file(data: &[u8], name: &str) {
    let s = Scratch::new();
    let p = s.file(name, data);
    match crate::image::read_map(&p) {
        Ok(m) => {
            let (h, w) = m.map.dim();
            assert!(h > 0 && w > 0, "an empty map was accepted");
            assert!((h * w) as u64 <= MAX_MAP_ELEMENTS, "a {h}×{w} map is over the limit");
            assert!(m.map.is_standard_layout());
        }
        Err(e) => names_file(&e, &p),
    }
}

/// An image file, decoded under borex's limits, then made a 224² model input.
pub fn image(data: &[u8]) {
    let s = Scratch::new();
    let p = s.file("image.png", data);
    match crate::image::load_image(&p) {
        Ok(d) => {
            let (w, h) = d.rgb.dimensions();
            assert!(w <= MAX_IMAGE_SIDE && h <= MAX_IMAGE_SIDE, "{w}×{h} decoded past the side limit");
            assert!(w as u64 * h as u64 <= MAX_IMAGE_PIXELS, "{w}×{h} decoded past the pixel limit");
            let pre = crate::image::Preprocess { resize: Some(256), ..Default::default() };
            match crate::image::to_input(&d.rgb, "image.png", &pre) {
                Ok(x) => assert_eq!(x.tensor.dim(), (3, 224, 224)),
                Err(e) => names_file(&e, &p),
            }
        }
        Err(e) => names_file(&e, &p),
    }
}

/// A manifest (`refine --manifest`, `eval --manifest`): both readers.
pub fn manifest(data: &[u8]) {
    let s = Scratch::new();
    let p = s.file("list.txt", data);
    match crate::refine::bulk::read_manifest(&p) {
        Ok(images) => {
            assert!(!images.is_empty());
            for i in &images {
                let line = i.strip_prefix(s.path()).unwrap_or(i);
                assert!(!line.as_os_str().is_empty(), "an empty entry");
            }
        }
        Err(e) => names_file(&e, &p),
    }
    match crate::eval::read_manifest(&p) {
        Ok(images) => assert!(images.iter().all(|i| !i.as_os_str().is_empty())),
        Err(e) => names_file(&e, &p),
    }
}

/// A labels file, as text (one per line) and as JSON; then the lookups a `--class NAME` makes.
pub fn labels(data: &[u8]) {
    let s = Scratch::new();
    for name in ["labels.txt", "labels.json"] {
        let p = s.file(name, data);
        match crate::model::Labels::load(&p) {
            Ok(l) => {
                assert!(!l.is_empty());
                assert!(l.name(0).is_some() && l.name(l.len()).is_none());
                let _ = l.short_name(0);
                let query = String::from_utf8_lossy(&data[..data.len().min(16)]).into_owned();
                let _ = l.find(&query);
                let _ = l.find("cat");
            }
            Err(e) => names_file(&e, &p),
        }
    }
}

/// The model's JSON sidecar (`model.json` beside `model.onnx`).
pub fn sidecar(data: &[u8]) {
    let s = Scratch::new();
    let p = s.file("model.json", data);
    match crate::model::Sidecar::load(&s.path().join("model.onnx")) {
        Ok(c) => {
            // Relative paths are taken from the sidecar's folder.
            for q in [&c.labels, &c.gradient].into_iter().flatten() {
                assert!(
                    q.starts_with(s.path()) || q.is_absolute(),
                    "{} is not under the sidecar's folder",
                    q.display()
                );
            }
        }
        Err(e) => names_file(&e, &p),
    }
}

/// An ONNX file through borex's own protobuf reader (the CAM family's head lookup).
pub fn onnx_graph(data: &[u8]) {
    let s = Scratch::new();
    let p = s.file("model.onnx", data);
    match crate::model::onnx_graph::Graph::load(&p) {
        Ok(g) => {
            let outputs: Vec<String> = g.nodes.iter().flat_map(|n| n.outputs.iter().cloned()).take(4).collect();
            for logits in &outputs {
                let _ = g.linear_weight(logits);
                for features in &outputs {
                    if let Ok((w, b)) = g.gap_linear_head(logits, features, &|_| None) {
                        assert_eq!(w.nrows(), b.len(), "a head whose bias does not match its classes");
                    }
                }
            }
        }
        Err(e) => names_file(&e, &p),
    }
}

/// The job description (`job.json`) every resumable command writes and a
/// rerun, resume or merge compares against: parsed as bytes
/// ([`crate::job::JobDescription::from_json_bytes`]: a valid description or
/// a one-line error), then read as `video`'s resume and one-shard merge
/// would (both modes).
pub fn job_description(data: &[u8]) {
    match crate::job::JobDescription::from_json_bytes(data) {
        Ok(d) => {
            assert_eq!(d.format, crate::job::description::FORMAT);
            assert!(d.shard.count >= 1 && d.shard.index < d.shard.count, "an impossible shard was accepted");
            assert!(d.shard.count <= crate::limits::MAX_SHARDS, "a shard count over the limit was accepted");
            assert_eq!((d.model.sha256.len(), d.inputs.sha256.len()), (64, 64));
        }
        Err(e) => assert_eq!(e.to_string().lines().count(), 1, "a multi-line error: {e}"),
    }
    let s = Scratch::new();
    let shard = s.path().join("shard");
    let p = s.file("shard/job.json", data);
    let out = s.path().join("out");
    for r in [
        crate::video::resume::merge::<crate::video::run::JobFile>(std::slice::from_ref(&shard), &out).map(|_| ()),
        crate::video::resume::merge::<crate::video::clip::ClipJobFile>(std::slice::from_ref(&shard), &out).map(|_| ()),
    ] {
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(msg.contains("shard") || msg.contains(&p.display().to_string()), "unnamed: {msg}");
        }
    }
}

/// A finished unit's record (`parts/group_000000.json`), as a merge reads it
/// from shard 1/2 of a valid frame-mode job of one unit (shard 0/2 has no
/// units), with that unit's map and overlay segment in place.
pub fn video_record(data: &[u8]) {
    let (shard, merged) = merge_video_record(data);
    match merged {
        Ok(records) => assert_eq!(records, 1),
        Err(msg) => assert!(msg.contains(&shard), "the error names no file of the shard: {msg}"),
    }
}

/// [`video_record`]'s merge: the record's shard folder, and the records merged or the error.
fn merge_video_record(data: &[u8]) -> (String, std::result::Result<usize, String>) {
    let s = Scratch::new();
    // Two shards: a merge refuses an unsharded job before it reads any record, which left
    // this target blind (every input the same coverage) until the shards were split.
    let mut job: serde_json::Value = serde_json::from_slice(VIDEO_JOB).expect("the seed job parses");
    for i in 0..2 {
        job["shard"] = serde_json::json!({"index": i, "count": 2});
        s.file(&format!("shard{i}/job.json"), &serde_json::to_vec(&job).expect("JSON"));
    }
    // The one unit is the last shard's (`Shard::range`: shard 0/2 of one unit is empty).
    s.file("shard1/maps/frame_000000.npy", b"map");
    s.file("shard1/parts/group_000000.h264", b"segment");
    s.file("shard1/parts/group_000000.json", data);
    let shards = [s.path().join("shard0"), s.path().join("shard1")];
    let merged = crate::video::resume::merge::<crate::video::run::JobFile>(&shards, &s.path().join("out"))
        .map(|(_, records, _lock)| records.len())
        .map_err(|e| e.to_string());
    (shards[1].display().to_string(), merged)
}

/// A frame-mode `job.json` of one unit (one frame), as `borex video` writes it.
pub const VIDEO_JOB: &[u8] = include_bytes!("../fuzz/corpus/job_description/frame_job.json");

/// The `job.json` of a `refine --shard` folder, as `refine merge` reads it.
pub fn refine_shard(data: &[u8]) {
    let s = Scratch::new();
    let shard = s.path().join("shard");
    let p = s.file("shard/job.json", data);
    if let Err(e) = crate::refine::bulk::merge_refine(std::slice::from_ref(&shard), &s.path().join("out")) {
        let msg = e.to_string();
        assert!(msg.contains("shard"), "unnamed: {msg} ({})", p.display());
    }
}

/// A per-map record of `borex eval` (read back on a resumed run).
pub fn eval_record(data: &[u8]) {
    let s = Scratch::new();
    let p = s.file("prior.json", data);
    let settings = crate::eval::RecordSettings::Prior(crate::eval::PriorRecordSettings {
        model: "m.onnx".into(),
        image: "i.png".into(),
        method: "rise-fast".into(),
        seed: 0,
        baseline: crate::compute::Baseline::Zero,
    });
    let _ = crate::eval::read_record(&p, &settings);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_video_record_seed_is_merged() {
        // The target reaches the record reader: its seed, a real record, merges.
        let seed = include_bytes!("../fuzz/corpus/video_record/group_0.json");
        assert_eq!(super::merge_video_record(seed).1, Ok(1));
    }
}
