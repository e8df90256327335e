"""Every bad input of issue #19's list raises a `borex.BorexError` subclass
(also the built-in exception it stands for) whose message names the problem;
none reaches the interpreter as a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import borex

from conftest import HOME

RGB = np.zeros((64, 80, 3), np.uint8)


@pytest.mark.parametrize(
    ("image", "exc", "words"),
    [
        (np.zeros((64, 80, 3), np.int64), ValueError, ["dtype", "int64", "uint8"]),
        (np.zeros((64, 80, 3), bool), ValueError, ["dtype", "bool"]),
        (np.zeros((64, 80, 3), np.complex64), ValueError, ["dtype", "complex"]),
        (np.zeros((64, 80), np.uint8), ValueError, ["H×W×3", "(64, 80)", "grayscale"]),
        (np.zeros((64, 80, 4), np.uint8), ValueError, ["H×W×3", "(64, 80, 4)", "alpha"]),
        (np.zeros((0, 0), np.uint8), ValueError, ["H×W×3", "(0, 0)"]),
        (np.zeros((0, 0, 3), np.uint8), ValueError, ["0×0"]),
        (np.zeros((1, 1, 3), np.uint8), ValueError, ["1×1", "at least 2×2"]),
        (np.full((8, 8, 3), 1.5, np.float32), ValueError, ["[0, 1]", "1.5"]),
        (np.full((8, 8, 3), np.nan), ValueError, ["[0, 1]", "NaN"]),
        (12345, ValueError, ["expected a path", "int"]),
    ],
)
def test_bad_images(engine: borex.Engine, image: Any, exc: type, words: list[str]) -> None:
    for call in (lambda: engine.classify(image), lambda: engine.explain(image, method="cam")):
        with pytest.raises(borex.InvalidInputError) as e:
            call()
        assert isinstance(e.value, exc) and isinstance(e.value, borex.BorexError)
        for w in words:
            assert w in str(e.value), (w, str(e.value))


def test_missing_file(engine: borex.Engine, tmp_path: Path) -> None:
    with pytest.raises(borex.MissingFileError) as e:
        engine.classify(tmp_path / "nope.png")
    assert isinstance(e.value, FileNotFoundError)
    assert "nope.png" in str(e.value)


def test_not_an_image(engine: borex.Engine, tmp_path: Path) -> None:
    p = tmp_path / "text.png"
    p.write_text("hello")
    with pytest.raises(borex.ImageError, match=r"text\.png: not a readable image"):
        engine.refine(p, iters=2)


def test_model_that_is_not_onnx(tmp_path: Path) -> None:
    m = tmp_path / "model.onnx"
    m.write_bytes(b"this is not a protobuf")
    with pytest.raises(borex.BorexError) as e:
        borex.Engine(model=m)
    assert "model.onnx" in str(e.value)
    assert isinstance(e.value, (ValueError, RuntimeError))


def test_missing_model(tmp_path: Path) -> None:
    with pytest.raises(borex.MissingFileError, match=r"absent\.onnx"):
        borex.Engine(model=tmp_path / "absent.onnx")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"device": "tpu"}, ["device", "tpu", "auto"]),
        ({"ep": "metal"}, ["ep", "metal", "cuda"]),
    ],
)
def test_bad_engine_settings(kwargs: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(borex.InvalidInputError) as e:
        borex.Engine(**kwargs)
    for w in words:
        assert w in str(e.value)


def test_unknown_method(engine: borex.Engine, chelsea: Path) -> None:
    with pytest.raises(borex.InvalidInputError, match='unknown method "lime"'):
        engine.explain(chelsea, method="lime")
    with pytest.raises(borex.InvalidInputError, match="lime"):
        engine.refine(chelsea, prior="lime", iters=2)


def test_unknown_class(engine: borex.Engine, chelsea: Path) -> None:
    with pytest.raises(borex.InvalidInputError, match="no-such-animal"):
        engine.explain(chelsea, method="cam", class_="no-such-animal")
    with pytest.raises(borex.InvalidInputError, match="out of range"):
        engine.explain(chelsea, method="cam", class_=5000)
    with pytest.raises(borex.InvalidInputError, match="negative"):
        engine.counterfactual(chelsea, target=-3)


def test_unknown_setting(engine: borex.Engine, chelsea: Path) -> None:
    # An unknown keyword is a TypeError (as Python's own for a function), naming it and the nearest setting.
    with pytest.raises(TypeError) as e:
        engine.refine(chelsea, iters=2, kapa=3.0)
    assert "'kapa'" in str(e.value).replace('"', "'") and 'did you mean "kappa"' in str(e.value)
    with pytest.raises(borex.InvalidInputError, match="objective"):
        engine.refine(chelsea, iters=2, objective="best")


@pytest.mark.parametrize(
    ("call", "bad", "nearest"),
    [
        ("refine", "budgett", "budget"),
        ("refine", "insertion_starts", "insertion_start"),
        ("refine_many", "kapa", "kappa"),
        ("explain", "mask", "masks"),
        ("evaluate", "clas", "class_"),
        ("counterfactual", "restart", "restarts"),
    ],
)
def test_an_unknown_keyword_names_the_nearest_setting(
    engine: borex.Engine, chelsea: Path, call: str, bad: str, nearest: str
) -> None:
    # Before: an InvalidInputError listing every setting, no suggestion; now one path for every method.
    args: dict[str, Any] = {
        "refine": {"iters": 2},
        "refine_many": {"images": [chelsea], "iters": 2},
        "explain": {"method": "rise-fast"},
        "evaluate": {"saliency_map": np.ones((224, 224), np.float32)},
        "counterfactual": {"target": 1, "steps": 1},
    }[call]
    image = () if call == "refine_many" else (chelsea,)
    with pytest.raises(TypeError) as e:
        getattr(engine, call)(*image, **args, **{bad: 1})
    msg = str(e.value)
    assert f'unexpected keyword argument "{bad}"' in msg and f'did you mean "{nearest}"' in msg, msg


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"kappa": "high"}, ["kappa must be a number", "'high'"]),
        ({"relative_gain": 1}, ["relative_gain must be True or False", "1"]),
        ({"sizes": {"a": 1}}, ["sizes", "dict"]),
        ({"class_": 2.5}, ["class_ must be a class id", "2.5"]),
        ({"seed": None}, ["seed", "None"]),
        ({"budget": "many"}, ["budget", "'many'"]),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_argument(
    engine: borex.Engine, chelsea: Path, kwargs: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(TypeError) as e:
        engine.refine(chelsea, **kwargs)
    assert not isinstance(e.value, borex.BorexError)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"iters": -1}, ["iters=-1", "-1"]),
        # A range the library checks, named as Python spells it (the command line: --refit-every 0).
        ({"refit_every": 0}, ["refit_every=0 is out of range: it must be between 1 and 2000"]),
        ({"batch": 5000}, ["batch=5000 is out of range"]),
        ({"stride": 0}, ["stride=0 is out of range"]),
        ({"sizes": "30,x"}, ["sizes=", '"x"']),
    ],
)
def test_bad_numbers(engine: borex.Engine, chelsea: Path, kwargs: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(borex.InvalidInputError) as e:
        engine.refine(chelsea, **kwargs)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert "--" not in str(e.value), "Python names settings as keyword arguments, not flags"


def test_counterfactual_range_errors_name_the_keyword(engine: borex.Engine, chelsea: Path) -> None:
    with pytest.raises(borex.InvalidInputError, match=r"p=1 is not supported"):
        engine.counterfactual(chelsea, target=1, p=1.0)
    with pytest.raises(borex.InvalidInputError, match=r"steps=0 is out of range"):
        engine.counterfactual(chelsea, target=1, steps=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_prior(engine: borex.Engine, chelsea: Path, bad: float) -> None:
    prior = np.ones((224, 224), np.float32)
    prior[10, 20] = bad
    with pytest.raises(borex.InvalidInputError) as e:
        engine.refine(chelsea, prior=prior, iters=2)
    assert "(10, 20)" in str(e.value) and "finite" in str(e.value)


@pytest.mark.parametrize(
    ("prior", "words"),
    [
        # A map of the input's aspect ratio is stretched (as the command line does); this one is not.
        (np.ones((100, 150), np.float32), ["100×150", "224×224"]),
        (np.ones((224, 224, 1), np.float32), ["2-D"]),
        (np.ones((224, 224), np.int32), ["dtype", "int32"]),
    ],
)
def test_prior_of_the_wrong_shape_or_dtype(engine: borex.Engine, chelsea: Path, prior: Any, words: list[str]) -> None:
    with pytest.raises(borex.InvalidInputError) as e:
        engine.refine(chelsea, prior=prior, iters=2)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_saliency_map_of_the_wrong_shape(engine: borex.Engine, chelsea: Path) -> None:
    with pytest.raises(borex.InvalidInputError, match="224×224"):
        # A ramp: a constant map is refused before its shape matters (it ranks no pixel).
        engine.evaluate(chelsea, np.arange(50 * 60, dtype=np.float32).reshape(50, 60))


def test_non_contiguous_prior_is_read_as_numpy_shows_it(engine: borex.Engine, chelsea: Path) -> None:
    # A transposed view and a negative-stride view of one map must give the result of their contiguous copies.
    rng = np.random.default_rng(0)
    base = rng.random((224, 224), dtype=np.float32)
    for view in (base.T, base[::-1, ::-1]):
        assert not view.flags.c_contiguous
        got = engine.evaluate(chelsea, view)
        want = engine.evaluate(chelsea, np.ascontiguousarray(view))
        assert got == want


def test_nothing_crashes_the_interpreter_on_a_corrupt_labels_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("")
    with pytest.raises(borex.BorexError):
        borex.Engine(model=HOME / "models" / "efficientnet-lite0.onnx", labels=labels)


def test_a_rust_panic_is_an_exception_not_an_abort() -> None:
    from borex import _borex

    with pytest.raises(borex.InternalError, match="boom") as e:
        _borex._panic_for_test("boom")
    assert isinstance(e.value, RuntimeError)
    # The interpreter and the module still work.
    assert borex.__version__
