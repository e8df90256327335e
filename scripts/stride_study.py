#!/usr/bin/env python3
"""docs/benchmarks.md "cheaper loop": quality and GP time of `refine --stride 2` against the default (stride 1).

The nine sample images × seeds 0–2, the default refine (RISE N=100 prior, matched objective, 50
queries), once with each stride (`borex refine IMAGES... --no-metrics`, one sub-folder per image);
then every refined map is scored by one `borex eval --methods file:...` run (insertion from blur −
deletion, the default metric of docs/quality.md). Paired per (image, seed): wins, mean difference,
Wilcoxon signed-rank (scipy). GP time: each report's timings_ms.posterior and gp_fit (same box, same
load, so the ratio is the figure; absolute times depend on the load).

    python3 scripts/stride_study.py --out /tmp/stride-study [--borex target/release/borex] [--strides 1 2]
needs numpy and scipy (any venv); prints Markdown.
"""
import argparse
import csv
import glob
import json
import os
import subprocess

import numpy as np
from scipy.stats import wilcoxon

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
IMAGES = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png",
          "camera.png", "coins.png", "ihc.png", "hubble_deep_field.jpg"]
SEEDS = [0, 1, 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--borex", default=os.path.join(ROOT, "target", "release", "borex"))
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    images = [os.path.join(ROOT, ".borex", "images", i) for i in IMAGES]
    stems = [os.path.splitext(i)[0] for i in IMAGES]
    runs = [(s, seed) for s in a.strides for seed in SEEDS]
    for s, seed in runs:
        out = os.path.join(a.out, f"s{s}-seed{seed}")
        # Reruns resume: finished images are kept.
        subprocess.run([a.borex, "--device", "cpu", "-q", "refine", *images, "-o", out, "--seed", str(seed),
                        "--stride", str(s), "--no-metrics"], check=True, stdout=subprocess.DEVNULL)
    ev = os.path.join(a.out, "eval")
    methods = ",".join(f"file:{a.out}/s{s}-seed{seed}/{{stem}}/refined.npy" for s, seed in runs)
    if not glob.glob(os.path.join(ev, "*.csv")):
        subprocess.run([a.borex, "--device", "cpu", "-q", "eval", *images, "--methods", methods, "-o", ev], check=True, stdout=subprocess.DEVNULL)
    score = {}
    for path in glob.glob(os.path.join(ev, "*.csv")):
        with open(path) as f:
            for r in csv.DictReader(f):
                if "method" in r and "insertion_blur" in r and "deletion" in r:
                    score[r["method"], os.path.splitext(os.path.basename(r["image"]))[0]] = float(r["insertion_blur"]) - float(r["deletion"])
    if not score:
        raise SystemExit(f"no per-map rows with method, image, insertion_blur, deletion in {ev}/*.csv")

    def key(s, seed, stem):
        return f"file:{a.out}/s{s}-seed{seed}/{{stem}}/refined.npy", stem

    def timing(s, seed, stem, what):
        with open(os.path.join(a.out, f"s{s}-seed{seed}", stem, "report.json")) as f:
            return json.load(f)["timings_ms"][what]

    base = a.strides[0]
    print("| stride | mean ins(blur)−del | vs stride 1: better / worse | mean Δ | Wilcoxon p | GP posterior ms per refine (mean) | L-BFGS-B fit ms | model ms |")
    print("|---|---|---|---|---|---|---|---|")
    for s in a.strides:
        vals = [score[key(s, seed, st)] for seed in SEEDS for st in stems]
        d = np.array([score[key(s, seed, st)] - score[key(base, seed, st)] for seed in SEEDS for st in stems])
        nz = d[d != 0]
        p = f"{wilcoxon(nz).pvalue:.2g}" if len(nz) else "–"
        post = np.mean([timing(s, seed, st, "posterior") for seed in SEEDS for st in stems])
        fit = np.mean([timing(s, seed, st, "gp_fit") for seed in SEEDS for st in stems])
        model = np.mean([timing(s, seed, st, "model") for seed in SEEDS for st in stems])
        cmp = "–" if s == base else f"{int((d > 0).sum())} / {int((d < 0).sum())} of {len(d)}"
        print(f"| {s} | {np.mean(vals):+.4f} | {cmp} | {np.mean(d):+.4f} | {p if s != base else '–'} | {post:.0f} | {fit:.0f} | {model:.0f} |")


if __name__ == "__main__":
    main()
