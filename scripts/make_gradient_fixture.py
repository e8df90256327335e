#!/usr/bin/env python3
"""A tiny random CNN's forward and forward+gradient graphs (scripts/gradient_graph.py)
and its input gradient by central finite differences in float64 numpy.

The numpy forward pass is written independently of ONNX (direct convolution
loops) and checked against ONNX Runtime on the forward graph; the gradient
reference is then (f(x + h e_i) − f(x − h e_i)) / 2h of that float64 forward,
so it knows nothing of the hand-built backward graph it tests. Odd input size
and stride-2 layers exercise the transposed convs' output padding.

Writes tests/fixtures/tiny_cnn{.onnx,.grad.onnx} and tiny_cnn_fd.json.
Needs numpy, onnx, onnxruntime.
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gradient_graph  # noqa: E402

FIX = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
rng = np.random.default_rng(5)
C, H, W = 3, 9, 11
spec = [(4, 1), (6, 2), (5, 2)]  # (out channels, stride), 3×3 kernels, pad 1
layers = []
cin = C
for cout, s in spec:
    layers.append(("conv", (rng.normal(size=(cout, cin, 3, 3)) * 0.5).astype(np.float32),
                   (rng.normal(size=cout) * 0.1).astype(np.float32), s, 1))
    cin = cout
head = ((rng.normal(size=(4, cin))).astype(np.float32), (rng.normal(size=4) * 0.1).astype(np.float32))


def conv(x, w, b, s, p):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return out + b[None, :, None, None]


def logits64(x):
    h = x.astype(np.float64)
    for _, w, b, s, p in layers:
        h = np.maximum(conv(h, w.astype(np.float64), b.astype(np.float64), s, p), 0)
    return h.mean(axis=(2, 3)) @ head[0].T.astype(np.float64) + head[1]


def logp(x, t):
    z = logits64(x)
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return lp[np.arange(len(t)), t]


fwd, grad = gradient_graph.build(layers, head, (C, H, W), name="tiny_cnn")
x = rng.uniform(0, 1, size=(2, C, H, W)).astype(np.float32)
t = np.array([2, 0], dtype=np.int64)

import onnxruntime as ort  # noqa: E402

sess = ort.InferenceSession(fwd.SerializeToString(), providers=["CPUExecutionProvider"])
ort_logits = sess.run(["logits"], {"input": x})[0]
assert np.allclose(ort_logits, logits64(x), atol=1e-4), "numpy forward disagrees with ONNX Runtime"

h = 1e-5
fd = np.zeros((2, C, H, W))
for idx in np.ndindex(C, H, W):
    e = np.zeros_like(x, dtype=np.float64)
    e[(slice(None),) + idx] = h
    fd[(slice(None),) + idx] = (logp(x + e, t) - logp(x - e, t)) / (2 * h)
gradient_graph.check_against(grad, x, t, fd)

gradient_graph.save(fwd, FIX / "tiny_cnn.onnx")
gradient_graph.save(grad, FIX / "tiny_cnn.grad.onnx")
(FIX / "tiny_cnn_fd.json").write_text(json.dumps({
    "generator": "scripts/make_gradient_fixture.py (central differences, h=1e-5, float64 numpy forward)",
    "shape": [2, C, H, W], "input": x.ravel().tolist(), "target": t.tolist(),
    "logits": logits64(x).ravel().tolist(), "grad": fd.ravel().tolist(),
}) + "\n")
print("ok", file=sys.stderr)
