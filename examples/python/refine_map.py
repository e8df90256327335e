"""Refine one image's saliency map and save it, with the prior, as .npy and PNG.

    python examples/python/refine_map.py IMAGE [-o OUT] [--prior rise-fast] [--iters 50] [--seed 0]

The maps are the ones ``borex refine IMAGE --prior P --iters N --seed S``
writes (refined.npy, prior.npy), bit for bit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

import borex


def to_png(m: npt.NDArray[np.float32], path: Path) -> None:
    """A map as an 8-bit grayscale PNG, min → black, max → white."""
    lo, hi = float(m.min()), float(m.max())
    scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    Image.fromarray((scaled * 255).round().astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("-o", "--out", default="out/python-refine")
    ap.add_argument("--prior", default="rise-fast")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    engine = borex.Engine()
    top = engine.classify(a.image, top=1)[0]
    result = engine.refine(a.image, prior=a.prior, iters=a.iters, seed=a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, m in (("prior", result.prior), ("refined", result.refined)):
        np.save(out / f"{name}.npy", m)
        to_png(m, out / f"{name}.png")
    r = result.report
    print(f"{a.image}: class {top.id} ({top.label}, p = {top.probability:.3f}), {len(result.queries)} queries")
    for name, scores in (("prior", r.prior), ("refined", r.refined)):
        if scores.insertion is not None and scores.deletion is not None:
            print(f"  {name:8s} insertion {scores.insertion:.4f}  deletion {scores.deletion:.4f}")
    print(f"wrote {out}/prior.npy, refined.npy and their PNGs")


if __name__ == "__main__":
    main()
