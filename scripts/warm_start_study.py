#!/usr/bin/env python3
"""docs/video.md "Warm start": per-frame RISE prior vs `borex video --warm-start`, on two clips made here.

Clips (FFmpeg, from the bundled sample images, H.264 CRF 18 like an ordinary video file):
  pan:  chelsea.png, a 300×300 window sliding 6 px per frame, 10 frames
  zoom: coffee.png, a centred zoom-in of 1.2 % per frame, 10 frames
Variants (each with seeds 0 and 1; --lockstep 2, so a clip is one group of 2 chains of 5):
  cold:    every frame from its own RISE N=100 prior (rise-fast), 50 queries
  warm:    --warm-start --keyframe-every 5: frames 1–4 of a chain start from the previous map, 50 queries
  warm25:  the same with --warm-iters 25
A keyframe is the cold refine of that frame (same seed), so the comparison is over the warm frames:
8 per clip × 2 clips × 2 seeds = 32 pairs (the box is two shared cores: a bigger study did not fit). Quality: frames.csv's insertion (blur start, the
default metric of docs/quality.md) − deletion; Wilcoxon signed-rank (scipy) on the paired
differences. Cost: model evaluations per frame from frames.csv (less the 450 of the metrics); with
--speed, also a run of each variant without metrics (seed 0), frames/s from wall time. --no-run
summarises the runs already in --out (a partial study says which runs it has).

    python3 scripts/warm_start_study.py --out /tmp/warm-study [--borex target/release/borex] [--speed] [--no-run]
needs numpy and scipy (any venv) and ffmpeg; prints the Markdown tables for docs/video.md.
"""
import argparse
import csv
import os
import subprocess
import time

import numpy as np
from scipy.stats import wilcoxon

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FRAMES = 10
CHAIN = 5
CLIPS = {
    "pan": ("chelsea.png", "crop=300:300:x='6*n':y=0,scale=256:256"),
    "zoom": ("coffee.png", f"zoompan=z='1+0.012*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={FRAMES}:s=300x200:fps=10"),
}
VARIANTS = {
    "cold": [],
    "warm": ["--warm-start", "--keyframe-every", str(CHAIN)],
    "warm25": ["--warm-start", "--keyframe-every", str(CHAIN), "--warm-iters", "25"],
}
SEEDS = [0, 1]
METRIC_EVALS = 2 * 225  # two curves of 225 points in every frames.csv row


def make_clip(out, name):
    image, vf = CLIPS[name]
    path = os.path.join(out, f"{name}.mp4")
    if not os.path.exists(path):
        src = os.path.join(ROOT, ".borex", "images", image)
        loop = [] if vf.startswith("zoompan") else ["-loop", "1", "-framerate", "10"]
        subprocess.run(["ffmpeg", "-v", "error", "-y", *loop, "-i", src, "-vf", vf, "-frames:v", str(FRAMES),
                        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "18", path], check=True)
    return path


def run(borex, clip, out, variant, seed, metrics=True):
    args = [borex, "--device", "cpu", "-q", "video", clip, "-o", out, "--lockstep", "2", "--seed", str(seed), *VARIANTS[variant]]
    if not metrics:
        args.append("--no-metrics")
    t0 = time.time()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.time() - t0


def rows(out):
    with open(os.path.join(out, "frames.csv")) as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--borex", default=os.path.join(ROOT, "target", "release", "borex"))
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--no-run", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    clips = {c: make_clip(a.out, c) for c in CLIPS}
    score = {}  # (variant, clip, seed) -> list of (frame, ins-del, evals, time_ms)
    for c, clip in clips.items():
        for s in SEEDS:
            for v in VARIANTS:
                out = os.path.join(a.out, f"{v}-{c}-{s}")
                if not os.path.exists(os.path.join(out, "frames.csv")):
                    if a.no_run:
                        continue
                    run(a.borex, clip, out, v, s)
                score[v, c, s] = [(int(r["frame"]), float(r["insertion"]) - float(r["deletion"]), int(r["model_evaluations"]) - METRIC_EVALS, float(r["time_ms"])) for r in rows(out)]
    # Only (clip, seed) pairs every variant has.
    pairs = [(c, s) for c in CLIPS for s in SEEDS if all((v, c, s) in score for v in VARIANTS)]
    print(f"Runs: {', '.join(f'{c} seed {s}' for c, s in pairs)}.\n")
    speed = {}
    if a.speed:
        load = os.getloadavg()[0]
        for v in VARIANTS:
            wall = 0.0
            for c, clip in clips.items():
                out = os.path.join(a.out, f"speed-{v}-{c}")
                if os.path.exists(out):
                    subprocess.run(["rm", "-rf", out], check=True)
                wall += run(a.borex, clip, out, v, 0, metrics=False)
            speed[v] = 2 * FRAMES / wall
        print(f"Load average during the speed runs: {(load + os.getloadavg()[0]) / 2:.1f}.\n")

    print("| variant | mean ins−del, all frames | warm frames: mean ins−del | Δ vs cold (warm frames) | warm frames better / worse | Wilcoxon p | model evaluations per frame (no metrics) | frames/s (no metrics) |")
    print("|---|---|---|---|---|---|---|---|")
    cold = {k[1:]: dict((f, d) for f, d, _, _ in x) for k, x in score.items() if k[0] == "cold"}
    for v in VARIANTS:
        alld, warmd, diffs, evals, times = [], [], [], [], []
        for c, s in pairs:
            if True:
                for f, d, e, tm in score[v, c, s]:
                    times.append(tm)
                    alld.append(d)
                    evals.append(e)
                    if f % CHAIN != 0:
                        warmd.append(d)
                        diffs.append(d - cold[c, s][f])
        diffs = np.array(diffs)
        nz = diffs[diffs != 0]
        p = f"{wilcoxon(nz).pvalue:.2g}" if len(nz) > 0 else "–"
        better, worse = int((diffs > 0).sum()), int((diffs < 0).sum())
        fps = f"{speed[v]:.2f}" if v in speed else "–"
        print(f"| {v} | {np.mean(alld):+.4f} | {np.mean(warmd):+.4f} | {np.mean(diffs):+.4f} | {better} / {worse} of {len(diffs)} | {p} | {np.mean(evals):.0f} | {fps} |")
    print("\nPer clip, mean ins−del over the warm frames (seeds pooled):\n")
    print("| clip | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    for c in CLIPS:
        vals = [np.mean([d for c2, s in pairs if c2 == c for f, d, _, _ in score[v, c, s] if f % CHAIN != 0] or [np.nan]) for v in VARIANTS]
        print(f"| {c} | " + " | ".join(f"{x:+.4f}" for x in vals) + " |")
    print("\nBy position in the chain (frames since the keyframe), mean Δ ins−del vs cold, both clips and seeds pooled:\n")
    print("| variant | " + " | ".join(str(k) for k in range(1, CHAIN)) + " |")
    print("|---|" + "---|" * (CHAIN - 1))
    for v in [x for x in VARIANTS if x != "cold"]:
        by = [np.mean([d - cold[c, s][f] for c, s in pairs for f, d, _, _ in score[v, c, s] if f % CHAIN == k]) for k in range(1, CHAIN)]
        print(f"| {v} | " + " | ".join(f"{x:+.3f}" for x in by) + " |")


if __name__ == "__main__":
    main()
