#!/usr/bin/env bash
# Set up (idempotent), then run every test in release mode (one build shared
# with the main job). The setup installs Mesa's software Vulkan driver; GPU
# tests fail without an adapter unless BOREX_ALLOW_NO_GPU=1 is set; the browser
# tests of `borex report` fail without Chromium unless BOREX_ALLOW_NO_BROWSER=1.
# After the Rust tests: the Python package built into .venv (scripts/python.sh
# --test, which also installs pytest, ruff, mypy and Ray; scripts/keras_env.sh, TensorFlow for the Keras
# example of docs/models.md), ruff, mypy (examples, stubs), pytest, and the wheel
# installed into a fresh venv outside the checkout (scripts/test_wheel.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# Mesa's Vulkan loader prints an error for every device it opens without a runtime dir (a
# container, CI): give it a private one.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi

# Test-only tools, not needed by the main job: headless Chromium and its
# driver (Debian's), and Selenium + html5lib in the project's venv, for the
# browser checks of `borex report` pages (tests/report.rs, scripts/browser_check.py).
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need_deb=()
for p in chromium chromium-driver; do
  dpkg -s "$p" >/dev/null 2>&1 || need_deb+=("$p")
done
if ((${#need_deb[@]})); then
  echo "[test] installing Debian packages: ${need_deb[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_deb[@]}" >/dev/null
fi
TEST_PY_PKGS=(selenium==4.36.0 html5lib==1.1)
if ! .venv/bin/python -c "import selenium, html5lib; assert selenium.__version__ == '4.36.0'" 2>/dev/null; then
  echo "[test] installing ${TEST_PY_PKGS[*]} into .venv" >&2
  .venv/bin/pip install -q --disable-pip-version-check "${TEST_PY_PKGS[@]}"
fi

cargo test --release --all-targets
# The rustdoc examples (--all-targets leaves doctests out): borex::Engine's runs on the bundled model.
cargo test --release --doc
bash scripts/python.sh --test
# TensorFlow + tf2onnx in their own venv, for docs/models.md's Keras example (test_docs_models.py).
bash scripts/keras_env.sh
.venv/bin/ruff check python examples/python scripts/eval_set.py scripts/quality_table.py scripts/design_study.py \
  scripts/wheel_check.py
# The stubs and examples type-check: mypy --strict on the package's Python layer and the examples
# (they use the package as a user does), and stubtest: borex/_borex.pyi against the built module.
.venv/bin/python -m mypy --config-file python/mypy.ini --strict --no-incremental python/borex examples/python
.venv/bin/python -m mypy.stubtest borex --mypy-config-file python/mypy.ini --allowlist python/stubtest-allowlist.txt
.venv/bin/python -m pytest python/tests -q -p no:cacheprovider
# The wheel in a fresh venv outside the checkout (reuses the release builds above: it links, then packs).
bash scripts/test_wheel.sh
