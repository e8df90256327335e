"""Refine the saliency maps of a folder of images on a Ray cluster.

    python examples/python/ray_refine.py IMAGES_DIR -o OUT [--iters 50] [--seed 0]
        [--workers 2] [--batch 8] [--lockstep 8] [--cpus-per-worker 1] [--address auto]
        [--setting NAME=VALUE ...]

Ray Data reads the images (``ray.data.read_images``), and ``map_batches``
hands batches of them to a pool of actors, each holding one
``borex.Engine`` (the model is loaded once per worker, not per image); each
batch is refined with ``Engine.refine_many`` (``--lockstep`` loops advance
together, one model call per step). Every map is written as soon as it
exists, to ``OUT/maps/<name>.npy`` (float32 H×W, the ``refined.npy`` of
``borex refine``); ``OUT/summary.csv`` and ``OUT/summary.parquet`` get one
row per image (class, label, probability, insertion, deletion, queries,
seconds). Without ``--address`` a local cluster is started; with
``--address auto`` (on a cluster node, or a KubeRay head) the job joins that
cluster: see docs/scale-out.md.

Maps equal ``borex refine IMAGE --seed S --iters N`` on the same pixels, bit
for bit. Ray decodes with Pillow: a PNG gives borex's pixels exactly, a JPEG
may differ from borex's own decoder in the last bit of some pixels.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import borex


def _setting(text: str) -> tuple[str, Any]:
    """NAME=VALUE → (name, value), numbers parsed: `--setting kappa=5`."""
    name, _, value = text.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    for cast in (int, float):
        try:
            return name.replace("-", "_"), cast(value)
        except ValueError:
            pass
    if value in ("true", "false"):
        return name.replace("-", "_"), value == "true"
    return name.replace("-", "_"), value


def _num(x: Any) -> float:
    """A report number, NaN where the report has none (metrics off)."""
    return float("nan") if x is None else float(x)


def map_name(path: str) -> str:
    """Where an image's map goes: its file name without the extension, plus `.npy`."""
    return Path(path).stem + ".npy"


class RefineWorker:
    """One Ray actor: a borex Engine, reused for every batch this worker gets."""

    def __init__(self, out_dir: str, iters: int, seed: int, lockstep: int, settings: dict[str, Any]) -> None:
        self.engine = borex.Engine()
        self.maps = Path(out_dir) / "maps"
        self.maps.mkdir(parents=True, exist_ok=True)
        self.iters, self.seed, self.lockstep, self.settings = iters, seed, lockstep, settings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        images = list(batch["image"])
        results = self.engine.refine_many(
            images, lockstep=self.lockstep, iters=self.iters, seed=self.seed, **self.settings
        )
        seconds = (time.perf_counter() - t0) / max(len(images), 1)
        rows: dict[str, list[Any]] = {
            k: []
            for k in ("path", "map", "class", "label", "probability", "insertion", "deletion", "queries", "seconds")
        }
        for path, r in zip(batch["path"], results):
            target = self.maps / map_name(str(path))
            tmp = target.with_suffix(".npy.tmp")
            with open(tmp, "wb") as f:
                np.save(f, r.refined)
            os.replace(tmp, target)  # never a half-written map
            metrics = r.report.get("refined") or {}
            rows["path"].append(str(path))
            rows["map"].append(str(target))
            rows["class"].append(r.class_id)
            rows["label"].append(str(r.report.get("label", "")))
            rows["probability"].append(_num(r.report.get("probability")))
            rows["insertion"].append(_num(metrics.get("insertion")))
            rows["deletion"].append(_num(metrics.get("deletion")))
            rows["queries"].append(len(r.queries))
            rows["seconds"].append(seconds)
        return {k: np.asarray(v) for k, v in rows.items()}


def run(
    images: str,
    out: str,
    iters: int = 50,
    seed: int = 0,
    workers: int = 2,
    batch: int = 8,
    lockstep: int = 8,
    settings: dict[str, Any] | None = None,
    cpus_per_worker: float = 1.0,
) -> Any:
    """Refine every image under `images` into `out`; returns the summary (a pandas DataFrame).
    Ray must be initialised (`ray.init(...)`) by the caller. `cpus_per_worker` is what each actor
    reserves in Ray's scheduler (borex itself uses every core it finds); leave CPUs unreserved for
    Ray Data's read tasks, or they wait for the actors, which wait for them."""
    import ray

    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = ray.data.read_images(images, mode="RGB", include_paths=True)
    refined = ds.map_batches(
        RefineWorker,
        fn_constructor_kwargs={
            "out_dir": str(out_dir),
            "iters": iters,
            "seed": seed,
            "lockstep": lockstep,
            "settings": settings or {},
        },
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch,
        batch_format="numpy",
        num_cpus=cpus_per_worker,
    )
    summary = refined.to_pandas().sort_values("path").reset_index(drop=True)
    for name, write in (("summary.csv", summary.to_csv), ("summary.parquet", summary.to_parquet)):
        tmp = out_dir / (name + ".tmp")
        write(tmp, index=False)
        os.replace(tmp, out_dir / name)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", help="a folder of images (or one image, or a glob Ray understands)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="actors, each with its own borex.Engine")
    ap.add_argument("--batch", type=int, default=8, help="images per map_batches call")
    ap.add_argument("--lockstep", type=int, default=8)
    ap.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each actor reserves in Ray")
    ap.add_argument("--address", default=None, help="a Ray cluster to join ('auto' on a cluster node)")
    ap.add_argument("--setting", type=_setting, action="append", default=[], help="a refine setting, NAME=VALUE")
    a = ap.parse_args()

    import ray

    ray.init(address=a.address)
    summary = run(a.images, a.out, a.iters, a.seed, a.workers, a.batch, a.lockstep, dict(a.setting), a.cpus_per_worker)
    print(summary.to_string(index=False))
    print(f"wrote {len(summary)} maps to {Path(a.out) / 'maps'} and {Path(a.out) / 'summary.csv'}")


if __name__ == "__main__":
    main()
