"""Two Python threads sharing one `borex.Engine` against one thread doing the same calls in turn.

    python python/bench/threads.py [IMAGE] [--iters 20] [--repeat 3]

The GIL is released while borex works, but an Engine's model calls take
turns on its ONNX Runtime session (a mutex in `borex::model::Classifier`):
threads overlap only the work between model calls (GP, masking). Each round
times two `refine` calls (seed 0 and 1, no insertion/deletion) run one after
the other on one thread, then the same two on two threads at once; prints the
medians and their ratio (two threads / one; 0.5 would be perfect overlap).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

import borex


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    home = Path(os.environ.get("BOREX_HOME") or root / ".borex")
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("image", nargs="?", default=str(home / "images" / "chelsea.png"))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    engine = borex.Engine()

    def call(seed: int) -> None:
        engine.refine(a.image, iters=a.iters, seed=seed, metrics=False)

    call(0)  # warm-up: sessions, kernels, caches
    one, two = [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        call(0)
        call(1)
        one.append(time.perf_counter() - t)
        threads = [threading.Thread(target=call, args=(s,)) for s in (0, 1)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        two.append(time.perf_counter() - t)
    m1, m2 = statistics.median(one), statistics.median(two)
    print(f"{os.cpu_count()} cores; two refines of {Path(a.image).name}, {a.iters} queries, {a.repeat} rounds")
    print(f"one thread, in turn: {m1:.2f} s (min {min(one):.2f}, max {max(one):.2f})")
    print(f"two threads at once: {m2:.2f} s (min {min(two):.2f}, max {max(two):.2f})")
    print(f"two threads / one: {m2 / m1:.2f}")


if __name__ == "__main__":
    main()
