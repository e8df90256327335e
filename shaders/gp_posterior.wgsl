// GP posterior over the BOREx candidate grid, one invocation per candidate
// (size index, row, column): μ = prior[r, q] + Σ_j w_j k_j, σ² = 1 − |L⁻¹ k|²,
// UCB = μ + κσ. CPU twin: compute::cpu::CpuGpSession.
//
// Each candidate's kernel values k_j are kept in `kcache` (row j at
// j·stride + column) across iterations, so any number of observations fits:
// - mode 0 (full): compute k_0..k_{n−1}, then L⁻¹k in tiles of TJ rows held in
//   private memory, with the matching TJ × TM tile of L⁻¹ staged through
//   workgroup memory (every invocation reads the same entries);
// - mode 1 (append one observation, same length scales): compute k_{n−1};
//   μ = prior + wᵀk from the cache; σ² −= (rᵀk)² with r the last row of L⁻¹;
// - mode 2: UCB only, from the stored μ and σ² (a new κ).
// A dispatch covers candidates offset .. offset + count; with a scratch cache
// (too many observations to keep them all) the grid goes in several chunks.

const SQRT3: f32 = 1.7320508;
const TJ: u32 = 16u;
const TM: u32 = 64u;

struct Params {
    h: u32,
    w: u32,
    n: u32,
    mode: u32,
    offset: u32,
    count: u32,
    stride: u32,
    first: u32,
    kappa: f32,
    lr: f32,
    lq: f32,
    ls: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> prior: array<f32>;
@group(0) @binding(2) var<storage, read> sizes: array<u32>;
// (row, column, size, weight (K⁻¹y)_j) per observation.
@group(0) @binding(3) var<storage, read> obs: array<vec4<f32>>;
// L⁻¹, n × n row-major.
@group(0) @binding(4) var<storage, read> l_inv: array<f32>;
@group(0) @binding(5) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(6) var<storage, read_write> mu_out: array<f32>;
// 1 − |L⁻¹k|² before the clamp at 0.
@group(0) @binding(7) var<storage, read_write> s2_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> sigma_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> ucb_out: array<f32>;

var<workgroup> tile: array<f32, 1024>; // TJ × TM

fn store_ucb(i: u32, mu: f32, s2: f32) {
    let ucb = mu + p.kappa * sqrt(max(s2, 0.0));
    // NaN never wins the argmax.
    ucb_out[i] = select(-3.4028235e38, ucb, ucb == ucb);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let local = gid.x + gid.y * nwg.x * 256u;
    // Invocations past the end still take part in the workgroup barriers.
    let live = local < p.count;
    let col = min(local, p.count - 1u);
    let i = p.offset + col;
    if (p.mode == 2u) {
        if (live) {
            store_ucb(i, mu_out[i], s2_out[i]);
        }
        return;
    }
    let q = i % p.w;
    let r = (i / p.w) % p.h;
    let s = f32(sizes[i / (p.w * p.h)]);
    var mu = prior[r * p.w + q];
    for (var j = p.first; j < p.n; j++) {
        let o = obs[j];
        let dr = (f32(r) - o.x) / p.lr;
        let ds = (s - o.z) / p.ls;
        let dq = (f32(q) - o.y) / p.lq;
        let t = SQRT3 * sqrt((dr * dr + ds * ds) + dq * dq);
        let kj = (1.0 + t) * exp(-t);
        if (live) {
            kcache[j * p.stride + col] = kj;
        }
        // Full mode: μ = prior + wᵀk straight from the fresh values.
        if (p.mode == 0u) {
            mu += o.w * kj;
        }
    }
    var s2 = 1.0;
    if (p.mode == 1u) {
        // One pass over the cached rows: μ = prior + wᵀk and v = rᵀk.
        let last = (p.n - 1u) * p.n;
        var v = 0.0;
        for (var m = 0u; m < p.n; m++) {
            let km = kcache[m * p.stride + col];
            mu += obs[m].w * km;
            v += l_inv[last + m] * km;
        }
        s2 = s2_out[i] - v * v;
    } else {
        for (var j0 = 0u; j0 < p.n; j0 += TJ) {
            var v: array<f32, TJ>;
            let jend = min(j0 + TJ, p.n);
            for (var m0 = 0u; m0 < jend; m0 += TM) {
                workgroupBarrier();
                for (var e = lid; e < TJ * TM; e += 256u) {
                    let j = j0 + e / TM;
                    let m = m0 + e % TM;
                    // Zero above the diagonal and past n.
                    tile[e] = select(0.0, l_inv[min(j, p.n - 1u) * p.n + min(m, p.n - 1u)], j < p.n && m <= j);
                }
                workgroupBarrier();
                let mend = min(m0 + TM, jend);
                for (var m = m0; m < mend; m++) {
                    let km = kcache[m * p.stride + col];
                    for (var jj = 0u; jj < TJ; jj++) {
                        v[jj] += tile[jj * TM + (m - m0)] * km;
                    }
                }
            }
            for (var jj = 0u; jj < jend - j0; jj++) {
                s2 -= v[jj] * v[jj];
            }
        }
    }
    if (live) {
        mu_out[i] = mu;
        s2_out[i] = s2;
        sigma_out[i] = sqrt(max(s2, 0.0));
        store_ucb(i, mu, s2);
    }
}
