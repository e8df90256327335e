#!/usr/bin/env bash
# The README's picture of a refine page (docs/report-refine.png): the top of a
# `borex report` page in headless Chromium (Debian's chromium; scripts/test.sh
# installs it), 1000 px wide. Usage:
#   scripts/report_screenshot.sh out/chelsea/report.html [docs/report-refine.png] [height]
set -euo pipefail
page="$(realpath "${1:?usage: $0 REPORT.html [OUT.png] [HEIGHT]}")"
out="$(realpath -m "${2:-docs/report-refine.png}")"
height="${3:-1400}"
browser="$(command -v chromium || command -v chromium-browser)" || {
  echo "chromium not found (apt-get install chromium)" >&2
  exit 1
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# A private profile, no GPU, no sandbox (root in a container); the page needs no network.
"$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
  --force-device-scale-factor=1 --window-size="1000,$height" --screenshot="$tmp/shot.png" \
  "file://$page" >/dev/null 2>&1
# 256 colours (Pillow, in the project's venv where it is there): a quarter of the bytes, no visible change.
py="$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python"
[ -x "$py" ] || py=python3
"$py" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").quantize(256).save(sys.argv[1], optimize=True)' \
  "$tmp/shot.png" 2>/dev/null || true
mv "$tmp/shot.png" "$out"
echo "wrote $out"
