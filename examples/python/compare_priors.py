"""Refine one image from several priors and compare insertion/deletion before
and after (the explained class: top-1).

    python examples/python/compare_priors.py IMAGE [--priors rise-fast,gradcam,occlusion] [--iters 50]

Prints one row per prior: the prior's and the refined map's insertion and
deletion AUC (insertion from a blurred copy, deletion to zero) and
insertion − deletion; a higher difference is a better map.
"""

from __future__ import annotations

import argparse

import borex


def _auc(x: float | None) -> float:
    """An AUC of the report: there with metrics on (the default), NaN otherwise."""
    return float("nan") if x is None else x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("--priors", default="rise-fast,gradcam,occlusion")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    engine = borex.Engine()
    print(f"{'prior':12s} {'ins':>7s} {'del':>7s} {'ins-del':>8s}  →  {'ins':>7s} {'del':>7s} {'ins-del':>8s}")
    for method in a.priors.split(","):
        prior = engine.explain(a.image, method=method, seed=a.seed)
        b = engine.evaluate(a.image, prior)
        r = engine.refine(a.image, prior=prior, iters=a.iters, seed=a.seed).report.refined
        bi, bd, ri, rd = (_auc(x) for x in (b.insertion, b.deletion, r.insertion, r.deletion))
        print(f"{method:12s} {bi:7.4f} {bd:7.4f} {bi - bd:8.4f}  →  {ri:7.4f} {rd:7.4f} {ri - rd:8.4f}")


if __name__ == "__main__":
    main()
