#!/usr/bin/env bash
# The venv that runs docs/models.md's Keras export example in the tests
# (python/tests/test_docs_models.py): TensorFlow (CPU build) and tf2onnx from
# PyPI, 34 wheels, 345 MB to download, 1.7 GB installed. Kept apart from .venv so
# TensorFlow's pins (protobuf, numpy, ml_dtypes) cannot move the project's.
# Idempotent: the marker names the pins, so a changed pin installs again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-keras"
PKGS=(tensorflow-cpu==2.21.0 tf2onnx==1.17.0)
marker="$venv/.borex-$(printf '%s\n' "${PKGS[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$marker" ]; then
  echo "[keras] installing ${PKGS[*]} into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
  touch "$marker"
fi
