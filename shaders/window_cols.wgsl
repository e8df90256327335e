// Second half of the BOREx map normalisation: per column and size, a running
// sum down the rows of the row sums gives the window sum over rows [r − s, r + s];
// divided by the number of in-image pixels of the window and averaged over
// sizes (with `per_plane` = 1: each plane's average written to its own H×W
// plane, for clips). One invocation per column. CPU twin: compute::cpu::window_average.
// The grid's z axis picks the loop of a lockstep batch: it reads segment
// segs[z] of `sums` (n_sizes·H·W) and writes map z (H·W, or n_sizes·H·W per plane).

struct Params {
    h: u32,
    w: u32,
    n_sizes: u32,
    per_plane: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sizes: array<u32>;
@group(0) @binding(2) var<storage, read> sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> map: array<f32>;
@group(0) @binding(4) var<storage, read> segs: array<u32>;

fn span(x: u32, s: u32, n: u32) -> f32 {
    return f32(min(x + s + 1u, n) - select(0u, x - s, x >= s));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = gid.x + gid.y * nwg.x * 256u;
    if (q >= p.w) {
        return;
    }
    let scale = select(1.0 / f32(p.n_sizes), 1.0, p.per_plane == 1u);
    let hw = p.h * p.w;
    let src = segs[gid.z] * p.n_sizes * hw;
    let dst = gid.z * select(hw, p.n_sizes * hw, p.per_plane == 1u);
    for (var k = 0u; k < p.n_sizes; k++) {
        let s = sizes[k];
        let plane = k * hw;
        let cols = span(q, s, p.w);
        var acc = 0.0;
        for (var r = 0u; r < min(s + 1u, p.h); r++) {
            acc += sums[src + plane + r * p.w + q];
        }
        for (var r = 0u; r < p.h; r++) {
            if (r > 0u) {
                if (r + s < p.h) {
                    acc += sums[src + plane + (r + s) * p.w + q];
                }
                if (r > s) {
                    acc -= sums[src + plane + (r - s - 1u) * p.w + q];
                }
            }
            let v = acc / (cols * span(r, s, p.h)) * scale;
            if (p.per_plane == 1u) {
                map[dst + plane + r * p.w + q] = v;
            } else if (k == 0u) {
                map[dst + r * p.w + q] = v;
            } else {
                map[dst + r * p.w + q] += v;
            }
        }
    }
}
