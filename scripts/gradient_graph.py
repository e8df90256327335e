"""Forward and forward+gradient ONNX graphs of a CNN, built by hand.

ONNX Runtime has no autograd, so the backward pass is written out from
standard ops beside the forward graph (SPEC §5): ReLU / ReLU6 backward
multiplies by the cast mask (0 < pre, and pre < 6), conv backward is a
ConvTranspose with the same weights and groups (strided convs; output_padding
or, for SAME padding, a Slice computed from the runtime shape recovers the
exact input size) or, at stride 1, a plain Conv with the kernel flipped and
in/out channels swapped (faster in ONNX Runtime), a residual Add sends its
gradient to both inputs (summed where paths meet), global average pool
backward broadcasts ÷ h·w, the linear head's backward is a MatMul by its weight, and log-softmax
backward is onehot − softmax.

A network is a flat program (the format of scripts/convert_efficientnet.py):
  ("conv", W[O, I/groups, k, k], b[O], stride, groups, act, pad)  act: "relu" | "relu6" | None;
                                                                   pad: int (each side) or "same" (TF SAME_UPPER)
  ("block_start",) / ("residual",) / ("block_end",)                residual adds the block's input
then global average pool → linear head (W[K, F], b[K]). When every conv pads
SAME the graphs take any input size (H and W are symbolic); otherwise the
size given to build_program is fixed.
  forward:  input (N×C×H×W)          → logits (N×K), features (N×F×h×w)
  gradient: input, target (N, int64)  → logits, grad = ∂ log softmax(logits)[target] / ∂ input
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _pads(n, k, s, pad):
    """(begin, end, out) of one spatial axis."""
    if pad == "same":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2, out
    return pad, pad, (n + 2 * pad - k) // s + 1


class _Graph:
    """Nodes and initializers of one graph under construction."""

    def __init__(self):
        self.nodes, self.inits, self._consts = [], [], set()

    def const(self, nm, arr):
        if nm not in self._consts:
            self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
            self._consts.add(nm)
        return nm

    def node(self, op, ins, outs, **attrs):
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))


def _forward(gr, prog, size):
    """The program's forward pass from "input"; returns (features, its size, the tape the backward pass reads)."""
    x = "input"
    tape = []  # ("conv", in, pre, out, wname, W, stride, groups, k, pad, (pt, pl, pb, pr), in_size, out_size, act) | ("add", a, b, out)
    block_in = None
    for i, op in enumerate(prog):
        if op[0] == "block_start":
            block_in = x
        elif op[0] == "residual":
            y = f"add{i}"
            gr.node("Add", [x, block_in], [y])
            tape.append(("add", x, block_in, y))
            x = y
        elif op[0] == "block_end":
            pass
        else:
            _, w, b, s, g, act, pad = op
            k = w.shape[2]
            pt, pb, oh = _pads(size[0], k, s, pad)
            pl, pr, ow = _pads(size[1], k, s, pad)
            wn, bn, pre = gr.const(f"conv{i}.w", w), gr.const(f"conv{i}.b", b), f"conv{i}"
            if pad == "same":  # any input size
                gr.node("Conv", [x, wn, bn], [pre], strides=[s, s], auto_pad="SAME_UPPER", kernel_shape=[k, k], group=g)
            else:
                gr.node("Conv", [x, wn, bn], [pre], strides=[s, s], pads=[pt, pl, pb, pr], kernel_shape=[k, k], group=g)
            out = pre
            if act == "relu":
                out = f"relu{i}"
                gr.node("Relu", [pre], [out])
            elif act == "relu6":
                out = f"relu6_{i}"
                gr.node("Clip", [pre, gr.const("zero", np.array(0, np.float32)), gr.const("six", np.array(6, np.float32))], [out])
            tape.append(("conv", x, pre, out, wn, w, s, g, k, pad, (pt, pl, pb, pr), size, (oh, ow), act))
            x, size = out, (oh, ow)
    return x, size, tape


def _backward(gr, tape, feats, g_feats):
    """Backward pass from the gradient `g_feats` of the features to "grad", the input's gradient."""
    grads = {feats: [g_feats]}

    def total(t):
        parts = grads.pop(t)
        if len(parts) == 1:
            return parts[0]
        gr.node("Sum", parts, [f"g_{t}"])
        return f"g_{t}"

    for op in reversed(tape):
        if op[0] == "add":
            _, a, b, out = op
            g = total(out)
            grads.setdefault(a, []).append(g)
            grads.setdefault(b, []).append(g)
            continue
        _, inp_name, pre, out, wn, w, s, g, k, pad, (pt, pl, pb, pr), (hi, wi), (ho, wo), act = op
        gout = total(out)
        if act is not None:
            gr.node("Greater", [pre, gr.const("zero", np.array(0, np.float32))], [f"{pre}_gt0"])
            mask = f"{pre}_gt0"
            if act == "relu6":
                gr.node("Less", [pre, gr.const("six", np.array(6, np.float32))], [f"{pre}_lt6"])
                gr.node("And", [f"{pre}_gt0", f"{pre}_lt6"], [f"{pre}_in"])
                mask = f"{pre}_in"
            gr.node("Cast", [mask], [f"{pre}_mask"], to=TensorProto.FLOAT)
            gr.node("Mul", [gout, f"{pre}_mask"], [f"g_{pre}"])
            gout = f"g_{pre}"
        gin = "grad" if inp_name == "input" else f"g_{inp_name}_from_{pre}"
        depthwise = g == w.shape[0] and w.shape[1] == 1
        if s == 1 and (g == 1 or depthwise) and max(pt, pl, pb, pr) < k:
            # Stride 1: the backward pass is a plain Conv with the kernel flipped (and, for a full
            # conv, in/out swapped), padded by k − 1 − pad: faster than ConvTranspose in ONNX
            # Runtime (SPEC §5; the whole Lite0 graph 1.1–1.2× here, docs/counterfactuals.md),
            # and its padding does not depend on the input size.
            if k == 1:
                wt = f"{wn}_T"
                gr.node("Transpose", [wn], [wt], perm=[1, 0, 2, 3])
            else:
                wt = gr.const(f"{wn}_flip", np.ascontiguousarray(
                    (w if depthwise else w.transpose(1, 0, 2, 3))[:, :, ::-1, ::-1]))
            gr.node("Conv", [gout, wt], [gin], kernel_shape=[k, k], group=g,
                    pads=[k - 1 - pt, k - 1 - pl, k - 1 - pb, k - 1 - pr])
        elif pad == "same":
            assert k >= s, "a strided SAME conv whose kernel is smaller than its stride"
            # Strided SAME: the padding depends on the input size, so the unpadded ConvTranspose
            # (the gradient of the padded input) is cut to the input with a Slice computed from
            # its runtime shape: begin = ((⌈n/s⌉ − 1)·s + k − n) // 2 per axis.
            gr.node("ConvTranspose", [gout, wn], [f"{gin}_padded"], strides=[s, s], kernel_shape=[k, k], group=g)
            gr.node("Shape", [inp_name], [f"{gin}_in_shape"])
            gr.node("Slice", [f"{gin}_in_shape", gr.const("i2", np.array([2], np.int64)), gr.const("i4", np.array([4], np.int64))],
                    [f"{gin}_n"])
            gr.node("Add", [f"{gin}_n", gr.const(f"s{s}m1", np.array([s - 1], np.int64))], [f"{gin}_a"])
            gr.node("Div", [f"{gin}_a", gr.const(f"s{s}", np.array([s], np.int64))], [f"{gin}_out"])
            gr.node("Sub", [f"{gin}_out", gr.const("one_i", np.array([1], np.int64))], [f"{gin}_b"])
            gr.node("Mul", [f"{gin}_b", gr.const(f"s{s}", np.array([s], np.int64))], [f"{gin}_c"])
            gr.node("Add", [f"{gin}_c", gr.const(f"k{k}", np.array([k], np.int64))], [f"{gin}_d"])
            gr.node("Sub", [f"{gin}_d", f"{gin}_n"], [f"{gin}_total"])
            gr.node("Div", [f"{gin}_total", gr.const("two_i", np.array([2], np.int64))], [f"{gin}_begin"])
            gr.node("Add", [f"{gin}_begin", f"{gin}_n"], [f"{gin}_end"])
            gr.node("Slice", [f"{gin}_padded", f"{gin}_begin", f"{gin}_end", gr.const("axes_hw", np.array([2, 3], np.int64))], [gin])
        else:
            op_h = hi - ((ho - 1) * s + k - pt - pb)
            op_w = wi - ((wo - 1) * s + k - pl - pr)
            assert 0 <= op_h < max(s, 1) + 1 and 0 <= op_w < max(s, 1) + 1, (op_h, op_w)
            gr.node("ConvTranspose", [gout, wn], [gin], strides=[s, s], pads=[pt, pl, pb, pr],
                    kernel_shape=[k, k], group=g, output_padding=[op_h, op_w])
        grads.setdefault(inp_name, []).append(gin)
    if "input" in grads and grads["input"] != ["grad"]:
        # Several paths reach the input: sum them into "grad".
        gr.node("Sum", grads.pop("input"), ["grad"])


def _model(gr, name, inputs, outputs):
    m = helper.make_model(helper.make_graph(list(gr.nodes), name, inputs, outputs, list(gr.inits)),
                          opset_imports=[helper.make_opsetid("", OPSET)], producer_name="borex scripts/gradient_graph.py")
    onnx.checker.check_model(m)
    return m


def _dynamic(prog):
    """Whether every conv pads SAME: then the graphs take any input size."""
    return all(op[6] == "same" for op in prog if op[0] == "conv")


def build_program(prog, head, in_shape, name="cnn"):
    C, H, W = in_shape
    gr = _Graph()
    feats, (fh, fw), tape = _forward(gr, prog, (H, W))
    if _dynamic(prog):
        H, W, fh, fw = "H", "W", "h", "w"
    F = prog[-1][1].shape[0] if prog[-1][0] == "conv" else None
    hw, hb = head
    K = hw.shape[0]
    gr.node("GlobalAveragePool", [feats], ["pooled4"])
    gr.node("Flatten", ["pooled4"], ["pooled"], axis=1)
    gr.node("Gemm", ["pooled", gr.const("fc.w", hw), gr.const("fc.b", hb)], ["logits"], transB=1)
    n_fwd = len(gr.nodes)
    gr.node("Identity", [feats], ["features"])

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C, H, W])
    logits_vi = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K])
    feats_vi = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", F, fh, fw])
    fwd = _model(gr, name, [inp], [logits_vi, feats_vi])
    del gr.nodes[n_fwd:]

    # Backward of log softmax(logits)[target].
    gr.node("LogSoftmax", ["logits"], ["logp"], axis=1)
    gr.node("Exp", ["logp"], ["softmax"])
    gr.node("OneHot", ["target", gr.const("depth", np.array(K, np.int64)),
                       gr.const("onehot_values", np.array([0, 1], np.float32))], ["onehot"], axis=-1)
    gr.node("Sub", ["onehot", "softmax"], ["g_logits"])
    gr.node("MatMul", ["g_logits", "fc.w"], ["g_pooled"])
    gr.node("Unsqueeze", ["g_pooled", gr.const("axes23", np.array([2, 3], np.int64))], ["g_pooled4"])
    gr.node("Shape", [feats], ["feat_shape"])
    gr.node("Expand", ["g_pooled4", "feat_shape"], ["g_feat_sum"])
    if _dynamic(prog):
        gr.node("Slice", ["feat_shape", gr.const("i2", np.array([2], np.int64)), gr.const("i4", np.array([4], np.int64))], ["feat_hw"])
        gr.node("ReduceProd", ["feat_hw"], ["feat_n"], keepdims=1)
        gr.node("Cast", ["feat_n"], ["feat_nf"], to=TensorProto.FLOAT)
        gr.node("Div", ["g_feat_sum", "feat_nf"], ["g_feats"])
    else:
        gr.node("Mul", ["g_feat_sum", gr.const("inv_hw", np.array(1.0 / (fh * fw), np.float32))], ["g_feats"])
    _backward(gr, tape, feats, "g_feats")
    tgt = helper.make_tensor_value_info("target", TensorProto.INT64, ["N"])
    grad_vi = helper.make_tensor_value_info("grad", TensorProto.FLOAT, ["N", C, H, W])
    return fwd, _model(gr, name + "_grad", [inp, tgt], [logits_vi, grad_vi])


def build_vjp(prog, in_shape, name="cnn_vjp"):
    """input, upstream (N×F×h×w) → features, grad = ∂ Σ upstream·features / ∂ input:
    the same forward and backward passes as build_program's gradient graph, on a
    program cut anywhere (no head), for testing the backward pass layer by layer."""
    C, H, W = in_shape
    gr = _Graph()
    feats, (fh, fw), tape = _forward(gr, prog, (H, W))
    if _dynamic(prog):
        H, W, fh, fw = "H", "W", "h", "w"
    F = [op for op in prog if op[0] == "conv"][-1][1].shape[0]
    gr.node("Identity", [feats], ["features"])
    _backward(gr, tape, feats, "upstream")
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C, H, W])
    up = helper.make_tensor_value_info("upstream", TensorProto.FLOAT, ["N", F, fh, fw])
    feats_vi = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", F, fh, fw])
    grad_vi = helper.make_tensor_value_info("grad", TensorProto.FLOAT, ["N", C, H, W])
    return _model(gr, name, [inp, up], [feats_vi, grad_vi])


def build(layers, head, in_shape, name="cnn"):
    """layers: [("conv", W[O,I,k,k], b[O], stride, pad)], each followed by ReLU."""
    prog = [("conv", w, b, s, 1, "relu", p) for _, w, b, s, p in layers]
    return build_program(prog, head, in_shape, name)


def save(model, path):
    model.ir_version = 8  # readable by every ONNX Runtime since 1.13
    onnx.save(model, str(path))


def check_against(grad_model, x, target, ref, log=print):
    """Relative L2 error of the graph's input gradient against a reference."""
    import onnxruntime as ort
    m = grad_model
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    _, g = sess.run(None, {"input": x.astype(np.float32), "target": target.astype(np.int64)})
    err = float(np.linalg.norm(g - ref) / np.linalg.norm(ref))
    log(f"gradient graph vs reference: relative L2 error {err:.2e}")
    assert err < 1e-3, err
    return err
