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
// The GP lives in uniform blocks: every invocation reads the same entry at the
// same time, which uniform memory broadcasts (3× faster than storage reads on
// llvmpipe at n = 50). obs[j] = (row, column, size, weight (K⁻¹y)_j);
// L⁻¹ row-major with stride n, packed four to a vec4 (128² floats = 64 KiB).
@group(0) @binding(3) var<uniform> obs: array<vec4<f32>, 128>;
@group(0) @binding(4) var<uniform> l_inv: array<vec4<f32>, 4096>;
@group(0) @binding(5) var<storage, read_write> mu_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> sigma_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> ucb_out: array<f32>;

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
        let o = obs[j];
        let dr = (f32(r) - o.x) / p.lr;
        let ds = (s - o.z) / p.ls;
        let dq = (f32(q) - o.y) / p.lq;
        let t = SQRT3 * sqrt((dr * dr + ds * ds) + dq * dq);
        let kj = (1.0 + t) * exp(-t);
        k[j] = kj;
        mu += o.w * kj;
    }
    var v2 = 1.0;
    for (var j = 0u; j < p.n; j++) {
        var v = 0.0;
        for (var m = 0u; m <= j; m++) {
            let e = j * p.n + m;
            v += l_inv[e / 4u][e % 4u] * k[m];
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
