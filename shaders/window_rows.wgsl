// First half of the BOREx map normalisation: for every (size s, row), a running
// sum along the row gives, at each column q, the sum of μ over columns
// [q − s, q + s] inside the image. One invocation per (size, row): O(W) work
// whatever s is, which matters at full resolution (s in the hundreds).
// CPU twin: compute::cpu::window_average. The grid's z axis picks the loop of
// a lockstep batch: segment segs[z] of `mu` and of `sums` (n_sizes·H·W each).

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
@group(0) @binding(4) var<storage, read> segs: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.h * p.n_sizes) {
        return;
    }
    let s = sizes[i / p.h];
    let row = (segs[gid.z] * p.h * p.n_sizes + i) * p.w;
    // Window of column 0: columns [0, s].
    var acc = 0.0;
    for (var c = 0u; c < min(s + 1u, p.w); c++) {
        acc += mu[row + c];
    }
    sums[row] = acc;
    for (var q = 1u; q < p.w; q++) {
        if (q + s < p.w) {
            acc += mu[row + q + s];
        }
        if (q > s) {
            acc -= mu[row + q - s - 1u];
        }
        sums[row + q] = acc;
    }
}
