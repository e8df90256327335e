#!/usr/bin/env python3
"""Reference solutions of the l_p-ball ∩ box linear minimisation oracle.

For random small instances (g, x, eps, p) solve
    min <g, d>  s.t.  sum |d_i|^p <= eps^p,  -x <= d <= 1 - x
with scipy's generic constrained solver (SLSQP, several starts, best kept),
knowing nothing of the closed form. Instances include a ball larger than the
box (every coordinate at a face), pixels at 0 or 1 (active box faces) and zero
gradients. Writes tests/fixtures/lmo_scipy.json, read by tests/counterfactual.rs.

Needs numpy and scipy (a venv of its own: python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy scipy).
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

rng = np.random.default_rng(11)


def solve(g, x, eps, p):
    d = len(g)
    lo, hi = -x, 1.0 - x
    cons = [{
        "type": "ineq",
        "fun": lambda v: eps ** p - np.sum(np.abs(v) ** p),
        "jac": lambda v: -p * np.abs(v) ** (p - 1) * np.sign(v),
    }]
    best = None
    for start in range(8):
        v0 = np.zeros(d) if start == 0 else rng.uniform(lo, hi) * 0.1
        r = minimize(lambda v: g @ v, v0, jac=lambda v: g, bounds=list(zip(lo, hi)),
                     constraints=cons, method="SLSQP", options={"ftol": 1e-14, "maxiter": 2000})
        v = np.clip(r.x, lo, hi)
        # Feasibility first: scale back into the ball if the solver overshot.
        n = np.sum(np.abs(v) ** p) ** (1 / p)
        if n > eps:
            v *= eps / n
        if best is None or g @ v < g @ best - 1e-15:
            best = v
    return best


cases = []
for k in range(40):
    d = int(rng.integers(3, 13))
    p = [1.5, 2.0, 1.5, 3.0, 1.2][k % 5]
    g = rng.normal(size=d)
    x = rng.uniform(0, 1, size=d)
    if k % 3 == 0:  # pixels on the box faces
        x[rng.random(d) < 0.4] = 0.0
        x[rng.random(d) < 0.3] = 1.0
    if k % 7 == 0:
        g[rng.integers(0, d)] = 0.0
    # eps from small (ball inside the box) to large (box faces active, or the whole box).
    eps = float([0.05, 0.3, 0.8, 1.5, 5.0][k % 5] * rng.uniform(0.5, 1.5))
    if k % 10 == 9:
        eps = 50.0
    delta = solve(g, x, eps, p)
    cases.append({"grad": g.tolist(), "x": x.tolist(), "eps": eps, "p": p,
                  "delta": delta.tolist(), "objective": float(g @ delta)})

out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lmo_scipy.json"
out.write_text(json.dumps({"generator": "scripts/make_lmo_fixture.py (scipy SLSQP)", "cases": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} cases to {out}", file=sys.stderr)
