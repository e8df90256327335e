// Second half of the BOREx map normalisation: per pixel, for each size the sum
// of the row sums over rows [r − s, r + s] inside the image, divided by the
// number of in-image pixels of the window; then the mean over sizes.
// CPU twin: compute::cpu::window_average.

struct Params {
    h: u32,
    w: u32,
    n_sizes: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sizes: array<u32>;
@group(0) @binding(2) var<storage, read> sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> map: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.h * p.w) {
        return;
    }
    let q = i % p.w;
    let r = i / p.w;
    let scale = 1.0 / f32(p.n_sizes);
    var out = 0.0;
    for (var k = 0u; k < p.n_sizes; k++) {
        let s = sizes[k];
        let r0 = select(0u, r - s, r >= s);
        let r1 = min(r + s + 1u, p.h);
        let c0 = select(0u, q - s, q >= s);
        let c1 = min(q + s + 1u, p.w);
        var acc = 0.0;
        for (var rr = r0; rr < r1; rr++) {
            acc += sums[(k * p.h + rr) * p.w + q];
        }
        out += acc / (f32(c1 - c0) * f32(r1 - r0)) * scale;
    }
    map[i] = out;
}
