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
