//! The GP stages on the GPU: posterior + UCB over every candidate, a two-pass
//! argmax reduction, and the separable window averaging of the final map.
//! [`GpuGpBatch`] holds F loops over grids of one shape (a lockstep group):
//! their priors and per-candidate buffers live on the device in F segments,
//! and a step runs each stage once for all of them (the loop is the
//! workgroup grid's z or y axis), recorded in one command encoder, with one
//! readback of every loop's argmax (and the maps of loops that end). A single
//! refine's [`GpuGpSession`] is a batch of one.

use super::context::{ArgmaxParams, Commands, GpuContext, HostLayout, Kernel, WindowParams, WORKGROUP};
use crate::compute::{
    check_gp_dims, check_session, BatchOutput, BatchStep, Evaluated, GpBatch, GpSession, MapGrid, PosteriorUpdates,
    Step,
};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use std::sync::Arc;

/// Workgroups of the first argmax pass (per loop).
const ARGMAX_GROUPS: u32 = 256;
/// Largest kernel-row cache a batch keeps on the device (within the
/// adapter's largest storage binding); past it the posterior is recomputed in
/// chunks of candidates every iteration.
const CACHE_BYTES: u64 = 1 << 30;
/// Floats in the shader's uniform `coef` block (64 KiB).
const COEF: usize = 16384;

/// What every slot of a posterior dispatch shares (gp_posterior.wgsl `Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PosteriorParams {
    h: u32,
    w: u32,
    offset: u32,
    count: u32,
    stride: u32,
    loops: u32,
    m: u32,
    prior_len: u32,
    time: u32,
    planes_per_frame: u32,
    _pad: [u32; 2],
}

/// One loop's share of a posterior dispatch (gp_posterior.wgsl `Slot`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SlotParams {
    seg: u32,
    /// 0 full, 1 append one observation, 2 UCB only, 3 a tile of σ² (gp_posterior.wgsl).
    mode: u32,
    n: u32,
    first: u32,
    j0: u32,
    j1: u32,
    coef_base: u32,
    obs_base: u32,
    kappa: f32,
    lr: f32,
    lq: f32,
    ls: f32,
    lt: f32,
    ltau: f32,
    /// The loop's place in its cache group's kernel-row buffer.
    cseg: u32,
    _pad: u32,
}

pub(super) fn host_layouts() -> Vec<HostLayout> {
    vec![
        host_layout!(
            PosteriorParams,
            "gp_posterior.wgsl",
            "Params",
            [h, w, offset, count, stride, loops, m, prior_len, time, planes_per_frame, _pad]
        ),
        host_layout!(
            SlotParams,
            "gp_posterior.wgsl",
            "Slot",
            [seg, mode, n, first, j0, j1, coef_base, obs_base, kappa, lr, lq, ls, lt, ltau, cseg, _pad]
        ),
        host_layout!(
            MeanGridParams,
            "gp_mean_grid.wgsl",
            "Params",
            [out_h, out_w, prior_h, prior_w, n, size, lr, lq, ls, _pad]
        ),
    ]
}

/// Posterior dispatches of one step, each with its slots and coefficient
/// block; every slot appears at most once per dispatch (its σ² is read and
/// written in place).
#[derive(Default)]
struct Passes {
    passes: Vec<(Vec<SlotParams>, Vec<f32>)>,
    open: Option<(Vec<SlotParams>, Vec<f32>)>,
}

impl Passes {
    /// Add `slot` with `coef` to the open dispatch, opening a new one when the block is full.
    fn push(&mut self, mut slot: SlotParams, coef: &[f32]) {
        if self.open.as_ref().is_some_and(|(_, c)| c.len() + coef.len() > COEF) {
            self.close();
        }
        let (slots, block) = self.open.get_or_insert_with(Default::default);
        slot.coef_base = block.len() as u32;
        block.extend_from_slice(coef);
        slots.push(slot);
    }

    /// End the open dispatch: the next slots go into a later one.
    fn close(&mut self) {
        self.passes.extend(self.open.take());
    }
}

/// Loops `first .. first + loops` whose kernel rows share one buffer (row j
/// of the group's loop g at (j·loops + g)·M): as many loops as fit one storage
/// binding, so a batch larger than that takes one posterior dispatch per
/// group, still in the step's one submission.
struct CacheGroup {
    first: usize,
    loops: usize,
    buffer: Option<wgpu::Buffer>,
    /// Rows per loop the buffer has room for.
    rows: usize,
}

/// One loop's stored posterior.
#[derive(Default)]
struct LoopState {
    evaluated: Option<Evaluated>,
    /// κ of the stored UCB (none once the buffer was reused).
    ucb_kappa: Option<f32>,
    updates: PosteriorUpdates,
}

/// The GP stages of many lockstep loops batched on the GPU, one set of dispatches per step.
pub struct GpuGpBatch {
    ctx: Arc<GpuContext>,
    grid: CandidateGrid,
    loops: usize,
    /// Prior values per loop (H·W, or frames·H·W on a clip grid).
    prior_len: usize,
    prior: wgpu::Buffer,
    /// Every plane's box half-width (the window passes).
    sizes: wgpu::Buffer,
    /// Every plane's GP coordinates (size, t, τ, 0) (the posterior).
    planes: wgpu::Buffer,
    /// The kernel-row caches.
    caches: Vec<CacheGroup>,
    mu: wgpu::Buffer,
    s2: wgpu::Buffer,
    sigma: wgpu::Buffer,
    ucb: wgpu::Buffer,
    partial_v: wgpu::Buffer,
    partial_i: wgpu::Buffer,
    best_v: wgpu::Buffer,
    best_i: wgpu::Buffer,
    state: Vec<LoopState>,
    cache_bytes: u64,
}

impl GpuGpBatch {
    /// A batch of `priors.len()` loops over `grid`, one prior each.
    pub fn new(ctx: Arc<GpuContext>, grid: &CandidateGrid, priors: &[&[f32]]) -> Result<Self> {
        if priors.is_empty() {
            return Err(BorexError::invalid("a GP batch needs at least one loop"));
        }
        for prior in priors {
            check_session(grid, prior)?;
        }
        if ctx.max_uniform_bytes() < (COEF * 4) as u64 {
            return Err(BorexError::Gpu(format!(
                "{} allows {} B uniform buffers; the GPU posterior needs {} B (use --device cpu)",
                ctx.adapter_info().name,
                ctx.max_uniform_bytes(),
                COEF * 4
            )));
        }
        let (loops, m) = (priors.len(), grid.len());
        if (loops * m * 4) as u64 > ctx.max_binding_bytes() {
            return Err(BorexError::Gpu(format!(
                "{loops} × {m} candidates exceed the adapter's largest storage buffer (use --device cpu)"
            )));
        }
        let all: Vec<f32> = priors.concat();
        Ok(Self {
            prior: ctx.storage("priors", &all),
            sizes: ctx.storage("sizes", &grid.plane_sizes()),
            planes: ctx.storage("planes", &plane_coords(grid)),
            caches: vec![CacheGroup { first: 0, loops, buffer: None, rows: 0 }],
            mu: ctx.output::<f32>("mu", loops * m),
            s2: ctx.output::<f32>("sigma squared", loops * m),
            sigma: ctx.output::<f32>("sigma", loops * m),
            ucb: ctx.output::<f32>("ucb", loops * m),
            partial_v: ctx.output::<f32>("argmax partial values", loops * ARGMAX_GROUPS as usize),
            partial_i: ctx.output::<u32>("argmax partial indices", loops * ARGMAX_GROUPS as usize),
            best_v: ctx.output::<f32>("argmax values", loops),
            best_i: ctx.output::<u32>("argmax indices", loops),
            prior_len: priors[0].len(),
            grid: grid.clone(),
            loops,
            state: (0..loops).map(|_| LoopState::default()).collect(),
            ctx,
            cache_bytes: CACHE_BYTES,
        })
    }

    /// Keep at most `bytes` of kernel rows on the device; past that the
    /// posterior is recomputed in chunks of at most `bytes` of scratch.
    pub fn with_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Room for `rows` kernel rows per loop from the start (a lockstep group
    /// knows its query count), instead of growing by copies; the loops are
    /// split into as few cache groups as hold that many rows.
    pub fn with_rows(mut self, rows: usize) -> Self {
        let row_bytes = (rows.max(1) * self.grid.len() * 4) as u64;
        let per = ((self.cache_budget() / row_bytes) as usize).clamp(1, self.loops);
        self.caches = (0..self.loops)
            .step_by(per)
            .map(|first| {
                let loops = per.min(self.loops - first);
                let rows = rows.min(self.max_cache_rows(loops));
                let buffer = (rows > 0).then(|| self.ctx.output::<f32>("kernel rows", rows * loops * self.grid.len()));
                CacheGroup { first, loops, buffer, rows }
            })
            .collect();
        self
    }

    /// Loops one batch over `grid` holds: its per-candidate buffers (μ, σ²,
    /// σ, UCB) fit one storage binding; 0 when not even one loop's do.
    pub fn capacity(ctx: &GpuContext, grid: &CandidateGrid) -> usize {
        (ctx.max_binding_bytes() / (grid.len() as u64 * 4)) as usize
    }

    /// The cache budget of one group, within the adapter's largest storage binding.
    fn cache_budget(&self) -> u64 {
        self.ctx.max_binding_bytes().min(self.cache_bytes)
    }

    /// Kernel rows per loop a group of `loops` may cache for this grid.
    fn max_cache_rows(&self, loops: usize) -> usize {
        (self.cache_budget() / (loops as u64 * self.grid.len() as u64 * 4)) as usize
    }

    /// Group `g`'s cache with room for `rows` kernel rows per loop, the stored
    /// ones kept (a row's place does not depend on the capacity).
    fn reserve_cache(&mut self, g: usize, rows: usize, cmd: &mut Commands) {
        let max = self.max_cache_rows(self.caches[g].loops);
        let c = &mut self.caches[g];
        if rows <= c.rows {
            return;
        }
        let row = c.loops * self.grid.len();
        let cap = (2 * c.rows).max(rows).max(16).min(max);
        let buffer = self.ctx.output::<f32>("kernel rows", cap * row);
        if let Some(old) = &c.buffer {
            cmd.copy(old, &buffer, (c.rows * row * 4) as u64);
        }
        (c.buffer, c.rows) = (Some(buffer), cap);
    }

    fn params(&self, loops: usize, offset: usize, count: usize, stride: usize) -> PosteriorParams {
        let g = &self.grid;
        PosteriorParams {
            h: g.height,
            w: g.width,
            offset: offset as u32,
            count: count as u32,
            stride: stride as u32,
            loops: loops as u32,
            m: g.len() as u32,
            prior_len: self.prior_len as u32,
            time: g.time.is_some() as u32,
            planes_per_frame: g.time.as_ref().map_or(0, |t| (g.sizes.len() * t.spans.len()) as u32),
            _pad: [0; 2],
        }
    }

    /// Record the posterior passes that bring each entry's loop up to its GP
    /// (UCB weight κ), and note what is stored.
    fn record_posterior(&mut self, entries: &[(usize, &PosteriorInputs, f32)], cmd: &mut Commands) {
        let mut plan = vec![];
        let mut obs = vec![];
        for &(slot, gp, kappa) in entries {
            let st = &self.state[slot];
            match Evaluated::step(st.evaluated.as_ref(), gp, true) {
                Step::Same if st.ucb_kappa == Some(kappa) => {}
                // A new κ only: mode 2 does not touch the cache or the observations.
                Step::Same => plan.push((slot, gp, kappa, Step::Same, 0)),
                step => {
                    plan.push((slot, gp, kappa, step, (obs.len() / 4) as u32));
                    obs.extend(packed_observations(gp));
                }
            }
        }
        if plan.is_empty() {
            return;
        }
        // A binding holds at least one vec4 (a UCB-only step has no observations).
        obs.resize(obs.len().max(4), 0.0);
        let obs = self.ctx.storage("observations", &obs);
        for g in 0..self.caches.len() {
            let (first, loops) = (self.caches[g].first, self.caches[g].loops);
            let mine: Vec<_> = plan.iter().filter(|p| (first..first + loops).contains(&p.0)).copied().collect();
            if !mine.is_empty() {
                self.record_group(g, &mine, &obs, cmd);
            }
        }
    }

    /// [`Self::record_posterior`] for the loops of cache group `g`:
    /// (slot, GP, κ, step, first observation in `obs`) each.
    fn record_group(
        &mut self,
        g: usize,
        plan: &[(usize, &PosteriorInputs, f32, Step, u32)],
        obs: &wgpu::Buffer,
        cmd: &mut Commands,
    ) {
        let m = self.grid.len();
        let (first_loop, loops) = (self.caches[g].first, self.caches[g].loops);
        let n_max = plan.iter().filter(|p| p.3 != Step::Same).map(|p| p.1.n).max().unwrap_or(0);
        let fits = n_max <= self.max_cache_rows(loops);
        if fits {
            self.reserve_cache(g, n_max, cmd);
        }
        let mut first = Passes::default();
        let mut full = vec![];
        for &(slot, gp, kappa, step, obs_base) in plan {
            let ls = &gp.length_scales;
            let sp = SlotParams {
                seg: slot as u32,
                mode: 0,
                n: gp.n as u32,
                first: 0,
                j0: 0,
                j1: 0,
                coef_base: 0,
                obs_base,
                kappa,
                lr: ls[0],
                lq: ls[1],
                ls: ls[2],
                lt: ls.get(3).copied().unwrap_or(1.0),
                ltau: ls.get(4).copied().unwrap_or(1.0),
                cseg: (slot - first_loop) as u32,
                _pad: 0,
            };
            let st = &mut self.state[slot];
            if step == Step::Same {
                first.push(SlotParams { mode: 2, ..sp }, &[]);
            } else if step == Step::Append && fits {
                st.updates.incremental += 1;
                let last = &gp.l_inv[(gp.n - 1) * gp.n..];
                let coef: Vec<f32> = gp.weights.iter().zip(last).flat_map(|(w, r)| [*w, *r]).collect();
                first.push(SlotParams { mode: 1, first: gp.n as u32 - 1, ..sp }, &coef);
            } else {
                st.updates.full += 1;
                first.push(sp, &[]);
                full.push((sp, gp));
            }
        }
        first.close();
        // σ² of the full recomputes: per round, each loop's next tile of L⁻¹
        // rows, as many rows as let every such loop's tile share one block.
        let mut passes = first;
        if !full.is_empty() {
            let rows = (COEF / (n_max * full.len())).max(1);
            for j0 in (0..n_max).step_by(rows) {
                for (sp, gp) in &full {
                    if j0 < gp.n {
                        let j1 = (j0 + rows).min(gp.n);
                        passes.push(
                            SlotParams { mode: 3, j0: j0 as u32, j1: j1 as u32, ..*sp },
                            &gp.l_inv[j0 * gp.n..j1 * gp.n],
                        );
                    }
                }
                passes.close();
            }
        }
        let ctx = &self.ctx;
        let passes: Vec<_> = passes
            .passes
            .iter()
            .map(|(slots, coef)| {
                let mut block = vec![0.0f32; COEF];
                block[..coef.len()].copy_from_slice(coef);
                (
                    ctx.storage("posterior slots", slots),
                    ctx.uniform_slice("posterior coefficients", &block),
                    slots.len() as u32,
                )
            })
            .collect();
        let chunks: Vec<(usize, usize, usize, wgpu::Buffer)> = if fits {
            vec![(0, m, m, self.caches[g].buffer.clone().unwrap_or_else(|| ctx.output::<f32>("unused", 1)))]
        } else {
            // Too many observations to keep every kernel row: a scratch
            // cache for a chunk of candidates at a time.
            let chunk = ((self.cache_budget() / (4 * n_max.max(1) as u64 * loops as u64)) as usize).clamp(1, m);
            let scratch = ctx.output::<f32>("kernel rows (chunk)", chunk * n_max.max(1) * loops);
            (0..m).step_by(chunk).map(|offset| (offset, chunk.min(m - offset), chunk, scratch.clone())).collect()
        };
        for (offset, count, stride, cache) in &chunks {
            let params = ctx.uniform("posterior params", &self.params(loops, *offset, *count, *stride));
            for (slots, coef, k) in &passes {
                cmd.dispatch(
                    Kernel::GpPosterior,
                    &[
                        &params,
                        &self.prior,
                        &self.planes,
                        obs,
                        coef,
                        cache,
                        &self.mu,
                        &self.s2,
                        &self.sigma,
                        &self.ucb,
                        slots,
                    ],
                    *count as u64,
                    *k,
                );
            }
        }
        let cached = fits && self.caches[g].buffer.is_some();
        for &(slot, gp, kappa, step, _) in plan {
            let st = &mut self.state[slot];
            if step != Step::Same {
                st.evaluated = Some(Evaluated::new(gp, true, cached));
            }
            st.ucb_kappa = Some(kappa);
        }
    }

    /// Record the two argmax passes over the UCB segments of `slots`: row y of
    /// the output holds slot y's (value, index).
    fn record_argmax(&self, slots: &[u32], cmd: &mut Commands) {
        let len = self.grid.len();
        let groups = (len.div_ceil(WORKGROUP as usize) as u32).clamp(1, ARGMAX_GROUPS);
        let segs = self.ctx.storage("argmax segments", slots);
        let k = slots.len() as u32;
        let first =
            self.ctx.uniform("argmax params", &ArgmaxParams { len: len as u32, identity: 1, mapped: 1, _pad1: 0 });
        cmd.dispatch_groups(
            Kernel::Argmax,
            &[&first, &self.ucb, &self.ucb, &self.partial_v, &self.partial_i, &segs],
            (groups, k, 1),
        );
        let second = self.ctx.uniform("argmax params", &ArgmaxParams { len: groups, identity: 0, mapped: 0, _pad1: 0 });
        cmd.dispatch_groups(
            Kernel::Argmax,
            &[&second, &self.partial_v, &self.partial_i, &self.best_v, &self.best_i, &segs],
            (1, k, 1),
        );
    }

    /// Record the window passes of `slots`' maps into a new buffer (map y for
    /// slot y), using their UCB segments for the row sums; returns it and one map's length.
    fn record_maps(&mut self, slots: &[u32], cmd: &mut Commands) -> (wgpu::Buffer, usize) {
        let g = &self.grid;
        let clip = g.time.is_some();
        // Clips: every plane's spatial average comes back for the temporal pass.
        let dims = if clip {
            WindowParams { h: g.height, w: g.width, n_sizes: g.planes() as u32, per_plane: 1 }
        } else {
            WindowParams { h: g.height, w: g.width, n_sizes: g.sizes.len() as u32, per_plane: 0 }
        };
        let params = self.ctx.uniform("window params", &dims);
        let segs = self.ctx.storage("map segments", slots);
        let k = slots.len() as u32;
        let rows = g.height as u64 * g.planes() as u64;
        cmd.dispatch(Kernel::WindowRows, &[&params, &self.sizes, &self.mu, &self.ucb, &segs], rows, k);
        let len = if clip { g.len() } else { g.pixels() };
        let map = self.ctx.output::<f32>("maps", slots.len() * len);
        cmd.dispatch(Kernel::WindowCols, &[&params, &self.sizes, &self.ucb, &map, &segs], g.width as u64, k);
        // The UCB segments now hold row sums.
        for &s in slots {
            self.state[s as usize].ucb_kappa = None;
        }
        (map, len)
    }

    fn check_slot(&self, slot: usize) -> Result<()> {
        if slot >= self.loops {
            return Err(BorexError::invalid(format!("loop {slot} of a {}-loop GP batch", self.loops)));
        }
        Ok(())
    }
}

impl GpBatch for GpuGpBatch {
    fn loops(&self) -> usize {
        self.loops
    }

    fn step(&mut self, steps: &[BatchStep], maps: &[usize]) -> Result<BatchOutput> {
        let mut seen = vec![false; self.loops];
        for s in steps {
            self.check_slot(s.slot)?;
            if std::mem::replace(&mut seen[s.slot], true) {
                return Err(BorexError::invalid(format!("loop {} appears twice in one GP batch step", s.slot)));
            }
            check_gp(&self.grid, s.gp)?;
        }
        for &slot in maps {
            self.check_slot(slot)?;
            if !seen[slot] && self.state[slot].evaluated.is_none() {
                return Err(BorexError::invalid(format!("loop {slot}'s map was asked for before any GP was loaded")));
            }
        }
        let ctx = self.ctx.clone();
        let mut cmd = ctx.commands();
        // A loop without a new κ keeps its last one (its UCB is not wanted).
        let entries: Vec<_> =
            steps.iter().map(|s| (s.slot, s.gp, s.kappa.or(self.state[s.slot].ucb_kappa).unwrap_or(0.0))).collect();
        self.record_posterior(&entries, &mut cmd);
        // Loops asked for a map but not stepped still need their posterior
        // up to date, which it is (their stored one).
        let argmax: Vec<u32> = steps.iter().filter(|s| s.kappa.is_some()).map(|s| s.slot as u32).collect();
        if !argmax.is_empty() {
            self.record_argmax(&argmax, &mut cmd);
        }
        let map_slots: Vec<u32> = maps.iter().map(|&s| s as u32).collect();
        let map = (!maps.is_empty()).then(|| self.record_maps(&map_slots, &mut cmd));
        let k = argmax.len() as u64;
        let mut reads = vec![(&self.best_v, 0, 4 * k), (&self.best_i, 0, 4 * k)];
        if let Some((buffer, len)) = &map {
            reads.push((buffer, 0, (4 * len * maps.len()) as u64));
        }
        if k == 0 && map.is_none() {
            cmd.submit();
            return Ok(BatchOutput { argmax: steps.iter().map(|_| None).collect(), maps: vec![] });
        }
        let mut back = cmd.read(&reads)?.into_iter();
        let (values, indices) = (back.next().expect("values"), back.next().expect("indices"));
        let (values, indices): (Vec<f32>, Vec<u32>) =
            (bytemuck::pod_collect_to_vec(&values), bytemuck::pod_collect_to_vec(&indices));
        let mut found = indices.iter().zip(values).map(|(i, v)| (*i as usize, v));
        let argmax = steps.iter().map(|s| if s.kappa.is_some() { found.next() } else { None }).collect();
        let maps = match (back.next(), map) {
            (Some(bytes), Some((_, len))) => {
                let all: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
                all.chunks_exact(len)
                    .map(|m| {
                        if self.grid.time.is_some() {
                            crate::compute::temporal_map(&self.grid, m)
                        } else {
                            m.to_vec()
                        }
                    })
                    .collect()
            }
            _ => vec![],
        };
        Ok(BatchOutput { argmax, maps })
    }

    fn posterior(&mut self, slot: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        self.check_slot(slot)?;
        let bytes = (self.grid.len() * 4) as u64;
        let at = slot as u64 * bytes;
        let mut back = self.ctx.commands().read(&[(&self.mu, at, bytes), (&self.sigma, at, bytes)])?.into_iter();
        let mut floats = || bytemuck::pod_collect_to_vec::<u8, f32>(&back.next().expect("two buffers"));
        Ok((floats(), floats()))
    }

    fn updates(&self, slot: usize) -> PosteriorUpdates {
        self.state.get(slot).map_or_else(PosteriorUpdates::default, |s| s.updates)
    }
}

/// `gp` fits `grid` and an append's coefficients fit the uniform block.
fn check_gp(grid: &CandidateGrid, gp: &PosteriorInputs) -> Result<()> {
    check_gp_dims(grid, gp)?;
    if 2 * gp.n > COEF {
        return Err(BorexError::Gpu(format!(
            "the GPU posterior holds at most {} observations, got {}; use --device cpu",
            COEF / 2,
            gp.n
        )));
    }
    Ok(())
}

/// One refine's GP stages: a batch of one loop.
pub struct GpuGpSession {
    batch: GpuGpBatch,
    gp: Option<PosteriorInputs>,
}

impl GpuGpSession {
    /// A session over `grid` with the prior map `prior` on the GPU context `ctx`.
    pub fn new(ctx: Arc<GpuContext>, grid: &CandidateGrid, prior: &[f32]) -> Result<Self> {
        Ok(Self { batch: GpuGpBatch::new(ctx, grid, &[prior])?, gp: None })
    }

    /// Keep at most `bytes` of kernel rows on the device; past that the
    /// posterior is recomputed in chunks of at most `bytes` of scratch.
    pub fn with_cache_bytes(self, bytes: u64) -> Self {
        Self { batch: self.batch.with_cache_bytes(bytes), ..self }
    }

    /// Run one step of the batch with the last GP set.
    fn step(&mut self, kappa: Option<f32>, map: bool) -> Result<BatchOutput> {
        let gp = self.gp.as_ref().ok_or_else(|| BorexError::invalid("GP session used before set_gp"))?;
        self.batch.step(&[BatchStep { slot: 0, gp, kappa }], if map { &[0] } else { &[] })
    }
}

impl GpSession for GpuGpSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        check_gp(&self.batch.grid, gp)?;
        self.gp = Some(gp.clone());
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        Ok(self.step(Some(kappa), false)?.argmax[0].expect("an argmax was asked for"))
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.step(None, false)?;
        self.batch.posterior(0)
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        Ok(self.step(None, true)?.maps.remove(0))
    }

    fn updates(&self) -> PosteriorUpdates {
        self.batch.updates(0)
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
    // The window passes' loop segment: the only one.
    let segment = ctx.storage("segment", &[0u32]);
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
        let dims = ctx.uniform("window params", &WindowParams { h: h as u32, w: w as u32, n_sizes: 1, per_plane: 0 });
        let sizes = ctx.storage("window", &[window]);
        ctx.dispatch(Kernel::WindowRows, &[&dims, &sizes, &mu, &sums, &segment], h as u64);
        ctx.dispatch(Kernel::WindowCols, &[&dims, &sizes, &sums, &map, &segment], w as u64);
        for (o, v) in out.iter_mut().zip(ctx.read::<f32>(&map, h * w)?) {
            *o += v * scale;
        }
    }
    Ok(out)
}
