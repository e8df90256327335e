#!/usr/bin/env python3
"""A tiny random CNN's forward and forward+gradient graphs (scripts/gradient_graph.py)
and its input gradient by central finite differences in float64 numpy.

The numpy forward pass is written independently of ONNX (direct convolution
loops) and checked against ONNX Runtime on the forward graph; the gradient
reference is then (f(x + h e_i) − f(x − h e_i)) / 2h of that float64 forward,
so it knows nothing of the hand-built backward graph it tests. Odd input size
and stride-2 layers exercise the transposed convs' output padding; a residual
MBConv-style block (1×1 expand, depthwise 3×3, ReLU6, 1×1 project) and TF
"SAME" padding exercise what EfficientNet-Lite0's gradient graph uses.

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


def conv_op(cout, cin, k, s, groups, act, pad, scale):
    w = (rng.normal(size=(cout, cin // groups, k, k)) * scale).astype(np.float32)
    return ("conv", w, (rng.normal(size=cout) * 0.5).astype(np.float32), s, groups, act, pad)


# Weights large enough that some ReLU6 units saturate above 6.
prog = [
    conv_op(4, 3, 3, 1, 1, "relu", 1, 1.5),
    ("block_start",),
    conv_op(8, 4, 1, 1, 1, "relu6", "same", 2.0),
    conv_op(8, 8, 3, 1, 8, "relu6", "same", 1.5),
    conv_op(4, 8, 1, 1, 1, None, "same", 0.5),
    ("residual",),
    conv_op(6, 4, 3, 2, 1, "relu", "same", 0.5),
    conv_op(5, 6, 3, 2, 1, "relu", 1, 0.5),
]
head = ((rng.normal(size=(4, 5))).astype(np.float32), (rng.normal(size=4) * 0.1).astype(np.float32))


def conv(x, w, b, s, groups, pad):
    n, c, h, wd = x.shape
    o, ipg, k, _ = w.shape
    if pad == "same":
        ho, wo = -(-h // s), -(-wd // s)
        th, tw = max((ho - 1) * s + k - h, 0), max((wo - 1) * s + k - wd, 0)
        xp = np.pad(x, ((0, 0), (0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2)))
    else:
        ho, wo = (h + 2 * pad - k) // s + 1, (wd + 2 * pad - k) // s + 1
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, o, ho, wo))
    opg = o // groups
    for i in range(ho):
        for j in range(wo):
            for gi in range(groups):
                patch = xp[:, gi * ipg:(gi + 1) * ipg, i * s:i * s + k, j * s:j * s + k]
                out[:, gi * opg:(gi + 1) * opg, i, j] = np.einsum("nckl,ockl->no", patch, w[gi * opg:(gi + 1) * opg])
    return out + b[None, :, None, None]


def logits64(x):
    h = x.astype(np.float64)
    block_in = None
    for op in prog:
        if op[0] == "block_start":
            block_in = h
        elif op[0] == "residual":
            h = h + block_in
        elif op[0] == "conv":
            _, w, b, s, g, act, pad = op
            h = conv(h, w.astype(np.float64), b.astype(np.float64), s, g, pad)
            if act == "relu":
                h = np.maximum(h, 0)
            elif act == "relu6":
                h = np.clip(h, 0, 6)
    return h.mean(axis=(2, 3)) @ head[0].T.astype(np.float64) + head[1]


def logp(x, t):
    z = logits64(x)
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return lp[np.arange(len(t)), t]


fwd, grad = gradient_graph.build_program(prog, head, (C, H, W), name="tiny_cnn")
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
# The fixture must exercise saturated ReLU6 units (the mask's upper bound).
h1 = np.maximum(conv(x.astype(np.float64), prog[0][1].astype(np.float64), prog[0][2], 1, 1, 1), 0)
e = conv(h1, prog[2][1].astype(np.float64), prog[2][2], 1, 1, "same")
print(f"expand units above 6: {np.mean(e > 6):.2%}", file=sys.stderr)
assert np.mean(e > 6) > 0.02

gradient_graph.save(fwd, FIX / "tiny_cnn.onnx")
gradient_graph.save(grad, FIX / "tiny_cnn.grad.onnx")
(FIX / "tiny_cnn_fd.json").write_text(json.dumps({
    "generator": "scripts/make_gradient_fixture.py (central differences, h=1e-5, float64 numpy forward)",
    "shape": [2, C, H, W], "input": x.ravel().tolist(), "target": t.tolist(),
    "logits": logits64(x).ravel().tolist(), "grad": fd.ravel().tolist(),
}) + "\n")
print("ok", file=sys.stderr)
