// out[k, c, y, x] = image[c, y, x] * m + baseline[c, y, x] * (1 - m),  m = masks[k, y, x].
// CPU twin: compute::cpu::apply_masks (Masks::Dense).

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read> baseline: array<f32>;
@group(0) @binding(3) var<storage, read> masks: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // 2-D dispatch: more than 65535 workgroups do not fit on one axis.
    let i = gid.x + gid.y * nwg.x * 256u;
    let hw = p.h * p.w;
    let chw = p.c * hw;
    if (i >= p.n * chw) {
        return;
    }
    let k = i / chw;
    let pc = i % chw;
    let m = masks[k * hw + pc % hw];
    out[i] = image[pc] * m + baseline[pc] * (1.0 - m);
}
