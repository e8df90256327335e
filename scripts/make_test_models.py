#!/usr/bin/env python3
"""Write the tiny ONNX models the tests use into tests/fixtures/ (run with the
setup's venv: .venv/bin/python scripts/make_test_models.py).

  gap_linear_logits.onnx  input N×3×H×W -> GlobalAveragePool -> Gemm(3 -> 4): logits
  gap_linear_probs.onnx   the same followed by Softmax: probabilities
  rank3_input.onnx        a 3-D input (not an image classifier)
  ten_classes.onnx        GAP -> Gemm(3 -> 10), to clash with 1000 ImageNet labels
  gap_linear_features.onnx  gap_linear_logits plus its input as a "features" output (CAM = Σ_k W_ck x_k)
  max_pool_features.onnx  the same with GlobalMaxPool instead of average pooling (no CAM closed form)
  region_hinders_0.onnx   2 classes; class 0's logit is 1 − 8·mean(x[:, :, 8:16, 20:28]): bright
                          pixels in that region lower P_0 (the undesirable-pixel test)
Their weights are spelled out in tests/model.rs, which checks the outputs by hand.
"""
import os
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
W4 = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [0.5, 0.5, 0.5]], np.float32)
B4 = np.array([0.1, -0.2, 0.3, 0.0], np.float32)


def gap_linear(w, b, softmax, features=False, pool="GlobalAveragePool"):
    nodes = [helper.make_node(pool, ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "w", "b"], ["logits" if not softmax else "z"], transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["logits"], axis=1))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", w.shape[0]])]
    if features:
        nodes.append(helper.make_node("Identity", ["input"], ["features"]))
        outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3, "h", "w"]))
    g = helper.make_graph(
        nodes, "gap_linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        outputs,
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return g


def rank3():
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["logits"], axes=[2], keepdims=0)], "rank3",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])])
    return g


def region_model():
    c = numpy_helper.from_array
    g = helper.make_graph(
        [helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["region"]),
         helper.make_node("ReduceMean", ["region"], ["m"], axes=[1, 2, 3], keepdims=0),
         helper.make_node("Unsqueeze", ["m", "one"], ["m2"]),
         helper.make_node("Gemm", ["m2", "w", "b"], ["logits"], transB=1)],
        "region_hinders_0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [c(np.array([8, 20], np.int64), "starts"), c(np.array([16, 28], np.int64), "ends"),
         c(np.array([2, 3], np.int64), "axes"), c(np.array([1], np.int64), "one"),
         c(np.array([[-8.0], [0.0]], np.float32), "w"), c(np.array([1.0, 0.0], np.float32), "b")])
    return g


def save(graph, name):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="borex-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    save(gap_linear(W4, B4, False), "gap_linear_logits.onnx")
    save(gap_linear(W4, B4, True), "gap_linear_probs.onnx")
    save(rank3(), "rank3_input.onnx")
    save(gap_linear(W4, B4, False, features=True), "gap_linear_features.onnx")
    save(gap_linear(W4, B4, False, features=True, pool="GlobalMaxPool"), "max_pool_features.onnx")
    rng = np.random.default_rng(0)
    save(gap_linear(rng.normal(size=(10, 3)).astype(np.float32), np.zeros(10, np.float32), False), "ten_classes.onnx")
    save(region_model(), "region_hinders_0.onnx")
    print("wrote", sorted(os.listdir(OUT)))
