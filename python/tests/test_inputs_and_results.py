"""Issue #25: wide grayscale PIL images read as by path, one set of type rules
(numpy integers, big-endian arrays, a bare string), and results that mean
what they say (undesirable's signed map, maps that rank no pixel)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import borex

from conftest import BINARY


def _gradient16(h: int = 96, w: int = 128) -> np.ndarray:
    """A 16-bit image using the whole range, with detail below the top byte."""
    y, x = np.mgrid[0:h, 0:w]
    return ((y * 65535 // (h - 1)) ^ (x * 37)).clip(0, 65535).astype(np.uint16)


def test_wide_grayscale_pil_images_read_as_their_file(engine: borex.Engine, tmp_path: Path) -> None:
    # Before: convert("RGB") made I;16 / I / F images all white or all black.
    a16 = _gradient16()
    path = tmp_path / "g16.png"
    Image.fromarray(a16).save(path)
    by_path = engine.explain(path, method="cam")
    opened = Image.open(path)
    assert opened.mode in ("I;16", "I")
    as_i = Image.fromarray(a16.astype(np.int32))
    as_f = Image.fromarray((a16.astype(np.float64) / 65535).astype(np.float32))
    for img in (opened, as_i, as_f):
        got = engine.explain(img, method="cam")
        assert np.array_equal(got, by_path), img.mode
    # The reference conversion, independently: round(v·255/65535) on each channel.
    rgb8 = np.repeat(np.round(a16 / 65535 * 255).astype(np.uint8)[..., None], 3, axis=2)
    assert np.array_equal(engine.explain(rgb8, method="cam"), by_path)


@pytest.mark.parametrize(
    ("img", "words"),
    [
        (Image.fromarray(np.full((8, 8), 70000, np.int32)), ["'I'", "70000..70000", "16-bit"]),
        (Image.fromarray(np.full((8, 8), 2.5, np.float32)), ["'F'", "2.5", "[0, 1]"]),
    ],
)
def test_wide_grayscale_out_of_range_is_refused(engine: borex.Engine, img: Any, words: list[str]) -> None:
    with pytest.raises(borex.InvalidInputError) as e:
        engine.classify(img)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_numpy_integers_are_ints_everywhere(engine: borex.Engine, chelsea: Path) -> None:
    # Before: class_=np.int64(282) was refused while iters=np.int64(…) was accepted.
    want = engine.explain(chelsea, method="cam", class_=282)
    for v in (np.int64(282), np.uint16(282), np.int32(282)):
        assert np.array_equal(engine.explain(chelsea, method="cam", class_=v), want)
    with pytest.raises(TypeError, match="class_ must be a class id"):
        engine.explain(chelsea, method="cam", class_=np.float64(282))
    with pytest.raises(borex.InvalidInputError, match="a bool"):
        engine.classify(chelsea, top=np.True_)


def test_huge_ints_are_reported_as_given(engine: borex.Engine, chelsea: Path) -> None:
    # Before: class_=2**70 was reported as 18446744073709551615.
    for v in (2**70, 2**200):
        with pytest.raises(borex.InvalidInputError) as e:
            engine.explain(chelsea, method="cam", class_=v)
        assert str(v) in str(e.value) and "18446744073709551615" not in str(e.value)
    with pytest.raises(borex.InvalidInputError, match=str(2**70)):
        engine.refine(chelsea, iters=2**70)


def test_big_endian_arrays_are_converted(engine: borex.Engine, chelsea: Path) -> None:
    # Before: "dtype >f8 is not supported: pass float32 or float64".
    rng = np.random.default_rng(1)
    m = rng.random((224, 224))
    assert engine.evaluate(chelsea, m.astype(">f8")) == engine.evaluate(chelsea, m)
    assert engine.evaluate(chelsea, m.astype(">f4")) == engine.evaluate(chelsea, m.astype(np.float32))
    img = np.asarray(Image.open(chelsea).convert("RGB")) / 255.0
    assert engine.classify(img.astype(">f8")) == engine.classify(img)


def test_a_bare_string_is_not_a_list_of_images(engine: borex.Engine, chelsea: Path) -> None:
    # Before: refine_many("chelsea.png") refined the images "c", "h", "e", …
    for images in (str(chelsea), chelsea, b"x.png"):
        with pytest.raises(borex.InvalidInputError, match="images must be a list"):
            engine.refine_many(images, iters=2)  # type: ignore[arg-type]
    with pytest.raises(borex.InvalidInputError, match="priors must be a list"):
        engine.refine_many([chelsea], priors="rise-fast", iters=2)  # type: ignore[arg-type]


def test_undesirable_returns_the_signed_map_and_honours_masks(
    engine: borex.Engine, chelsea: Path, tmp_path: Path
) -> None:
    # Before: Python got target.npy (≥ 0 everywhere), and --masks was ignored (4000 masks).
    out = tmp_path / "cli"
    subprocess.run(
        [
            str(BINARY),
            "explain",
            str(chelsea),
            "-m",
            "undesirable",
            "--masks",
            "20",
            "-o",
            str(out),
            "-q",
            "--no-metrics",
        ],
        check=True,
        capture_output=True,
    )
    signed = np.load(out / "signed.npy")
    got = engine.explain(chelsea, method="undesirable", masks=20)
    assert np.array_equal(got, signed)
    assert got.min() < 0 < got.max(), "a signed map has both signs"
    assert not np.array_equal(got, np.load(out / "target.npy"))
    report = json.loads((out / "report.json").read_text())
    assert report["parameters"]["rise"]["n"] == 20, report["parameters"]


@pytest.mark.parametrize(
    ("m", "words"),
    [
        (np.zeros((224, 224), np.float32), "is all zero"),
        (np.full((224, 224), 0.3, np.float32), "is constant (0.3 everywhere)"),
        (np.ones((1, 1), np.float32), "is a single pixel"),
    ],
)
def test_evaluate_refuses_a_map_that_ranks_no_pixel(
    engine: borex.Engine, chelsea: Path, m: np.ndarray, words: str
) -> None:
    # Before: scored (0.30, 0.23) although `borex eval` refuses such a map file.
    with pytest.raises(borex.InvalidInputError) as e:
        engine.evaluate(chelsea, m)
    assert words in str(e.value) and "ranks no pixel" in str(e.value), str(e.value)


def test_numpy_bools_are_bools_in_settings(engine: borex.Engine, chelsea: Path) -> None:
    # A numpy bool scalar (np.True_) is a bool setting, as a numpy integer is an int one.
    a = engine.refine(chelsea, iters=2, metrics=np.False_, relative_gain=np.True_)
    b = engine.refine(chelsea, iters=2, metrics=False, relative_gain=True)
    assert np.array_equal(a.refined, b.refined) and a.report["settings"] == b.report["settings"]
