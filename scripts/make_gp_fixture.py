#!/usr/bin/env python3
"""Write tests/fixtures/gp_sklearn.json: scikit-learn's GaussianProcessRegressor
(Matern nu=1.5, length scales [12, 12, 10] within [1, 20], alpha 0.01: the BOREx
reference's GP) fitted on BOREx-like data, with its fitted length scales, log
marginal likelihood and posterior mean/std at test points (on, near and away
from the data; the interior cases end with every length scale inside the bounds). borex's gp module must
agree (tests/gp_sklearn.rs). Needs scikit-learn (not part of the setup):
    python -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn
    /tmp/sk/bin/python scripts/make_gp_fixture.py
"""
import json
import warnings
import os

import numpy as np
import sklearn
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "gp_sklearn.json")
SIZES = [30, 45, 60, 75]


def case(seed, n, scale, freq):
    rng = np.random.default_rng(seed)
    # Observations clustered like BO queries: around a few centres, plus jitter.
    centres = rng.uniform(40, 184, size=(3, 2))
    pick = rng.integers(0, 3, size=n)
    rq = centres[pick] + rng.normal(0, scale, size=(n, 2))
    s = rng.choice(SIZES, size=n) + rng.normal(0, 0.5, size=n)
    x = np.column_stack([rq, s])
    f = np.tanh(np.sin(x[:, 0] / freq) + np.cos(x[:, 1] / (1.3 * freq)) - (x[:, 2] - 50) / 40.0)
    y = f + rng.normal(0, 0.05, size=n)
    gp = GaussianProcessRegressor(
        kernel=Matern(length_scale=[12.0, 12.0, 10.0], length_scale_bounds=(1.0, 20.0), nu=1.5),
        alpha=0.01, normalize_y=False, n_restarts_optimizer=0)
    gp.fit(x, y)
    xt = np.column_stack([rng.uniform(0, 224, 30), rng.uniform(0, 224, 30), rng.choice(SIZES, 30)])
    xt[:5] = x[:5]  # some test points on the data
    mean, std = gp.predict(xt, return_std=True)
    return {
        "seed": seed, "x": x.tolist(), "y": y.tolist(),
        "length_scales": gp.kernel_.length_scale.tolist(),
        "log_marginal_likelihood": float(gp.log_marginal_likelihood_value_),
        "test_x": xt.tolist(), "mean": mean.tolist(), "std": std.tolist(),
    }


def interior_case(seed, n, freq):
    """A function that varies along all three axes at scales of a few pixels, so
    every fitted length scale ends inside the bounds; test points are the data
    nudged by less than a pixel, where the posterior is most sensitive."""
    rng = np.random.default_rng(seed)
    rq = rng.uniform(60, 140, size=(n, 2))
    s = rng.uniform(30, 75, size=n)
    x = np.column_stack([rq, s])
    f = np.sin(x[:, 0] / freq) + np.cos(x[:, 1] / (1.2 * freq)) + 0.8 * np.sin(x[:, 2] / (0.8 * freq))
    y = f + rng.normal(0, 0.05, size=n)
    gp = GaussianProcessRegressor(
        kernel=Matern(length_scale=[12.0, 12.0, 10.0], length_scale_bounds=(1.0, 20.0), nu=1.5),
        alpha=0.01, normalize_y=False, n_restarts_optimizer=0)
    gp.fit(x, y)
    xt = x[:20] + rng.normal(0, 0.5, size=(20, 3))
    mean, std = gp.predict(xt, return_std=True)
    ls = gp.kernel_.length_scale
    assert np.all((ls > 1.01) & (ls < 19.9)), ls
    return {
        "seed": seed, "x": x.tolist(), "y": y.tolist(),
        "length_scales": ls.tolist(),
        "log_marginal_likelihood": float(gp.log_marginal_likelihood_value_),
        "test_x": xt.tolist(), "mean": mean.tolist(), "std": std.tolist(),
    }


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # length scales at a bound are expected for some cases
    cases = [case(*c) for c in [(1, 10, 12.0, 17.0), (2, 25, 10.0, 4.0), (3, 50, 15.0, 5.0), (4, 25, 6.0, 3.0), (5, 40, 25.0, 8.0), (6, 50, 20.0, 6.0)]]
    cases += [interior_case(*c) for c in [(7, 50, 6.0), (14, 30, 5.0), (12, 50, 4.0), (18, 30, 4.0)]]
    with open(OUT, "w") as fh:
        json.dump({"sklearn": sklearn.__version__, "cases": cases}, fh, indent=1)
    for c in cases:
        print(len(c["x"]), c["length_scales"], c["log_marginal_likelihood"])
