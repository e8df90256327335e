"""docs/models.md's runnable parts, run from the document's own code blocks (each
marked `<!-- test_docs_models: NAME -->`), so the page cannot drift: the Keras
export example (in .venv-keras, scripts/keras_env.sh) and the EfficientNet-Lite2
section (what the converter writes, what `borex classify` prints)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BINARY, HOME, IMAGES, ROOT

DOC = ROOT / "docs" / "models.md"


def blocks() -> dict[str, str]:
    """The marked fenced blocks of docs/models.md, by marker name."""
    found = re.findall(r"<!-- test_docs_models: ([\w-]+) -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.S)
    named = dict(found)
    assert len(named) == len(found), "a marker name is used twice"
    return named


def workdir(tmp_path: Path, models: Path | None) -> Path:
    """A folder laid out as the doc's commands expect (run from a checkout): scripts/ and
    .borex/{images,labels,downloads} from this checkout; .borex/models this folder, else empty."""
    cwd = tmp_path / "checkout"
    (cwd / ".borex").mkdir(parents=True)
    (cwd / "scripts").symlink_to(ROOT / "scripts")
    for d in ("images", "labels", "downloads"):
        (cwd / ".borex" / d).symlink_to(HOME / d)
    if models is None:
        (cwd / ".borex" / "models").mkdir()
    else:
        (cwd / ".borex" / "models").symlink_to(models)
    return cwd


def sh(code: str, cwd: Path) -> str:
    """The block through bash, with this venv's python and this checkout's borex first on PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), str(BINARY.parent), os.environ["PATH"]])
    p = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, f"{code}\nfailed ({p.returncode}):\n{p.stderr}"
    return p.stdout


def test_every_marked_block_is_there() -> None:
    assert set(blocks()) == {"keras", "keras-sidecar", "convert", "sidecar", "classify", "classify-output"}


def test_convert_block_writes_the_documented_sidecar_and_the_setup_model(tmp_path: Path) -> None:
    # Catches: the doc's command out of date (a flag renamed, the wrong variant), the JSON
    # shown not the one written, or setup.sh converting differently from the doc.
    b = blocks()
    cwd = workdir(tmp_path, None)
    sh(b["convert"], cwd)
    models = cwd / ".borex" / "models"
    written = json.loads((models / "efficientnet-lite2.json").read_text())
    assert written == json.loads(b["sidecar"])
    assert written == json.loads((HOME / "models" / "efficientnet-lite2.json").read_text())
    # The converter is deterministic: the doc's command gives the model setup.sh installed, byte for byte.
    assert (models / "efficientnet-lite2.onnx").read_bytes() == (
        HOME / "models" / "efficientnet-lite2.onnx"
    ).read_bytes()


def parse_table(text: str) -> list[tuple[str, list[tuple[int, int, str, float]]]]:
    """`borex classify`'s table: per image, (rank, class, label, probability) rows."""
    out: list[tuple[str, list[tuple[int, int, str, float]]]] = []
    for line in text.strip().splitlines():
        m = re.match(r"^\s+(\d+)\.\s+(\d+)\s+(.*?)\s+([0-9.]+)$", line)
        if m:
            out[-1][1].append((int(m[1]), int(m[2]), m[3], float(m[4])))
        else:
            out.append((line.strip(), []))
    return out


def test_classify_block_prints_the_documented_output(tmp_path: Path) -> None:
    # Catches: the documented output stale (a new converter, a preprocessing change in borex)
    # or the command itself broken. Probabilities to the printed 4 decimals, ±1e-3 for
    # ONNX Runtime's CPU-dependent rounding; classes and labels exactly.
    b = blocks()
    cwd = workdir(tmp_path, HOME / "models")
    got = parse_table(sh(b["classify"], cwd))
    want = parse_table(b["classify-output"])
    assert [(img, [r[:3] for r in rows]) for img, rows in got] == [(img, [r[:3] for r in rows]) for img, rows in want]
    np.testing.assert_allclose(
        [r[3] for _, rows in got for r in rows], [r[3] for _, rows in want for r in rows], atol=1e-3
    )


KERAS_PYTHON = Path(os.environ.get("BOREX_KERAS_PYTHON") or ROOT / ".venv-keras" / "bin" / "python")

# Runs in .venv-keras: seeded random weights for MobileNetV2 (CI cannot download ImageNet's),
# with each batch norm's statistics set from the test images themselves (momentum 0, one
# training-mode call): with the initial statistics (mean 0, variance 1) the network's output
# hardly depends on its input (1e-9 apart for an image and its mirror), and a test of the
# preprocessing needs one that does. Then the doc's block, with only `weights=` changed, and
# Keras's own probabilities of the images.
KERAS_DRIVER = """
import sys
import numpy as np
import tensorflow as tf

block, images = open(sys.argv[1]).read(), np.load(sys.argv[2]).astype("float32")
pre = tf.keras.applications.mobilenet_v2.preprocess_input
tf.keras.utils.set_random_seed(0)
net = tf.keras.applications.MobileNetV2(weights=None)
for layer in net.layers:
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        layer.momentum = 0.0
net(pre(images.copy()), training=True)
net.save_weights("random.weights.h5")
assert block.count('weights="imagenet"') == 1, block
scope = {}
exec(compile(block.replace('weights="imagenet"', 'weights="random.weights.h5"'), "docs/models.md", "exec"), scope)
np.save("keras_probs.npy", scope["model"](pre(images.copy()), training=False).numpy())
"""


def test_keras_example_exports_what_keras_computes(tmp_path: Path) -> None:
    # Catches: a doc example that no longer runs (tf2onnx's or Keras's API moved), an export
    # borex cannot read (channels last, a fixed batch of 1), and a sidecar that declares the
    # wrong preprocessing (torchvision's mean/std instead of 127.5 moves these probabilities by
    # 0.028 on values near 0.003; an image and its mirror differ by 0.003) or output kind.
    if not KERAS_PYTHON.is_file():
        if os.environ.get("BOREX_ALLOW_NO_KERAS") == "1":
            pytest.skip("no .venv-keras (BOREX_ALLOW_NO_KERAS=1)")
        pytest.fail(f"{KERAS_PYTHON} missing: run scripts/keras_env.sh (or set BOREX_ALLOW_NO_KERAS=1)")
    b = blocks()
    # Two images already 224×224 (borex resizes nothing, Keras gets the very same pixels).
    names = ["chelsea", "coffee"]
    for n in names:
        im = Image.open(IMAGES / f"{n}.png").convert("RGB")
        s = min(im.size)
        left, top = (im.size[0] - s) // 2, (im.size[1] - s) // 2
        im.crop((left, top, left + s, top + s)).resize((224, 224), Image.BILINEAR).save(tmp_path / f"{n}.png")
    pixels = np.stack([np.asarray(Image.open(tmp_path / f"{n}.png")) for n in names])
    np.save(tmp_path / "images.npy", pixels)
    (tmp_path / "block.py").write_text(b["keras"])
    (tmp_path / "driver.py").write_text(KERAS_DRIVER)
    p = subprocess.run(
        [str(KERAS_PYTHON), "driver.py", "block.py", "images.npy"],
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-4000:]
    want = np.load(tmp_path / "keras_probs.npy")
    assert want.shape == (2, 1000)
    (tmp_path / "mobilenetv2.json").write_text(b["keras-sidecar"])
    (tmp_path / "imagenet1k.txt").symlink_to(HOME / "labels" / "imagenet1k.txt")
    images = [str(tmp_path / f"{n}.png") for n in names]
    model = str(tmp_path / "mobilenetv2.onnx")
    out = subprocess.run(
        [str(BINARY), "classify", *images, "--model", model, "--json", "--quiet", "--top", "5"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    labels = (HOME / "labels" / "imagenet1k.txt").read_text().splitlines()
    for got, row in zip([r["predictions"] for r in json.loads(out)], want):
        top = list(np.argsort(-row)[:5])
        assert [g["class"] for g in got] == top
        assert [g["label"] for g in got] == [labels[i] for i in top]
        # TensorFlow's and ONNX Runtime's float32 kernels through 50-odd layers: measured 2e-5 apart (relative).
        np.testing.assert_allclose([g["probability"] for g in got], row[top], rtol=1e-3)
