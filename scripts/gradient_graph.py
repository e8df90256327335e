"""Forward and forward+gradient ONNX graphs of a plain CNN, built by hand.

ONNX Runtime has no autograd, so the backward pass is written out from
standard ops beside the forward graph (SPEC §5): ReLU backward multiplies by
the cast mask pre > 0, conv backward is a ConvTranspose with the same weights
(output_padding recovers the exact input size for strided convs), global
average pool backward broadcasts ÷ h·w, the linear head's backward is a MatMul
by its weight, and log-softmax backward is onehot − softmax.

Network: [3×3-style conv + bias + ReLU]* → global average pool → linear.
  forward:  input (N×C×H×W)            → logits (N×K), features (N×F×h×w)
  gradient: input, target (N, int64)    → logits, grad = ∂ log softmax(logits)[target] / ∂ input
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def build(layers, head, in_shape, name="cnn"):
    """layers: [("conv", W[O,I,k,k], b[O], stride, pad)], each followed by ReLU;
    head: (W[K,F], b[K]); in_shape: (C, H, W). Returns (forward, gradient) ModelProtos."""
    C, H, W = in_shape
    inits = []
    nodes = []

    def const(nm, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    # Forward.
    x = "input"
    sizes = [(H, W)]
    pre = []
    for i, (kind, w, b, s, p) in enumerate(layers):
        assert kind == "conv"
        k = w.shape[2]
        nodes.append(helper.make_node("Conv", [x, const(f"conv{i}.w", w), const(f"conv{i}.b", b)], [f"conv{i}"],
                                      strides=[s, s], pads=[p, p, p, p], kernel_shape=[k, k]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        pre.append(f"conv{i}")
        x = f"relu{i}"
        h, wd = sizes[-1]
        sizes.append((_out_size(h, k, s, p), _out_size(wd, k, s, p)))
    feats = x
    fh, fw = sizes[-1]
    F = layers[-1][1].shape[0]
    hw, hb = head
    K = hw.shape[0]
    nodes.append(helper.make_node("GlobalAveragePool", [feats], ["pooled4"]))
    nodes.append(helper.make_node("Flatten", ["pooled4"], ["pooled"], axis=1))
    nodes.append(helper.make_node("Gemm", ["pooled", const("fc.w", hw), const("fc.b", hb)], ["logits"], transB=1))
    fwd_nodes = list(nodes)
    fwd_inits = list(inits)

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C, H, W])
    logits_vi = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K])
    feats_vi = helper.make_tensor_value_info(feats, TensorProto.FLOAT, ["N", F, fh, fw])
    fwd = helper.make_model(helper.make_graph(fwd_nodes, name, [inp], [logits_vi, feats_vi], fwd_inits),
                            opset_imports=[helper.make_opsetid("", OPSET)], producer_name="borex scripts/gradient_graph.py")

    # Backward of log softmax(logits)[target].
    nodes.append(helper.make_node("LogSoftmax", ["logits"], ["logp"], axis=1))
    nodes.append(helper.make_node("Exp", ["logp"], ["softmax"]))
    nodes.append(helper.make_node("OneHot", ["target", const("depth", np.array(K, np.int64)),
                                             const("onehot_values", np.array([0, 1], np.float32))], ["onehot"], axis=-1))
    nodes.append(helper.make_node("Sub", ["onehot", "softmax"], ["g_logits"]))
    nodes.append(helper.make_node("MatMul", ["g_logits", "fc.w"], ["g_pooled"]))
    nodes.append(helper.make_node("Unsqueeze", ["g_pooled", const("axes23", np.array([2, 3], np.int64))], ["g_pooled4"]))
    nodes.append(helper.make_node("Shape", [feats], ["feat_shape"]))
    nodes.append(helper.make_node("Expand", ["g_pooled4", "feat_shape"], ["g_feat_sum"]))
    nodes.append(helper.make_node("Mul", ["g_feat_sum", const("inv_hw", np.array(1.0 / (fh * fw), np.float32))], [f"g_relu{len(layers) - 1}"]))
    for i in reversed(range(len(layers))):
        _, w, _, s, p = layers[i]
        k = w.shape[2]
        nodes.append(helper.make_node("Greater", [pre[i], const("zero", np.array(0, np.float32)) if i == len(layers) - 1 else "zero"], [f"mask{i}_b"]))
        nodes.append(helper.make_node("Cast", [f"mask{i}_b"], [f"mask{i}"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [f"g_relu{i}", f"mask{i}"], [f"g_conv{i}"]))
        (hi, wi), (ho, wo) = sizes[i], sizes[i + 1]
        op = [hi - ((ho - 1) * s - 2 * p + k), wi - ((wo - 1) * s - 2 * p + k)]
        out = "grad" if i == 0 else f"g_relu{i - 1}"
        nodes.append(helper.make_node("ConvTranspose", [f"g_conv{i}", f"conv{i}.w"], [out], strides=[s, s], pads=[p, p, p, p],
                                      kernel_shape=[k, k], output_padding=op))
    tgt = helper.make_tensor_value_info("target", TensorProto.INT64, ["N"])
    grad_vi = helper.make_tensor_value_info("grad", TensorProto.FLOAT, ["N", C, H, W])
    grad = helper.make_model(helper.make_graph(nodes, name + "_grad", [inp, tgt], [logits_vi, grad_vi], inits),
                             opset_imports=[helper.make_opsetid("", OPSET)], producer_name="borex scripts/gradient_graph.py")
    onnx.checker.check_model(fwd)
    onnx.checker.check_model(grad)
    return fwd, grad


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
