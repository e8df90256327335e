#!/usr/bin/env bash
# Build the Python package `borex` (python/: PyO3 + maturin, one abi3 wheel for
# CPython >= 3.9) into the project's venv (.venv, made by scripts/setup.sh),
# installing the pinned tools it needs first. Idempotent and cheap when nothing
# changed: the build is skipped while the built module is newer than every
# Rust source and manifest. `--test` also installs the test tools (pytest,
# ruff, mypy, Ray). The development build has the test hooks python/tests and
# python/bench call (cargo feature test-hooks); the wheel (scripts/wheel.sh)
# has not. Then: `source .venv/bin/activate && python -c "import borex"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
BUILD_PKGS=(maturin==1.16.0)
TEST_PKGS=(pytest==9.2.0 ruff==0.17.6 mypy==2.4.1 "ray[data]==2.60.0" pandas==3.1.1 pyarrow==26.0.1)

log() { printf '[python] %s\n' "$*" >&2; }
[ -x "$venv/bin/python" ] || { echo "no venv at $venv: run scripts/setup.sh first" >&2; exit 1; }

# Install a list of pinned packages once; the marker names the list, so a changed pin installs again.
install_once() {
  local marker
  marker="$venv/.borex-py-$(printf '%s\n' "$@" | sha1sum | cut -c1-12)"
  if [ ! -f "$marker" ]; then
    log "installing into $venv: $*"
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
    touch "$marker"
  fi
}
install_once "${BUILD_PKGS[@]}"
if [ "${1:-}" = "--test" ]; then
  install_once "${TEST_PKGS[@]}"
fi

so="$root/python/borex/_borex.abi3.so"
if [ -f "$so" ] && "$venv/bin/python" -c "import borex" 2>/dev/null \
   && [ -z "$(find src python/src shaders Cargo.toml Cargo.lock python/Cargo.toml python/pyproject.toml -newer "$so" -print -quit)" ]; then
  log "borex is up to date in $venv"
  exit 0
fi
log "building the borex Python package into $venv (maturin develop --release)"
# maturin develop installs the package editable: python/borex/*.py are used in place, the
# native module is built into python/borex/. VIRTUAL_ENV tells maturin which venv.
# test-hooks: the test and benchmark hooks python/tests and python/bench call (never in the wheel).
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --release --quiet -m python/Cargo.toml \
  --features test-hooks
touch "$so"
