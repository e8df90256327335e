"""examples/python/ray_refine.py on a local Ray cluster (2 CPUs): the maps it
writes equal `borex refine`'s on the same images, bit for bit; its summary
table has one row per image; a corrupt image is a failed row, not a failed
job; same-named images get their own maps; a rerun skips what is done."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import IMAGES, ITERS, ROOT, cli_refine

ray = pytest.importorskip("ray", reason="ray is installed by scripts/test.sh")

GAP_MODEL = ROOT / "tests" / "fixtures" / "gap_linear_logits.onnx"


def _load_example() -> Any:
    path = ROOT / "examples" / "python" / "ray_refine.py"
    spec = importlib.util.spec_from_file_location("ray_refine", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ray_refine"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def example() -> Iterator[Any]:
    mod = _load_example()
    ray.init(
        num_cpus=2,
        # Loopback only; the workers import the example's module (its RefineWorker class) from its folder.
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT / "examples" / "python")}},
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield mod
    finally:
        ray.shutdown()


def _run(example: Any, images: Path, out: Path, **kw: Any) -> Any:
    # Two actors on two CPUs would leave none for the read tasks: each reserves half a CPU.
    args: dict[str, Any] = {"iters": ITERS, "seed": 0, "workers": 2, "batch": 2, "lockstep": 2,
                            "settings": {"metrics": False, "objective": "matched"}, "cpus_per_worker": 0.5}
    args.update(kw)
    return example.run(str(images), str(out), **args)


def test_ray_refine_equals_cli(example: Any, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    names = ["chelsea.png", "coffee.png", "astronaut.png"]
    for n in names:
        shutil.copy(IMAGES / n, images / n)
    summary = _run(example, images, tmp_path / "out")
    assert sorted(summary["name"]) == sorted(names)
    assert (tmp_path / "out" / "summary.csv").is_file() and (tmp_path / "out" / "summary.parquet").is_file()
    assert list(summary["queries"]) == [ITERS] * len(names)
    assert list(summary["status"]) == ["refined"] * len(names)
    for n in names:
        want, _, report = cli_refine(
            images / n, tmp_path / "cli" / n, "--iters", str(ITERS), "--no-metrics", "--objective", "matched"
        )
        got = np.load(tmp_path / "out" / "maps" / (n + ".npy"))
        assert got.dtype == np.float32
        assert np.array_equal(got, want), n
        row = summary[summary["name"] == n].iloc[0]
        assert row["class"] == report["class"]


def test_ray_refine_survives_a_bad_image_names_maps_uniquely_and_resumes(example: Any, tmp_path: Path) -> None:
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    # Three images that the old naming (file stem) wrote to one cat.npy, and a corrupt one.
    shutil.copy(IMAGES / "chelsea.png", images / "cat.png")
    Image.open(IMAGES / "coffee.png").convert("RGB").save(images / "cat.jpg", quality=90)
    shutil.copy(IMAGES / "astronaut.png", images / "sub" / "cat.png")
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    good = ["cat.jpg", "cat.png", "sub/cat.png"]
    out = tmp_path / "out"
    model = str(GAP_MODEL)

    def cli(name: str, seed: int) -> np.ndarray:
        want, _, _ = cli_refine(images / name, tmp_path / "cli" / f"{name}-{seed}", "--model", model,
                                "--iters", str(ITERS), "--seed", str(seed), "--no-metrics", "--objective", "matched")
        return want

    first = _run(example, images, out, model=model)
    assert list(first["name"]) == ["cat.jpg", "cat.png", "corrupt.png", "sub/cat.png"]
    status = dict(zip(first["name"], first["status"]))
    assert status == {"cat.jpg": "refined", "cat.png": "refined", "corrupt.png": "failed", "sub/cat.png": "refined"}
    bad = first[first["name"] == "corrupt.png"].iloc[0]
    assert bad["error"].startswith("ImageError: corrupt.png: not a readable image"), bad["error"]
    assert bad["map"] == "" and not (out / "maps" / "corrupt.png.npy").exists()
    maps = {n: out / "maps" / (n + ".npy") for n in good}
    for n in good:
        assert np.array_equal(np.load(maps[n]), cli(n, 0)), n
    stamps = {n: maps[n].stat().st_mtime_ns for n in good}

    # A rerun with the same settings: done images are skipped (their maps untouched, their rows
    # as before), the failed one is tried again, and a changed image is refined again.
    shutil.copy(IMAGES / "coffee.png", images / "sub" / "cat.png")
    second = _run(example, images, out, model=model)
    status = dict(zip(second["name"], second["status"]))
    assert status == {"cat.jpg": "skipped", "cat.png": "skipped", "corrupt.png": "failed", "sub/cat.png": "refined"}
    for n in ("cat.jpg", "cat.png"):
        assert maps[n].stat().st_mtime_ns == stamps[n], n
        a, b = first[first["name"] == n].iloc[0], second[second["name"] == n].iloc[0]
        assert (a["class"], a["probability"], a["queries"]) == (b["class"], b["probability"], b["queries"])
    assert np.array_equal(np.load(maps["sub/cat.png"]), cli("sub/cat.png", 0))

    # Other settings are another job: everything is refined again.
    third = _run(example, images, out, model=model, seed=1)
    assert sorted(third["status"]) == ["failed", "refined", "refined", "refined"]
    for n in good:
        assert np.array_equal(np.load(maps[n]), cli(n, 1)), n
