//! Where borex finds its bundled assets (the ONNX Runtime library, models,
//! labels, sample images): `$BOREX_HOME`, else the per-user data folder
//! (`$XDG_DATA_HOME/borex` or `~/.local/share/borex`), else the `.borex`
//! folder that `scripts/setup.sh` fills in the checkout borex was built from.
//! A binary from `cargo install` or a Python wheel thus finds its model
//! without the checkout.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};

/// Which of the places [`home`] looks in was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeSource {
    /// `$BOREX_HOME`.
    Env,
    /// The per-user data folder.
    UserData,
    /// The checkout's `.borex` (the compile-time `CARGO_MANIFEST_DIR`).
    Checkout,
}

/// The assets folder and how it was chosen.
#[derive(Debug, Clone)]
pub struct Home {
    /// The folder holding `ort/`, `models/`, `labels/` and `images/`.
    pub path: PathBuf,
    /// Which place it is.
    pub source: HomeSource,
    /// Every place looked at before it, and why it was passed over.
    pub passed_over: Vec<(PathBuf, String)>,
}

/// Whether `dir` holds the setup's assets (its `models/` folder).
fn filled(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        Err("does not exist".into())
    } else if !dir.join("models").is_dir() {
        Err("has no models/ folder (not filled by scripts/setup.sh)".into())
    } else {
        Ok(())
    }
}

/// The per-user data folder: `$XDG_DATA_HOME/borex` (an absolute path, as the
/// XDG spec requires), else `$HOME/.local/share/borex`.
pub fn user_data_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let home = || std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/share"));
    xdg.or_else(home).map(|d| d.join("borex"))
}

/// The checkout's asset folder (where `scripts/setup.sh` puts them).
pub fn checkout_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".borex")
}

/// Find the assets: `$BOREX_HOME` when set (used even when empty of assets:
/// an explicit choice is not second-guessed), else the first of the per-user
/// data folder and the checkout's `.borex` that holds `models/`, else the
/// checkout's (so errors name the folder the setup fills).
pub fn locate() -> Home {
    if let Some(p) = std::env::var_os("BOREX_HOME").filter(|p| !p.is_empty()) {
        return Home { path: PathBuf::from(p), source: HomeSource::Env, passed_over: vec![] };
    }
    let mut passed_over = vec![(PathBuf::from("$BOREX_HOME"), "not set".to_string())];
    if let Some(dir) = user_data_dir() {
        match filled(&dir) {
            Ok(()) => return Home { path: dir, source: HomeSource::UserData, passed_over },
            Err(why) => passed_over.push((dir, why)),
        }
    } else {
        passed_over.push((PathBuf::from("~/.local/share/borex"), "neither $XDG_DATA_HOME nor $HOME is set".into()));
    }
    Home { path: checkout_dir(), source: HomeSource::Checkout, passed_over }
}

/// The folder holding `ort/`, `models/`, `labels/` and `images/` (see [`locate`]).
pub fn home() -> PathBuf {
    locate().path
}

/// Why the assets folder in use is what it is, in a few lines (for `borex info`).
pub fn describe_home() -> Vec<String> {
    let h = locate();
    let what = match h.source {
        HomeSource::Env => "$BOREX_HOME",
        HomeSource::UserData => "the per-user data folder",
        HomeSource::Checkout => "the checkout borex was built from",
    };
    let mut lines = vec![format!("assets: {} ({what})", h.path.display())];
    if let Err(why) = filled(&h.path) {
        lines.push(format!("  it {why}: run scripts/setup.sh, or set BOREX_HOME to a filled folder"));
    }
    for (p, why) in &h.passed_over {
        lines.push(format!("  passed over {}: {why}", p.display()));
    }
    lines
}

/// The bundled classifier (logits only).
pub fn default_model() -> PathBuf {
    home().join("models").join("efficientnet-lite0.onnx")
}

/// The bundled classifier with its last feature map as a second output.
pub fn default_features_model() -> PathBuf {
    home().join("models").join("efficientnet-lite0-features.onnx")
}

/// The bundled clip classifier (N×T×C×H×W; per-frame logits averaged over T).
pub fn default_clip_model() -> PathBuf {
    home().join("models").join("efficientnet-lite0-clip.onnx")
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, else the one the setup installed.
pub fn default_ort_lib() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => home().join("ort").join("libonnxruntime.so"),
    }
}

/// A sample image installed by the setup, e.g. `sample_image("chelsea.png")`.
pub fn sample_image(name: &str) -> PathBuf {
    home().join("images").join(name)
}
