"""A model callable that is wrong (issue #27 §2, bad input): each way is a
one-line ModelError naming what was wrong and which call (its number and
batch size), with the callable's own exception as ``__cause__`` and its
traceback; a model= that is neither a path nor a callable is a TypeError;
Ctrl-C inside a callable stops the run. The callables here are small numpy
functions: what is tested is borex's handling of what they return."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import borex

TEN = [f"class {i}" for i in range(10)]


def _engine(fn: Callable[[npt.NDArray[np.float32]], Any], **kw: Any) -> borex.Engine:
    return borex.Engine(model=fn, device="cpu", **{"labels": TEN, "output": "logits", **kw})


def _scores(x: npt.NDArray[np.float32], classes: int = 10) -> npt.NDArray[np.float32]:
    """Scores that depend on the input: the channel means, spread over the classes."""
    m = x.reshape(x.shape[0], 3, -1).mean(axis=2)
    return np.tile(m, (1, classes))[:, :classes].astype(np.float32)


def test_a_callable_that_raises_is_named_with_its_exception_chained(chelsea: Path) -> None:
    def broken(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise ValueError("weights not loaded")

    with pytest.raises(borex.ModelError) as e:
        _engine(broken).classify(chelsea)
    msg = str(e.value)
    assert "model callable" in msg and "broken" in msg and "\n" not in msg
    assert "call 1 (a batch of 1 image) raised ValueError: weights not loaded" in msg
    cause = e.value.__cause__
    assert isinstance(cause, ValueError) and str(cause) == "weights not loaded"
    # The callable's own traceback comes with it: its last frame is the function that raised.
    assert traceback.extract_tb(cause.__traceback__)[-1].name == "broken"


def test_the_failing_call_is_named_by_number_and_batch(chelsea: Path) -> None:
    calls = []

    def third_fails(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        calls.append(x.shape[0])
        if len(calls) == 3:
            raise RuntimeError("CUDA out of memory")
        return _scores(x)

    with pytest.raises(borex.ModelError) as e:
        _engine(third_fails).explain(chelsea, method="occlusion", window=64, stride=32, batch=4)
    # The first call classifies the image; the occlusion windows follow, 4 a call.
    assert calls[2] == 4, calls
    assert "call 3 (a batch of 4 images) raised RuntimeError: CUDA out of memory" in str(e.value)


@pytest.mark.parametrize(
    "returns, message",
    [
        (lambda x: _scores(x)[:, :, None], r"returned an array of shape \(1, 10, 1\); expected \(1, classes\)"),
        (lambda x: _scores(x)[0], r"returned an array of shape \(10,\); expected \(1, classes\)"),
        (lambda x: np.vstack([_scores(x)] * 2), r"returned an array of shape \(2, 10\); expected \(1, classes\)"),
        (lambda x: _scores(x).astype(np.int64), r"returned scores of dtype int64; expected floating-point"),
        (lambda x: _scores(x) > 0, r"returned scores of dtype bool"),
        (lambda x: np.full_like(_scores(x), np.nan), r"returned NaN or infinite scores for 1 of 1 images"),
        (lambda x: np.full_like(_scores(x), -np.inf), r"returned NaN or infinite scores for 1 of 1 images"),
        (lambda x: _scores(x, 7), r"returned 7 class scores per image, but labels names 10"),
        (lambda x: None, r"returned a NoneType, not an array of scores"),
        (lambda x: _scores(x).tolist(), r"returned a list, not an array of scores"),
        (lambda x: np.zeros((1, 0), np.float32), r"returned no class scores"),
    ],
)
def test_bad_scores_are_refused_naming_what_and_which_call(
    chelsea: Path, returns: Callable[[npt.NDArray[np.float32]], Any], message: str
) -> None:
    with pytest.raises(borex.ModelError, match=r"call 1 \(a batch of 1 image\) " + message) as e:
        _engine(returns).classify(chelsea)
    assert "\n" not in str(e.value)


def test_a_class_count_that_changes_between_calls_is_refused(chelsea: Path) -> None:
    calls = []

    def shrinking(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        calls.append(1)
        return _scores(x, 10 if len(calls) == 1 else 9)

    # Without labels nothing fixes the class count but the first call.
    with pytest.raises(borex.ModelError, match=r"call 2 .* returned 9 class scores per image; the first call returned"):
        borex.Engine(model=shrinking, device="cpu").explain(chelsea, method="occlusion", window=64, stride=32)


def test_array_likes_and_other_float_widths_are_read_as_float32(chelsea: Path) -> None:
    class Tensor:
        """What a torch tensor offers numpy: __array__."""

        def __init__(self, a: npt.NDArray[Any]) -> None:
            self.a = a

        def __array__(self, dtype: Any = None, copy: Any = None) -> npt.NDArray[Any]:
            return self.a

    class DLPack:
        """What a GPU array library offers instead: __dlpack__ only (numpy.from_dlpack reads it)."""

        def __init__(self, a: npt.NDArray[Any]) -> None:
            self.a = a

        def __dlpack__(self, **kw: Any) -> Any:
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self) -> Any:
            return self.a.__dlpack_device__()

    want = _engine(_scores).classify(chelsea, top=3)
    assert want[0].probability < 1.0
    for fn in (
        lambda x: Tensor(_scores(x)),
        lambda x: DLPack(_scores(x)),
        lambda x: _scores(x).astype(np.float64),
        lambda x: _scores(x).astype(">f4"),
        lambda x: np.asfortranarray(_scores(x)),
    ):
        assert _engine(fn).classify(chelsea, top=3) == want


def test_a_callable_exception_is_chained_in_refine_many_results(chelsea: Path) -> None:
    def broken(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise KeyError("layer4")

    out = _engine(broken).refine_many([chelsea, chelsea], iters=2, errors="return", metrics=False)
    for i, r in enumerate(out):
        assert isinstance(r, borex.ModelError), r
        assert str(r).startswith(f"images[{i}]: ") and "raised KeyError" in str(r)
        assert isinstance(r.__cause__, KeyError)


def test_bad_model_arguments_are_one_line_errors(chelsea: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"model must be a path to an ONNX file or a callable .*not int"):
        borex.Engine(model=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not object"):
        borex.Engine(model=object())  # type: ignore[arg-type]
    with pytest.raises(borex.InvalidInputError, match="ep is ONNX Runtime's execution provider"):
        borex.Engine(model=_scores, ep="cuda")
    with pytest.raises(borex.InvalidInputError, match="input_size=0 is out of range"):
        borex.Engine(model=_scores, input_size=0)
    with pytest.raises(borex.InvalidInputError, match=r"std=.*non-zero"):
        borex.Engine(model=_scores, std=(1.0, 0.0, 1.0))
    with pytest.raises(TypeError, match="mean must be three numbers"):
        borex.Engine(model=_scores, mean=(1.0, 2.0))
    with pytest.raises(borex.InvalidInputError, match="output: unknown output kind"):
        borex.Engine(model=_scores, output="softmax")  # type: ignore[arg-type]
    with pytest.raises(borex.InvalidInputError, match="labels: the list is empty"):
        borex.Engine(model=_scores, labels=[])
    # An ONNX model's preprocessing is its sidecar's.
    with pytest.raises(borex.InvalidInputError, match="input_size describes a model callable"):
        borex.Engine(input_size=224)
    with pytest.raises(TypeError) as e:
        borex.Engine(model=3.5)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


def test_declared_preprocessing_is_what_the_callable_gets(chelsea: Path) -> None:
    seen: list[npt.NDArray[np.float32]] = []

    def record(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        seen.append(x.copy())
        return _scores(x)

    # A 256×256 image, resized to 256 and centre-cropped to 224, then (v - mean) / std.
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    _engine(record, input_size=224, resize=256, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0)).classify(img)
    want = (img[16:240, 16:240].astype(np.float32) - np.float32([10, 20, 30])) / np.float32([2, 4, 8])
    assert np.array_equal(seen[0][0], want.transpose(2, 0, 1))
    # A non-square input size.
    seen.clear()
    _engine(record, input_size=(96, 128), resize=None).classify(img)
    assert seen[0].shape == (1, 3, 96, 128)


CTRL_C = """
    import os, signal, sys, threading, time
    import numpy as np
    import borex

    IMG = sys.argv[1]
    calls = []

    def slow(x):
        calls.append(x.shape[0])
        time.sleep(0.05)  # Python code: the signal lands inside the callable
        return np.tile(x.reshape(x.shape[0], 3, -1).mean(axis=2), (1, 4)).astype(np.float32)

    engine = borex.Engine(model=slow, device="cpu", labels=[str(i) for i in range(12)], output="logits")
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(1.0, interrupt).start()
    try:
        engine.refine(IMG, iters=2000, seed=0, metrics=False, objective="matched")
        print("finished", flush=True)
    except KeyboardInterrupt as e:
        print("interrupted", f"{time.monotonic() - sent[0]:.2f}", type(e).__name__, flush=True)
    n = len(calls)
    r = engine.refine(IMG, iters=2, seed=0, metrics=False, objective="matched")
    print("after", len(r.queries), len(calls) > n, flush=True)
"""


def test_ctrl_c_during_a_callable_stops_the_run(tmp_path: Path, chelsea: Path) -> None:
    import subprocess
    import sys
    import textwrap

    from conftest import ROOT

    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(CTRL_C))
    out = subprocess.run(
        [sys.executable, str(script), str(chelsea)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "python")},
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()]
    assert lines[0][0] == "interrupted" and lines[0][2] == "KeyboardInterrupt", out.stdout
    assert float(lines[0][1]) < 3.0, out.stdout
    # The engine works after it, calling the callable again.
    assert lines[1] == ["after", "2", "True"], out.stdout
