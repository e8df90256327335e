"""A refine through a Python callable against the native ONNX path, same model.

    python python/bench/callable.py [IMAGE] [--iters 50] [--repeat 5] [--threads N]

Two engines in one process: ``borex.Engine()`` (the bundled model, run by
the ONNX Runtime library borex loads) and ``borex.Engine(model=fn, ...)``
where ``fn`` runs the same ONNX file through ``onnxruntime.InferenceSession``
in Python, with the sidecar's preprocessing declared. Both on the CPU
(device and execution provider), the same settings (seed 0, no
insertion/deletion), runs interleaved. Checks the maps are equal (the
callable path must not change a result), then prints the medians, their
ratio, and where the callable path's extra time goes: the time inside
``fn`` (ONNX Runtime's run) against the refine's whole time, and the calls'
count. The issue's target: a refine within 1.15× of the native path.

``--threads`` sets the Python session's intra-op threads (default: ONNX
Runtime's, the physical cores, as borex's own session uses).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

import borex


class Timed:
    """The bundled model through onnxruntime's Python API, timing each call."""

    def __init__(self, path: Path, threads: int | None) -> None:
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, x: npt.NDArray[np.float32]) -> Any:
        t = time.perf_counter()
        out = self.session.run(["logits"], {self.input: x})[0]
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    home = Path(os.environ.get("BOREX_HOME") or root / ".borex")
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("image", nargs="?", default=str(home / "images" / "chelsea.png"))
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()

    native = borex.Engine(device="cpu")
    fn = Timed(home / "models" / "efficientnet-lite0-features.onnx", a.threads)
    by_callable = borex.Engine(
        model=fn,
        device="cpu",
        labels=home / "labels" / "imagenet1k.txt",
        input_size=224,
        resize=256,
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
        output="logits",
    )
    settings: dict[str, Any] = {"iters": a.iters, "seed": 0, "metrics": False}
    # Warm-up (lazy initialisation), and the check that both give the same map.
    want = native.refine(a.image, **settings)
    got = by_callable.refine(a.image, **settings)
    same = np.array_equal(want.refined, got.refined)
    times: dict[str, list[float]] = {"native": [], "callable": []}
    inside: list[float] = []
    calls = 0
    for i in range(a.repeat):
        # Alternate which goes first, so drift in the machine's load hits both alike.
        for which in ("native", "callable") if i % 2 == 0 else ("callable", "native"):
            engine = native if which == "native" else by_callable
            fn.seconds, fn.calls = 0.0, 0
            t = time.perf_counter()
            engine.refine(a.image, **settings)
            times[which].append(time.perf_counter() - t)
            if which == "callable":
                inside.append(fn.seconds)
                calls = fn.calls
    mn, mc, mi = statistics.median(times["native"]), statistics.median(times["callable"]), statistics.median(inside)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; ort {ort.__version__}")
    print(f"refine {Path(a.image).name}, {a.iters} queries, seed 0, no metrics; {a.repeat} runs each, interleaved")
    print(f"maps equal: {same}")
    print(f"native   : median {mn:.3f} s (min {min(times['native']):.3f}, max {max(times['native']):.3f})")
    print(f"callable : median {mc:.3f} s (min {min(times['callable']):.3f}, max {max(times['callable']):.3f})")
    ratio_min = min(times["callable"]) / min(times["native"])
    print(f"ratio callable / native: {mc / mn:.4f} (medians), {ratio_min:.4f} (minima)")
    print(
        f"inside fn (onnxruntime's run): median {mi:.3f} s over {calls} calls; "
        f"the rest of the callable refine: {mc - mi:.3f} s (native refine, model included: {mn:.3f} s)"
    )
    if not same:
        raise SystemExit("the callable path gave another map than the native path")


if __name__ == "__main__":
    main()
