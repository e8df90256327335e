"""Results as Python expects them: typed reports (attributes, `to_dict()`),
`refine_many` that keeps the good images when one fails, and exception
classes chosen by the library's error kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import borex

from conftest import IMAGES, ITERS, ROOT, cli_refine

GAP_MODEL = ROOT / "tests" / "fixtures" / "gap_linear_logits.onnx"


@pytest.fixture(scope="module")
def gap_engine() -> borex.Engine:
    return borex.Engine(model=GAP_MODEL)


def _corrupt_png(tmp_path: Path) -> Path:
    bad = tmp_path / "corrupt.png"
    # A PNG signature and then garbage: a file that exists but does not decode.
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    return bad


def test_refine_many_returns_the_good_images_when_one_fails(gap_engine: borex.Engine, tmp_path: Path) -> None:
    good = [IMAGES / "chelsea.png", IMAGES / "coffee.png", IMAGES / "astronaut.png"]
    bad = _corrupt_png(tmp_path)
    images = [good[0], bad, good[1], good[2]]
    got = gap_engine.refine_many(images, lockstep=2, iters=ITERS, metrics=False, errors="return")
    assert len(got) == 4
    err = got[1]
    assert isinstance(err, borex.ImageError) and isinstance(err, ValueError), err
    assert "images[1]" in str(err) and "corrupt.png" in str(err)
    for path, r in zip(good, [got[0], got[2], got[3]]):
        assert isinstance(r, borex.RefineResult), r
        one = gap_engine.refine(path, iters=ITERS, metrics=False)
        assert np.array_equal(r.refined, one.refined), path
        assert np.array_equal(r.prior, one.prior), path
    # errors="raise" (the default): the failure raises, naming the image.
    with pytest.raises(borex.ImageError, match=r"images\[1\].*corrupt\.png"):
        gap_engine.refine_many(images, lockstep=2, iters=ITERS, metrics=False)
    with pytest.raises(borex.InvalidInputError, match="errors must be"):
        gap_engine.refine_many(images, iters=ITERS, errors="ignore")  # type: ignore[call-overload]


def test_refine_report_is_typed_and_matches_report_json(
    engine: borex.Engine, chelsea: Path, tmp_path: Path
) -> None:
    args = ("--iters", str(ITERS), "--insertion-start", "blur,zero", "--objective", "matched")
    _, _, want = cli_refine(chelsea, tmp_path / "cli", *args)
    got = engine.refine(chelsea, iters=ITERS, insertion_start="blur,zero", objective="matched")
    r = got.report
    assert isinstance(r, borex.RefineReport)
    assert r.class_id == got.class_id == want["class"]
    assert r.label == want["label"] and r.probability == pytest.approx(want["probability"], rel=1e-6)
    assert r.model_evaluations == want["model_evaluations"]
    assert r.prior.method == want["prior"]["method"] == "rise-fast"
    for mine, theirs in ((r.prior, want["prior"]), (r.refined, want["refined"])):
        assert mine.insertion == pytest.approx(theirs["insertion"], rel=1e-6)
        assert mine.deletion == pytest.approx(theirs["deletion"], rel=1e-6)
        assert set(mine.insertion_by_start) == {"blur", "zero"}
        assert mine.insertion_by_start["zero"] == pytest.approx(theirs["insertion_zero"], rel=1e-6)
    assert r.refined.length_scales == pytest.approx(want["refined"]["length_scales"])
    q = got.queries[0]
    o = want["observations"][0]
    assert isinstance(q, borex.Query) and (q.row, q.col, q.size) == (o["row"], o["col"], o["size"])
    # to_dict(): the whole report, a copy (changing it changes nothing).
    d = r.to_dict()
    assert set(d) == set(want)
    d["class"] = -1
    assert r.class_id == want["class"] and r["class"] == want["class"]
    with pytest.raises(AttributeError):
        r.class_id = 3  # type: ignore[misc]


def test_refine_report_without_metrics_has_no_scores(gap_engine: borex.Engine, chelsea: Path) -> None:
    r = gap_engine.refine(chelsea, iters=2, metrics=False).report
    assert r.refined.insertion is None and r.prior.insertion is None and r.prior.insertion_by_start == {}


def test_evaluation_is_typed(gap_engine: borex.Engine, chelsea: Path) -> None:
    m = np.random.default_rng(1).random((224, 224), dtype=np.float32)
    e = gap_engine.evaluate(chelsea, m, insertion_start="blur,zero")
    assert isinstance(e, borex.Evaluation)
    d = e.to_dict()
    assert e.class_id == d["class"] and e.insertion == d["insertion"] == d["insertion_blur"]
    assert e.insertion_by_start == {"blur": d["insertion_blur"], "zero": d["insertion_zero"]}
    assert e.deletion == d["deletion"] and e["deletion"] == d["deletion"]


def test_a_model_error_is_a_model_error_after_its_file_is_gone(tmp_path: Path, chelsea: Path) -> None:
    # The class comes from the error's kind: a model that loaded and then fails
    # (CAM needs a feature output this one lacks) is a ModelError, even when its
    # file no longer exists when the error is raised (it was a MissingFileError).
    model = tmp_path / "gap.onnx"
    shutil.copy(GAP_MODEL, model)
    engine = borex.Engine(model=model)
    model.unlink()
    with pytest.raises(borex.BorexError) as e:
        engine.explain(chelsea, method="cam")
    assert type(e.value) is borex.ModelError, (type(e.value), e.value)
    assert "feature" in str(e.value)


def test_exception_classes_keep_their_hierarchy() -> None:
    assert issubclass(borex.InvalidInputError, borex.BorexError) and issubclass(borex.InvalidInputError, ValueError)
    assert issubclass(borex.MissingFileError, FileNotFoundError)
    assert issubclass(borex.BorexIOError, OSError) and issubclass(borex.BorexRuntimeError, RuntimeError)
    assert issubclass(borex.InternalError, RuntimeError) and issubclass(borex.ModelError, ValueError)


def test_counterfactual_report_is_typed() -> None:
    # The tiny CNN fixture (9×11 input, with its gradient graph): a counterfactual in milliseconds.
    engine = borex.Engine(model=ROOT / "tests" / "fixtures" / "tiny_cnn.onnx")
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    r = engine.counterfactual(image, 1, steps=5, restarts=1).report
    assert isinstance(r, borex.CounterfactualReport)
    d = r.to_dict()
    assert (r.start_class, r.start_probability, r.model_calls) == (
        d["start_class"], pytest.approx(d["start_probability"]), d["model_calls"]
    )
    (t,) = r.targets
    want = d["targets"][0]
    assert isinstance(t, borex.CounterfactualTarget) and t.class_id == want["class"] == 1
    assert (t.success, t.predicted_after, t.changed_pixels) == (
        want["success"], want["predicted_after"], want["changed_pixels"]
    )
    assert t.probability_after == pytest.approx(want["probability_after"]) and t["norms"] == want["norms"]
