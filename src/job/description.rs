//! The job description (`OUTDIR/job.json`) every resumable command writes
//! when a run starts: `refine IMAGE... | --manifest`, `video` (both modes)
//! and `eval`. It names the model by the SHA-256 of its file and its
//! preprocessing, every setting that changes a result (by its flag), the
//! input list by its hash, and the shard. A rerun into the folder, a resumed
//! run and `merge` all compare against it ([`JobDescription::differences`]),
//! so a folder never mixes results of two jobs. The format is versioned: a
//! description of another version is refused by name, never half-read.

use crate::error::{BorexError, Result};
use crate::image::Preprocess;
use crate::job::Shard;
use crate::model::Classifier;
use crate::output::lock::{lock_dir, lock_existing, DirLock, LOCK_FILE};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The version of the format this borex writes and reads.
pub const FORMAT: u32 = 1;
/// The description's file name in a run folder.
pub const JOB_FILE: &str = "job.json";
/// The largest description read: it holds hashes, not lists, so a few KiB in practice.
pub const MAX_BYTES: u64 = 1 << 20;

/// Which command a run folder belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// `borex refine` (one image or many).
    Refine,
    /// `borex video --mode frame`.
    VideoFrame,
    /// `borex video --mode clip`.
    VideoClip,
    /// `borex eval`.
    Eval,
}

impl JobKind {
    /// The command line that makes such a run, for messages.
    pub fn command(self) -> &'static str {
        match self {
            JobKind::Refine => "borex refine",
            JobKind::VideoFrame => "borex video --mode frame",
            JobKind::VideoClip => "borex video --mode clip",
            JobKind::Eval => "borex eval",
        }
    }
}

/// The model a job ran: its file's hash decides (moving the file is not another job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelId {
    /// Where it was loaded from, for people.
    pub path: String,
    /// SHA-256 of the ONNX file, lowercase hex.
    pub sha256: String,
    /// The preprocessing it ran with (from its sidecar or the flags).
    pub preprocess: Preprocess,
    /// How its class output is read: `logits` or `probabilities` as given
    /// (`--output-kind`, the sidecar), `detected` when left to the first call.
    /// Softmax or not changes every score. Absent in folders of older borex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kind: Option<String>,
    /// SHA-256 of its class labels (one per line, as read), `none` without
    /// labels: they decide which class `--class NAME` means and what reports call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_sha256: Option<String>,
}

impl ModelId {
    /// The identity of `model`: its path, its file's SHA-256 and its preprocessing.
    pub fn of(model: &Classifier) -> Result<Self> {
        let labels = model.labels().map(|l| {
            let text: String = l.names().iter().flat_map(|n| [n.as_str(), "\n"]).collect();
            sha256_bytes(text.as_bytes())
        });
        Ok(Self {
            path: model.path().display().to_string(),
            sha256: sha256_file(model.path(), crate::limits::MAX_MODEL_BYTES, "model")?,
            preprocess: model.preprocess().clone(),
            output_kind: Some(model.declared_output_kind().map_or("detected", |k| k.name()).to_string()),
            labels_sha256: Some(labels.unwrap_or_else(|| "none".into())),
        })
    }
}

/// The job's inputs: how many, and the hash of their paths in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// Number of inputs.
    pub count: usize,
    /// SHA-256 of the paths as given (each followed by a newline), in order.
    pub sha256: String,
}

impl Inputs {
    /// The identity of `paths`, in order.
    pub fn of(paths: &[PathBuf]) -> Self {
        let mut h = Sha256::new();
        for p in paths {
            h.update(p.as_os_str().as_encoded_bytes());
            h.update(b"\n");
        }
        Self { count: paths.len(), sha256: hex(&h.finalize()) }
    }
}

/// Settings that change a result, keyed by their flag (`--seed`); values as JSON.
/// Deliberately open: each command records its own flags (and a new flag must
/// not change the file's layout), and the values are only compared and shown
/// (`differences`), never read back into settings.
pub type Settings = BTreeMap<String, Value>;

/// A value as a job setting. Every type recorded serializes to JSON (string
/// keys, finite numbers), so the `Null` fallback is never hit in practice.
pub(crate) fn setting<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `job.json`: what a run into OUTDIR is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDescription {
    /// [`FORMAT`].
    pub format: u32,
    /// Which command the run belongs to.
    pub kind: JobKind,
    /// The model.
    pub model: ModelId,
    /// Every setting that changes a result.
    pub settings: Settings,
    /// The inputs.
    pub inputs: Inputs,
    /// This run's shard of the inputs ([`Shard::ALL`] unsharded).
    pub shard: Shard,
    /// What the command derived from its inputs and settings and needs to
    /// finish a resumed or merged run (video: the input's frames and how they
    /// are cut into units); absent for the others. JSON here because its type
    /// depends on `kind`: the video modes read it back through their own plan
    /// types (`video::resume::UnitRun`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub plan: Value,
    /// The borex version that started the run (for people; not compared).
    #[serde(default)]
    pub written_by: String,
}

/// One way two descriptions differ: what, and its value in each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs (a flag, `the model`, `the inputs`, …).
    pub what: String,
    /// Its value in the folder's description.
    pub recorded: String,
    /// Its value in this run's.
    pub now: String,
}

impl JobDescription {
    /// A description of this [`FORMAT`], written by this borex version, with no plan.
    pub fn new(kind: JobKind, model: ModelId, settings: Settings, inputs: Inputs, shard: Shard) -> Self {
        Self {
            format: FORMAT,
            kind,
            model,
            settings,
            inputs,
            shard,
            plan: Value::Null,
            written_by: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// Parse untrusted bytes (a `job.json`): JSON of this format version with
    /// no unknown fields and a valid shard, or a one-line reason.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| BorexError::invalid(m);
        if bytes.len() as u64 > MAX_BYTES {
            return Err(bad(format!(
                "is {} bytes, more than a job description's {MAX_BYTES}: not a borex job.json",
                bytes.len()
            )));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("is not JSON ({e})")))?;
        let Some(obj) = v.as_object() else { return Err(bad("is not a JSON object: not a borex job.json".into())) };
        match obj.get("format") {
            None => {
                return Err(bad(
                    "was written by an older borex (it has no `format`); use a new folder for this run".into()
                ))
            }
            Some(f) if f.as_u64() != Some(FORMAT as u64) => {
                return Err(bad(format!("is format {f}; this borex reads format {FORMAT}: use a new folder")))
            }
            Some(_) => {}
        }
        let d: Self = serde_json::from_value(v).map_err(|e| bad(format!("is not a borex job description ({e})")))?;
        let s = d.shard;
        if s.count == 0 || s.count > crate::limits::MAX_SHARDS || s.index >= s.count {
            return Err(bad(format!("has an impossible shard {}/{}", s.index, s.count)));
        }
        for (what, h) in [("model", &d.model.sha256), ("inputs", &d.inputs.sha256)] {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("has a {what} sha256 that is not 64 hex digits")));
            }
        }
        Ok(d)
    }

    /// The description in `dir`, `None` when it has none.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(JOB_FILE);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let bytes = crate::limits::read_bounded(&path, MAX_BYTES, "job description")?;
        Self::from_json_bytes(&bytes)
            .map(Some)
            .map_err(|e| BorexError::invalid(format!("{}: {}", path.display(), plain(&e))))
    }

    /// Write `dir/job.json` (atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::output::write_json(&dir.join(JOB_FILE), self)
    }

    /// The same job, another shard.
    pub fn with_shard(&self, shard: Shard) -> Self {
        Self { shard, ..self.clone() }
    }

    /// How the job recorded in `self` differs from `now`: empty for the same job.
    pub fn differences(&self, now: &Self) -> Vec<Difference> {
        let mut out = vec![];
        let mut diff = |what: &str, recorded: String, now: String| {
            out.push(Difference { what: what.to_string(), recorded, now });
        };
        if self.kind != now.kind {
            diff("the command", self.kind.command().into(), now.kind.command().into());
        }
        if self.model.sha256 != now.model.sha256 {
            let id = |m: &ModelId| {
                let name = Path::new(&m.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                format!("{name} sha256 {}…", &m.sha256[..m.sha256.len().min(12)])
            };
            diff("the model", id(&self.model), id(&now.model));
        }
        if self.model.preprocess != now.model.preprocess {
            diff("the model's preprocessing", show(&json(&self.model.preprocess)), show(&json(&now.model.preprocess)));
        }
        let shown = |v: &Option<String>, short: bool| match v {
            None => "unrecorded".to_string(),
            Some(s) if short && s.len() == 64 => format!("sha256 {}…", &s[..12]),
            Some(s) => s.clone(),
        };
        if self.model.output_kind != now.model.output_kind {
            diff("--output-kind", shown(&self.model.output_kind, false), shown(&now.model.output_kind, false));
        }
        if self.model.labels_sha256 != now.model.labels_sha256 {
            diff("--labels", shown(&self.model.labels_sha256, true), shown(&now.model.labels_sha256, true));
        }
        let keys: std::collections::BTreeSet<&String> = self.settings.keys().chain(now.settings.keys()).collect();
        for k in keys {
            let (a, b) = (self.settings.get(k), now.settings.get(k));
            if a != b {
                let v = |x: Option<&Value>| x.map_or("unset".to_string(), show);
                diff(k, v(a), v(b));
            }
        }
        if self.inputs != now.inputs {
            let (a, b) = (self.inputs.count, now.inputs.count);
            if a == b {
                diff("the inputs", format!("{a} inputs"), format!("{b} other inputs, or in another order"));
            } else {
                diff("the inputs", format!("{a} inputs"), format!("{b} inputs"));
            }
        }
        if self.shard != now.shard {
            let s = |s: Shard| if s == Shard::ALL { "unsharded".into() } else { format!("{}/{}", s.index, s.count) };
            diff("--shard", s(self.shard), s(now.shard));
        }
        let same_so_far = out.is_empty();
        let mut diff = |what: &str, recorded: String, now: String| {
            out.push(Difference { what: what.to_string(), recorded, now });
        };
        if self.plan != now.plan && same_so_far {
            // Same settings and input paths, yet another plan: the input's content changed.
            diff("the input's content", "as recorded".into(), "changed (other frames, size or rate)".into());
        }
        out
    }
}

/// `--seed (0 in the folder, 5 now), …`, for one-line messages.
pub fn explain(diffs: &[Difference], recorded: &str, now: &str) -> String {
    diffs
        .iter()
        .map(|d| format!("{} ({} {recorded}, {} {now})", d.what, d.recorded, d.now))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Open OUTDIR for the run `desc` and lock it: OUTDIR is new or empty (the
/// description is written), or holds this very job (a rerun resumes).
/// Refused, before anything is written: an existing file, a folder holding
/// other files and no description, a folder of another job (naming every
/// setting that differs), a folder another process is writing.
pub fn begin_run(out: &Path, desc: &JobDescription) -> Result<DirLock> {
    let named = |r: String| BorexError::invalid(format!("output folder {}: {r}", out.display()));
    // A folder a running job (a single-image one too) holds: "in use", whatever it holds.
    let early = if out.is_dir() { lock_existing(out)? } else { None };
    if out.exists() {
        if !out.is_dir() {
            let kind = std::fs::metadata(out).map(|m| m.file_type());
            let what = match kind {
                Ok(t) if !t.is_file() => crate::limits::file_kind(t),
                _ => "an existing file",
            };
            return Err(named(format!("is {what}")));
        }
        if !out.join(JOB_FILE).exists() {
            let mut others: Vec<String> = std::fs::read_dir(out)
                .map_err(|e| named(format!("cannot read it ({e})")))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != LOCK_FILE)
                .collect();
            if !others.is_empty() {
                others.sort();
                others.truncate(3);
                return Err(named(format!(
                    "holds files and no borex job ({}…); choose a new or empty folder",
                    others.join(", ")
                )));
            }
        }
    }
    crate::output::prepare_dir(out)?;
    let lock = match early {
        Some(l) => l,
        None => lock_dir(out)?,
    };
    // Read under the lock: a run that started meanwhile has written its description.
    match JobDescription::read(out)? {
        None => desc.write(out)?,
        Some(old) => check_same(out, &old, desc)?,
    }
    Ok(lock)
}

/// `old` (recorded in `out`) and `now` are the same job, or an error naming what differs.
pub fn check_same(out: &Path, old: &JobDescription, now: &JobDescription) -> Result<()> {
    let named = |r: String| BorexError::invalid(format!("output folder {}: {r}", out.display()));
    if old.kind != now.kind {
        let not = match (old.kind, now.kind) {
            (JobKind::VideoFrame, JobKind::VideoClip) => "not --mode clip".to_string(),
            (JobKind::VideoClip, JobKind::VideoFrame) => "not --mode frame".to_string(),
            _ => format!("not a `{}` one", now.kind.command()),
        };
        return Err(named(format!("holds a `{}` run, {not}; use a new folder to start another", old.kind.command())));
    }
    let diffs = old.differences(now);
    if !diffs.is_empty() {
        return Err(named(format!(
            "holds a `{}` run with other input or settings: {}; use a new folder to start another, or the same settings to resume",
            old.kind.command(),
            explain(&diffs, "there", "now")
        )));
    }
    Ok(())
}

/// SHA-256 of a file's content, lowercase hex: a regular file of at most `cap` bytes
/// ([`crate::limits::open_bounded`]; `what` names it in errors).
pub fn sha256_file(path: &Path, cap: u64, what: &str) -> Result<String> {
    let mut f = crate::limits::open_bounded(path, cap, what)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| f.error(e))?;
    Ok(hex(&h.finalize()))
}

/// SHA-256 of in-memory bytes, lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A value for a one-line message: strings bare, anything else compact JSON, long ones cut.
fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

/// An error's message without the "invalid input: " prefix, for re-wrapping.
fn plain(e: &BorexError) -> String {
    match e {
        BorexError::InvalidInput(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desc(seed: u64, class: Value) -> JobDescription {
        let model = ModelId {
            path: "/m/efficientnet-lite0.onnx".into(),
            sha256: "ab".repeat(32),
            preprocess: Preprocess::default(),
            output_kind: Some("detected".into()),
            labels_sha256: Some("none".into()),
        };
        let settings = Settings::from([("--seed".to_string(), json!(seed)), ("--class".to_string(), class)]);
        JobDescription::new(JobKind::Refine, model, settings, Inputs::of(&["a.png".into(), "b.png".into()]), Shard::ALL)
    }

    #[test]
    fn the_same_job_has_no_differences_and_survives_a_round_trip() {
        let d = desc(0, json!("top1"));
        assert!(d.differences(&d.clone()).is_empty());
        let bytes = serde_json::to_vec_pretty(&d).unwrap();
        assert_eq!(JobDescription::from_json_bytes(&bytes).unwrap(), d);
    }

    #[test]
    fn every_differing_setting_is_named_with_both_values() {
        let (a, b) = (desc(0, json!("top1")), desc(5, json!(1)));
        let d = a.differences(&b);
        assert_eq!(explain(&d, "there", "now"), "--class (top1 there, 1 now), --seed (0 there, 5 now)");
        let mut c = a.clone();
        c.model.sha256 = "cd".repeat(32);
        c.model.path = "/elsewhere/efficientnet-lite0.onnx".into();
        c.inputs = Inputs::of(&["b.png".into(), "a.png".into()]);
        c.shard = Shard { index: 1, count: 2 };
        let whats: Vec<String> = a.differences(&c).into_iter().map(|d| d.what).collect();
        assert_eq!(whats, ["the model", "the inputs", "--shard"]);
        // The model's place is not its identity.
        let mut moved = a.clone();
        moved.model.path = "/other/place.onnx".into();
        assert!(a.differences(&moved).is_empty());
        // Softmax or not, and the labels, are the model's settings too (#25: a resumed run kept maps of the other).
        let mut probs = a.clone();
        probs.model.output_kind = Some("probabilities".into());
        probs.model.labels_sha256 = Some("cd".repeat(32));
        assert_eq!(
            explain(&a.differences(&probs), "there", "now"),
            "--output-kind (detected there, probabilities now), --labels (none there, sha256 cdcdcdcdcdcd… now)"
        );
        // A folder written before they were recorded: unrecorded, so not the same job.
        let mut old = a.clone();
        old.model.output_kind = None;
        assert_eq!(explain(&old.differences(&a), "there", "now"), "--output-kind (unrecorded there, detected now)");
        // A setting only one side has is named too.
        let mut extra = a.clone();
        extra.settings.insert("--full-res".into(), json!(true));
        assert_eq!(explain(&a.differences(&extra), "there", "now"), "--full-res (unset there, true now)");
    }

    #[test]
    fn untrusted_bytes_get_a_reason_not_a_panic() {
        let good = serde_json::to_value(desc(0, json!("top1"))).unwrap();
        let with = |k: &str, v: Value| {
            let mut g = good.clone();
            g[k] = v;
            serde_json::to_vec(&g).unwrap()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "is not JSON"),
            (b"[1,2]".to_vec(), "is not a JSON object"),
            (br#"{"mode":"frame","input":"v.mp4"}"#.to_vec(), "older borex"),
            (with("format", json!(2)), "is format 2"),
            (with("shard", json!({"index": 0, "count": 0})), "shard 0/0"),
            (with("shard", json!({"index": 3, "count": 2})), "shard 3/2"),
            (with("kind", json!("bench")), "not a borex job description"),
            (with("surprise", json!(1)), "unknown field"),
            (vec![b'['; 100_000], "is not JSON"),
            (vec![b' '; MAX_BYTES as usize + 1], "more than a job description"),
        ];
        for (bytes, needle) in cases {
            let e = JobDescription::from_json_bytes(&bytes).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let mut bad_hash = good.clone();
        bad_hash["model"]["sha256"] = json!("../../x");
        let e = JobDescription::from_json_bytes(&serde_json::to_vec(&bad_hash).unwrap()).unwrap_err().to_string();
        assert!(e.contains("model sha256"), "{e}");
    }

    #[test]
    fn a_folder_of_another_job_or_with_user_files_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("o");
        let lock = begin_run(&out, &desc(0, json!("top1"))).unwrap();
        drop(lock);
        begin_run(&out, &desc(0, json!("top1"))).unwrap();
        let e = begin_run(&out, &desc(5, json!("top1"))).unwrap_err().to_string();
        assert!(e.contains("other input or settings: --seed (0 there, 5 now)"), "{e}");
        let user = root.path().join("mine");
        std::fs::create_dir(&user).unwrap();
        std::fs::write(user.join("thesis.tex"), "x").unwrap();
        let e = begin_run(&user, &desc(0, json!("top1"))).unwrap_err().to_string();
        assert!(e.contains("holds files and no borex job (thesis.tex…)"), "{e}");
        let names: Vec<_> = std::fs::read_dir(&user).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["thesis.tex"], "nothing written into the user's folder");
    }
}
