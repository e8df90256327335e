#!/usr/bin/env python3
"""Write tests/fixtures/antithetic_numpy.json: the antithetic continuation of a RISE prior
(src/explain/antithetic.rs) computed independently in numpy on a small case, for tests/antithetic.rs.

The model is tests/fixtures/gap_linear_logits.onnx written out in numpy (logits = W·mean_hw(x) + b,
weights from scripts/make_test_models.py), the masks are borex's (the numpy port of
src/compute/rise_masks.rs in scripts/continuation_screen.py), and the map is the covariance form of
the estimator, not the streamed sums the Rust code uses:
    ins = Σ_i (f_i − f̄)(M_i − p) / (N·p(1−p)),   del = −Σ_j (f'_j − f̄')(M_j − p) / (N'·p(1−p))
Run: .venv/bin/python scripts/make_antithetic_fixture.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from continuation_screen import rise_masks
from make_test_models import B4, W4

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "antithetic_numpy.json")
C, H, W = 3, 24, 20


def image() -> np.ndarray:
    c, y, x = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    return (((c * 7 + y * 3 + x * 5) % 11) / 5.0 - 0.8).astype(np.float32)


def probs(x: np.ndarray) -> np.ndarray:  # x: N×C×H×W
    z = x.astype(np.float64).mean(axis=(2, 3)) @ W4.T.astype(np.float64) + B4
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def case(n0: int, s: int, p: float, seed: int, extra: int, cls: int) -> dict:
    x = image()
    complements = min(extra, n0)
    new_pairs = (extra - complements) // 2
    total = n0 + new_pairs
    masks = rise_masks(seed, 0, total, s=s, p=p, h=H, w=W).astype(np.float64)
    f = probs(x[None] * masks[:, None])[:, cls]
    paired = [i for i in range(total) if i < complements or i >= n0]
    fc = probs(x[None] * (1 - masks[paired, None]))[:, cls]
    v = p * (1 - p)
    ins = np.tensordot(f - f.mean(), masks - p, 1) / (total * v)
    dele = -np.tensordot(fc - fc.mean(), masks[paired] - p, 1) / (len(paired) * v)
    return {"n": n0, "s": s, "p": p, "seed": seed, "extra": extra, "class": cls, "complements": complements,
            "new_pairs": new_pairs, "map": (ins + dele).ravel().tolist()}


def main() -> None:
    cases = [case(12, 4, 0.3, 5, 8, 1), case(12, 4, 0.3, 5, 12, 1), case(10, 3, 0.5, 9, 25, 2)]
    doc = {"image": f"x[c, y, x] = ((7c + 3y + 5x) mod 11) / 5 − 0.8, {C}×{H}×{W}",
           "model": "gap_linear_logits.onnx", "cases": cases}
    with open(OUT, "w") as fh:
        json.dump(doc, fh)
        fh.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
