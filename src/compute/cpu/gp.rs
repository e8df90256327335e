//! CPU twin of the GP posterior, UCB argmax and window averaging over the
//! candidate grid. Work is split by grid row (one (size, row) pair per task),
//! and the inner loops run along the row so they vectorise.
//!
//! The session keeps each observation's kernel row k_i(·) over the grid, μ and
//! 1 − σ² partial sums between iterations. When the next GP only appends one
//! observation and keeps the length scales (the usual case: they sit at a
//! bound), L's leading block and hence L⁻¹'s leading rows are unchanged, so
//! σ² loses one term (the new row of L⁻¹K) and μ = wᵀK reuses the cached K:
//! O(n·M) instead of O(n²·M), the same numbers up to rounding.

use crate::compute::{check_session, Evaluated, GpSession, MapGrid, PosteriorUpdates, Step};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

const SQRT3: f32 = 1.732_050_8;

/// Largest kernel-row cache (n × candidates × 4 bytes) a session keeps; past
/// it every iteration recomputes from scratch with transient blocks.
const CACHE_BYTES: usize = 512 << 20;

/// The GP stages of one refine loop on the CPU (the GPU path's twin and test oracle).
pub struct CpuGpSession {
    grid: CandidateGrid,
    prior: Vec<f32>,
    gp: Option<PosteriorInputs>,
    /// Work units: (plane, rows) in blocks of `ROWS` rows, in candidate order.
    blocks: Vec<(usize, std::ops::Range<u32>)>,
    /// Per block: the kernel rows of every observation, n × B row-major.
    k: Vec<Vec<f32>>,
    mu: Vec<f32>,
    /// 1 − |L⁻¹k|², before the clamp at 0 and the square root.
    s2: Vec<f32>,
    evaluated: Option<Evaluated>,
    updates: PosteriorUpdates,
    cache_bytes: usize,
}

/// One block's share of a pass: its first candidate's index, its kernel-row
/// cache, and its runs of μ and σ².
type BlockJob<'a> = (usize, &'a mut Vec<f32>, &'a mut [f32], &'a mut [f32]);

/// How a block is brought up to date.
#[derive(Clone, Copy)]
enum Pass<'a> {
    /// Every kernel row, then [L⁻¹; wᵀ]·K (`a`, (n+1) × n).
    Full { a: &'a Array2<f32>, sigma: bool },
    /// Append the newest kernel row; μ = prior + wᵀK and σ² −= (rᵀK)² with r
    /// L⁻¹'s last row.
    Append { w: &'a [f32], r: &'a [f32], sigma: bool },
}

impl CpuGpSession {
    /// A session over `grid` with the prior map `prior` (row-major, the grid's H×W).
    pub fn new(grid: &CandidateGrid, prior: &[f32]) -> Result<Self> {
        check_session(grid, prior)?;
        let h = grid.height;
        let blocks: Vec<_> = (0..grid.planes())
            .flat_map(|p| (0..h).step_by(ROWS as usize).map(move |r| (p, r..(r + ROWS).min(h))))
            .collect();
        Ok(Self {
            k: vec![Vec::new(); blocks.len()],
            blocks,
            mu: vec![0.0; grid.len()],
            s2: vec![0.0; grid.len()],
            grid: grid.clone(),
            prior: prior.to_vec(),
            gp: None,
            evaluated: None,
            updates: PosteriorUpdates::default(),
            cache_bytes: CACHE_BYTES,
        })
    }

    /// Keep at most `bytes` of kernel rows (0: recompute every time).
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Bring μ (and σ² when `sigma`) up to date with the last GP set. With
    /// `ucb = Some(κ)` (σ² wanted) the pass that updates a block also finds
    /// its UCB argmax, so the search needs no second sweep over the
    /// candidates; `None` comes back when nothing needed updating.
    fn evaluate(&mut self, sigma: bool, ucb: Option<f32>) -> Result<Option<(usize, f32)>> {
        let gp = self.gp.take().ok_or_else(|| BorexError::invalid("GP session used before set_gp"))?;
        let result = self.evaluate_gp(&gp, sigma, ucb);
        self.gp = Some(gp);
        result
    }

    fn evaluate_gp(&mut self, gp: &PosteriorInputs, sigma: bool, ucb: Option<f32>) -> Result<Option<(usize, f32)>> {
        let step = Evaluated::step(self.evaluated.as_ref(), gp, sigma);
        if step == Step::Same {
            return Ok(None);
        }
        let cached = gp.n * self.grid.len() * 4 <= self.cache_bytes;
        let append = step == Step::Append && cached;
        // Appending keeps a stored σ² valid even on a mean-only request.
        let sigma = if append { self.evaluated.as_ref().is_some_and(|e| e.sigma) } else { sigma };
        let a;
        let pass = if append {
            self.updates.incremental += 1;
            Pass::Append { w: &gp.weights, r: &gp.l_inv[(gp.n - 1) * gp.n..], sigma }
        } else {
            self.updates.full += 1;
            a = stacked(gp);
            Pass::Full { a: &a, sigma }
        };
        // The argmax needs σ² of this very pass.
        let ucb = ucb.filter(|_| sigma);
        let w = self.grid.width as usize;
        let mut jobs: Vec<BlockJob> = Vec::with_capacity(self.blocks.len());
        let (mut m_rest, mut s_rest, mut offset) = (&mut self.mu[..], &mut self.s2[..], 0);
        for (kb, (_, rows)) in self.k.iter_mut().zip(&self.blocks) {
            let (m, mr) = m_rest.split_at_mut(rows.len() * w);
            let (sg, sr) = s_rest.split_at_mut(rows.len() * w);
            offset += m.len();
            jobs.push((offset - m.len(), kb, m, sg));
            (m_rest, s_rest) = (mr, sr);
        }
        let (grid, prior) = (&self.grid, &self.prior[..]);
        let best = self
            .blocks
            .par_iter()
            .zip(jobs)
            .map(|((si, rows), (offset, kb, m, sg))| {
                let mut tmp = Vec::new();
                let k = if cached {
                    kb
                } else {
                    kb.clear();
                    kb.shrink_to_fit();
                    &mut tmp
                };
                block(grid, prior, gp, pass, *si, rows.clone(), k, m, sg);
                ucb.map_or(NO_MAX, |kappa| block_argmax(m, sg, kappa, offset))
            })
            .reduce(|| NO_MAX, first_max);
        self.evaluated = Some(Evaluated::new(gp, sigma, cached));
        Ok(ucb.map(|_| best))
    }
}

/// Bring one block of candidates up to date (μ, σ² and the kernel rows `k`).
#[allow(clippy::too_many_arguments)]
fn block(
    grid: &CandidateGrid,
    prior: &[f32],
    gp: &PosteriorInputs,
    pass: Pass,
    si: usize,
    rows: std::ops::Range<u32>,
    k: &mut Vec<f32>,
    mu: &mut [f32],
    s2: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { block_avx2(grid, prior, gp, pass, si, rows, k, mu, s2) };
    }
    block_impl(grid, prior, gp, pass, si, rows, k, mu, s2)
}

/// The same code compiled for AVX2 + FMA: the kernel, σ and GEMV loops run 8 wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_avx2(
    grid: &CandidateGrid,
    prior: &[f32],
    gp: &PosteriorInputs,
    pass: Pass,
    si: usize,
    rows: std::ops::Range<u32>,
    k: &mut Vec<f32>,
    mu: &mut [f32],
    s2: &mut [f32],
) {
    block_impl(grid, prior, gp, pass, si, rows, k, mu, s2)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block_impl(
    grid: &CandidateGrid,
    prior: &[f32],
    gp: &PosteriorInputs,
    pass: Pass,
    si: usize,
    rows: std::ops::Range<u32>,
    k: &mut Vec<f32>,
    mu: &mut [f32],
    s2: &mut [f32],
) {
    let w = grid.width as usize;
    let n = gp.n;
    let b = rows.len() * w;
    let first = match pass {
        Pass::Full { .. } => 0,
        Pass::Append { .. } => n - 1,
    };
    if k.capacity() < n * b {
        // Room for RESERVE_ROWS rows at once: untouched capacity costs no
        // memory, while growing by doubling copied the whole cache into fresh
        // pages (page faults were 17 % of a refine's samples).
        k.reserve_exact(n.max(RESERVE_ROWS) * b - k.len());
    }
    k.resize(n * b, 0.0);
    kernel_rows(&grid.plane_coords(si), w, gp, rows.clone(), first..n, &mut k[first * b..]);
    // The prior is per pixel, or per frame and pixel on a clip grid.
    let frame = grid.time.as_ref().map_or(0, |_| grid.decode_time(si * grid.pixels()).0 as usize);
    let prior = &prior[frame * grid.pixels() + rows.start as usize * w..][..b];
    match pass {
        Pass::Full { a, sigma } => {
            let k = ArrayView2::from_shape((n, b), &k[..]).expect("n × B");
            // L⁻¹ is lower triangular: rows j0..j1 of L⁻¹K only need K's first
            // j1 rows. The last part also carries wᵀ (row n of `a`), which needs all n.
            let parts = (n / 16).clamp(1, 4);
            if sigma {
                s2.iter_mut().for_each(|x| *x = 1.0);
            }
            for p in 0..parts {
                let last = p + 1 == parts;
                let (j0, j1) = (n * p / parts, if last { n + 1 } else { n * (p + 1) / parts });
                if !sigma && !last {
                    continue;
                }
                let cols = j1.min(n);
                let v = a.slice(s![j0..j1, ..cols]).dot(&k.slice(s![..cols, ..]));
                if sigma {
                    for vj in v.rows().into_iter().take(j1.min(n) - j0) {
                        for (x, y) in s2.iter_mut().zip(vj.as_slice().expect("row-major")) {
                            *x -= y * y;
                        }
                    }
                }
                if last {
                    for ((m, p), v) in mu.iter_mut().zip(prior).zip(v.row(j1 - j0 - 1)) {
                        *m = p + v;
                    }
                }
            }
        }
        Pass::Append { w: weights, r, sigma } => {
            let mut v = vec![0.0f32; b];
            mu.copy_from_slice(prior);
            // Eight cached rows per sweep keep μ and v in registers across
            // them (a quarter less CPU time than one row per sweep); the sums
            // run in the same order as one row at a time.
            let rows: Vec<&[f32]> = k.chunks_exact(b).collect();
            let mut i = 0;
            while i + 8 <= n {
                let kk: [&[f32]; 8] = std::array::from_fn(|j| &rows[i + j][..b]);
                let ww: [f32; 8] = std::array::from_fn(|j| weights[i + j]);
                let rr: [f32; 8] = std::array::from_fn(|j| r[i + j]);
                let (mu, v) = (&mut mu[..b], &mut v[..b]);
                for c in 0..b {
                    let (mut m, mut vv) = (mu[c], v[c]);
                    for j in 0..8 {
                        m += ww[j] * kk[j][c];
                        vv += rr[j] * kk[j][c];
                    }
                    mu[c] = m;
                    v[c] = vv;
                }
                i += 8;
            }
            for (ki, (wi, ri)) in rows[i..].iter().zip(weights[i..].iter().zip(&r[i..])) {
                for ((m, vv), kv) in mu.iter_mut().zip(&mut v).zip(ki.iter()) {
                    *m += wi * kv;
                    *vv += ri * kv;
                }
            }
            if sigma {
                for (x, y) in s2.iter_mut().zip(&v) {
                    *x -= y * y;
                }
            }
        }
    }
}

/// Kernel values k_j(candidate) for observations `obs` over grid rows `rows`
/// of one plane (`coords`: its GP coordinates after row and column): `out`
/// holds obs.len() rows of rows.len()·W values.
#[inline(always)]
fn kernel_rows(
    coords: &[f32],
    w: usize,
    gp: &PosteriorInputs,
    rows: std::ops::Range<u32>,
    obs: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let d = coords.len() + 2;
    let (lr, lq) = (gp.length_scales[0], gp.length_scales[1]);
    let b = rows.len() * w;
    for (krow, i) in out.chunks_exact_mut(b).zip(obs) {
        let x = &gp.x[d * i..d * (i + 1)];
        let (xr, xq) = (x[0], x[1]);
        // The plane's part of the distance, summed in the 3-D order (size first).
        let rest =
            coords.iter().zip(&x[2..]).zip(&gp.length_scales[2..]).fold(None, |acc: Option<f32>, ((c, xc), l)| {
                let v = ((c - xc) / l).powi(2);
                Some(acc.map_or(v, |a| a + v))
            });
        let rest = rest.unwrap_or(0.0);
        for (dr_i, r) in rows.clone().enumerate() {
            let base = ((r as f32 - xr) / lr).powi(2) + rest;
            for (q, kv) in krow[dr_i * w..(dr_i + 1) * w].iter_mut().enumerate() {
                let dq = (q as f32 - xq) / lq;
                let t = SQRT3 * (base + dq * dq).sqrt();
                *kv = (1.0 + t) * exp_neg(-t);
            }
        }
    }
}

/// [L⁻¹; wᵀ] as one (n+1) × n matrix.
fn stacked(gp: &PosteriorInputs) -> Array2<f32> {
    let n = gp.n;
    Array2::from_shape_fn((n + 1, n), |(j, i)| if j < n { gp.l_inv[j * n + i] } else { gp.weights[i] })
}

/// Rows per work unit: 8 × 224 candidates keep K (n × B) inside L2.
const ROWS: u32 = 8;

/// Kernel rows reserved per block at a time.
const RESERVE_ROWS: usize = 128;

/// e^x for x ≤ 0 in straight-line f32 arithmetic that vectorises (libm's expf
/// does not): x = n·ln2 + r, e^r by a degree-7 polynomial, 2^n by exponent
/// bits. Relative error below 3e-7; results under e^-87 flush to 0.
#[inline(always)]
pub(crate) fn exp_neg(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.max(-87.0);
    // SAFETY: x ∈ [−87, 0], so the product is a small finite negative number.
    let n: i32 = unsafe { (x * std::f32::consts::LOG2_E - 0.5).to_int_unchecked() };
    let nf = n as f32;
    let r = (x - nf * LN2_HI) - nf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

impl GpSession for CpuGpSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        crate::compute::check_gp_dims(&self.grid, gp)?;
        self.gp = Some(gp.clone());
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        if let Some(best) = self.evaluate(true, Some(kappa))? {
            return Ok(best);
        }
        // Nothing changed since the last pass: a sweep of its own.
        let chunk = (self.grid.width * ROWS) as usize;
        Ok(self
            .mu
            .par_chunks(chunk)
            .zip(self.s2.par_chunks(chunk))
            .enumerate()
            .map(|(b, (m, s2))| block_argmax(m, s2, kappa, b * chunk))
            .reduce(|| NO_MAX, first_max))
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.evaluate(true, None)?;
        Ok((self.mu.clone(), self.s2.iter().map(|x| x.max(0.0).sqrt()).collect()))
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        self.evaluate(false, None)?;
        if self.grid.time.is_none() {
            return Ok(window_average(&self.grid, &self.mu));
        }
        // Clips: each plane's spatial window average, then the temporal one.
        let (h, w, hw) = (self.grid.height, self.grid.width, self.grid.pixels());
        let planes: Vec<f32> = (0..self.grid.planes())
            .flat_map(|p| {
                window_average(&CandidateGrid::new(h, w, vec![self.grid.plane_size(p)]), &self.mu[p * hw..(p + 1) * hw])
            })
            .collect();
        Ok(crate::compute::temporal_map(&self.grid, &planes))
    }

    fn updates(&self) -> PosteriorUpdates {
        self.updates
    }
}

/// μ along one output row of a [`MapGrid`] (model row coordinate `r`, one size).
pub(crate) fn mean_row(gp: &PosteriorInputs, grid: &MapGrid, r: f32, size: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { mean_row_avx2(gp, grid, r, size, out) };
    }
    mean_row_impl(gp, grid, r, size, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mean_row_avx2(gp: &PosteriorInputs, grid: &MapGrid, r: f32, size: f32, out: &mut [f32]) {
    mean_row_impl(gp, grid, r, size, out)
}

#[inline(always)]
fn mean_row_impl(gp: &PosteriorInputs, grid: &MapGrid, r: f32, size: f32, out: &mut [f32]) {
    let (lr, lq, ls) = (gp.length_scales[0], gp.length_scales[1], gp.length_scales[2]);
    for (o, &c) in out.iter_mut().zip(&grid.cols) {
        *o = grid.prior_at(r, c);
    }
    for j in 0..gp.n {
        let (dr, ds) = ((r - gp.x[3 * j]) / lr, (size - gp.x[3 * j + 2]) / ls);
        let base = dr * dr + ds * ds;
        let (xq, wj) = (gp.x[3 * j + 1], gp.weights[j]);
        for (o, &c) in out.iter_mut().zip(&grid.cols) {
            let dq = (c - xq) / lq;
            let t = SQRT3 * (base + dq * dq).sqrt();
            *o += wj * ((1.0 + t) * exp_neg(-t));
        }
    }
}

/// The identity of [`first_max`].
const NO_MAX: (usize, f32) = (usize::MAX, f32::NEG_INFINITY);

/// The UCB argmax μ + κ·√max(σ², 0) of one run of candidates starting at
/// index `offset` (NaN counts as −∞; ties go to the smaller index): the
/// values, their maximum and its first position in three passes that
/// vectorise, not one branchy scan.
fn block_argmax(mu: &[f32], s2: &[f32], kappa: f32, offset: usize) -> (usize, f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { block_argmax_avx2(mu, s2, kappa, offset) };
    }
    block_argmax_impl(mu, s2, kappa, offset)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_argmax_avx2(mu: &[f32], s2: &[f32], kappa: f32, offset: usize) -> (usize, f32) {
    block_argmax_impl(mu, s2, kappa, offset)
}

#[inline(always)]
fn block_argmax_impl(mu: &[f32], s2: &[f32], kappa: f32, offset: usize) -> (usize, f32) {
    const LANES: usize = 8;
    let mut vals = [0.0f32; (ROWS * 256) as usize];
    let mut best = NO_MAX;
    // Blocks longer than the buffer (grids wider than 256) go in pieces.
    for (p, (mu, s2)) in mu.chunks(vals.len()).zip(s2.chunks(vals.len())).enumerate() {
        let vals = &mut vals[..mu.len()];
        for ((v, m), s) in vals.iter_mut().zip(mu).zip(s2) {
            let a = m + kappa * s.max(0.0).sqrt();
            *v = if a.is_nan() { f32::NEG_INFINITY } else { a };
        }
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = vals.chunks_exact(LANES);
        for c in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l = if *v > *l { *v } else { *l };
            }
        }
        let top = chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
        let at = vals.iter().position(|&v| v == top).expect("the maximum is one of the values");
        best = first_max(best, (offset + p * (ROWS * 256) as usize + at, top));
    }
    best
}

/// Larger value wins; equal values go to the smaller index.
pub(crate) fn first_max(a: (usize, f32), b: (usize, f32)) -> (usize, f32) {
    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
        b
    } else {
        a
    }
}

/// Per size, the mean of `m(·, ·, s)` over the in-image part of the (2s+1)²
/// window around each pixel; then the average over sizes. Separable running
/// sums (along rows, then down columns), O(1) per pixel whatever s is, in the
/// GPU kernels' order.
///
/// The window is the reference's (`AvgPool2d(2s+1, stride 1, padding s,
/// count_include_pad=False)`): centres [p−s, p+s]. The boxes that cover pixel
/// p (a box covers [r−s, r+s)) have centres in (p−s, p+s], so the window takes
/// one centre more, p−s, whose box ends just before p. Kept as the reference
/// has it so maps compare with the paper's; tests/gpu_twins.rs checks both
/// paths against a brute-force average of exactly this window.
pub fn window_average(grid: &CandidateGrid, m: &[f32]) -> Vec<f32> {
    let (h, w) = (grid.height as usize, grid.width as usize);
    let n_sizes = grid.sizes.len();
    let mut sums = vec![0.0f32; m.len()];
    sums.par_chunks_mut(w).zip(m.par_chunks(w)).enumerate().for_each(|(i, (out, src))| {
        let s = grid.sizes[i / h] as usize;
        let mut acc: f32 = src[..(s + 1).min(w)].iter().sum();
        out[0] = acc;
        for q in 1..w {
            if q + s < w {
                acc += src[q + s];
            }
            if q > s {
                acc -= src[q - s - 1];
            }
            out[q] = acc;
        }
    });
    let span = |x: usize, s: usize, n: usize| ((x + s + 1).min(n) - x.saturating_sub(s)) as f32;
    let scale = 1.0 / n_sizes as f32;
    // Column-wise: each task owns a strip of columns and walks down the rows.
    let mut out = vec![0.0f32; h * w];
    let strip = 16;
    let strips: Vec<Vec<f32>> = (0..w.div_ceil(strip))
        .into_par_iter()
        .map(|t| {
            let (q0, q1) = (t * strip, ((t + 1) * strip).min(w));
            let mut col = vec![0.0f32; h * (q1 - q0)];
            for (k, &s) in grid.sizes.iter().enumerate() {
                let s = s as usize;
                let plane = &sums[k * h * w..(k + 1) * h * w];
                for q in q0..q1 {
                    let cols = span(q, s, w);
                    let mut acc: f32 = (0..(s + 1).min(h)).map(|r| plane[r * w + q]).sum();
                    for r in 0..h {
                        if r > 0 {
                            if r + s < h {
                                acc += plane[(r + s) * w + q];
                            }
                            if r > s {
                                acc -= plane[(r - s - 1) * w + q];
                            }
                        }
                        let v = acc / (cols * span(r, s, h)) * scale;
                        let o = &mut col[r * (q1 - q0) + q - q0];
                        *o = if k == 0 { v } else { *o + v };
                    }
                }
            }
            col
        })
        .collect();
    for (t, col) in strips.iter().enumerate() {
        let (q0, width) = (t * strip, col.len() / h);
        for r in 0..h {
            out[r * w + q0..r * w + q0 + width].copy_from_slice(&col[r * width..(r + 1) * width]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::Gp;
    use ndarray::array;

    #[test]
    fn session_posterior_matches_the_f64_gp() {
        let grid = CandidateGrid::new(12, 16, vec![3, 5]);
        let prior: Vec<f32> = (0..grid.pixels()).map(|i| (i % 7) as f32 * 0.01).collect();
        let x = array![[2.0, 3.0, 3.0], [8.0, 11.0, 5.0], [5.5, 7.2, 3.4]];
        let gp = Gp::with_length_scales(x.view(), &[0.4, -0.3, 0.2], &[3.0, 4.0, 2.0], 0.01).unwrap();
        let mut sess = CpuGpSession::new(&grid, &prior).unwrap();
        sess.set_gp(&gp.posterior_inputs()).unwrap();
        let (mu, sigma) = sess.posterior().unwrap();
        for idx in [0, 37, 200, grid.len() - 1] {
            let (r, q, si) = grid.decode(idx);
            let (m, s) = gp.predict(array![[r as f64, q as f64, grid.sizes[si] as f64]].view());
            assert!((mu[idx] - (m[0] as f32 + prior[r as usize * 16 + q as usize])).abs() < 1e-5);
            assert!((sigma[idx] - s[0] as f32).abs() < 1e-4, "{} vs {}", sigma[idx], s[0]);
        }
        let (best, val) = sess.ucb_argmax(10.0).unwrap();
        let ucb: Vec<f32> = mu.iter().zip(&sigma).map(|(m, s)| m + 10.0 * s).collect();
        let want = ucb.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b });
        assert_eq!((best, val), want);
    }

    /// First index of the largest UCB value by a plain scan (NaN as −∞).
    fn scan_argmax(mu: &[f32], sigma: &[f32], kappa: f32) -> (usize, f32) {
        let mut best = (usize::MAX, f32::NEG_INFINITY);
        for (i, (m, s)) in mu.iter().zip(sigma).enumerate() {
            let a = m + kappa * s;
            let a = if a.is_nan() { f32::NEG_INFINITY } else { a };
            if best.0 == usize::MAX || a > best.1 {
                best = (i, a);
            }
        }
        best
    }

    #[test]
    fn block_argmax_matches_a_scan() {
        // Ties (the first wins), NaN (never wins), a remainder past the last
        // 8 lanes, runs longer than one 2048-value piece, all −∞.
        let n = 5000;
        let mut mu: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 * 0.01).collect();
        let s2: Vec<f32> = (0..n).map(|i| if i % 13 == 0 { -0.5 } else { ((i * 11) % 7) as f32 * 0.001 }).collect();
        mu[17] = f32::NAN;
        let sigma: Vec<f32> = s2.iter().map(|x| x.max(0.0).sqrt()).collect();
        for len in [1, 7, 9, 2047, 2048, 2049, n] {
            for offset in [0, 3, 100] {
                let want = scan_argmax(&mu[offset..len.max(offset + 1)], &sigma[offset..len.max(offset + 1)], 2.0);
                let got = block_argmax(&mu[offset..len.max(offset + 1)], &s2[offset..len.max(offset + 1)], 2.0, offset);
                assert_eq!(got, (want.0 + offset, want.1), "len {len}, offset {offset}");
            }
        }
        // A tie across pieces: the first piece's copy wins.
        let mut flat = vec![0.0f32; 4100];
        flat[2100] = 1.0;
        flat[4000] = 1.0;
        assert_eq!(block_argmax(&flat, &vec![0.0; 4100], 1.0, 10), (2110, 1.0));
        let nan = vec![f32::NAN; 20];
        assert_eq!(block_argmax(&nan, &nan, 1.0, 5), (5, f32::NEG_INFINITY));
    }

    #[test]
    fn fused_ucb_argmax_matches_a_scan_of_the_posterior() {
        // Full passes and appends (same length scales), each step's argmax
        // from the update pass against a scan of the posterior it leaves.
        let grid = CandidateGrid::new(20, 300, vec![2, 4]);
        let prior: Vec<f32> = (0..grid.pixels()).map(|i| ((i * 7) % 23) as f32 * 0.01).collect();
        let mut sess = CpuGpSession::new(&grid, &prior).unwrap();
        let pts = [
            [3.0, 20.0, 2.0],
            [15.0, 250.0, 4.0],
            [9.0, 140.0, 3.0],
            [0.0, 299.0, 2.0],
            [19.0, 5.0, 4.0],
            [11.0, 77.0, 2.5],
        ];
        let mut updates = 0;
        for n in 1..=pts.len() {
            let x = ndarray::Array2::from_shape_fn((n, 3), |(i, d)| pts[i][d]);
            let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
            let ls = if n < 3 { [4.0, 30.0, 1.5] } else { [5.0, 40.0, 2.0] };
            let gp = Gp::with_length_scales(x.view(), &y, &ls, 0.01).unwrap();
            sess.set_gp(&gp.posterior_inputs()).unwrap();
            let got = sess.ucb_argmax(3.0).unwrap();
            let (mu, sigma) = sess.posterior().unwrap();
            assert_eq!(got, scan_argmax(&mu, &sigma, 3.0), "n = {n}");
            // The same GP again: no update, the separate sweep.
            assert_eq!(sess.ucb_argmax(3.0).unwrap(), got);
            updates += 1;
        }
        let u = sess.updates();
        // Full at n = 1 and n = 3 (the length scales change), appends otherwise.
        assert_eq!((u.full, u.incremental), (2, updates - 2));
    }

    #[test]
    fn fast_exp_matches_libm() {
        for i in 0..17400 {
            let x = -(i as f32) * 0.005;
            let (a, b) = (exp_neg(x), x.exp());
            assert!((a - b).abs() <= 3e-7 * b + 1e-38, "exp({x}): {a} vs {b}");
        }
        assert_eq!(exp_neg(-200.0), exp_neg(-87.0));
        assert!(exp_neg(-87.0) > 0.0 && exp_neg(-87.0) < 2e-38);
    }

    #[test]
    fn window_average_by_hand() {
        let grid = CandidateGrid::new(3, 4, vec![1]);
        let m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = window_average(&grid, &m);
        // corner (0, 0): mean of rows 0..2 × cols 0..2 = (0 + 1 + 4 + 5) / 4
        assert_eq!(out[0], 2.5);
        // centre (1, 1): mean of the full 3×3 block = 5
        assert_eq!(out[5], 5.0);
        assert_eq!(first_max((3, 1.0), (2, 1.0)), (2, 1.0));
        assert_eq!(first_max((3, 1.0), (9, 1.0)), (3, 1.0));
    }
}
