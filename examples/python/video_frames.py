"""Refine the saliency maps of a video's frames, several in lockstep.

    python examples/python/video_frames.py VIDEO|FRAME_DIR -o OUT [--every 10] [--max-frames 16]
        [--lockstep 8] [--iters 50] [--seed 0]

A video is decoded with the ``ffmpeg`` command (scripts/setup.sh installs
it) into RGB frames; a folder is read in file-name order. Every
``--every``-th frame is refined; ``--lockstep`` frames advance together (one
model call per step for all of them). OUT gets ``maps.npy`` (T×H×W float32,
one map per selected frame) and ``frames.csv``. ``borex video`` does the
same from the command line, with resume, shards and an MP4 overlay.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

import borex


def video_frames(path: Path) -> Iterator[npt.NDArray[np.uint8]]:
    """Every frame of a video as H×W×3 uint8, through ffmpeg's raw RGB output."""
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    size = w * h * 3
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    proc.stdout.close()
    proc.wait()


def folder_frames(path: Path) -> Iterator[npt.NDArray[np.uint8]]:
    for f in sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        yield np.asarray(Image.open(f).convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--max-frames", type=int, default=16)
    ap.add_argument("--lockstep", type=int, default=8)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    src = Path(a.video)
    frames = folder_frames(src) if src.is_dir() else video_frames(src)
    selected = [(i, f) for i, f in enumerate(frames) if i % a.every == 0][: a.max_frames]
    engine = borex.Engine()
    results = engine.refine_many([f for _, f in selected], lockstep=a.lockstep, iters=a.iters, seed=a.seed)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "maps.npy", np.stack([r.refined for r in results]))
    with open(out / "frames.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "class", "label", "probability", "insertion", "deletion"])
        for (i, _), r in zip(selected, results):
            w.writerow(
                [
                    i,
                    r.class_id,
                    r.report.label or "",
                    r.report.probability,
                    r.report.refined.insertion,
                    r.report.refined.deletion,
                ]
            )
    print(f"refined {len(results)} frames; wrote {out / 'maps.npy'} and {out / 'frames.csv'}")


if __name__ == "__main__":
    main()
