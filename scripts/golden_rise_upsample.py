#!/usr/bin/env python3
"""Check borex's RISE mask upsampling against scikit-image (what the RISE authors'
code calls): resize(order=1, mode="reflect", anti_aliasing=False) of a fixed 3×3
grid to 12×12, against the same half-pixel, mirrored-edge formula as
compute::rise_masks. Prints the max difference and the rows the Rust test holds.
Needs scikit-image (not part of the setup).
"""
import numpy as np
from skimage.transform import resize
s=3; cell=3; up=(s+1)*cell  # 12
grid=np.array([[1,0,1],[0,0,1],[1,1,0]],dtype='float32')
ref=resize(grid,(up,up),order=1,mode='reflect',anti_aliasing=False)
def taps(o):
    src=(o+0.5)*(s/up)-0.5
    f=np.floor(src); i=int(f)
    m=lambda i: -i if i<0 else (2*(s-1)-i if i>=s else i)
    return m(i),m(i+1),src-f
mine=np.zeros((up,up))
for y in range(up):
    y0,y1,fy=taps(y)
    for x in range(up):
        x0,x1,fx=taps(x)
        top=grid[y0,x0]*(1-fx)+grid[y0,x1]*fx; bot=grid[y1,x0]*(1-fx)+grid[y1,x1]*fx
        mine[y,x]=top*(1-fy)+bot*fy
print(np.abs(ref-mine).max())
print(np.round(ref[0],6).tolist())
print(np.round(ref[:,5],6).tolist())
