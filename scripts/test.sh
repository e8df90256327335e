#!/usr/bin/env bash
# Set up (idempotent), then run every test in release mode (one build shared
# with the main job). The setup installs Mesa's software Vulkan driver; GPU
# tests fail without an adapter unless BOREX_ALLOW_NO_GPU=1 is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cargo test --release --all-targets
