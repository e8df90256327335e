// Box masks without materialising them: mask k is 1 inside rows [r0, r1) ×
// cols [c0, c1) when keep_inside, else 1 outside it.
// out[k, c, y, x] = images[src_k] * m + substrates[sub_k] * (1 - m): each box
// names its image and substrate in the bound stores, so one dispatch masks
// the boxes of many loops (lockstep) as well as one image's boxes.
// CPU twin: compute::cpu::apply_masks (Masks::Boxes), one box at a time.

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
}

struct BoxMask {
    r0: u32,
    r1: u32,
    c0: u32,
    c1: u32,
    keep_inside: u32,
    src: u32,
    sub: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> images: array<f32>;
@group(0) @binding(2) var<storage, read> substrates: array<f32>;
@group(0) @binding(3) var<storage, read> boxes: array<BoxMask>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let hw = p.h * p.w;
    let chw = p.c * hw;
    if (i >= p.n * chw) {
        return;
    }
    let b = boxes[i / chw];
    let pc = i % chw;
    let y = (pc % hw) / p.w;
    let x = pc % p.w;
    let inside = y >= b.r0 && y < b.r1 && x >= b.c0 && x < b.c1;
    let m = select(0.0, 1.0, inside == (b.keep_inside != 0u));
    out[i] = images[b.src * chw + pc] * m + substrates[b.sub * chw + pc] * (1.0 - m);
}
