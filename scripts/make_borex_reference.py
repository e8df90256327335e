#!/usr/bin/env python3
"""An independent reference run of the BOREx loop (SPEC §1, the authors' code
as SPEC describes it) on a tiny ONNX model and a 24×24 grid, written for
tests/borex_reference.rs:

  tests/fixtures/borex_templates.onnx  input N×3×24×24 -> Flatten -> Gemm(1728 -> 3) -> Softmax:
                                       each class's logit is a smooth spatial template · image
  tests/fixtures/borex_reference.json  image, prior, settings, the standard-normal jitter draws,
                                       and per query: (row, col, size), the stored input,
                                       P_c(box kept), P_c(box removed), f, the fitted length
                                       scales, the UCB winner's margin; the final normalised map
  tests/fixtures/borex_reference_fitted.json  the same loop with borex's `fitted` prior mean
                                       (m = a·S̄0 + b, S̄0 the prior's box average, a and b
                                       least squares with a ≥ 0.1, from the third query on)
                                       and the `point` readout (a·S0 + b + the GP's mean at
                                       each pixel as a box centre, averaged over sizes)

The GP is scikit-learn's GaussianProcessRegressor (Matern nu=1.5, anisotropic,
alpha fixed, n_restarts_optimizer=0: every fit starts from the initial length
scales, as the reference restarts each fit), the model runs through
onnxruntime, the map is a brute-force window mean. Nothing comes from borex.
borex replays the same jitter draws (RefineConfig::jitter_draws) and must make
the same queries. Two points follow borex's documented choices where the
authors' code leaves them open: the first query uses the smallest size (the
authors list their sizes ascending), and the length-scale start/bounds and the
jitter are scaled by min(H, W)/224 like the box sizes.

    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn onnx onnxruntime
    /tmp/sk/bin/python scripts/make_borex_reference.py
"""
import json
import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")
H = W = 24
SIZES = [5, 3]  # deliberately unsorted: the first query must take the smallest
CLASS = 0
ITERS = 8
KAPPA = 10.0
GAIN = 10.0
M = 0.1
ALPHA = 0.01
# Settings in the reference's 224-pixel units, scaled to the grid below.
INIT_224 = [60.0, 60.0, 40.0]
BOUNDS_224 = (10.0, 150.0)
JITTER_224 = [1.0, 1.0, 0.5]
SEED = 5


def blob(cy, cx, sigma):
    y, x = np.mgrid[0:H, 0:W]
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))


def model():
    # Class 0 gathers evidence from two blobs (one region hinders it), class 1
    # from the whole image's mass, class 2 is a constant: P_0 depends on where
    # a box is and how large.
    t0 = 0.03 * (0.9 * blob(6, 16, 3.0) + 0.6 * blob(17, 6, 2.5) - 0.3 * blob(16, 17, 3.0))
    t1 = np.full((H, W), 0.003)
    t2 = np.zeros((H, W))
    chan = np.array([1.0, 0.6, 0.4])
    w = np.stack([np.einsum("c,hw->chw", chan, t) for t in (t0, t1, t2)]).reshape(3, -1).astype(np.float32)
    b = np.array([0.0, 0.0, 0.5], np.float32)
    g = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "w", "b"], ["z"], transB=1),
         helper.make_node("Softmax", ["z"], ["logits"], axis=1)],
        "borex_templates",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, H, W])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="borex-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = os.path.join(FIX, "borex_templates.onnx")
    onnx.save(m, path)
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def window_mean(m, s):
    """Mean of m over the in-image part of rows/cols [p-s, p+s] (AvgPool2d(2s+1, 1, s, count_include_pad=False))."""
    out = np.empty_like(m)
    for r in range(H):
        for q in range(W):
            out[r, q] = m[max(r - s, 0):r + s + 1, max(q - s, 0):q + s + 1].mean()
    return out


FIT_MIN_OBS = 3
MIN_SLOPE = 0.1


def affine(cov, f, fitted):
    """Least-squares a, b of f on cov (np.polyfit), a floored at MIN_SLOPE."""
    if not fitted or len(f) < FIT_MIN_OBS:
        return 1.0, 0.0
    a, _ = np.polyfit(cov, f, 1)
    a = max(a, MIN_SLOPE)
    return a, float(np.mean(f) - a * np.mean(cov))


def main():
    warnings.simplefilter("ignore")  # ConvergenceWarning at a bound, as in the authors' code
    sess = model()
    replay(sess, fitted=False, name="borex_reference.json")
    replay(sess, fitted=True, name="borex_reference_fitted.json")


def replay(sess, fitted, name):
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:H, 0:W]
    image = np.stack([0.7 + 0.4 * np.sin(0.3 * x + 0.2 * y + c) + 0.1 * np.cos(0.5 * y - c) for c in range(3)]).astype(np.float32)
    prior = (blob(7, 15, 4.0) + 0.5 * blob(15, 8, 3.0) + 0.05 * rng.standard_normal((H, W))).astype(np.float32)

    scale = min(H, W) / 224.0
    init = [l * scale for l in INIT_224]
    bounds = (BOUNDS_224[0] * scale, BOUNDS_224[1] * scale)
    jitter = np.array(JITTER_224) * scale
    draws = rng.standard_normal((ITERS - 1, 3))

    s0 = prior.astype(np.float64) * M / np.mean(np.abs(prior.astype(np.float64)))
    # Candidates in borex's order (size, row, col); argmax ties would go to the first.
    sr, rr, qr = np.meshgrid(np.arange(len(SIZES)), np.arange(H), np.arange(W), indexing="ij")
    cand = np.column_stack([rr.ravel(), qr.ravel(), np.array(SIZES)[sr.ravel()]]).astype(np.float64)
    # What the mean function is fitted on: S0, or its box average over sizes.
    cov_map = np.mean([window_mean(s0, k) for k in SIZES], axis=0) if fitted else s0
    cand_cov = cov_map[rr.ravel(), qr.ravel()]

    def probs(r, q, s):
        keep = np.zeros((H, W), np.float32)
        keep[max(r - s, 0):min(r + s, H), max(q - s, 0):min(q + s, W)] = 1.0
        batch = np.stack([image * keep, image * (1.0 - keep)]).astype(np.float32)
        p = sess.run(None, {"input": batch})[0]
        return float(p[0, CLASS]), float(p[1, CLASS])

    first = int(np.argmax(cov_map))
    r, q, s = first // W, first % W, min(SIZES)
    stored = [float(r), float(q), float(s)]
    xs, fs, covs, queries = [], [], [], []
    for t in range(ITERS):
        p_in, p_out = probs(r, q, s)
        d = np.float32(p_in) - np.float32(p_out)
        f = float(2.0 * (1.0 / (1.0 + np.exp(-GAIN * float(d))) - 0.5))
        xs.append(stored)
        fs.append(f)
        covs.append(cov_map[r, q])
        a, b = affine(np.array(covs), np.array(fs), fitted)
        ys = np.array(fs) - (a * np.array(covs) + b)
        gp = GaussianProcessRegressor(
            kernel=Matern(length_scale=init, length_scale_bounds=bounds, nu=1.5),
            alpha=ALPHA, normalize_y=False, n_restarts_optimizer=0)
        gp.fit(np.array(xs), ys)
        mu, sd = gp.predict(cand, return_std=True)
        mu = mu + a * cand_cov + b
        ucb = mu + KAPPA * sd
        best = int(np.argmax(ucb))
        margin = float(ucb[best] - np.max(np.delete(ucb, best)))
        queries.append({"row": int(r), "col": int(q), "size": int(s), "stored": stored,
                        "p_inside": p_in, "p_outside": p_out, "f": f,
                        "length_scales": gp.kernel_.length_scale.tolist(), "affine": [a, b],
                        "ucb_max": float(ucb[best]), "ucb_margin": margin})
        if t + 1 < ITERS:
            si, nr, nq = best // (H * W), best // W % H, best % W
            r, q, s = int(nr), int(nq), SIZES[si]
            stored = [float(v) for v in np.array([r, q, s], np.float64) + draws[t] * jitter]
    if fitted:
        # Point readout: the GP at each pixel as a box centre, per size, on a·S0 + b.
        mean_map = a * s0 + b + np.mean([gp.predict(np.column_stack([rr[0].ravel(), qr[0].ravel(), np.full(H * W, float(k))])).reshape(H, W) for k in SIZES], axis=0)
        scaled = a * s0 + b
    else:
        mean_map = np.mean([window_mean(mu[k * H * W:(k + 1) * H * W].reshape(H, W), SIZES[k]) for k in range(len(SIZES))], axis=0)
        scaled = s0

    out = {
        "sklearn": sklearn.__version__, "onnxruntime": ort.__version__,
        "model": "borex_templates.onnx", "class": CLASS,
        "settings": {"iters": ITERS, "sizes": SIZES, "kappa": KAPPA, "gain": GAIN, "prior_mean_abs": M,
                     "alpha": ALPHA, "init_length_scales": INIT_224, "length_scale_bounds": BOUNDS_224,
                     "jitter": JITTER_224},
        "prior_mean": "fitted" if fitted else "scaled", "readout": "point" if fitted else "window",
        "image": image.tolist(), "prior": prior.tolist(), "scaled_prior": scaled.tolist(),
        "jitter_draws": draws.tolist(), "queries": queries, "map": mean_map.tolist(),
    }
    print(name)
    with open(os.path.join(FIX, name), "w") as fh:
        json.dump(out, fh)
    for qy in queries:
        print(qy["row"], qy["col"], qy["size"], f"f={qy['f']:+.4f}", np.round(qy["length_scales"], 3), f"margin={qy['ucb_margin']:.2e}")


if __name__ == "__main__":
    main()
