// First half of the BOREx map normalisation: for every candidate (size s, row,
// column), the sum of μ over columns [q − s, q + s] inside the image.
// CPU twin: compute::cpu::window_average.

struct Params {
    h: u32,
    w: u32,
    n_sizes: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sizes: array<u32>;
@group(0) @binding(2) var<storage, read> mu: array<f32>;
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.h * p.w * p.n_sizes) {
        return;
    }
    let q = i % p.w;
    let row = i - q;
    let s = sizes[i / (p.w * p.h)];
    let c0 = select(0u, q - s, q >= s);
    let c1 = min(q + s + 1u, p.w);
    var acc = 0.0;
    for (var c = c0; c < c1; c++) {
        acc += mu[row + c];
    }
    sums[i] = acc;
}
