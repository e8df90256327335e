// GP posterior mean for one box size on a separable grid of continuous model
// coordinates (rows[y], cols[x]): μ = prior(r, c) + Σ_j w_j k_j, with the prior
// read bilinearly (clamped) from the model-resolution map. Used for full-resolution
// maps. CPU twin: compute::cpu::CpuKernels::map_on_grid.

const SQRT3: f32 = 1.7320508;

struct Params {
    out_h: u32,
    out_w: u32,
    prior_h: u32,
    prior_w: u32,
    n: u32,
    size: f32,
    lr: f32,
    lq: f32,
    ls: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> prior: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<f32>;
@group(0) @binding(3) var<storage, read> cols: array<f32>;
// (row, column, size, weight) per observation, any number of them.
@group(0) @binding(4) var<storage, read> obs: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> mu_out: array<f32>;

// Every invocation reads the same observation at the same time: they pass
// through workgroup memory 256 at a time.
var<workgroup> tile: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // Invocations past the end still take part in the barriers.
    let idx = gid.x + gid.y * nwg.x * 256u;
    let live = idx < p.out_h * p.out_w;
    let i = min(idx, p.out_h * p.out_w - 1u);
    let r = rows[i / p.out_w];
    let c = cols[i % p.out_w];
    // Bilinear prior, clamped to the map.
    let rc = clamp(r, 0.0, f32(p.prior_h - 1u));
    let cc = clamp(c, 0.0, f32(p.prior_w - 1u));
    let r0 = u32(floor(rc));
    let c0 = u32(floor(cc));
    let r1 = min(r0 + 1u, p.prior_h - 1u);
    let c1 = min(c0 + 1u, p.prior_w - 1u);
    let fr = rc - f32(r0);
    let fc = cc - f32(c0);
    let top = prior[r0 * p.prior_w + c0] * (1.0 - fc) + prior[r0 * p.prior_w + c1] * fc;
    let bottom = prior[r1 * p.prior_w + c0] * (1.0 - fc) + prior[r1 * p.prior_w + c1] * fc;
    var mu = top * (1.0 - fr) + bottom * fr;
    for (var j0 = 0u; j0 < p.n; j0 += 256u) {
        workgroupBarrier();
        if (j0 + lid < p.n) {
            tile[lid] = obs[j0 + lid];
        }
        workgroupBarrier();
        let count = min(256u, p.n - j0);
        for (var j = 0u; j < count; j++) {
            let o = tile[j];
            let dr = (r - o.x) / p.lr;
            let ds = (p.size - o.z) / p.ls;
            let dq = (c - o.y) / p.lq;
            let t = SQRT3 * sqrt((dr * dr + ds * ds) + dq * dq);
            mu += o.w * ((1.0 + t) * exp(-t));
        }
    }
    if (live) {
        mu_out[i] = mu;
    }
}
