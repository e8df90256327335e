#!/usr/bin/env python3
"""Reference insertion/deletion curves for src/metrics/causal.rs, computed independently in numpy
(the model itself runs in onnxruntime): tests/fixtures/gap_linear_probs.onnx on a fixed 3×16×16
image and a 16×16 map with many ties.

    /tmp/venv-stats/bin/python scripts/make_causal_fixture.py   # needs numpy, scipy, onnxruntime

The RISE reference's procedure: pixels in descending saliency order (ties: numpy's
flip(argsort(kind="stable")), later pixels first), W pixels per step (here 16, so 17 points);
deletion replaces them with zero; insertion starts from a blurred copy (kernel 11, σ 5: scipy's
gaussian_filter of a delta, applied as a zero-padded 2-D convolution) or from zero and restores
them; score = softmax probability of the class; AUC = (Σ − first/2 − last/2)/(n − 1).
Writes tests/fixtures/causal_numpy.json.
"""
import json
import os

import numpy as np
import onnxruntime as ort
from scipy.ndimage import gaussian_filter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")


def gkern(klen=11, nsig=5):
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    return gaussian_filter(inp, nsig)


def blur(img, k):
    c, h, w = img.shape
    r = k.shape[0] // 2
    pad = np.zeros((c, h + 2 * r, w + 2 * r))
    pad[:, r:r + h, r:r + w] = img
    out = np.zeros((c, h, w))
    for dy in range(k.shape[0]):
        for dx in range(k.shape[1]):
            out += k[dy, dx] * pad[:, dy:dy + h, dx:dx + w]
    return out


def auc(s):
    s = np.asarray(s, float)
    return float((s.sum() - s[0] / 2 - s[-1] / 2) / (len(s) - 1))


def main():
    rng = np.random.default_rng(8)
    c, h, w = 3, 16, 16
    image = rng.normal(0, 1.5, (c, h, w)).round(3)
    smap = rng.integers(0, 12, (h, w)).astype(float)  # many ties
    sess = ort.InferenceSession(os.path.join(FIX, "gap_linear_probs.onnx"))
    probs = lambda x: sess.run(None, {"input": x.astype(np.float32)})[0].astype(float)
    order = np.flip(np.argsort(smap.reshape(-1), kind="stable"))
    step = w
    n = (h * w + step - 1) // step
    cases = []
    for cls in (1, 3):
        for name, start, finish in [("deletion", image, np.zeros_like(image)),
                                    ("insertion_blur", blur(image, gkern()), image),
                                    ("insertion_zero", np.zeros_like(image), image)]:
            batch = []
            for i in range(n + 1):
                x = start.copy().reshape(c, -1)
                idx = order[:i * step]
                x[:, idx] = finish.reshape(c, -1)[:, idx]
                batch.append(x.reshape(c, h, w))
            scores = probs(np.stack(batch))[:, cls]
            cases.append({"class": cls, "curve": name, "scores": scores.tolist(), "auc": auc(scores)})
    out = {"generated_by": "scripts/make_causal_fixture.py", "model": "gap_linear_probs.onnx",
           "image": image.tolist(), "map": smap.tolist(), "cases": cases}
    path = os.path.join(FIX, "causal_numpy.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path)


if __name__ == "__main__":
    main()
