"""What calling `refine` through Python costs over the Rust library call.

    python python/bench/overhead.py [IMAGE] [--iters 50] [--repeat 5]

In one process, on one `borex.Engine`, alternately: `Engine.refine(IMAGE)`
timed in Python (argument checks, the call, the maps handed to numpy, the
report made a dict, the result object) and the same `borex::Engine::refine`
timed inside Rust (`borex._borex._time_rust_refine`), same settings (seed 0,
no insertion/deletion, so the refine itself is the smallest). Prints the
medians, min–max, and their ratio; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import borex
from borex import _borex


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    home = Path(os.environ.get("BOREX_HOME") or root / ".borex")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image", nargs="?", default=str(home / "images" / "chelsea.png"))
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    engine = borex.Engine()
    settings = {"metrics": False}
    # Warm-up: the first call pays for lazy initialisation (ONNX Runtime's arenas, kernel caches).
    engine.refine(a.image, iters=a.iters, seed=0, **settings)
    py_s: list[float] = []
    rust_s: list[float] = []
    for i in range(a.repeat):
        # Alternate which goes first, so drift in the machine's load hits both alike.
        order = ("py", "rust") if i % 2 == 0 else ("rust", "py")
        for which in order:
            if which == "py":
                t = time.perf_counter()
                engine.refine(a.image, iters=a.iters, seed=0, **settings)
                py_s.append(time.perf_counter() - t)
            else:
                rust_s.append(_borex._time_rust_refine(engine._native, a.image, a.iters, 0, settings))
    mp, mr = statistics.median(py_s), statistics.median(rust_s)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {engine!r}")
    print(f"refine {Path(a.image).name}, {a.iters} queries, seed 0, no metrics; {a.repeat} runs each, interleaved")
    print(f"Python Engine.refine : median {mp:.3f} s (min {min(py_s):.3f}, max {max(py_s):.3f})")
    print(f"Rust   Engine::refine: median {mr:.3f} s (min {min(rust_s):.3f}, max {max(rust_s):.3f})")
    print(f"ratio Python / Rust  : {mp / mr:.4f} (medians), {min(py_s) / min(rust_s):.4f} (minima)")


if __name__ == "__main__":
    main()
