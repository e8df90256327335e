#!/usr/bin/env python3
"""Write the ONNX models the robustness tests use into tests/fixtures/ (run with
the setup's venv: .venv/bin/python scripts/make_robustness_models.py).

  nan_logits.onnx  GAP -> Gemm(3 -> 4) whose weight row 0 holds a NaN: every
                   image gets NaN logits, as a broken or overflowing model would
  constant_logits.onnx  GAP -> Gemm(3 -> 4) with zero weights: logits = the bias whatever
                   the input, so no map made from its scores can show anything
  one_class.onnx   GAP -> Gemm(3 -> 1): one class output (softmax over it is always 1)
"""
import os
import sys

import numpy as np


sys.path.insert(0, os.path.dirname(__file__))
from make_test_models import OUT, B4, W4, gap_linear, save  # noqa: E402

w = W4.copy()
w[0, 0] = np.nan
save(gap_linear(w, B4, softmax=False), "nan_logits.onnx")
save(gap_linear(np.zeros_like(W4), B4, softmax=False), "constant_logits.onnx")
save(gap_linear(W4[:1], B4[:1], softmax=False), "one_class.onnx")
