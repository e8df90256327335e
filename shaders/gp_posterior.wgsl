// GP posterior over the BOREx candidate grid, one invocation per candidate
// (size index, row, column) and loop: μ = prior[r, q] + Σ_j w_j k_j,
// σ² = 1 − |L⁻¹ k|², UCB = μ + κσ. CPU twin: compute::cpu::CpuGpSession.
//
// A dispatch serves several BO loops over grids of one shape (lockstep): the
// grid's z axis is the slot of `slots`, whose entry says which loop (`seg`:
// its segment of prior, μ, σ², σ, UCB and kernel rows), which mode, and where
// its observations and coefficients sit. A single refine is one slot.
// Each candidate's kernel values k_j are kept in `kcache` (row j of the
// cache group's loop g = `cseg` at (j·loops + g)·stride + column) across
// iterations, so any number of observations fits; a batch whose kernel rows
// exceed one binding has several groups, one dispatch each. Coefficients every invocation of a slot reads in step sit
// in a 64 KiB uniform block, which the hardware (and llvmpipe) broadcasts:
// - mode 0 (full, first pass): k_0..k_{n−1} into the cache, μ, σ² = 1;
// - mode 3 (full, one pass per tile of L⁻¹ rows j0..j1, `coef` = those rows
//   with stride n): σ² −= Σ_j (Σ_m L⁻¹_jm k_m)², i.e. V = L⁻¹K tile by tile;
//   the last tile also writes σ and the UCB;
// - mode 1 (append one observation, same length scales): k_{n−1} into the
//   cache, then one pass over the cached rows with `coef` = (w_m, r_m) pairs,
//   r the last row of L⁻¹: μ = prior + wᵀk, σ² −= (rᵀk)²;
// - mode 2: UCB only, from the stored μ and σ² (a new κ).
// A dispatch covers candidates offset .. offset + count; with a scratch cache
// (too many observations to keep them all) the grid goes in several chunks.
// On a clip grid (`time` = 1) a candidate's plane also has a centre frame and
// a temporal half-width, each observation a second vec4 (t, τ, 0, 0), and
// the prior one H×W plane per frame.

const SQRT3: f32 = 1.7320508;

// What every slot shares: the grid's shape and this dispatch's candidates.
struct Params {
    h: u32,
    w: u32,
    offset: u32,
    count: u32,
    // Kernel-cache row stride (candidates per row).
    stride: u32,
    // Loops whose kernel rows share `kcache` (the cache group).
    loops: u32,
    // Candidates per loop (M) and prior values per loop.
    m: u32,
    prior_len: u32,
    // 1 on a clip grid (5-D GP inputs).
    time: u32,
    // Planes per centre frame on a clip grid (sizes × spans).
    planes_per_frame: u32,
    _pad0: u32,
    _pad1: u32,
}

// One loop's share of a dispatch.
struct Slot {
    seg: u32,
    mode: u32,
    n: u32,
    first: u32,
    // Rows of L⁻¹ in this pass's `coef` block (mode 3).
    j0: u32,
    j1: u32,
    // This slot's first coefficient in `coef`, first vec4 in `obs`.
    coef_base: u32,
    obs_base: u32,
    kappa: f32,
    lr: f32,
    lq: f32,
    ls: f32,
    lt: f32,
    ltau: f32,
    // The loop's place in the cache group.
    cseg: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> prior: array<f32>;
// Per plane: (size, t, τ, 0) in GP units.
@group(0) @binding(2) var<storage, read> planes: array<vec4<f32>>;
// (row, column, size, weight (K⁻¹y)_j) per observation, then (t, τ, 0, 0) on a clip grid.
@group(0) @binding(3) var<storage, read> obs: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> coef: array<vec4<f32>, 4096>;
@group(0) @binding(5) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(6) var<storage, read_write> mu_out: array<f32>;
// 1 − |L⁻¹k|² before the clamp at 0.
@group(0) @binding(7) var<storage, read_write> s2_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> sigma_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> ucb_out: array<f32>;
@group(0) @binding(10) var<storage, read> slots: array<Slot>;

fn cf(e: u32) -> f32 {
    return coef[e / 4u][e % 4u];
}

fn store_sigma_ucb(o: u32, kappa: f32, mu: f32, s2: f32) {
    let sigma = sqrt(max(s2, 0.0));
    sigma_out[o] = sigma;
    let ucb = mu + kappa * sigma;
    // NaN never wins the argmax.
    ucb_out[o] = select(-3.4028235e38, ucb, ucb == ucb);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let local = gid.x + gid.y * nwg.x * 256u;
    if (local >= p.count) {
        return;
    }
    let sl = slots[gid.z];
    let i = p.offset + local;
    // This loop's candidate i in the per-candidate buffers, and its kernel row 0.
    let o = sl.seg * p.m + i;
    let kc = sl.cseg * p.stride + local;
    let kstep = p.loops * p.stride;
    if (sl.mode == 2u) {
        store_sigma_ucb(o, sl.kappa, mu_out[o], s2_out[o]);
        return;
    }
    if (sl.mode == 3u) {
        var s2 = s2_out[o];
        for (var j = sl.j0; j < sl.j1; j++) {
            let row = sl.coef_base + (j - sl.j0) * sl.n;
            var v = 0.0;
            for (var m = 0u; m <= j; m++) {
                v += cf(row + m) * kcache[m * kstep + kc];
            }
            s2 -= v * v;
        }
        s2_out[o] = s2;
        if (sl.j1 == sl.n) {
            store_sigma_ucb(o, sl.kappa, mu_out[o], s2);
        }
        return;
    }
    let q = i % p.w;
    let r = (i / p.w) % p.h;
    let plane = i / (p.w * p.h);
    let pc = planes[plane];
    // planes_per_frame: planes per centre frame (sizes × spans), 0 on a 3-D grid.
    let frame = select(0u, plane / max(p.planes_per_frame, 1u), p.time == 1u);
    var mu = prior[sl.seg * p.prior_len + (frame * p.h + r) * p.w + q];
    let stride = 1u + p.time;
    for (var j = sl.first; j < sl.n; j++) {
        let ob = obs[sl.obs_base + j * stride];
        let dr = (f32(r) - ob.x) / sl.lr;
        let ds = (pc.x - ob.z) / sl.ls;
        let dq = (f32(q) - ob.y) / sl.lq;
        // The plane's part of the distance in the CPU twin's order (size first).
        var rest = ds * ds;
        if (p.time == 1u) {
            let ot = obs[sl.obs_base + j * stride + 1u];
            let dt = (pc.y - ot.x) / sl.lt;
            let dtau = (pc.z - ot.y) / sl.ltau;
            rest = rest + dt * dt + dtau * dtau;
        }
        let t = SQRT3 * sqrt((dr * dr + rest) + dq * dq);
        let kj = (1.0 + t) * exp(-t);
        kcache[j * kstep + kc] = kj;
        // Full mode: μ = prior + wᵀk straight from the fresh values.
        if (sl.mode == 0u) {
            mu += ob.w * kj;
        }
    }
    if (sl.mode == 0u) {
        mu_out[o] = mu;
        s2_out[o] = 1.0;
        return;
    }
    // Mode 1: one pass over the cached rows.
    var v = 0.0;
    for (var m = 0u; m < sl.n; m++) {
        let km = kcache[m * kstep + kc];
        mu += cf(sl.coef_base + 2u * m) * km;
        v += cf(sl.coef_base + 2u * m + 1u) * km;
    }
    let s2 = s2_out[o] - v * v;
    mu_out[o] = mu;
    s2_out[o] = s2;
    store_sigma_ucb(o, sl.kappa, mu, s2);
}
