#!/usr/bin/env python3
"""Screen ways to spend 100 more evaluations after borex's RISE-100 prior (issue #24), independent of borex.

numpy + onnxruntime + Pillow only. Re-implements what the comparison needs, from SPEC.md and the Rust sources:
the project's RISE masks (counter-hash cells, s = 8, p = 0.3, bilinear upsampling with mirrored edges, random
shift: src/compute/rise_masks.rs), the preprocessing (short side 256, centre crop 224, (x − 127) / 128), the
masked image I ⊙ M (zero = the mean colour), RISE's map Σ f·M / (N·p), and insertion (blur or zero start)
and deletion (224 pixels a step, AUC by the trapezoid rule). Every map of one image is scored by the same
metric code, so the comparison is paired; absolute values may differ from `borex eval` by the resize filter.

Maps, all from the same seed's masks (the first 100 are the prior's):
  rise100, rise200, rise1000   RISE continued from the prior's masks (the baselines of `borex eval`)
  cen200                       RISE-200 with the mean score subtracted (a constant control variate)
  anti                         the prior's 100 masks and their 100 complements 1 − M (same grid, same shift):
                               cov(f, M) of each group / (p(1 − p)), summed (insertion- and deletion-like evidence)
  antiz                        the same two groups' maps, each scaled to unit standard deviation over pixels

Usage: python scripts/continuation_screen.py MANIFEST_OR_DIR --seeds 0 [--min-p 0.5] [--out rows.jsonl]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
H = W = 224
U32 = np.uint32


def pcg(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        state = v.astype(U32) * U32(747_796_405) + U32(2_891_336_453)
        word = ((state >> ((state >> U32(28)) + U32(4))) ^ state) * U32(277_803_737)
        return (word >> U32(22)) ^ word


def chash(seed: int, mask: np.ndarray, slot: np.ndarray) -> np.ndarray:
    lo, hi = U32(seed & 0xFFFF_FFFF), U32(seed >> 32)
    inner = pcg(np.asarray(lo ^ pcg(np.asarray(hi))))
    return pcg(slot.astype(U32) ^ pcg(mask.astype(U32) ^ inner))


def axis_taps(s: int, ratio: np.float32, shift: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = (np.arange(n, dtype=np.float32) + np.float32(shift) + np.float32(0.5)) * ratio - np.float32(0.5)
    f = np.floor(src)
    i = f.astype(np.int64)

    def mirror(k: np.ndarray) -> np.ndarray:
        return np.where(k < 0, -k, np.where(k >= s, 2 * (s - 1) - k, k))

    return mirror(i), mirror(i + 1), (src - f).astype(np.float32)


def rise_masks(seed: int, start: int, count: int, s: int = 8, p: float = 0.3, h: int = H, w: int = W) -> np.ndarray:
    """Masks start..start+count of borex's sequence (count×h×w), as src/compute/rise_masks.rs makes them."""
    ch, cw = -(-h // s), -(-w // s)
    up_h, up_w = (s + 1) * ch, (s + 1) * cw
    out = np.empty((count, h, w), np.float32)
    slots = np.arange(s * s + 2)
    for k in range(count):
        hs = chash(seed, np.full(slots.shape, start + k), slots)
        unit = (hs[: s * s] >> U32(8)).astype(np.float32) * np.float32(1.0 / 16_777_216.0)
        grid = (unit < np.float32(p)).astype(np.float32).reshape(s, s)
        dy, dx = int(hs[s * s]) % ch, int(hs[s * s + 1]) % cw
        y0, y1, fy = axis_taps(s, np.float32(s) / np.float32(up_h), dy, h)
        x0, x1, fx = axis_taps(s, np.float32(s) / np.float32(up_w), dx, w)
        top = grid[np.ix_(y0, x0)] * (1 - fx) + grid[np.ix_(y0, x1)] * fx
        bottom = grid[np.ix_(y1, x0)] * (1 - fx) + grid[np.ix_(y1, x1)] * fx
        out[k] = top * (1 - fy)[:, None] + bottom * fy[:, None]
    return out


class Model:
    def __init__(self, path: str, threads: int) -> None:
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        self.s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        self.name = self.s.get_inputs()[0].name
        self.evals = 0

    def probs(self, x: np.ndarray, batch: int = 64) -> np.ndarray:  # x: N×3×H×W
        out = []
        for i in range(0, len(x), batch):
            z = self.s.run(None, {self.name: np.ascontiguousarray(x[i : i + batch], np.float32)})[0]
            z = z - z.max(1, keepdims=True)
            e = np.exp(z)
            out.append(e / e.sum(1, keepdims=True))
        self.evals += len(x)
        return np.concatenate(out)


def load(path: str) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    sc = 256 / min(w, h)
    rw, rh = max(W, round(w * sc)), max(H, round(h * sc))
    im = im.resize((rw, rh), Image.BILINEAR)
    left, top = (rw - W) // 2, (rh - H) // 2
    a = np.asarray(im.crop((left, top, left + W, top + H)), np.float32)
    return ((a - 127.0) / 128.0).transpose(2, 0, 1).copy()


def blur_weights(klen: int = 11, sigma: float = 5.0) -> np.ndarray:
    # scipy.ndimage.gaussian_filter (truncate 4, reflect) of a centred delta, as src/compute/mod.rs.
    r = int(4 * sigma + 0.5)
    w = np.exp(-0.5 * np.arange(-r, r + 1) ** 2 / sigma**2)
    w /= w.sum()
    out = np.zeros(klen)
    c = klen // 2
    for i in range(klen):
        for j in range(-r, r + 1):
            k = i + j
            while k < 0 or k >= klen:
                k = -k - 1 if k < 0 else 2 * klen - k - 1
            if k == c:
                out[i] += w[j + r]
    return out.astype(np.float32)


def blur(x: np.ndarray) -> np.ndarray:
    k = blur_weights()
    r = len(k) // 2
    out = np.empty_like(x)
    for c in range(3):
        p = np.pad(x[c], r)  # zero padding, as the CPU kernel
        rows = sum(k[t] * p[:, t : t + W] for t in range(len(k)))[r:-r]
        rows = np.pad(rows, ((r, r), (0, 0)))
        out[c] = sum(k[t] * rows[t : t + H] for t in range(len(k)))
    return out


def auc(v: np.ndarray) -> float:
    return float((v.sum() - v[0] / 2 - v[-1] / 2) / (len(v) - 1))


STEP = W  # pixels a step (224: the reference; --step 448 halves a screen's cost)


def curve(m: Model, frm: np.ndarray, to: np.ndarray, sal: np.ndarray, cls: int) -> float:
    flat = sal.ravel()
    order = np.lexsort((-np.arange(flat.size), -flat))  # descending; ties: later pixel first (numpy flip(argsort))
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size)
    steps = H * W // STEP
    masks = (rank[None, :] < (np.arange(steps + 1)[:, None] * STEP)).reshape(-1, 1, H, W).astype(np.float32)
    x = frm[None] * (1 - masks) + to[None] * masks
    return auc(m.probs(x)[:, cls])


def metrics(m: Model, x: np.ndarray, xb: np.ndarray, sal: np.ndarray, cls: int) -> tuple[float, float]:
    z = np.zeros_like(x)
    ins_b, ins_z, dele = curve(m, xb, x, sal, cls), curve(m, z, x, sal, cls), curve(m, x, z, sal, cls)
    return ins_b - dele, ins_z - dele


def maps(masks: np.ndarray, f: np.ndarray, fc: np.ndarray, p: float) -> dict[str, np.ndarray]:
    def rise(n: int) -> np.ndarray:
        return np.tensordot(f[:n], masks[:n], 1) / (n * p)

    n0 = 100
    m0, f0 = masks[:n0], f[:n0]
    v = p * (1 - p)
    ins = np.tensordot(f0 - f0.mean(), m0 - p, 1) / (n0 * v)  # insertion-like: kept with p
    dele = -np.tensordot(fc - fc.mean(), m0 - p, 1) / (n0 * v)  # deletion-like: removed with p (complements)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / max(float(a.std()), 1e-12)

    return {
        "rise100": rise(100),
        "rise200": rise(200),
        "rise1000": rise(1000),
        "cen200": np.tensordot(f[:200] - f[:200].mean(), masks[:200], 1) / (200 * p),
        "anti": ins + dele,
        "antiz": unit(ins) + unit(dele),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", help="a manifest (one path a line, relative to it) or a folder")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--min-p", type=float, default=0.5)
    ap.add_argument("--max-p", type=float, default=1.01)
    ap.add_argument("--model", default=os.path.join(ROOT, ".borex", "models", "efficientnet-lite0.onnx"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="")
    ap.add_argument("--step", type=int, default=W, help="pixels a step of the curves")
    a = ap.parse_args()
    global STEP
    STEP = a.step
    if os.path.isdir(a.images):
        paths = sorted(glob.glob(os.path.join(a.images, "*")))
    else:
        base = os.path.dirname(os.path.abspath(a.images))
        lines = [ln.strip() for ln in open(a.images) if ln.strip() and not ln.startswith("#")]
        paths = [os.path.normpath(os.path.join(base, ln)) for ln in lines]
    m = Model(a.model, a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for path in paths:
        if not path.lower().endswith((".jpg", ".jpeg", ".png")):
            continue
        x = load(path)
        pr = m.probs(x[None])[0]
        cls = int(pr.argmax())
        if not (a.min_p <= pr[cls] < a.max_p):
            continue
        xb = blur(x)
        for seed in seeds:
            t0 = time.time()
            masks = rise_masks(seed, 0, 1000)
            f = m.probs(x[None] * masks[:, None])[:, cls]
            fc = m.probs(x[None] * (1 - masks[:100, None]))[:, cls]
            res = {k: metrics(m, x, xb, s, cls) for k, s in maps(masks, f, fc, 0.3).items()}
            row = {"image": os.path.basename(path), "p": float(pr[cls]), "seed": seed, "maps": res}
            rows.append(row)
            if a.out:
                with open(a.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(row["image"][:30], f"P={pr[cls]:.2f} s={seed} {time.time() - t0:.0f}s",
                  " ".join(f"{k}={v[0]:+.3f}/{v[1]:+.3f}" for k, v in res.items()), flush=True)
    summarise(rows)


def summarise(rows: list[dict]) -> None:
    if not rows:
        print("no image in range", file=sys.stderr)
        return
    keys = list(rows[0]["maps"])
    print(f"MEAN over {len(rows)} (image, seed) pairs, blur / zero:")
    for k in keys:
        b = np.mean([r["maps"][k][0] for r in rows])
        z = np.mean([r["maps"][k][1] for r in rows])
        print(f"  {k:9s} {b:+.4f} / {z:+.4f}")
    for ref in ("rise200", "rise1000"):
        for k in keys:
            if k.startswith("rise"):
                continue
            d0 = [r["maps"][k][0] - r["maps"][ref][0] for r in rows]
            d1 = [r["maps"][k][1] - r["maps"][ref][1] for r in rows]
            print(f"  {k} − {ref}: blur {np.mean(d0):+.4f} ({sum(v > 0 for v in d0)}/{len(d0)}), "
                  f"zero {np.mean(d1):+.4f} ({sum(v > 0 for v in d1)}/{len(d1)})")


if __name__ == "__main__":
    main()
