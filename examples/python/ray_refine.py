"""Refine the saliency maps of a folder of images on a Ray cluster.

    python examples/python/ray_refine.py IMAGES_DIR -o OUT [--iters 50] [--seed 0]
        [--workers 2] [--batch 8] [--lockstep 8] [--cpus-per-worker 1] [--address auto]
        [--model MODEL.onnx] [--setting NAME=VALUE ...]

Ray Data reads the image files (``ray.data.read_binary_files``: bytes, so a
corrupt file fails in borex, for that image alone), and ``map_batches``
hands batches of them to a pool of actors, each holding one ``borex.Engine``
(the model is loaded once per worker, not per image); each batch is refined
with ``Engine.refine_many`` (``--lockstep`` loops advance together, one model
call per step). Every map is written as soon as it exists, to
``OUT/maps/<relative path>.npy`` (``sub/cat.png`` → ``maps/sub/cat.png.npy``:
``cat.png``, ``cat.jpg`` and ``other/cat.png`` never share a file), float32
H×W, the ``refined.npy`` of ``borex refine``. ``OUT/summary.csv`` and
``OUT/summary.parquet`` get one row per image: its ``status`` (``refined``,
``skipped``: done by an earlier run, or ``failed``, with the ``error``),
class, label, probability, insertion, deletion, queries, seconds.

Reruns resume: next to each map a sidecar (``<map>.json``) records the hash
of what decides it (the model file's SHA-256 and its preprocessing sidecar,
the image file's SHA-256, iters, seed and every setting: what ``job.json``
of ``borex refine`` compares), and an image whose sidecar matches is
skipped. A failed image has no sidecar and is tried again. Without
``--address`` a local cluster is started; with ``--address auto`` (on a
cluster node, or a KubeRay head) the job joins that cluster: see
docs/scale-out.md.

Maps equal ``borex refine IMAGE --seed S --iters N`` on the same file, bit
for bit (borex decodes the file, as the command line does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

import borex

#: What ``read_binary_files`` picks up in a folder (the formats borex decodes).
IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "pnm", "ppm", "pgm", "tga", "qoi"]
COLUMNS = ("path", "name", "map", "status", "error", "class", "label", "probability", "insertion", "deletion",
           "queries", "seconds")


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


def relative_name(path: str, root: str) -> str:
    """The image's path below the input folder, with `/` (the file's own name
    when the input is one file): unique per image, so it names the outputs."""
    p, r = PurePosixPath(path.replace(os.sep, "/")), PurePosixPath(root.replace(os.sep, "/"))
    try:
        rel = p.relative_to(r)
    except ValueError:
        return p.name
    return p.name if str(rel) == "." else str(rel)


def map_name(name: str) -> str:
    """Where an image's map goes, below OUT/maps: its relative path plus `.npy`
    (`sub/cat.png` → `sub/cat.png.npy`)."""
    return name + ".npy"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def job_key(model: Path, iters: int, seed: int, settings: dict[str, Any]) -> dict[str, Any]:
    """What decides every map of the job but the image, as `borex refine`'s
    job.json names it: the model by its file's hash and its preprocessing
    (the sidecar JSON next to it), and every setting. `--lockstep` and
    `--batch` (images per map_batches call) change no map (refine_many equals
    refine), so they are not in it."""
    sidecar = model.with_suffix(".json")
    return {
        "model_sha256": _sha256_file(model),
        "model_sidecar": json.loads(sidecar.read_text()) if sidecar.is_file() else None,
        "iters": iters,
        "seed": seed,
        "settings": {k: settings[k] for k in sorted(settings)},
    }


def _write_atomic(target: Path, write: Any) -> None:
    """Write through a temporary name, then rename: never a half-written file."""
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, target)


class RefineWorker:
    """One Ray actor: a borex Engine, reused for every batch this worker gets.
    It never raises for one image: a failure becomes that image's row (Ray
    would otherwise retry the whole batch, which fails again)."""

    def __init__(
        self,
        out_dir: str,
        root: str,
        model: str | None,
        key: dict[str, Any],
        iters: int,
        seed: int,
        lockstep: int,
        settings: dict[str, Any],
    ) -> None:
        self.engine = borex.Engine(model=model)
        self.maps = Path(out_dir) / "maps"
        self.root, self.key = root, key
        self.iters, self.seed, self.lockstep, self.settings = iters, seed, lockstep, settings

    def _image_key(self, data: bytes) -> str:
        """The hash of everything that decides this image's map."""
        both = {"job": self.key, "image_sha256": hashlib.sha256(data).hexdigest()}
        return hashlib.sha256(json.dumps(both, sort_keys=True).encode()).hexdigest()

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        rows: list[dict[str, Any]] = []
        todo: list[tuple[int, str, Path, str]] = []  # (row, file for borex, map, key)
        with tempfile.TemporaryDirectory(prefix="borex-ray-") as tmp:
            for i, (path, data) in enumerate(zip(batch["path"], batch["bytes"])):
                name = relative_name(str(path), self.root)
                target = self.maps / map_name(name)
                key = self._image_key(bytes(data))
                row: dict[str, Any] = {"path": str(path), "name": name, "map": str(target), "status": "", "error": ""}
                rows.append(row)
                sidecar = target.with_name(target.name + ".json")
                done = _read_sidecar(sidecar)
                if target.is_file() and done.get("key") == key:
                    row.update(done["row"], status="skipped")
                    continue
                # borex decodes the file itself (as `borex refine` does): the same pixels, and a
                # corrupt file is this image's error. The temporary keeps the file's extension.
                local = Path(tmp) / f"{i}{PurePosixPath(name).suffix}"
                local.write_bytes(bytes(data))
                todo.append((i, str(local), target, key))
            t0 = time.perf_counter()
            results = self.engine.refine_many(
                [f for _, f, _, _ in todo],
                lockstep=self.lockstep,
                iters=self.iters,
                seed=self.seed,
                errors="return",
                **self.settings,
            )
            seconds = (time.perf_counter() - t0) / max(len(todo), 1)
        for k, ((i, copy, target, key), r) in enumerate(zip(todo, results)):
            row = rows[i]
            if isinstance(r, borex.BorexError):
                # The message names the temporary copy and its place in the batch: name the image instead.
                why = str(r).replace(f"images[{k}]: ", "", 1).replace(copy, row["name"])
                row.update(_failed(), status="failed", error=f"{type(r).__name__}: {why}", map="")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, lambda f, m=r.refined: np.save(f, m))
            result = {
                "class": r.class_id,
                "label": r.report.label or "",
                "probability": r.report.probability,
                "insertion": _num(r.report.refined.insertion),
                "deletion": _num(r.report.refined.deletion),
                "queries": len(r.queries),
                "seconds": seconds,
            }
            row.update(result, status="refined")
            # The sidecar last: one that exists says its map is complete.
            sidecar = target.with_name(target.name + ".json")
            _write_atomic(sidecar, lambda f, k=key, res=result: f.write(json.dumps({"key": k, "row": res}).encode()))
        return {c: np.asarray([row.get(c, _failed().get(c)) for row in rows]) for c in COLUMNS}


def _failed() -> dict[str, Any]:
    """A row's result columns for an image without a map."""
    return {"class": -1, "label": "", "probability": float("nan"), "insertion": float("nan"),
            "deletion": float("nan"), "queries": 0, "seconds": float("nan")}


def _read_sidecar(path: Path) -> dict[str, Any]:
    """A map's sidecar, or {} when there is none (or it cannot be read: the image is refined again)."""
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) and isinstance(out.get("row"), dict) else {}


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
    model: str | None = None,
) -> Any:
    """Refine every image under `images` into `out`; returns the summary (a pandas DataFrame,
    one row per image, failed ones included). Ray must be initialised (`ray.init(...)`) by the
    caller. `model`: an ONNX classifier (None: the bundled one). `cpus_per_worker` is what each
    actor reserves in Ray's scheduler (borex itself uses every core it finds); leave CPUs
    unreserved for Ray Data's read tasks, or they wait for the actors, which wait for them."""
    import ray

    settings = settings or {}
    out_dir = Path(out).resolve()
    (out_dir / "maps").mkdir(parents=True, exist_ok=True)
    model_file = Path(model) if model else Path(borex.info()["assets"]) / "models" / "efficientnet-lite0.onnx"
    key = job_key(model_file, iters, seed, settings)
    local = "://" not in images
    root = str(Path(images).resolve()) if local else images.split("://", 1)[1]
    ds = ray.data.read_binary_files(
        root if local else images, include_paths=True, file_extensions=IMAGE_EXTENSIONS
    )
    refined = ds.map_batches(
        RefineWorker,
        fn_constructor_kwargs={
            "out_dir": str(out_dir),
            "root": root,
            "model": None if model is None else str(Path(model).resolve()),
            "key": key,
            "iters": iters,
            "seed": seed,
            "lockstep": lockstep,
            "settings": settings,
        },
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch,
        batch_format="numpy",
        num_cpus=cpus_per_worker,
    )
    summary = refined.to_pandas().sort_values("name").reset_index(drop=True)
    for name, write in (("summary.csv", summary.to_csv), ("summary.parquet", summary.to_parquet)):
        tmp = out_dir / (name + ".tmp")
        write(tmp, index=False)
        os.replace(tmp, out_dir / name)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("images", help="a folder of images (or one image), local or a URL Ray reads (s3://…)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="actors, each with its own borex.Engine")
    ap.add_argument("--batch", type=int, default=8, help="images per map_batches call")
    ap.add_argument("--lockstep", type=int, default=8)
    ap.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each actor reserves in Ray")
    ap.add_argument("--address", default=None, help="a Ray cluster to join ('auto' on a cluster node)")
    ap.add_argument("--model", default=None, help="an ONNX classifier (default: the bundled one)")
    ap.add_argument("--setting", type=_setting, action="append", default=[], help="a refine setting, NAME=VALUE")
    a = ap.parse_args()

    import ray

    ray.init(address=a.address)
    summary = run(
        a.images, a.out, a.iters, a.seed, a.workers, a.batch, a.lockstep, dict(a.setting), a.cpus_per_worker, a.model
    )
    print(summary.to_string(index=False))
    counts = summary["status"].value_counts().to_dict()
    print(
        f"{len(summary)} images: {counts.get('refined', 0)} refined, {counts.get('skipped', 0)} already done, "
        f"{counts.get('failed', 0)} failed; maps in {Path(a.out) / 'maps'}, table in {Path(a.out) / 'summary.csv'}"
    )


if __name__ == "__main__":
    main()
