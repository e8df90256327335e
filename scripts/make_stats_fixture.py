#!/usr/bin/env python3
"""Reference values for src/metrics/stats.rs, from scipy and the PyPI `krippendorff` package.

    python3 -m venv /tmp/venv-stats && /tmp/venv-stats/bin/pip install scipy krippendorff numpy
    /tmp/venv-stats/bin/python scripts/make_stats_fixture.py   # writes tests/fixtures/stats_scipy.json

Undefined results (scipy's NaN, krippendorff's ValueError) are written as null.
The rank-biserial effect size has no scipy function: it is computed here from
scipy.stats.rankdata as (W+ − W−)/(W+ + W−) over the non-zero differences.
"""
import json
import os

import krippendorff
import numpy as np
import scipy
from scipy import stats

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
rng = np.random.default_rng(8)


def nan_to_none(v):
    v = float(v)
    return None if np.isnan(v) else v


def rank_biserial(d):
    d = np.asarray(d, float)
    d = d[d != 0]
    if len(d) == 0:
        return None
    r = stats.rankdata(np.abs(d))
    wp, wm = r[d > 0].sum(), r[d < 0].sum()
    return float((wp - wm) / (wp + wm))


def wilcoxon_case(name, d, method):
    d = [float(x) for x in d]
    nz = np.asarray([x for x in d if x != 0])
    ties = len(np.unique(np.abs(nz))) < len(nz)
    if method == "exact":
        # No ties/zeros: scipy's exact null distribution. Ties or zeros with n ≤ 13:
        # method="auto" runs a permutation test over all 2^n sign flips (deterministic).
        assert len(d) <= 13 or not (ties or len(nz) < len(d)), name
        res = stats.wilcoxon(d, method="auto" if (ties or len(nz) < len(d)) else "exact", correction=False)
    else:
        res = stats.wilcoxon(d, method="asymptotic", correction=False)
    out = {"name": name, "diffs": d, "method": method, "statistic": nan_to_none(res.statistic), "p": nan_to_none(res.pvalue),
           "rank_biserial": rank_biserial(d)}
    if method == "approx" and len(nz):
        out["z"] = nan_to_none(res.zstatistic)  # scipy reports −|z| for two-sided
    return out


def main():
    w = []
    w.append(wilcoxon_case("exact_n10_no_ties", rng.normal(0.3, 1, 10).round(6), "exact"))
    w.append(wilcoxon_case("exact_n20_no_ties", rng.normal(0.2, 1, 20).round(6), "exact"))
    w.append(wilcoxon_case("exact_n45_no_ties", rng.normal(0.1, 1, 45).round(6), "exact"))
    w.append(wilcoxon_case("exact_n8_all_positive", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "exact"))
    w.append(wilcoxon_case("exact_n11_ties", [1, -1, 2, 2, -2, 3, 3, 3, 4, -5, 5], "exact"))
    w.append(wilcoxon_case("exact_n12_ties_and_zeros", [0, 0, 1.5, -1.5, 2, 2, 3, -3, 3, 4, 0.5, 0.5], "exact"))
    w.append(wilcoxon_case("approx_n30_ties_zeros", np.concatenate([rng.integers(-3, 6, 27), [0, 0, 0]]), "approx"))
    w.append(wilcoxon_case("approx_n60_no_ties", rng.normal(0.2, 1, 60).round(6), "approx"))
    w.append(wilcoxon_case("approx_n12_ties", [1, -1, 2, 2, -2, 3, 3, 3, 4, -5, 5, 6], "approx"))
    w.append({"name": "all_zero", "diffs": [0.0, 0.0, 0.0], "method": "exact", "statistic": None, "p": None, "rank_biserial": None})

    s = []
    for name, a, b in [
        ("ties", [1, 2, 2, 3, 4, 4, 4, 5], [2, 1, 3, 3, 5, 4, 6, 7]),
        ("random_n30", rng.normal(size=30).round(4), rng.normal(size=30).round(4)),
        ("negative", [1, 2, 3, 4, 5, 6], [6, 4, 5, 3, 2, 1]),
        ("constant", [1, 1, 1, 1], [1, 2, 3, 4]),
    ]:
        rho = stats.spearmanr(a, b).statistic
        s.append({"name": name, "a": [float(x) for x in a], "b": [float(x) for x in b], "rho": nan_to_none(rho)})

    def alpha_case(name, data):
        arr = np.array([[np.nan if v is None else v for v in row] for row in data], float)
        try:
            a = float(krippendorff.alpha(reliability_data=arr, level_of_measurement="ordinal"))
            a = None if np.isnan(a) else a
        except ValueError:
            a = None
        return {"name": name, "data": [[None if np.isnan(v) else float(v) for v in row] for row in arr], "alpha": a}

    k = []
    # The krippendorff package's own documentation example (ordinal α ≈ 0.815).
    k.append(alpha_case("package_doc_example", [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
                                                  [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
                                                  [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
                                                  [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]))
    # Mosaics as raters, methods as units: each rater ranks 5 methods (average ranks for ties), some missing.
    raters = []
    for i in range(12):
        scores = rng.normal(np.arange(5) * 0.5, 1).round(1)
        r = stats.rankdata(scores)
        row = [float(x) for x in r]
        if i % 4 == 1:
            row[rng.integers(0, 5)] = None
        raters.append(row)
    k.append(alpha_case("ranks_with_ties_and_missing", raters))
    k.append(alpha_case("perfect_agreement", [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]))
    k.append(alpha_case("one_pairable_unit", [[1, 2, None], [1, None, 3]]))
    k.append(alpha_case("single_value_undefined", [[2, 2, 2], [2, 2, None]]))
    k.append(alpha_case("no_pairable_unit_undefined", [[1, None], [None, 2]]))

    out = {"generated_by": "scripts/make_stats_fixture.py", "scipy": scipy.__version__, "numpy": np.__version__,
           "wilcoxon": w, "spearman": s, "krippendorff_ordinal": k}
    path = os.path.join(ROOT, "tests", "fixtures", "stats_scipy.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
