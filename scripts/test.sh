#!/usr/bin/env bash
# Set up (idempotent), then run every test in release mode (one build shared
# with the main job). The setup installs Mesa's software Vulkan driver; GPU
# tests fail without an adapter unless BOREX_ALLOW_NO_GPU=1 is set.
# After the Rust tests: the Python package built into .venv (scripts/python.sh
# --test, which also installs pytest, ruff and Ray), ruff, and pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cargo test --release --all-targets
bash scripts/python.sh --test
.venv/bin/ruff check python examples/python
.venv/bin/python -m pytest python/tests -q -p no:cacheprovider
