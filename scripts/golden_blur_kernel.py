#!/usr/bin/env python3
"""Print the RISE reference blur kernel (gkern(11, 5)) and its 1-D factor.

RISE's evaluation code builds its blur kernel as scipy.ndimage.gaussian_filter of
an 11×11 delta with sigma 5; borex's compute::gaussian_kernel_1d reproduces the
1-D factor, and its test holds these numbers. Needs scipy (not part of setup).
"""
import numpy as np
from scipy.ndimage import gaussian_filter

klen, nsig = 11, 5
inp = np.zeros((klen, klen))
inp[klen // 2, klen // 2] = 1
k2 = gaussian_filter(inp, nsig)
k1 = k2[klen // 2] / np.sqrt(k2[klen // 2, klen // 2])
assert np.allclose(np.outer(k1, k1), k2)
print("1-D factor:", ", ".join(f"{v:.8f}" for v in k1))
print("2-D sum:", k2.sum())
