"""Any model a Python function can call (issue #27 §2): ``borex.Engine(model=fn, ...)``.

The correctness reference is independent of borex's model code: the callable
runs the bundled ONNX file through ``onnxruntime.InferenceSession`` in Python
(the onnxruntime package, not the library borex loads), and every map must
equal the native path's (``Engine()``) bit for bit. Both run ONNX Runtime
1.31's CPU kernels on the same graph and the same float32 inputs, batch by
batch (the callable gets exactly the batches the native session gets), so
there is no rounding to allow for; a difference means the callable path fed
or read the model differently (preprocessing, batch order, a lost row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

import borex

from conftest import HOME, ITERS

# What Engine() runs: the bundled model with its feature output, whose class output is "logits".
FEATURES_MODEL = HOME / "models" / "efficientnet-lite0-features.onnx"
LABELS = HOME / "labels" / "imagenet1k.txt"
# The bundled model's sidecar (efficientnet-lite0-features.json), declared as keyword arguments.
DECLARED: dict[str, Any] = dict(input_size=224, resize=256, mean=(127.0,) * 3, std=(128.0,) * 3, output="logits")


class OnnxCallable:
    """The bundled model through onnxruntime's Python API, recording each batch's shape and dtype."""

    def __init__(self, path: Path) -> None:
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.seen: list[tuple[tuple[int, ...], np.dtype[Any]]] = []

    def __call__(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.seen.append((x.shape, x.dtype))
        out: npt.NDArray[np.float32] = self.session.run(["logits"], {self.input: x})[0]
        return out


@pytest.fixture(scope="module")
def onnx_fn() -> OnnxCallable:
    return OnnxCallable(FEATURES_MODEL)


@pytest.fixture(scope="module")
def by_callable(onnx_fn: OnnxCallable) -> borex.Engine:
    return borex.Engine(model=onnx_fn, labels=LABELS, **DECLARED)


@pytest.mark.parametrize("objective", ["antithetic", "matched"])  # the default with a RISE prior, and box queries
def test_refine_through_a_callable_equals_the_native_path(
    engine: borex.Engine, by_callable: borex.Engine, onnx_fn: OnnxCallable, chelsea: Path, objective: str
) -> None:
    want = engine.refine(chelsea, iters=ITERS, seed=0, objective=objective)
    onnx_fn.seen.clear()
    got = by_callable.refine(chelsea, iters=ITERS, seed=0, objective=objective)
    assert (len(got.queries) == ITERS) == (objective == "matched")
    assert np.array_equal(got.refined, want.refined)
    assert np.array_equal(got.prior, want.prior)
    assert got.queries == want.queries
    assert got.class_id == want.class_id and got.report.label == want.report.label
    assert got.report.refined.insertion == want.report.refined.insertion
    assert got.report.model_evaluations == want.report.model_evaluations
    # What the callable was given: float32 N×3×224×224 batches, one image per evaluation.
    assert {dt for _, dt in onnx_fn.seen} == {np.dtype(np.float32)}
    assert all(s[1:] == (3, 224, 224) for s, _ in onnx_fn.seen)
    assert sum(s[0] for s, _ in onnx_fn.seen) >= got.report.model_evaluations
    # The report names the callable, not a file.
    assert "OnnxCallable" in got.report.model


@pytest.mark.parametrize(
    "method, settings",
    [
        ("rise", dict(masks=256, seed=1)),
        ("occlusion", dict(window=64, stride=32)),
        ("undesirable", dict(masks=64, seed=2)),
    ],
)
def test_explain_through_a_callable_equals_the_native_path(
    engine: borex.Engine, by_callable: borex.Engine, chelsea: Path, method: str, settings: dict[str, Any]
) -> None:
    want = engine.explain(chelsea, method=method, **settings)
    got = by_callable.explain(chelsea, method=method, **settings)
    assert got.dtype == np.float32 and got.shape == (224, 224)
    assert np.array_equal(got, want)


def test_evaluate_and_classify_through_a_callable_equal_the_native_path(
    engine: borex.Engine, by_callable: borex.Engine, chelsea: Path
) -> None:
    yy, xx = np.mgrid[0:224, 0:224]
    blob = np.exp(-((yy - 100.0) ** 2 + (xx - 130.0) ** 2) / (2 * 40.0**2)).astype(np.float32)
    want = engine.evaluate(chelsea, blob, insertion_start="blur,zero")
    got = by_callable.evaluate(chelsea, blob, insertion_start="blur,zero")
    assert (got.insertion, got.deletion, dict(got.insertion_by_start)) == (
        want.insertion,
        want.deletion,
        dict(want.insertion_by_start),
    )
    assert got.probability == want.probability and got.label == want.label
    assert by_callable.classify(chelsea, top=5) == engine.classify(chelsea, top=5)


def test_refine_many_through_a_callable_equals_refine(by_callable: borex.Engine, chelsea: Path) -> None:
    flipped = _rgb(chelsea)[:, ::-1].copy()
    many = by_callable.refine_many([chelsea, flipped], lockstep=2, iters=ITERS, metrics=False)
    for img, r in zip([chelsea, flipped], many):
        one = by_callable.refine(img, iters=ITERS, seed=0, metrics=False)
        assert np.array_equal(r.refined, one.refined)


def _rgb(path: Path) -> npt.NDArray[np.uint8]:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_graph_methods_say_in_one_line_that_a_callable_has_no_graph(by_callable: borex.Engine, chelsea: Path) -> None:
    for call in (
        lambda: by_callable.explain(chelsea, method="gradcam"),
        lambda: by_callable.explain(chelsea, method="cameras"),
        lambda: by_callable.counterfactual(chelsea, target=1, steps=2),
    ):
        with pytest.raises(borex.ModelError, match="needs the model's ONNX graph") as e:
            call()
        assert "\n" not in str(e.value)
