"""`Engine.refine` and `refine_many` against `borex refine` on the sample
images: the same settings give the same maps, bit for bit; two Python threads
refining at once get the maps they would get alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import borex

from conftest import IMAGES, ITERS, cli_refine


def test_refine_equals_cli_bit_for_bit(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    args = ("--iters", str(ITERS), "--seed", "2", "--kappa", "5", "--objective", "paper", "--no-metrics")
    want, want_prior, report = cli_refine(chelsea, tmp_path / "cli", *args)
    got = engine.refine(str(chelsea), iters=ITERS, seed=2, kappa=5.0, objective="paper", metrics=False)
    assert got.refined.dtype == np.float32 and got.refined.shape == (224, 224)
    assert np.array_equal(got.refined, want)
    assert np.array_equal(got.prior, want_prior)
    # The same boxes were queried, in the same order, with the same objective values.
    cli_q = [(o["row"], o["col"], o["size"], o["f"]) for o in report["observations"]]
    assert [(q["row"], q["col"], q["size"], q["f"]) for q in got.queries] == cli_q
    assert got.report["class"] == report["class"]


def test_antithetic_refine_equals_cli_bit_for_bit(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    # objective="antithetic" is the same setting as `--objective antithetic`: the prior's mask
    # complements instead of box queries, so no queries and the same map.
    args = ("--iters", str(ITERS), "--seed", "1", "--objective", "antithetic", "--no-metrics")
    want, want_prior, report = cli_refine(chelsea, tmp_path / "cli", *args)
    got = engine.refine(str(chelsea), iters=ITERS, seed=1, objective="antithetic", metrics=False)
    assert np.array_equal(got.refined, want)
    assert np.array_equal(got.prior, want_prior)
    assert report["observations"] == [] and list(got.queries) == []
    assert got.report["settings"]["objective"] == report["settings"]["objective"] == "antithetic"
    with pytest.raises(borex.InvalidInputError, match=r"objective=antithetic .*rise-fast"):
        engine.refine(str(chelsea), prior="gradcam", objective="antithetic", metrics=False)


def test_refine_of_an_array_equals_cli_on_the_file(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    want, _, _ = cli_refine(chelsea, tmp_path / "cli", "--iters", str(ITERS), "--no-metrics")
    pixels = np.asarray(Image.open(chelsea).convert("RGB"))
    assert np.array_equal(engine.refine(pixels, iters=ITERS, metrics=False).refined, want)
    # A Fortran-ordered copy and a view through negative strides hold the same pixels: same map.
    fortran = np.asfortranarray(pixels)
    flipped = np.ascontiguousarray(pixels[::-1, ::-1])[::-1, ::-1]
    assert not fortran.flags.c_contiguous
    assert flipped.strides[0] < 0 and np.array_equal(flipped, pixels)
    assert np.array_equal(engine.refine(fortran, iters=ITERS, metrics=False).refined, want)
    assert np.array_equal(engine.refine(flipped, iters=ITERS, metrics=False).refined, want)


def test_refine_many_equals_refine_one_by_one(engine: borex.Engine, tmp_path: Path) -> None:
    paths = [IMAGES / "chelsea.png", IMAGES / "coffee.png", IMAGES / "astronaut.png"]
    many = engine.refine_many(paths, lockstep=2, iters=ITERS, metrics=False)
    assert len(many) == 3
    for path, r in zip(paths, many):
        want, want_prior, _ = cli_refine(path, tmp_path / path.stem, "--iters", str(ITERS), "--no-metrics")
        assert np.array_equal(r.refined, want), path
        assert np.array_equal(r.prior, want_prior), path


def test_refine_many_with_given_priors(engine: borex.Engine, chelsea: Path) -> None:
    prior = engine.explain(chelsea, method="gradcam")
    one = engine.refine(chelsea, prior=prior, iters=ITERS, metrics=False)
    many = engine.refine_many([chelsea, chelsea], priors=[prior, "gradcam"], lockstep=2, iters=ITERS, metrics=False)
    assert np.array_equal(many[0].refined, one.refined)
    assert np.array_equal(many[1].refined, one.refined)


def test_two_threads_refine_at_once(engine: borex.Engine) -> None:
    paths = [IMAGES / "chelsea.png", IMAGES / "coffee.png"]
    alone = [engine.refine(p, iters=ITERS, seed=1, metrics=False).refined for p in paths]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    started = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            started.wait()
            results[i] = engine.refine(paths[i], iters=ITERS, seed=1, metrics=False).refined
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(2):
        assert np.array_equal(results[i], alone[i])


def test_the_gil_is_released_while_refining(engine: borex.Engine, chelsea: Path) -> None:
    # While one thread refines, another must run Python code: with the GIL held it could not tick at all.
    ticks = 0
    done = threading.Event()

    def refine() -> None:
        engine.refine(chelsea, iters=ITERS, metrics=False)
        done.set()

    t = threading.Thread(target=refine)
    t.start()
    while not done.is_set():
        ticks += 1
        done.wait(0.01)
    t.join()
    assert ticks > 5


def test_budget_and_relative_gain_equal_the_cli(engine: borex.Engine, chelsea: Path, tmp_path: Path) -> None:
    # --budget 41 with --relative-gain (one evaluation for P): RISE gets 10 masks, the queries 15 × 2.
    args = ("--budget", "41", "--relative-gain", "--readout", "detail", "--no-metrics")
    want, want_prior, report = cli_refine(chelsea, tmp_path / "cli", *args)
    got = engine.refine(str(chelsea), budget=41, relative_gain=True, readout="detail", metrics=False)
    assert len(got.queries) == len(report["observations"]) == 15
    assert got.report["prior"]["method"] == report["prior"]["method"] == "rise-fast+masks=10"
    assert np.array_equal(got.refined, want) and np.array_equal(got.prior, want_prior)
    # Lockstep loops (the driver runs their posteriors) give the same maps with these settings.
    many = engine.refine_many([chelsea, chelsea], lockstep=2, budget=41, relative_gain=True, readout="detail",
                              metrics=False)
    assert all(np.array_equal(r.refined, want) for r in many)
    # The library names the setting; Python spells it as the keyword argument (the CLI: --budget 5).
    with pytest.raises(borex.InvalidInputError, match="budget=5 is below"):
        engine.refine(str(chelsea), budget=5, metrics=False)


def test_refine_many_takes_one_prior_for_every_image(engine: borex.Engine, tmp_path: Path) -> None:
    # Before: refine_many had no prior= (only priors=, one per image); a map given as prior= is every image's.
    paths = [IMAGES / "chelsea.png", IMAGES / "coffee.png"]
    many = engine.refine_many(paths, prior="gradcam", lockstep=2, iters=ITERS, metrics=False)
    for path, r in zip(paths, many):
        want, want_prior, _ = cli_refine(
            path, tmp_path / path.stem, "--prior", "gradcam", "--iters", str(ITERS), "--no-metrics"
        )
        assert np.array_equal(r.refined, want) and np.array_equal(r.prior, want_prior), path
    # A map as prior=: each image's result is refine() of that image with that map.
    chelsea = IMAGES / "chelsea.png"
    prior = engine.explain(chelsea, method="cam")
    many = engine.refine_many(paths, prior=prior, lockstep=2, iters=ITERS, metrics=False)
    for path, r in zip(paths, many):
        one = engine.refine(path, prior=prior, iters=ITERS, metrics=False)
        assert np.array_equal(r.refined, one.refined), path
        assert r.report["prior"]["method"] == "array"
