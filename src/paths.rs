//! Where borex finds its bundled assets: `$BOREX_HOME`, else the `.borex`
//! folder that `scripts/setup.sh` fills beside the crate's manifest.

use std::path::PathBuf;

/// The folder holding `ort/`, `models/`, `labels/` and `images/`.
pub fn home() -> PathBuf {
    match std::env::var_os("BOREX_HOME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".borex"),
    }
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
