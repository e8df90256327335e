"""examples/python/ray_refine.py on a local Ray cluster (2 CPUs): the maps it
writes equal `borex refine`'s on the same images, bit for bit, and its
summary table has one row per image."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import IMAGES, ITERS, ROOT, cli_refine

ray = pytest.importorskip("ray", reason="ray is installed by scripts/test.sh")


def _load_example() -> object:
    path = ROOT / "examples" / "python" / "ray_refine.py"
    spec = importlib.util.spec_from_file_location("ray_refine", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ray_refine"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ray_refine_equals_cli(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    # PNGs: Pillow (Ray's decoder) and borex decode them to the same pixels.
    names = ["chelsea.png", "coffee.png", "astronaut.png"]
    for n in names:
        shutil.copy(IMAGES / n, images / n)
    example = _load_example()
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
        summary = example.run(
            str(images),
            str(tmp_path / "out"),
            iters=ITERS,
            seed=0,
            workers=2,
            batch=2,
            lockstep=2,
            settings={"metrics": False},
            # Two actors on two CPUs would leave none for the read tasks: each reserves half a CPU.
            cpus_per_worker=0.5,
        )
    finally:
        ray.shutdown()
    assert sorted(Path(p).name for p in summary["path"]) == sorted(names)
    assert (tmp_path / "out" / "summary.csv").is_file() and (tmp_path / "out" / "summary.parquet").is_file()
    assert list(summary["queries"]) == [ITERS] * len(names)
    for n in names:
        want, _, report = cli_refine(images / n, tmp_path / "cli" / n, "--iters", str(ITERS), "--no-metrics")
        got = np.load(tmp_path / "out" / "maps" / (Path(n).stem + ".npy"))
        assert got.dtype == np.float32
        assert np.array_equal(got, want), n
        row = summary[summary["path"].map(lambda p, n=n: Path(p).name == n)].iloc[0]
        assert row["class"] == report["class"]
