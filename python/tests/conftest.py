"""Shared fixtures: one Engine on the bundled model, the sample images, and
the `borex` binary of this checkout (the command line the Python results are
compared with)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import borex

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("BOREX_HOME") or ROOT / ".borex")
IMAGES = HOME / "images"
CHELSEA = IMAGES / "chelsea.png"
BINARY = ROOT / "target" / "release" / "borex"

# Few queries keep every refine to seconds on a 2-core machine; equality with
# the CLI does not depend on the count.
ITERS = 6


@pytest.fixture(scope="session")
def engine() -> borex.Engine:
    return borex.Engine()


@pytest.fixture(scope="session")
def chelsea() -> Path:
    assert CHELSEA.is_file(), f"{CHELSEA} missing: run scripts/setup.sh"
    return CHELSEA


def cli_refine(image: Path, out: Path, *args: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """`borex refine IMAGE -o OUT ARGS…`: the refined map, the prior and the report."""
    assert BINARY.is_file(), f"{BINARY} missing: cargo build --release"
    subprocess.run(
        [str(BINARY), "refine", str(image), "-o", str(out), "--quiet", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads((out / "report.json").read_text())
    return np.load(out / "refined.npy"), np.load(out / "prior.npy"), report


def cli_explain(image: Path, out: Path, method: str, *args: str) -> np.ndarray:
    """`borex explain IMAGE -m METHOD -o OUT ARGS…`: map.npy."""
    subprocess.run(
        [str(BINARY), "explain", str(image), "-m", method, "-o", str(out), "--quiet", "--no-metrics", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return np.load(out / "map.npy")
