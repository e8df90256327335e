//! The GP stages on the GPU: posterior + UCB over every candidate, a two-pass
//! argmax reduction, and the separable window averaging of the final map. The
//! prior and all per-candidate buffers stay on the device for the session;
//! per iteration only the GP goes up and 8 bytes (the argmax) come back.

use super::context::{GpuContext, Kernel, U4, WORKGROUP};
use crate::compute::{check_session, GpSession, MapGrid, PosteriorUpdates};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use std::sync::Arc;

/// Observations one GPU session can hold (the shader's private array).
pub const MAX_OBS: usize = 128;
/// Workgroups of the first argmax pass.
const ARGMAX_GROUPS: u32 = 256;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PosteriorParams {
    h: u32,
    w: u32,
    n_sizes: u32,
    n: u32,
    kappa: f32,
    lr: f32,
    lq: f32,
    ls: f32,
}


pub struct GpuGpSession {
    ctx: Arc<GpuContext>,
    grid: CandidateGrid,
    prior: wgpu::Buffer,
    sizes: wgpu::Buffer,
    /// (row, column, size, weight) per observation, uniform.
    obs: wgpu::Buffer,
    /// L⁻¹, uniform (64 KiB at MAX_OBS).
    l_inv: wgpu::Buffer,
    mu: wgpu::Buffer,
    sigma: wgpu::Buffer,
    ucb: wgpu::Buffer,
    partial_v: wgpu::Buffer,
    partial_i: wgpu::Buffer,
    best_v: wgpu::Buffer,
    best_i: wgpu::Buffer,
    gp: Option<(usize, [f32; 3])>,
    updates: PosteriorUpdates,
}

impl GpuGpSession {
    pub fn new(ctx: Arc<GpuContext>, grid: &CandidateGrid, prior: &[f32]) -> Result<Self> {
        check_session(grid, prior)?;
        if ctx.max_uniform_bytes() < (MAX_OBS * MAX_OBS * 4) as u64 {
            return Err(BorexError::Gpu(format!(
                "{} allows {} B uniform buffers; the GPU posterior needs {} B (use --device cpu)",
                ctx.adapter_info().name,
                ctx.max_uniform_bytes(),
                MAX_OBS * MAX_OBS * 4
            )));
        }
        let n = grid.len();
        Ok(Self {
            prior: ctx.storage("prior", prior),
            sizes: ctx.storage("sizes", &grid.sizes),
            obs: ctx.uniform_buffer("observations", 4 * MAX_OBS * 4),
            l_inv: ctx.uniform_buffer("l_inv", MAX_OBS * MAX_OBS * 4),
            mu: ctx.output::<f32>("mu", n),
            sigma: ctx.output::<f32>("sigma", n),
            ucb: ctx.output::<f32>("ucb", n),
            partial_v: ctx.output::<f32>("argmax partial values", ARGMAX_GROUPS as usize),
            partial_i: ctx.output::<u32>("argmax partial indices", ARGMAX_GROUPS as usize),
            best_v: ctx.output::<f32>("argmax value", 1),
            best_i: ctx.output::<u32>("argmax index", 1),
            grid: grid.clone(),
            ctx,
            gp: None,
            updates: PosteriorUpdates::default(),
        })
    }

    fn run_posterior(&self, kappa: f32) -> Result<()> {
        let (n, ls) = self.gp.ok_or_else(|| BorexError::invalid("GP session used before set_gp"))?;
        let g = &self.grid;
        let params = self.ctx.uniform(
            "posterior params",
            &PosteriorParams { h: g.height, w: g.width, n_sizes: g.sizes.len() as u32, n: n as u32, kappa, lr: ls[0], lq: ls[1], ls: ls[2] },
        );
        self.ctx.dispatch(
            Kernel::GpPosterior,
            &[&params, &self.prior, &self.sizes, &self.obs, &self.l_inv, &self.mu, &self.sigma, &self.ucb],
            g.len() as u64,
        );
        Ok(())
    }

    fn argmax_pass(&self, len: usize, identity: bool, input: (&wgpu::Buffer, &wgpu::Buffer), out: (&wgpu::Buffer, &wgpu::Buffer), groups: u32) {
        let params = self.ctx.uniform("argmax params", &U4([len as u32, identity as u32, 0, 0]));
        self.ctx.dispatch_groups(Kernel::Argmax, &[&params, input.0, input.1, out.0, out.1], (groups, 1));
    }

    fn dims(&self) -> U4 {
        U4([self.grid.height, self.grid.width, self.grid.sizes.len() as u32, 0])
    }
}

impl GpSession for GpuGpSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        if gp.length_scales.len() != 3 || gp.x.len() != 3 * gp.n {
            return Err(BorexError::invalid("the candidate grid needs 3-D GP inputs (row, column, size)"));
        }
        if gp.n > MAX_OBS {
            return Err(BorexError::Gpu(format!("the GPU posterior holds at most {MAX_OBS} observations, got {}; use --device cpu", gp.n)));
        }
        self.ctx.write(&self.obs, &packed_observations(gp));
        self.ctx.write(&self.l_inv, &gp.l_inv);
        self.gp = Some((gp.n, [gp.length_scales[0], gp.length_scales[1], gp.length_scales[2]]));
        self.updates.full += 1;
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        self.run_posterior(kappa)?;
        let len = self.grid.len();
        let groups = (len.div_ceil(WORKGROUP as usize) as u32).clamp(1, ARGMAX_GROUPS);
        self.argmax_pass(len, true, (&self.ucb, &self.ucb), (&self.partial_v, &self.partial_i), groups);
        self.argmax_pass(groups as usize, false, (&self.partial_v, &self.partial_i), (&self.best_v, &self.best_i), 1);
        let v = self.ctx.read::<f32>(&self.best_v, 1)?[0];
        let i = self.ctx.read::<u32>(&self.best_i, 1)?[0];
        Ok((i as usize, v))
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.run_posterior(0.0)?;
        Ok((self.ctx.read(&self.mu, self.grid.len())?, self.ctx.read(&self.sigma, self.grid.len())?))
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        self.run_posterior(0.0)?;
        let params = self.ctx.uniform("window params", &self.dims());
        // The UCB buffer is free after the last acquisition: reuse it for the row sums.
        let rows = self.grid.height as u64 * self.grid.sizes.len() as u64;
        self.ctx.dispatch(Kernel::WindowRows, &[&params, &self.sizes, &self.mu, &self.ucb], rows);
        let map = self.ctx.output::<f32>("map", self.grid.pixels());
        self.ctx.dispatch(Kernel::WindowCols, &[&params, &self.sizes, &self.ucb, &map], self.grid.width as u64);
        self.ctx.read(&map, self.grid.pixels())
    }

    fn updates(&self) -> PosteriorUpdates {
        self.updates
    }
}

/// (row, column, size, weight) per observation: the shaders' uniform `obs` block.
fn packed_observations(gp: &PosteriorInputs) -> Vec<f32> {
    (0..gp.n).flat_map(|j| [gp.x[3 * j], gp.x[3 * j + 1], gp.x[3 * j + 2], gp.weights[j]]).collect()
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
    if gp.n > MAX_OBS {
        return Err(BorexError::Gpu(format!("the GPU map holds at most {MAX_OBS} observations, got {}; use --device cpu", gp.n)));
    }
    let obs = ctx.uniform_buffer("observations", 4 * MAX_OBS * 4);
    ctx.write(&obs, &packed_observations(gp));
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
