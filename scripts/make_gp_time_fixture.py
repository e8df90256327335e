#!/usr/bin/env python3
"""Write tests/fixtures/gp_sklearn_time.json: the clip-mode GP (5-D inputs:
row, column, box half-width, centre frame·unit, temporal half-width·unit; an
anisotropic Matern nu=1.5 with one length scale per axis) fitted by
scikit-learn's GaussianProcessRegressor, with its posterior mean and std at
every candidate of a small space-time grid, and the clip map computed here in
numpy by brute force: per plane (size s, frame t, span tau) the mean of the
posterior mean (prior added) over the in-image window of centres
[p - s, p + s] around each pixel, then at frame f the mean over centre frames
[f - tau, f + tau] inside the clip, then the mean over sizes and spans.
borex's CPU session and its GPU twin must agree (tests/gp_time.rs). Needs
scikit-learn (not part of the setup):
    python -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn
    /tmp/sk/bin/python scripts/make_gp_time_fixture.py
"""
import json
import os
import warnings

import numpy as np
import sklearn
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "gp_sklearn_time.json")
H, W, SIZES, FRAMES, SPANS, UNIT = 10, 12, [2, 3], 5, [0, 2], 4.0
INIT, BOUNDS = [12.0, 12.0, 10.0, 12.0, 12.0], (1.0, 20.0)


def candidates():
    """Every candidate in borex's index order: plane = (t·spans + span)·sizes + size, then row, column."""
    out = []
    for t in range(FRAMES):
        for sp in SPANS:
            for s in SIZES:
                for r in range(H):
                    for q in range(W):
                        out.append([r, q, s, t * UNIT, sp * UNIT])
    return np.array(out, dtype=np.float64)


def clip_map(mu):
    planes = mu.reshape(FRAMES, len(SPANS), len(SIZES), H, W)
    out = np.zeros((FRAMES, H, W))
    for f in range(FRAMES):
        for spi, sp in enumerate(SPANS):
            ts = [t for t in range(FRAMES) if abs(t - f) <= sp]
            for si, s in enumerate(SIZES):
                for r in range(H):
                    for q in range(W):
                        acc = 0.0
                        for t in ts:
                            win = planes[t, spi, si, max(0, r - s):r + s + 1, max(0, q - s):q + s + 1]
                            acc += win.mean()
                        out[f, r, q] += acc / len(ts)
    return out / (len(SPANS) * len(SIZES))


def case(seed, n, interior):
    rng = np.random.default_rng(seed)
    cand = candidates()
    x = cand[rng.integers(0, len(cand), n)] + rng.normal(0, [1.0, 1.0, 0.5, 0.5, 0.5], size=(n, 5))
    t = x[:, 3] / UNIT
    if interior:
        f = np.sin(x[:, 0] / 2.5) + np.cos(x[:, 1] / 3.0) + 0.5 * np.sin(x[:, 2]) + np.sin(t / 1.2) + 0.3 * np.cos(x[:, 4] / 5.0)
    else:
        f = np.tanh(np.sin(x[:, 0] / 4.0) - (t - 2.0) ** 2 / 3.0 + 0.2 * x[:, 2])
    y = f + rng.normal(0, 0.05, size=n)
    gp = GaussianProcessRegressor(kernel=Matern(length_scale=INIT, length_scale_bounds=BOUNDS, nu=1.5),
                                  alpha=0.01, normalize_y=False, n_restarts_optimizer=0)
    gp.fit(x, y)
    mean, std = gp.predict(cand, return_std=True)
    prior = rng.normal(0, 0.1, size=(FRAMES, H, W))
    # The GP mean is the prior at each candidate's (centre frame, row, column).
    mu = mean + np.tile(prior.reshape(FRAMES, 1, H * W), (1, len(SPANS) * len(SIZES), 1)).ravel()
    return {
        "seed": seed, "x": x.tolist(), "y": y.tolist(),
        "length_scales": gp.kernel_.length_scale.tolist(),
        "log_marginal_likelihood": float(gp.log_marginal_likelihood_value_),
        "prior": prior.ravel().tolist(), "mean": mean.tolist(), "std": std.tolist(),
        "map": clip_map(mu).ravel().tolist(),
    }


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # length scales at a bound are expected for some cases
    cases = [case(1, 12, False), case(2, 30, True), case(3, 45, False), case(4, 40, True)]
    grid = {"height": H, "width": W, "sizes": SIZES, "frames": FRAMES, "spans": SPANS, "unit": UNIT,
            "init": INIT, "bounds": list(BOUNDS), "alpha": 0.01}
    with open(OUT, "w") as fh:
        json.dump({"sklearn": sklearn.__version__, "grid": grid, "cases": cases}, fh)
    for c in cases:
        print(len(c["x"]), np.round(c["length_scales"], 3), c["log_marginal_likelihood"])
