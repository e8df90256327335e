#!/usr/bin/env bash
# Set up (idempotent), then run every test in release mode (one build shared
# with the main job). The setup installs Mesa's software Vulkan driver, so a
# missing GPU adapter is a failure here, not a skip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export BOREX_REQUIRE_GPU="${BOREX_REQUIRE_GPU:-1}"
cargo test --release --all-targets
