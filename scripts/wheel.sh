#!/usr/bin/env bash
# Build the borex wheel (python/: the PyO3 module, the Python layer and the
# cargo-built `borex` binary as its console script) into target/wheels/, and
# print its path. The release builds are the ones the tests share, so a
# build after `cargo test --release` only links. Install it anywhere with
#   pip install target/wheels/borex-*.whl     (pulls onnxruntime from PyPI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
[ -x "$venv/bin/maturin" ] || bash scripts/python.sh >&2
cargo build --release --quiet --bin borex
mkdir -p python/borex/bin
# Temp name, then rename: a half-copied binary is never packaged.
cp target/release/borex python/borex/bin/borex.tmp
mv python/borex/bin/borex.tmp python/borex/bin/borex
# The setup's model converter, for `python -m borex fetch-model` (one source: scripts/).
mkdir -p python/borex/_convert
for f in convert_efficientnet.py gradient_graph.py; do
  cp "scripts/$f" "python/borex/_convert/$f.tmp"
  mv "python/borex/_convert/$f.tmp" "python/borex/_convert/$f"
done
rm -f target/wheels/borex-*.whl
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" build --release --quiet -m python/Cargo.toml \
  --out target/wheels >&2
ls target/wheels/borex-*.whl
