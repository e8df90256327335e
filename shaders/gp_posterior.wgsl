// GP posterior over the BOREx candidate grid, one invocation per candidate
// (size index, row, column): μ = prior[r, q] + Σ_j w_j k_j,
// σ² = 1 − |L⁻¹ k|², UCB = μ + κσ. CPU twin: compute::cpu::CpuGpSession.

const MAX_OBS: u32 = 128u;
const SQRT3: f32 = 1.7320508;

struct Params {
    h: u32,
    w: u32,
    n_sizes: u32,
    n: u32,
    kappa: f32,
    lr: f32,
    lq: f32,
    ls: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> prior: array<f32>;
@group(0) @binding(2) var<storage, read> sizes: array<u32>;
@group(0) @binding(3) var<storage, read> obs: array<f32>;
@group(0) @binding(4) var<storage, read> weights: array<f32>;
@group(0) @binding(5) var<storage, read> l_inv: array<f32>;
@group(0) @binding(6) var<storage, read_write> mu_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> sigma_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> ucb_out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.h * p.w * p.n_sizes) {
        return;
    }
    let q = i % p.w;
    let r = (i / p.w) % p.h;
    let s = f32(sizes[i / (p.w * p.h)]);
    var k: array<f32, MAX_OBS>;
    var mu = prior[r * p.w + q];
    for (var j = 0u; j < p.n; j++) {
        let dr = (f32(r) - obs[3u * j]) / p.lr;
        let ds = (s - obs[3u * j + 2u]) / p.ls;
        let dq = (f32(q) - obs[3u * j + 1u]) / p.lq;
        let t = SQRT3 * sqrt((dr * dr + ds * ds) + dq * dq);
        let kj = (1.0 + t) * exp(-t);
        k[j] = kj;
        mu += weights[j] * kj;
    }
    var v2 = 1.0;
    for (var j = 0u; j < p.n; j++) {
        var v = 0.0;
        for (var m = 0u; m <= j; m++) {
            v += l_inv[j * p.n + m] * k[m];
        }
        v2 -= v * v;
    }
    let sigma = sqrt(max(v2, 0.0));
    let ucb = mu + p.kappa * sigma;
    mu_out[i] = mu;
    sigma_out[i] = sigma;
    // NaN never wins the argmax.
    ucb_out[i] = select(-3.4028235e38, ucb, ucb == ucb);
}
