"""Calls from several Python threads: the native side releases the GIL while it
works, so it must never read a caller's array then (another thread may be
writing to it)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import borex

from conftest import ROOT

# A model cheap enough for dozens of evaluations (global average pool + linear):
# its insertion/deletion curves still depend on the order of every pixel.
GAP_MODEL = ROOT / "tests" / "fixtures" / "gap_linear_logits.onnx"


@pytest.fixture(scope="module")
def gap_engine() -> borex.Engine:
    return borex.Engine(model=GAP_MODEL)


def test_evaluate_reads_a_snapshot_of_the_map_while_another_thread_writes_it(gap_engine: borex.Engine) -> None:
    # Two maps with opposite pixel orders: a map read half-way through a write
    # (part A, part B) ranks the pixels as neither does, and its curves differ.
    # A small image and a map of its size keep each call short.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 25, 3), dtype=np.uint8)
    a = rng.random(image.shape[:2], dtype=np.float32)
    b = -a
    want_a = gap_engine.evaluate(image, a.copy())
    want_b = gap_engine.evaluate(image, b.copy())
    assert want_a.insertion != want_b.insertion

    shared = a.copy()
    stop = threading.Event()
    # Each write holds the GIL from start to end, so it is atomic for any reader that holds the GIL
    # (assigning from an object array needs the Python API; numpy's float copies drop the GIL
    # midway, and then no reader, numpy's own included, could see a whole map).
    a_obj, b_obj = a.astype(object), b.astype(object)

    def writer() -> None:
        while not stop.is_set():
            shared[:] = b_obj
            shared[:] = a_obj

    got: list[borex.Evaluation] = []

    def reader() -> None:
        # Not the main thread: there, borex takes the GIL before each model batch to run Python's
        # signal handlers, which pauses the writer right before the map is read.
        for _ in range(20):
            got.append(gap_engine.evaluate(image, shared))

    threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        threads[1].join()
    finally:
        stop.set()
        threads[0].join()
    assert len(got) == 20
    for i, r in enumerate(got):
        assert r == want_a or r == want_b, f"call {i}: a torn read of the map: {r} is neither {want_a} nor {want_b}"
