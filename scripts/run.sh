#!/usr/bin/env bash
# The main job on the bundled default: set up (idempotent), build, and run
# borex on the sample images with the bundled EfficientNet-Lite0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cargo build --release --quiet
images="$root/.borex/images"
./target/release/borex info
./target/release/borex classify "$images/chelsea.png" "$images/coffee.png" "$images/rocket.jpg" \
  "$images/motorcycle_left.png" "$images/astronaut.png" --top 3
