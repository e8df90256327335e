//! The GP stages on the GPU: posterior + UCB over every candidate, a two-pass
//! argmax reduction, and the separable window averaging of the final map. The
//! prior and all per-candidate buffers stay on the device for the session;
//! per iteration only the GP goes up and 8 bytes (the argmax) come back.

use super::context::{GpuContext, Kernel, U4, WORKGROUP};
use crate::compute::{check_session, Evaluated, GpSession, MapGrid, PosteriorUpdates, Step};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use std::sync::Arc;

/// Workgroups of the first argmax pass.
const ARGMAX_GROUPS: u32 = 256;
/// Largest kernel-row cache a session keeps on the device (within the
/// adapter's largest storage binding); past it the posterior is recomputed in
/// chunks of candidates every iteration.
const CACHE_BYTES: u64 = 1 << 30;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PosteriorParams {
    h: u32,
    w: u32,
    n: u32,
    /// 0 full, 1 append one observation, 2 UCB only (gp_posterior.wgsl).
    mode: u32,
    offset: u32,
    count: u32,
    stride: u32,
    first: u32,
    kappa: f32,
    lr: f32,
    lq: f32,
    ls: f32,
    /// Rows of L⁻¹ in this pass's `coef` block (mode 3).
    j0: u32,
    j1: u32,
    /// 1 on a clip grid (5-D GP inputs).
    time: u32,
    /// Planes per centre frame on a clip grid (sizes × spans).
    planes_per_frame: u32,
    lt: f32,
    ltau: f32,
    _pad: [u32; 2],
}

/// Floats in the shader's uniform `coef` block (64 KiB).
const COEF: usize = 16384;

pub struct GpuGpSession {
    ctx: Arc<GpuContext>,
    grid: CandidateGrid,
    prior: wgpu::Buffer,
    /// Every plane's box half-width (the window passes).
    sizes: wgpu::Buffer,
    /// Every plane's GP coordinates (size, t, τ, 0) (the posterior).
    planes: wgpu::Buffer,
    /// Per observation (row, column, size, weight) [+ (t, τ, 0, 0)]: this iteration's GP.
    obs: wgpu::Buffer,
    /// Kernel rows, row j at j·M (M candidates), room for `kcache_rows`.
    kcache: Option<wgpu::Buffer>,
    kcache_rows: usize,
    mu: wgpu::Buffer,
    s2: wgpu::Buffer,
    sigma: wgpu::Buffer,
    ucb: wgpu::Buffer,
    partial_v: wgpu::Buffer,
    partial_i: wgpu::Buffer,
    best_v: wgpu::Buffer,
    best_i: wgpu::Buffer,
    gp: Option<PosteriorInputs>,
    evaluated: Option<Evaluated>,
    /// κ of the stored UCB (none once the buffer was reused).
    ucb_kappa: Option<f32>,
    updates: PosteriorUpdates,
    cache_bytes: u64,
}

impl GpuGpSession {
    pub fn new(ctx: Arc<GpuContext>, grid: &CandidateGrid, prior: &[f32]) -> Result<Self> {
        check_session(grid, prior)?;
        if ctx.max_uniform_bytes() < (COEF * 4) as u64 {
            return Err(BorexError::Gpu(format!(
                "{} allows {} B uniform buffers; the GPU posterior needs {} B (use --device cpu)",
                ctx.adapter_info().name,
                ctx.max_uniform_bytes(),
                COEF * 4
            )));
        }
        let n = grid.len();
        if (n * 4) as u64 > ctx.max_binding_bytes() {
            return Err(BorexError::Gpu(format!("{n} candidates exceed the adapter's largest storage buffer (use --device cpu)")));
        }
        Ok(Self {
            prior: ctx.storage("prior", prior),
            sizes: ctx.storage("sizes", &grid.plane_sizes()),
            planes: ctx.storage("planes", &plane_coords(grid)),
            obs: ctx.output::<f32>("observations", 4),
            kcache: None,
            kcache_rows: 0,
            mu: ctx.output::<f32>("mu", n),
            s2: ctx.output::<f32>("sigma squared", n),
            sigma: ctx.output::<f32>("sigma", n),
            ucb: ctx.output::<f32>("ucb", n),
            partial_v: ctx.output::<f32>("argmax partial values", ARGMAX_GROUPS as usize),
            partial_i: ctx.output::<u32>("argmax partial indices", ARGMAX_GROUPS as usize),
            best_v: ctx.output::<f32>("argmax value", 1),
            best_i: ctx.output::<u32>("argmax index", 1),
            grid: grid.clone(),
            ctx,
            gp: None,
            evaluated: None,
            ucb_kappa: None,
            updates: PosteriorUpdates::default(),
            cache_bytes: CACHE_BYTES,
        })
    }

    /// Keep at most `bytes` of kernel rows on the device; past that the
    /// posterior is recomputed in chunks of at most `bytes` of scratch.
    pub fn with_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// The cache budget, within the adapter's largest storage binding.
    fn cache_budget(&self) -> u64 {
        self.ctx.max_binding_bytes().min(self.cache_bytes)
    }

    /// Kernel rows the device may cache for this grid.
    fn max_cache_rows(&self) -> usize {
        (self.cache_budget() / (self.grid.len() as u64 * 4)) as usize
    }

    /// A cache with room for `rows` kernel rows whose first `keep` rows are kept.
    fn reserve_cache(&mut self, rows: usize, keep: usize) {
        if rows <= self.kcache_rows {
            return;
        }
        let m = self.grid.len();
        let cap = (2 * self.kcache_rows).max(rows).max(16).min(self.max_cache_rows());
        let buffer = self.ctx.output::<f32>("kernel rows", cap * m);
        if let (Some(old), true) = (&self.kcache, keep > 0) {
            self.ctx.copy(old, &buffer, (keep * m * 4) as u64);
        }
        (self.kcache, self.kcache_rows) = (Some(buffer), cap);
    }

    /// One pass of gp_posterior.wgsl with `coef` (at most [`COEF`] floats) in its uniform block.
    fn dispatch_posterior(&self, params: PosteriorParams, coef: &[f32], kcache: &wgpu::Buffer) {
        let mut block = vec![0.0f32; COEF];
        block[..coef.len()].copy_from_slice(coef);
        let coef = self.ctx.uniform_slice("posterior coefficients", &block);
        let count = params.count as u64;
        let params = self.ctx.uniform("posterior params", &params);
        self.ctx.dispatch(
            Kernel::GpPosterior,
            &[&params, &self.prior, &self.planes, &self.obs, &coef, kcache, &self.mu, &self.s2, &self.sigma, &self.ucb],
            count,
        );
    }

    /// A full recompute of candidates `base.offset .. + base.count` into `kcache`:
    /// the kernel rows and μ, then σ² one tile of L⁻¹ rows at a time.
    fn full_passes(&self, gp: &PosteriorInputs, base: PosteriorParams, kcache: &wgpu::Buffer) {
        self.dispatch_posterior(PosteriorParams { mode: 0, ..base }, &[], kcache);
        let rows = (COEF / gp.n).max(1);
        for j0 in (0..gp.n).step_by(rows) {
            let j1 = (j0 + rows).min(gp.n);
            self.dispatch_posterior(PosteriorParams { mode: 3, j0: j0 as u32, j1: j1 as u32, ..base }, &gp.l_inv[j0 * gp.n..j1 * gp.n], kcache);
        }
    }

    /// Bring μ, σ² and the UCB (weight `kappa`) up to date with the last GP set.
    fn evaluate(&mut self, kappa: f32) -> Result<()> {
        let gp = self.gp.take().ok_or_else(|| BorexError::invalid("GP session used before set_gp"))?;
        self.evaluate_gp(&gp, kappa);
        self.gp = Some(gp);
        Ok(())
    }

    fn evaluate_gp(&mut self, gp: &PosteriorInputs, kappa: f32) {
        let (g, m) = (&self.grid, self.grid.len());
        let base = PosteriorParams {
            h: g.height,
            w: g.width,
            n: gp.n as u32,
            mode: 0,
            offset: 0,
            count: m as u32,
            stride: m as u32,
            first: 0,
            kappa,
            lr: gp.length_scales[0],
            lq: gp.length_scales[1],
            ls: gp.length_scales[2],
            j0: 0,
            j1: 0,
            time: g.time.is_some() as u32,
            planes_per_frame: g.time.as_ref().map_or(0, |t| (g.sizes.len() * t.spans.len()) as u32),
            lt: gp.length_scales.get(3).copied().unwrap_or(1.0),
            ltau: gp.length_scales.get(4).copied().unwrap_or(1.0),
            _pad: [0; 2],
        };
        let fits = gp.n <= self.max_cache_rows();
        match Evaluated::step(self.evaluated.as_ref(), gp, true) {
            Step::Same if self.ucb_kappa == Some(kappa) => return,
            Step::Same => {
                // Mode 2 does not touch the cache binding.
                let unused;
                let cache = match &self.kcache {
                    Some(c) => c,
                    None => {
                        unused = self.ctx.output::<f32>("unused", 1);
                        &unused
                    }
                };
                self.dispatch_posterior(PosteriorParams { mode: 2, ..base }, &[], cache);
            }
            Step::Append if fits => {
                self.updates.incremental += 1;
                self.reserve_cache(gp.n, gp.n - 1);
                let last = &gp.l_inv[(gp.n - 1) * gp.n..];
                let coef: Vec<f32> = gp.weights.iter().zip(last).flat_map(|(w, r)| [*w, *r]).collect();
                let cache = self.kcache.as_ref().expect("reserved");
                self.dispatch_posterior(PosteriorParams { mode: 1, first: gp.n as u32 - 1, ..base }, &coef, cache);
            }
            _ if fits => {
                self.updates.full += 1;
                self.reserve_cache(gp.n, 0);
                self.full_passes(gp, base, self.kcache.as_ref().expect("reserved"));
            }
            _ => {
                // Too many observations to keep every kernel row: a scratch
                // cache for a chunk of candidates at a time.
                self.updates.full += 1;
                let chunk = ((self.cache_budget() / (4 * gp.n as u64)) as usize).clamp(1, m);
                let scratch = self.ctx.output::<f32>("kernel rows (chunk)", chunk * gp.n);
                for offset in (0..m).step_by(chunk) {
                    let count = chunk.min(m - offset);
                    self.full_passes(gp, PosteriorParams { offset: offset as u32, count: count as u32, stride: chunk as u32, ..base }, &scratch);
                }
            }
        }
        let cached = fits && self.kcache.is_some();
        self.evaluated = Some(Evaluated::new(gp, true, cached));
        self.ucb_kappa = Some(kappa);
    }

    fn argmax_pass(&self, len: usize, identity: bool, input: (&wgpu::Buffer, &wgpu::Buffer), out: (&wgpu::Buffer, &wgpu::Buffer), groups: u32) {
        let params = self.ctx.uniform("argmax params", &U4([len as u32, identity as u32, 0, 0]));
        self.ctx.dispatch_groups(Kernel::Argmax, &[&params, input.0, input.1, out.0, out.1], (groups, 1));
    }

    fn dims(&self) -> U4 {
        U4([self.grid.height, self.grid.width, self.grid.sizes.len() as u32, 0])
    }

    /// Window parameters over every plane, each plane's average kept apart (clips).
    fn plane_dims(&self) -> U4 {
        U4([self.grid.height, self.grid.width, self.grid.planes() as u32, 1])
    }
}

impl GpSession for GpuGpSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        crate::compute::check_gp_dims(&self.grid, gp)?;
        if 2 * gp.n > COEF {
            return Err(BorexError::Gpu(format!("the GPU posterior holds at most {} observations, got {}; use --device cpu", COEF / 2, gp.n)));
        }
        self.obs = self.ctx.storage("observations", &packed_observations(gp));
        self.gp = Some(gp.clone());
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        self.evaluate(kappa)?;
        let len = self.grid.len();
        let groups = (len.div_ceil(WORKGROUP as usize) as u32).clamp(1, ARGMAX_GROUPS);
        self.argmax_pass(len, true, (&self.ucb, &self.ucb), (&self.partial_v, &self.partial_i), groups);
        self.argmax_pass(groups as usize, false, (&self.partial_v, &self.partial_i), (&self.best_v, &self.best_i), 1);
        let v = self.ctx.read::<f32>(&self.best_v, 1)?[0];
        let i = self.ctx.read::<u32>(&self.best_i, 1)?[0];
        Ok((i as usize, v))
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.evaluate(self.ucb_kappa.unwrap_or(0.0))?;
        Ok((self.ctx.read(&self.mu, self.grid.len())?, self.ctx.read(&self.sigma, self.grid.len())?))
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        self.evaluate(self.ucb_kappa.unwrap_or(0.0))?;
        let clip = self.grid.time.is_some();
        let params = self.ctx.uniform("window params", &if clip { self.plane_dims() } else { self.dims() });
        // The UCB buffer is free after the last acquisition: reuse it for the row sums.
        self.ucb_kappa = None;
        let rows = self.grid.height as u64 * self.grid.planes() as u64;
        self.ctx.dispatch(Kernel::WindowRows, &[&params, &self.sizes, &self.mu, &self.ucb], rows);
        let len = if clip { self.grid.len() } else { self.grid.pixels() };
        let map = self.ctx.output::<f32>("map", len);
        self.ctx.dispatch(Kernel::WindowCols, &[&params, &self.sizes, &self.ucb, &map], self.grid.width as u64);
        let map = self.ctx.read(&map, len)?;
        // Clips: every plane's spatial average comes back for the temporal pass.
        Ok(if clip { crate::compute::temporal_map(&self.grid, &map) } else { map })
    }

    fn updates(&self) -> PosteriorUpdates {
        self.updates
    }
}

/// (row, column, size, weight) per observation, then (t, τ, 0, 0) for 5-D
/// inputs: the shaders' `obs` block.
fn packed_observations(gp: &PosteriorInputs) -> Vec<f32> {
    let d = gp.length_scales.len();
    (0..gp.n)
        .flat_map(|j| {
            let x = &gp.x[d * j..d * (j + 1)];
            let mut v = vec![x[0], x[1], x[2], gp.weights[j]];
            if d == 5 {
                v.extend([x[3], x[4], 0.0, 0.0]);
            }
            v
        })
        .collect()
}

/// (size, t, τ, 0) per plane in GP units (t = τ = 0 without a time axis).
fn plane_coords(grid: &CandidateGrid) -> Vec<f32> {
    (0..grid.planes())
        .flat_map(|p| {
            let c = grid.plane_coords(p);
            [c[0], c.get(1).copied().unwrap_or(0.0), c.get(2).copied().unwrap_or(0.0), 0.0]
        })
        .collect()
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MeanGridParams {
    out_h: u32,
    out_w: u32,
    prior_h: u32,
    prior_w: u32,
    n: u32,
    size: f32,
    lr: f32,
    lq: f32,
    ls: f32,
    _pad: [u32; 3],
}

/// [`crate::compute::GpKernels::map_on_grid`] on the device: per size, μ on the
/// grid, then the two window passes; only each size's H×W map is read back.
pub fn map_on_grid(ctx: &GpuContext, grid: &MapGrid, gp: &PosteriorInputs) -> Result<Vec<f32>> {
    grid.check(gp)?;
    let (h, w) = (grid.rows.len(), grid.cols.len());
    if (h * w * 4) as u64 > ctx.max_binding_bytes() {
        return Err(BorexError::Gpu(format!("a {h}×{w} map exceeds the adapter's largest storage buffer")));
    }
    let prior = ctx.storage("prior", grid.prior);
    let rows = ctx.storage("rows", &grid.rows);
    let cols = ctx.storage("cols", &grid.cols);
    let obs = ctx.storage("observations", &packed_observations(gp));
    let mu = ctx.output::<f32>("mu plane", h * w);
    let sums = ctx.output::<f32>("row sums", h * w);
    let map = ctx.output::<f32>("map", h * w);
    let mut out = vec![0.0f32; h * w];
    let scale = 1.0 / grid.sizes.len() as f32;
    for (&size, &window) in grid.sizes.iter().zip(&grid.windows) {
        let params = ctx.uniform(
            "mean grid params",
            &MeanGridParams {
                out_h: h as u32,
                out_w: w as u32,
                prior_h: grid.prior_hw.0 as u32,
                prior_w: grid.prior_hw.1 as u32,
                n: gp.n as u32,
                size,
                lr: gp.length_scales[0],
                lq: gp.length_scales[1],
                ls: gp.length_scales[2],
                _pad: [0; 3],
            },
        );
        ctx.dispatch(Kernel::GpMeanGrid, &[&params, &prior, &rows, &cols, &obs, &mu], (h * w) as u64);
        let dims = ctx.uniform("window params", &U4([h as u32, w as u32, 1, 0]));
        let sizes = ctx.storage("window", &[window]);
        ctx.dispatch(Kernel::WindowRows, &[&dims, &sizes, &mu, &sums], h as u64);
        ctx.dispatch(Kernel::WindowCols, &[&dims, &sizes, &sums, &map], w as u64);
        for (o, v) in out.iter_mut().zip(ctx.read::<f32>(&map, h * w)?) {
            *o += v * scale;
        }
    }
    Ok(out)
}
