"""A cold `borex refine` against the same model evaluations alone in ONNX Runtime (issue 28).

    python python/bench/cold_refine.py [IMAGE] [--runs 5] [--iters 50] [--borex PATH] [--spin]

Each round, in alternating order:

* **cold refine**: a fresh ``borex --device cpu refine IMAGE --no-metrics
  --timings`` process (RISE-100 prior at ``--batch 32``, ``--iters`` queries),
  timed from outside (wall and CPU time of the child) and read back from its
  report.json (``timings_ms``: prior, the loop's model calls, posterior, GP
  fit, total) and its ``--timings`` line ``model load``: loading ONNX Runtime
  and building the session, which the report's total does *not* include.
* **bound**: a fresh Python process that builds an ``onnxruntime``
  ``InferenceSession`` of the same model file (same ONNX Runtime version as
  the library borex loads: checked), ``--threads`` intra-op threads, and runs
  the refine's evaluations alone on ready inputs: 100 images at batch 32
  (32, 32, 32, 4), then ``--iters`` calls at batch 2. It runs them twice: the
  first pass in the fresh session ("cold", what the CLI's refine pays: ONNX
  Runtime's arena grows on first use) and the second in the warmed session.

Prints the medians, the ratio of the report's total to each bound (the
issue's figure: goal <= 1.15x against the cold bound), and the stage timings.
The bound's session uses ONNX Runtime's defaults besides the thread count
(spinning on, as a plain Python session); ``--no-spin`` turns spinning off.
borex's session does not spin unless ``--borex-spin`` (``BOREX_ORT_SPIN=1``:
spinning within a run, stopped as each run returns): the four combinations
show how much of the ratio is ONNX Runtime's threading rather than borex.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def bound_worker(model: str, threads: int, iters: int, spin: bool) -> None:
    """In a fresh process: build the session, run the evaluations twice, print JSON."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    t = time.perf_counter()
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    build = time.perf_counter() - t
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((32, 3, 224, 224)).astype(np.float32)
    prior_batches = [32, 32, 32, 4]

    def evaluations() -> dict[str, float]:
        t0 = time.perf_counter()
        for b in prior_batches:
            session.run(None, {name: x[:b]})
        t1 = time.perf_counter()
        for _ in range(iters):
            session.run(None, {name: x[:2]})
        t2 = time.perf_counter()
        return {"prior_ms": 1e3 * (t1 - t0), "queries_ms": 1e3 * (t2 - t1), "total_ms": 1e3 * (t2 - t0)}

    cold = evaluations()
    warm = evaluations()
    print(json.dumps({"build_ms": 1e3 * build, "cold": cold, "warm": warm, "ort": ort.__version__}))


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cold_refine(borex: str, image: str, iters: int, out: Path, spin: bool = False) -> dict[str, Any]:
    cmd = [borex, "--device", "cpu", "refine", image, "--no-metrics", "-q", "--timings",
           "--objective", "matched"]  # the box refinement: 50 queries of 2 evaluations (antithetic is the default)
    cmd += ["--iters", str(iters), "--batch", "32", "-o", str(out)]
    env = {**os.environ, "BOREX_ORT_SPIN": "1" if spin else "0"}
    c0, t0 = children_cpu_s(), time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall, cpu = time.perf_counter() - t0, children_cpu_s() - c0
    if p.returncode != 0:
        raise SystemExit(f"borex refine failed ({p.returncode}): {p.stderr.strip()}")
    report = json.loads((out / "report.json").read_text())
    load_ms = next(
        (float(line.split(":", 1)[1]) for line in p.stdout.splitlines() if line.strip().startswith("model load (ms)")),
        float("nan"),
    )
    return {
        "wall_ms": 1e3 * wall,
        "cpu_ms": 1e3 * cpu,
        "load_ms": load_ms,
        "model_path": report["model"],
        **report["timings_ms"],
    }


def bound(model: str, threads: int, iters: int, spin: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--bound-worker", model, "--threads", str(threads), "--iters", str(iters)]
    if not spin:
        cmd.append("--no-spin")
    c0 = children_cpu_s()
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out: dict[str, Any] = json.loads(p.stdout)
    out["cpu_ms"] = 1e3 * (children_cpu_s() - c0)
    return out


def ort_library_version(borex: str) -> str:
    """The ONNX Runtime version `borex info` reports (the library it loads)."""
    p = subprocess.run([borex, "info"], capture_output=True, text=True, check=False)
    for line in p.stdout.splitlines():
        if line.startswith("ONNX Runtime:"):
            return line.split()[2]
    return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    home = Path(os.environ.get("BOREX_HOME") or ROOT / ".borex")
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("image", nargs="?", default=str(home / "images" / "chelsea.png"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="the bound's intra-op threads")
    ap.add_argument("--no-spin", action="store_true", help="the bound's session without spin-waiting")
    ap.add_argument(
        "--borex-spin",
        action="store_true",
        help="borex's session spins within a run (BOREX_ORT_SPIN=1; off by default)",
    )
    ap.add_argument("--borex", default=str(ROOT / "target" / "release" / "borex"))
    ap.add_argument("--json", help="also write every round's figures here")
    ap.add_argument("--bound-worker", metavar="MODEL", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.bound_worker:
        bound_worker(a.bound_worker, a.threads, a.iters, not a.no_spin)
        return

    import onnxruntime as ort

    lib = ort_library_version(a.borex)
    if lib != ort.__version__:
        raise SystemExit(f"borex loads ONNX Runtime {lib}, Python has {ort.__version__}: the bound would not compare")
    refines: list[dict[str, Any]] = []
    bounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: the page cache holds the binary, the library and the model for every timed round.
        model = cold_refine(a.borex, a.image, a.iters, Path(tmp) / "warm")["model_path"]
        bound(model, a.threads, a.iters, not a.no_spin)
        for i in range(a.runs):
            # Alternate which goes first, so drift in the machine's load hits both alike.
            for which in ("refine", "bound") if i % 2 == 0 else ("bound", "refine"):
                if which == "refine":
                    refines.append(cold_refine(a.borex, a.image, a.iters, Path(tmp) / f"r{i}", a.borex_spin))
                else:
                    bounds.append(bound(model, a.threads, a.iters, not a.no_spin))
    cold = [b["cold"] for b in bounds]
    warm = [b["warm"] for b in bounds]
    total, b_cold, b_warm = med(refines, "total"), med(cold, "total_ms"), med(warm, "total_ms")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f}")
    print(f"ONNX Runtime {lib} (borex's library and Python's); model {model}")
    print(
        f"{Path(a.image).name}: RISE-100 prior at batch 32 + {a.iters} queries at batch 2, no metrics; "
        f"{a.runs} rounds, alternating; bound: {a.threads} intra-op threads, spinning {'off' if a.no_spin else 'on'}; "
        f"borex's session: spinning {'on within a run' if a.borex_spin else 'off'}"
    )
    print()
    print("cold `borex refine` (medians, ms):")
    for key, what in [
        ("prior", "prior (100 RISE masks, their model calls included)"),
        ("model", "queries' model calls (masking included)"),
        ("posterior", "posterior + UCB argmax"),
        ("gp_fit", "GP fit"),
        ("total", "report.json total (image to report, no session build)"),
        ("load_ms", "model load: ONNX Runtime + session build (not in total)"),
        ("wall_ms", "process wall time (start to exit)"),
        ("cpu_ms", "process CPU time (user + sys)"),
    ]:
        print(f"  {what:<58} {med(refines, key):9.1f}")
    print("model-only bound (medians, ms):")
    print(f"  {'session build (Python)':<58} {med(bounds, 'build_ms'):9.1f}")
    for name, rows in [("fresh session (cold)", cold), ("warm session", warm)]:
        print(
            f"  {name + ': prior / queries / total':<58} "
            f"{med(rows, 'prior_ms'):7.1f} / {med(rows, 'queries_ms'):7.1f} / {med(rows, 'total_ms'):7.1f}"
        )
    print()
    print(f"ratio report total / bound, fresh session: {total / b_cold:.3f}  (goal <= 1.15)")
    print(f"ratio report total / bound, warm session : {total / b_warm:.3f}")
    print(
        f"ratio process wall / (session build + fresh-session bound): "
        f"{med(refines, 'wall_ms') / (med(bounds, 'build_ms') + b_cold):.3f}"
    )
    if a.json:
        Path(a.json).write_text(json.dumps({"refines": refines, "bounds": bounds}, indent=1))


if __name__ == "__main__":
    main()
