#!/usr/bin/env python3
"""docs/quality.md (its summary first) and the README's one-line quality claim, from `borex eval` runs.

The study (issues #18 and #24): two ways to spend 100 more model evaluations on a RISE N=100 prior — RISE
continued on the complements of the prior's own masks (`antithetic`, the default since this study) and the
box refinement (`matched`, 50 BO queries, the default before it) — against the prior and against RISE
continued from the prior's own masks to the same total evaluations (`equal-budget`, RISE-200) and to 1000
masks, on both metrics (insertion − deletion with insertion from blur and from zero), overall and by the
model's top-1 confidence, confident images first:

  eval-set:  the evaluation set of scripts/eval_set.py (44 photographs)
  check:     the opencv-doc check set (scripts/eval_set.py --check, 27 photographs), never used to choose a
             setting
  samples:   the nine sample images of scripts/setup.sh, a group of their own

Confidence groups are interleaved in each study's manifest (confident, middle, hard, confident, …) so that a
partial run covers every group. Each study runs one `borex eval` per seed (out/quality/STUDY/seedS; a run
resumes, skipping finished maps), under `nice -n 19`. The tables come from `borex eval --summary-only` over
the seeds' maps put together (out/quality/STUDY/all, hard links): it computes nothing, and images whose maps
are not all there are named as not run. With --summarise-only no run is started, which is how a study
stopped at a deadline is reported. Paths in the generated text are relative to the repository.

    .venv/bin/python scripts/eval_set.py --check     # once: the evaluation and check sets
    .venv/bin/python scripts/quality_table.py [--seeds 3] [--studies eval-set check] [--summarise-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SET = os.path.join(".borex", "eval-set")  # relative to ROOT: the records name images by these paths
# study: (image folder under .borex, what the text calls it)
STUDIES = {"eval-set": ("eval-set", "the evaluation set"), "check": ("opencv-check", "the opencv-doc check set"),
           "samples": ("eval-set", "the sample images")}
METHOD, VARIANT = "rise-fast", "antithetic"  # VARIANT: the default refinement of a RISE prior
VARIANTS = (VARIANT, "matched")
ARGS = ["--methods", METHOD, "--refine", "--objectives", ",".join(VARIANTS), "--baselines", "equal-budget,1000"]
MAPS = [(METHOD, "prior.json"), *((METHOD, f"{v}.json") for v in VARIANTS), (f"{METHOD}pmasks_200", "prior.json"),
        (f"{METHOD}pmasks_1000", "prior.json")]
GROUP_NAMES = {"P ≥ 0.5": "confident (P ≥ 0.5)", "0.2 ≤ P < 0.5": "middle (0.2 ≤ P < 0.5)", "P < 0.2": "hard (P < 0.2)"}


def log(msg: str) -> None:
    print(f"[quality] {msg}", file=sys.stderr)


def manifest_lines(path: str) -> list[str]:
    with open(os.path.join(ROOT, path)) as f:
        return [x.strip() for x in f if x.strip() and not x.startswith("#")]


def write_text(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def by_group_manifest(borex: str, folder: str = "eval-set") -> str:
    """A set's manifest with the confidence groups interleaved (confident, middle, hard, confident, …)."""
    where = os.path.join(".borex", folder)
    names = manifest_lines(os.path.join(where, "manifest.txt"))
    res = subprocess.run([borex, "--device", "cpu", "-q", "classify", "--json", "--top", "1",
                          *[os.path.join(where, n) for n in names]], cwd=ROOT, check=True, capture_output=True,
                         text=True)
    groups: list[list[str]] = [[], [], []]
    for n, r in zip(names, json.loads(res.stdout)):
        p = float(r["predictions"][0]["probability"])
        groups[0 if p >= 0.5 else 1 if p >= 0.2 else 2].append(n)
    order = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
    path = os.path.join(where, "by-group.txt")
    write_text(os.path.join(ROOT, path),
               f"# {folder}, confidence groups interleaved (scripts/quality_table.py)\n"
               + "".join(n + "\n" for n in order))
    return path


def study_manifest(borex: str, study: str) -> str:
    return os.path.join(SET, "samples.txt") if study == "samples" else by_group_manifest(borex, STUDIES[study][0])


def key_of(line: str) -> str:
    """`borex eval`'s key of an image (its file stem, file-safe); the sets have no clashing stems."""
    stem = os.path.splitext(os.path.basename(line))[0]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


def seed_parts(base: str, seed: int) -> list[str]:
    """A seed's run folders: base/seedS and its parts base/seedS-NAME (one manifest each, e.g. the confident
    images first), whose images are disjoint."""
    folder = os.path.join(ROOT, base)
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [os.path.join(base, n) for n in names if n == f"seed{seed}" or n.startswith(f"seed{seed}-")]


def finished(base: str, lines: list[str], seed: int) -> set[str]:
    """Keys of the images whose maps (prior, both refinements, both baselines) are all in one of a seed's runs."""
    return {key_of(x) for x in lines for out in seed_parts(base, seed)
            if all(os.path.exists(os.path.join(ROOT, out, "runs", key_of(x), m, f"seed{seed}", f)) for m, f in MAPS)}


def link_new(src: str, dst: str) -> None:
    """Hard-link a file unless an earlier part already gave it (a partly run image)."""
    if not os.path.exists(dst):
        os.link(src, dst)


def gather_runs(study: str, lines: list[str], seeds: list[int]) -> tuple[str, list[int]]:
    """One folder with the maps of every seed's runs (hard links), for a summary over seeds: the
    seeds whose runs have finished every image the first seed's runs have."""
    base = os.path.join("out", "quality", study)
    first = finished(base, lines, seeds[0])
    use = [s for s in seeds if seed_parts(base, s) and first <= finished(base, lines, s)] or seeds[:1]
    out = os.path.join(base, "all")
    shutil.rmtree(os.path.join(ROOT, out), ignore_errors=True)
    for s in use:
        for part in seed_parts(base, s):
            runs = os.path.join(ROOT, part, "runs")
            if os.path.isdir(runs):
                shutil.copytree(runs, os.path.join(ROOT, out, "runs"), copy_function=link_new, dirs_exist_ok=True)
    return out, use


def run_eval(borex: str, manifest: str, seeds: list[int], out: str, summary_only: bool = False) -> None:
    cmd = ["nice", "-n", "19", borex, "--device", "cpu", "-q", "eval", "--manifest", manifest, *ARGS,
           "--seeds", ",".join(map(str, seeds)), "-o", out, *(["--summary-only"] if summary_only else [])]
    log("+ " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)


def plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def fmt(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def p_text(p: float | None) -> str:
    if p is None:
        return "p undefined"
    if p < 1e-3:
        m, e = f"{p:.0e}".split("e")
        return f"p = {m}·10^{int(e)}"
    return f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def bar_row(summary: dict, group: str, variant: str = VARIANT) -> dict | None:
    for r in summary["bar"]:
        if r["method"] == METHOD and r["variant"] == variant and r["group"] == group:
            return r
    return None


def bar_verdict(summary: dict, variant: str = VARIANT) -> str:
    """The bar's four points, met or not, overall and for the hard group."""
    every, hard = bar_row(summary, "all", variant), bar_row(summary, "P < 0.2", variant)
    if every is None or not every["gain"]:
        return ""

    def yes(b: bool) -> str:
        return "met" if b else "not met"

    eb, fx = every.get("equal_budget"), every.get("fixed")
    items = [f"1. beats its prior with p < 0.01 on both metrics: {yes(every['beats_prior'])}",
             f"2. gain ≥ equal-budget RISE-{eb['masks']}: {yes(eb['met'])}" if eb else "2. no equal-budget baseline",
             f"3. gain ≥ RISE-{fx['masks']}: {yes(fx['met'])}" if fx else "3. no fixed-count baseline",
             (f"4. hard group (P < 0.2, {plural(hard['images'], 'image')}) not worse on average: "
              f"{yes(hard['not_worse'])}"
              if hard and hard["images"] else "4. no hard image finished")]
    return "; ".join(items)


def group_of(p: float) -> str:
    return "P ≥ 0.5" if p >= 0.5 else "0.2 ≤ P < 0.5" if p >= 0.2 else "P < 0.2"


Rows = dict[tuple[str, str], dict[str, tuple[float, float]]]  # (key, seed) -> map -> (blur, zero)


def read_rows(out: str) -> tuple[Rows, dict[str, str]]:
    """Per (image, seed) the two metrics of every map of METHOD and its baselines; each image's group."""
    with open(os.path.join(ROOT, out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    per: Rows = {}
    group: dict[str, str] = {}
    for r in rows:
        name = r["map"] if r["method"] == METHOD else f"{r['method']}:{r['map']}"
        per.setdefault((r["key"], r["seed"]), {})[name] = (float(r["ins_del_blur"]), float(r["ins_del_zero"]))
        if r["method"] == METHOD:
            group[r["key"]] = group_of(float(r["probability"]))
    return per, group


def paired(per: Rows, group: dict[str, str], a: str, b: str, only: str = "all") -> list[tuple[float, float]]:
    """Map a − map b on (blur, zero) per (image, seed) of a group ('all': every image)."""
    return [(m[a][0] - m[b][0], m[a][1] - m[b][1]) for (k, _), m in sorted(per.items())
            if a in m and b in m and (only == "all" or group.get(k) == only)]


def diff_text(d: list[tuple[float, float]]) -> str:
    """'+0.010 (7/12) / −0.003 (5/12)': mean difference and pairs where the first map is better."""
    if not d:
        return "–"
    return " / ".join(f"{fmt(sum(x[i] for x in d) / len(d))} ({sum(x[i] > 0 for x in d)}/{len(d)})" for i in (0, 1))


def losses(per: Rows, variant: str) -> list[tuple[str, float, float]]:
    """(image, mean blur-start gain, mean zero-start gain) of the images where a refinement loses on both."""
    by_key: dict[str, list[tuple[float, float]]] = {}
    for (k, _), m in per.items():
        if f"refined:{variant}" in m and "prior" in m:
            r, p = m[f"refined:{variant}"], m["prior"]
            by_key.setdefault(k, []).append((r[0] - p[0], r[1] - p[1]))
    out = [(k, sum(g[0] for g in gs) / len(gs), sum(g[1] for g in gs) / len(gs)) for k, gs in by_key.items()]
    return sorted([x for x in out if x[1] < 0 and x[2] < 0], key=lambda x: x[1] + x[2])
def wrap(text: str, width: int = 76) -> str:
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    return "\n".join([*lines, cur])




class Study:
    """One study's finished runs: its summary.json, per-pair values and the images not run."""

    def __init__(self, name: str, summary: dict, out: str, missing: list[str], seeds: list[int]) -> None:
        self.name, self.summary, self.out, self.missing, self.seeds = name, summary, out, missing, seeds
        self.label = STUDIES[name][1]
        self.per, self.group = read_rows(out)

    def images(self, group: str = "all") -> int:
        row = bar_row(self.summary, group)
        return row["images"] if row else 0

    def seeds_text(self) -> str:
        return f"seed{'s' if len(self.seeds) > 1 else ''} {', '.join(map(str, self.seeds))}"

    def minus(self, variant: str, baseline: str, group: str) -> list[tuple[float, float]]:
        return paired(self.per, self.group, f"refined:{variant}", baseline, group)


EQUAL, FIXED = f"{METHOD}+masks=200:prior", f"{METHOD}+masks=1000:prior"


def met(d: list[tuple[float, float]]) -> bool:
    return bool(d) and all(sum(x[i] for x in d) >= 0 for i in (0, 1))


def bar_cells(study: Study, variant: str, group: str) -> list[str]:
    """The bar's three points for one design and group: gain over the prior with p, − RISE-200, − RISE-1000."""
    row = bar_row(study.summary, group, variant)
    if row is None or not row["images"]:
        return ["–", "–", "–"]
    first = ("**met**" if row["beats_prior"] else "not met") + ": " + " / ".join(
        f"{fmt(g['mean_gain'])} ({g['wins']}/{g['n']}, {p_text(g['p'])})" for g in row["gain"])
    out = [first]
    for base in (EQUAL, FIXED):
        d = study.minus(variant, base, group)
        out.append(("**met**" if met(d) else "not met") + ": " + diff_text(d))
    return out


def bar_table(studies: list[Study]) -> list[str]:
    lines = ["| set | group | images | design | 1. gain over the prior (better pairs, p) | 2. − RISE-200 (better) "
             "| 3. − RISE-1000 (better) |", "|---|---|---|---|---|---|---|"]
    for s in studies:
        for group in ("P ≥ 0.5", "0.2 ≤ P < 0.5", "P < 0.2", "all"):
            n = s.images(group)
            if not n:
                continue
            for v in VARIANTS:
                lines.append(f"| {s.name} | {GROUP_NAMES.get(group, group)} | {n} | `{v}` | "
                             + " | ".join(bar_cells(s, v, group)) + " |")
    return lines


def design_table(studies: list[Study]) -> list[str]:
    other = VARIANTS[1]
    lines = [f"| set | group | images | `{other}` − `{VARIANT}`, blur / zero (`{other}` better) |", "|---|---|---|---|"]
    for s in studies:
        for group in ("P ≥ 0.5", "0.2 ≤ P < 0.5", "P < 0.2", "all"):
            d = paired(s.per, s.group, f"refined:{other}", f"refined:{VARIANT}", group)
            if d:
                lines.append(f"| {s.name} | {GROUP_NAMES.get(group, group)} | {s.images(group)} | {diff_text(d)} |")
    return lines


def confident_claim(studies: list[Study]) -> str:
    """Confident images first (issue #24): each design against RISE-200 and RISE-1000, per set."""
    bits = []
    for s in studies:
        n = s.images("P ≥ 0.5")
        if not n:
            continue
        per_design = []
        for v in VARIANTS:
            eq, fx = s.minus(v, EQUAL, "P ≥ 0.5"), s.minus(v, FIXED, "P ≥ 0.5")
            per_design.append(f"`{v}` − RISE-200 {diff_text(eq)}, − RISE-1000 {diff_text(fx)}")
        bits.append(f"on {s.label}'s {plural(n, 'confident photograph')} ({s.seeds_text()}): " + "; ".join(per_design))
    if not bits:
        return ""
    return ("**Confident images (top-1 P ≥ 0.5) first.** The two ways to spend 100 more evaluations on the RISE-100 "
            "prior, against RISE continued from the prior's masks to the same 200 evaluations and to 1000, on "
            "insertion − deletion from blur (the default metric) / from zero, mean difference (better pairs): "
            + "; ".join(bits) + ".")


def default_verdict(studies: list[Study]) -> str:
    """Issue #24's rule in words: is the default ≥ RISE-200 on both metrics in every confident group of ≥ 10?"""
    groups = [(s, s.minus(VARIANT, EQUAL, "P ≥ 0.5")) for s in studies if s.images("P ≥ 0.5") >= 10]
    if not groups:
        return ""
    if all(met(d) for _, d in groups):
        return (f"The default (`{VARIANT}`) is at least RISE continued to the same evaluations on both metrics in "
                "every confident group of 10 or more images.")
    lost = ", ".join(f"{s.name} ({diff_text(d)})" for s, d in groups if not met(d))
    return (f"The default (`{VARIANT}`) is below RISE continued to the same evaluations on a metric for confident "
            f"images on {lost}: for a confident class `borex refine` says so and names RISE continued "
            "(`borex explain --method rise-fast+masks=N`).")


def loss_text(studies: list[Study]) -> str:
    bits = []
    for s in studies:
        for v in VARIANTS:
            lost = losses(s.per, v)
            if lost:
                bits.append(f"`{v}` on {s.name}: " + ", ".join(f"{k} ({fmt(b)} / {fmt(z)})" for k, b, z in lost[:4])
                            + (f" and {len(lost) - 4} more" if len(lost) > 4 else ""))
    return ("Where each design is worse than its prior on both metrics (blur / zero): " + "; ".join(bits) + "."
            if bits else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3])
    ap.add_argument("--studies", nargs="+", default=["eval-set", "check"], choices=list(STUDIES))
    ap.add_argument("--summarise-only", action="store_true", help="compute nothing; report the finished images")
    ap.add_argument("--borex", default=os.path.join("target", "release", "borex"))
    ap.add_argument("--readme", default="README.md")
    a = ap.parse_args()
    borex = a.borex if os.path.isabs(a.borex) else os.path.join(ROOT, a.borex)
    for study in a.studies:
        if not os.path.exists(os.path.join(ROOT, ".borex", STUDIES[study][0], "manifest.txt")):
            sys.exit(f"quality_table: no {STUDIES[study][1]}: run .venv/bin/python scripts/eval_set.py --check first")
    studies: list[Study] = []
    for study in a.studies:
        manifest = study_manifest(borex, study)
        lines = manifest_lines(manifest)
        if not a.summarise_only:
            for seed in a.seeds:  # one run (and folder) per seed
                run_eval(borex, manifest, [seed], os.path.join("out", "quality", study, f"seed{seed}"))
        out, seeds = gather_runs(study, lines, a.seeds)
        run_eval(borex, manifest, seeds, out, summary_only=True)  # computes nothing: the tables
        with open(os.path.join(ROOT, out, "summary.json")) as f:
            summary = json.load(f)
        missing = [key_of(str(p)) for p in summary["not_run"]]
        if len(missing) == len(lines):
            log(f"{study}: no image has every map for seeds {seeds}; left out")
            continue
        studies.append(Study(study, summary, out, missing, seeds))
    if not studies:
        sys.exit("quality_table: nothing finished to report")
    write_quality_md(studies)
    readme_claim(os.path.join(ROOT, a.readme), studies)


def write_quality_md(studies: list[Study]) -> None:
    docs = os.path.join(ROOT, "docs")
    plots = os.path.join(docs, "quality")
    os.makedirs(plots, exist_ok=True)
    parts = []
    for s in studies:
        with open(os.path.join(ROOT, s.out, "summary.md")) as f:
            md = f.read()
        for p in os.listdir(os.path.join(ROOT, s.out, "plots")):
            shutil.copy(os.path.join(ROOT, s.out, "plots", p), os.path.join(plots, f"{s.name}_{p}"))
        md = md.replace("](plots/", f"](quality/{s.name}_").replace("`results.csv`", f"`results.csv` of `{s.out}`")
        md = md.replace("# borex eval:", f"## {s.name} study:", 1).replace("\n## ", "\n### ")
        md = md.replace("\n### " + s.name, "\n## " + s.name, 1)
        not_run = (f"\n\nNot run before the deadline ({len(s.missing)}): {', '.join(s.missing)}.\n"
                   if s.missing else "\n")
        parts.append(f"{md.rstrip()}{not_run}")
    sets = "; ".join(f"{s.name}: {plural(s.images(), 'image')} of {s.label} ({s.seeds_text()})"
                     + (f", {len(s.missing)} not run before the deadline" if s.missing else "") for s in studies)
    head = ["<!-- generated by scripts/quality_table.py from `borex eval` summaries; do not edit -->", "",
            "# Quality: does refinement make maps better?", "", INTRO, "",
            " ".join(x for x in (confident_claim(studies), default_verdict(studies)) if x), "",
            ("The designs: the default `borex refine` (RISE N=100 prior, top-1 class) spends its 100 more model "
             "evaluations on RISE continued over the complements of the prior's own masks (objective `antithetic`; "
             "`borex explain --method rise-fast+antithetic=100` gives the same map; docs/quality-designs.md); "
             "`--objective matched` spends them on 50 BOREx box queries (the default before this study, and still "
             "the default for any other prior). Both against their prior, against RISE continued from the prior's "
             "own masks to the same total evaluations (RISE-200, `--baselines equal-budget`) and to 1000 masks "
             "(nine times the extra evaluations), over (image, seed) pairs, by the model's top-1 probability P. "
             f"Sets: {sets}; images: docs/eval-set.md. Machine: 2-core VM shared with other jobs, `--device cpu`."),
            "", "## The bar, per set and confidence group", "",
            ("Issue #24's bar: 1. refined beats its prior on both metrics with paired Wilcoxon p < 0.01; 2. refined "
             "≥ RISE continued to the same evaluations on both metrics (mean of refined − RISE-200 ≥ 0) in every "
             "group of 10 or more images; 3. (moonshot) the same against RISE-1000. Cells: blur / zero."), "",
            *bar_table(studies), "", "## The two designs against each other", "", *design_table(studies), "",
            loss_text(studies), "", "## Earlier runs", "", EARLIER, "", SAMPLES_BEFORE, "",
            ("Earlier studies on the nine sample images only (objectives, prior means, box sizes, budget and "
             "occlusion; issue #8) are kept, not regenerated, in docs/quality-samples.md; designs screened for issues "
             "#18 and #24 (a relative gain, a gain of 3, the detail readout, the budget split, the antithetic "
             "continuation) in docs/quality-designs.md."), ""]
    write_text(os.path.join(docs, "quality.md"), "\n".join(head) + "\n" + "\n\n".join(parts))
    log("wrote docs/quality.md")


# The evaluation set over seeds 0–2 (issue #18's study, matched only; git history of this file).
EARLIER = ("The evaluation set × seeds 0, 1, 2 (issue #18, 132 pairs, the default only): the default refinement "
           "gained +0.025 blur-start (78/132, p = 0.0055) and +0.054 zero-start (96/132, p = 5·10^-9) over its "
           "prior; RISE-200 +0.019 / +0.022 and RISE-1000 +0.052 / +0.053 (blur / zero). Its confident group "
           "(12 images): refined +0.031 / +0.071, RISE-200 +0.024 / +0.026, RISE-1000 +0.086 / +0.089.")

# The sample group when this study did not run on it: issue #8's figures (docs/quality-samples.md).
SAMPLES_BEFORE = ("The sample images (issue #8, 9 images × seeds 0–4, docs/quality-samples.md): "
                  "the default refinement gained +0.015 blur-start (22/45 pairs, p = 0.75) and +0.091 zero-start "
                  "(34/45, p = 4·10^-5); RISE continued to 200 masks was better than the prior on 30/45 pairs "
                  "blur-start, RISE-1000 on 33/45 (+0.049) blur-start and gained +0.091 zero-start (35/45).")

# What "better" means, before the summary's numbers.
INTRO = ("**\"Better\" means a higher insertion − deletion AUC for the explained class** (RISE reference, 224 "
         "pixels per step; deletion to zero); the default metric inserts onto a blurred copy, the BOREx code's "
         "metric onto zero, and `borex eval` reports both.")


README_CLAIM = ("<!-- quality claim: written by scripts/quality_table.py (docs/quality.md) -->\n",
                "\n<!-- /quality claim -->")
README_LEAD = ("<!-- quality lead: written by scripts/quality_table.py -->", "<!-- /quality lead -->")


def blur_zero(d: list[tuple[float, float]]) -> str:
    return f"{fmt(sum(x[0] for x in d) / len(d))} / {fmt(sum(x[1] for x in d) / len(d))}"


def readme_texts(studies: list[Study]) -> tuple[str, str] | None:
    """The README's first-paragraph sentence and its quality paragraph: confident images first (issue #24)."""
    conf = [(s, s.minus(VARIANT, EQUAL, "P ≥ 0.5")) for s in studies if s.images("P ≥ 0.5")]
    if not conf:
        return None
    beats = all(met(d) for _, d in conf)
    where = " and ".join(f"{blur_zero(d)} on {s.label}'s {plural(len(d), 'confident image')}" for s, d in conf)
    lead = (f"On confident images (top-1 P ≥ 0.5) the default refinement {'is at least' if beats else 'is not above'} "
            "RISE continued to the same number of model evaluations on insertion − deletion (from blur / from "
            f"zero: {where}; [docs/quality.md](docs/quality.md)).")
    other = VARIANTS[1]
    boxes = " and ".join(f"{blur_zero(s.minus(other, EQUAL, 'P ≥ 0.5'))} on {s.name}" for s, _ in conf)
    fixed = " and ".join(f"{blur_zero(s.minus(VARIANT, FIXED, 'P ≥ 0.5'))} on {s.name}" for s, _ in conf)
    overall = " and ".join(f"{blur_zero(s.minus(VARIANT, EQUAL, 'all'))} on {s.name}'s {plural(s.images(), 'image')}"
                           for s in studies)
    para = ("**Quality.** Confident images (top-1 P ≥ 0.5), insertion − deletion from blur (the default metric) / "
            "from zero, minus RISE continued from the prior's masks to the same 200 evaluations: the default "
            f"refinement (`{VARIANT}`, RISE continued on the complements of the prior's masks) {where}; the BOREx box "
            f"refinement (`--objective {other}`) {boxes}. Minus RISE continued to 1000 masks, the default "
            f"{fixed}. Over all confidence groups the default − RISE-200 is {overall}: "
            "[docs/quality.md](docs/quality.md).")
    return lead, para


def replace_between(text: str, start: str, end: str, new: str, readme: str) -> str:
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        sys.exit(f"quality_table: {readme} has no markers {start.strip()}")
    return text[:i + len(start)] + new + text[j:]


def readme_claim(readme: str, studies: list[Study]) -> None:
    """The README's generated sentences, between their markers (the rest of the README is hand-written)."""
    texts = readme_texts(studies)
    if texts is None:
        log("no confident image finished: the README's claims are left as they are")
        return
    with open(readme) as f:
        text = f.read()
    text = replace_between(text, *README_LEAD, "\n" + wrap(texts[0], 98) + "\n", readme)
    text = replace_between(text, *README_CLAIM, wrap(texts[1], 98), readme)
    write_text(readme, text)
    log(f"wrote the quality claims of {readme}")


if __name__ == "__main__":
    main()
