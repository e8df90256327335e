#!/usr/bin/env bash
# The main job on the bundled default: set up (idempotent), build, and refine
# the RISE saliency map of the sample image with BOREx on the bundled
# EfficientNet-Lite0. Outputs land in out/chelsea/, with their page out/chelsea/report.html.
# Also builds the Python package `borex` into .venv.
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
cargo build --release --quiet
# The Python package into .venv (skipped when up to date): `source .venv/bin/activate`, then `import borex`.
bash scripts/python.sh
./target/release/borex info
./target/release/borex refine "$root/.borex/images/chelsea.png" -o "$root/out/chelsea" --timings --insertion-start blur,zero --report
