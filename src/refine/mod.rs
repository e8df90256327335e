//! BOREx refinement (Mochizuki et al., ACCV 2022), the "paper" preset of the
//! authors' code: the prior map is the GP mean, boxes are queried by UCB over
//! every (row, column, half-width), and the posterior mean is the refined map.
//! The query objective is selectable ([`Objective`]); the default is not the
//! paper's but the one matched to the default metric.
//! This loop sees the model only through [`Scorer`] and the GP stages only
//! through [`GpKernels`]; it knows neither wgpu nor ndarray kernels. Its
//! settings are [`config`], the end-to-end pipeline [`pipeline`].

pub mod budget;
pub mod bulk;
pub mod clip;
pub mod config;
pub mod full_res;
pub mod lockstep;
pub mod objective;
pub mod pipeline;
pub mod report;

pub use crate::job::ClassSpec;
pub use config::{
    PriorMean, RefineConfig, RefineObjective, Refiner, MIN_PRIOR_SLOPE, PRIOR_FIT_MIN_OBS, RELATIVE_GAIN_FLOOR,
};
pub use objective::Objective;
pub use pipeline::{run_refine, PriorSpec, RefineJob, RefineOutcome};

use crate::compute::{BoxMask, GpKernels, GpSession, ImageKernels, Keep, PosteriorUpdates};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, FitOptions, Gp};
use crate::model::{class_column, Scorer};
use ndarray::{Array2, ArrayView2, ArrayView3};
use rand::SeedableRng;
use rand_distr::Distribution;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The candidates of `grid` on every `stride`-th row and column, as a grid of
/// ⌈H/S⌉ × ⌈W/S⌉ whose point (i, j) stands for (S·i, S·j).
pub fn coarse_grid(grid: &CandidateGrid, stride: u32) -> CandidateGrid {
    CandidateGrid { height: grid.height.div_ceil(stride), width: grid.width.div_ceil(stride), ..grid.clone() }
}

/// `prior` (H×W) at the points of [`coarse_grid`].
pub fn coarse_prior(prior: ArrayView2<f32>, stride: u32) -> Array2<f32> {
    let s = stride as usize;
    prior.slice(ndarray::s![..;s, ..;s]).as_standard_layout().to_owned()
}

/// A GP's grid inputs in [`coarse_grid`] coordinates: rows and columns, and
/// their length scales, divided by S, so the kernel at coarse point (i, j)
/// is the kernel at (S·i, S·j) (bit for bit when S is a power of two; K⁻¹y
/// and L⁻¹ do not change).
pub fn coarse_inputs(gp: &crate::gp::PosteriorInputs, stride: u32) -> crate::gp::PosteriorInputs {
    let s = stride as f32;
    let mut c = gp.clone();
    for p in c.x.chunks_mut(3) {
        p[0] /= s;
        p[1] /= s;
    }
    c.length_scales[0] /= s;
    c.length_scales[1] /= s;
    c
}

/// `covariate` at the points of the search grid (every `stride`-th pixel).
fn search_prior(covariate: &Array2<f32>, stride: u32) -> Vec<f32> {
    match stride {
        1 => covariate.as_slice().expect("standard layout").to_vec(),
        s => coarse_prior(covariate.view(), s).as_slice().expect("standard layout").to_vec(),
    }
}

/// What a loop's search posterior needs after a fit ([`RefineLoop::fit_scores`]).
#[derive(Debug, Clone)]
pub struct SearchStep {
    /// The fitted GP as the search session takes it.
    pub inputs: crate::gp::PosteriorInputs,
    /// The UCB weight when a next query is to be chosen (`None` after the last).
    pub kappa: Option<f32>,
}

/// What a driver's search posterior hands a [`RefineLoop::detached`] loop at the end.
#[derive(Debug, Clone, Default)]
pub struct SearchResult {
    /// The window-averaged map, when [`RefineLoop::wants_search_map`].
    pub map: Option<Vec<f32>>,
    /// Posterior updates by path.
    pub updates: PosteriorUpdates,
}

/// One query of the black box.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Observation {
    /// Row of the box centre, in model-input pixels.
    pub row: u32,
    /// Column of the box centre.
    pub col: u32,
    /// Box half-width (the box spans 2·size + 1 pixels, clipped to the image).
    pub size: u32,
    /// The GP training input: the grid point plus jitter (none for the first).
    pub stored: [f64; 3],
    /// P_c(box kept) and P_c(box removed).
    pub p_inside: f32,
    /// P_c with the box removed.
    pub p_outside: f32,
    /// The objective: 2·(sigmoid(g·(p_in − p_out)) − 0.5), or p_in − p_out when g = 0.
    pub f: f32,
    /// Length scales of the GP fitted once this observation was added.
    pub length_scales: [f64; 3],
}

/// Wall time of the refine loop's stages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RefineTimings {
    /// Model calls.
    pub model: Duration,
    /// Length-scale fits.
    pub gp_fit: Duration,
    /// Posterior, UCB search and the map.
    pub posterior: Duration,
}

/// The refine loop's result: the map, the GP and every query.
pub struct Refined {
    /// The normalised posterior-mean map, H×W.
    pub map: Array2<f32>,
    /// The prior in the GP's units: S0 (scaled to mean |S0| = m), or a·S0 + b
    /// with the fitted mean ([`PriorMean::Fitted`]).
    pub scaled_prior: Array2<f32>,
    /// [a, b] of the prior mean a·S0 + b at the end ([1, 0] unless fitted).
    pub prior_affine: [f64; 2],
    /// The objective's gain the queries used ([`RefineConfig::effective_gain`]).
    pub gain: f32,
    /// Every query, in order.
    pub observations: Vec<Observation>,
    /// The last GP (the refined map's posterior); `None` for the antithetic
    /// continuation, which has no box queries.
    pub gp: Option<Gp>,
    /// Where the time went.
    pub timings: RefineTimings,
    /// Iterations (0-based) whose L-BFGS-B length-scale fit failed and kept
    /// the starting length scales, with the optimiser's reason.
    pub fit_failures: Vec<(usize, String)>,
    /// Iterations whose posterior was an incremental update vs a full recompute.
    pub posterior_updates: PosteriorUpdates,
}

/// The mean |value| of a map BOREx can use as a prior; an error naming `what` for a map
/// with a non-finite value or all zero (`eval` applies it to the map files it scores too).
pub fn check_prior(prior: ArrayView2<f32>, what: &str) -> Result<f64> {
    if prior.iter().any(|v| !v.is_finite()) {
        return Err(BorexError::invalid(format!("{what} has non-finite values (NaN or infinity)")));
    }
    let mean_abs = prior.iter().map(|v| v.abs() as f64).sum::<f64>() / prior.len().max(1) as f64;
    if mean_abs == 0.0 {
        return Err(BorexError::invalid(format!("{what} is all zero")));
    }
    Ok(mean_abs)
}

/// Scale a prior to mean |S0| = m, rejecting maps BOREx cannot use ([`check_prior`]).
pub fn scale_prior(prior: ArrayView2<f32>, m: f32) -> Result<Array2<f32>> {
    let mean_abs = check_prior(prior, "prior map")?;
    // Row-major whatever the input's layout: the GP session reads it as a slice.
    Ok(prior.as_standard_layout().mapv(|v| (v as f64 * m as f64 / mean_abs) as f32))
}

/// S̄0: the prior's window average over `grid`'s sizes (the window readout of
/// S0; the covariate of [`PriorMean::Fitted`]).
pub fn box_average(grid: &CandidateGrid, s0: ArrayView2<f32>) -> Array2<f32> {
    let tiled: Vec<f32> = (0..grid.sizes.len()).flat_map(|_| s0.iter().copied()).collect();
    Array2::from_shape_vec(s0.dim(), crate::compute::cpu::window_average(grid, &tiled)).expect("H×W")
}

/// A query's objective from P_in − P_out: 2·(sigmoid(g·d) − 0.5), or d when g = 0.
pub(crate) fn objective_value(gain: f32, diff: f32) -> f32 {
    if gain > 0.0 {
        2.0 * (1.0 / (1.0 + (-gain * diff).exp()) - 0.5)
    } else {
        diff
    }
}

/// The box of candidate (r, q, s): rows [r−s, r+s) × cols [q−s, q+s), clipped.
pub fn candidate_box(r: u32, q: u32, s: u32, h: u32, w: u32, keep: Keep) -> BoxMask {
    BoxMask { r0: r.saturating_sub(s), r1: (r + s).min(h), c0: q.saturating_sub(s), c1: (q + s).min(w), keep }
}

/// Refine `prior` (H×W, model-input resolution) for `class`: one
/// [`RefineLoop`] driven to the end, each query's two boxes scored in one batch.
pub fn refine(
    scorer: &Scorer,
    gp_kernels: &dyn GpKernels,
    image: ArrayView3<f32>,
    class: usize,
    prior: ArrayView2<f32>,
    cfg: &RefineConfig,
    progress: &dyn crate::progress::Progress,
) -> Result<Refined> {
    let mut lp = RefineLoop::new(scorer, gp_kernels, image, class, prior, cfg)?;
    let model_before = scorer.elapsed();
    while let Some(inputs) = lp.pending_inputs(scorer.kernels)? {
        let probs = scorer.score_batch(inputs.view())?;
        lp.observe_scores(&class_column(&probs, class)?)?;
        progress.inc(1);
    }
    let mut refined = lp.finish(gp_kernels)?;
    refined.timings.model = scorer.elapsed() - model_before;
    Ok(refined)
}

/// One BOREx loop as a state machine, so a driver can advance many loops
/// together ([`lockstep`]): [`RefineLoop::pending_inputs`] gives the query's
/// boxes on the objective's substrates, the caller scores them with the model,
/// [`RefineLoop::observe_scores`] takes the probabilities and runs the GP stages
/// (fit, posterior, UCB argmax), and [`RefineLoop::finish`] makes the map.
/// The model is never called here: `timings.model` is the driver's to fill.
pub struct RefineLoop<'a> {
    cfg: &'a RefineConfig,
    h: usize,
    w: usize,
    grid: CandidateGrid,
    /// Where the UCB search looks: `grid`, or its [`coarse_grid`] with `--stride`.
    search: CandidateGrid,
    stride: u32,
    s0: Array2<f32>,
    /// What the GP's mean function is fitted on: S0 itself, or its box
    /// average ([`PriorMean::Fitted`]).
    covariate: Array2<f32>,
    /// The search posterior; `None` when the driver runs it for many loops
    /// at once ([`RefineLoop::detached`], lockstep's GPU batch).
    session: Option<Box<dyn GpSession>>,
    image: ArrayView3<'a, f32>,
    /// How a query's boxes are shown to the model (the objective's substrates).
    probe: objective::Probe,
    /// The objective's gain for this input ([`RefineConfig::effective_gain`]).
    gain: f32,
    scale: f64,
    fit_options: FitOptions,
    rng: rand_chacha::ChaCha8Rng,
    /// Queries observed so far.
    t: usize,
    /// The pending query: grid point and its stored (jittered) GP input.
    r: u32,
    q: u32,
    si: usize,
    stored: [f64; 3],
    observations: Vec<Observation>,
    xs: Vec<f64>,
    /// Objective values and the covariate at their box centres.
    fs: Vec<f64>,
    covs: Vec<f64>,
    /// The prior mean's current scale and offset (m = a·covariate + b).
    affine: (f64, f64),
    gp: Option<Gp>,
    fit_failures: Vec<(usize, String)>,
    timings: RefineTimings,
}

impl<'a> RefineLoop<'a> {
    /// Check the inputs, scale the prior, open the GP session and place the
    /// first query: the prior's argmax pixel (first on ties) with the smallest box, no jitter.
    pub fn new(
        scorer: &Scorer,
        gp_kernels: &dyn GpKernels,
        image: ArrayView3<'a, f32>,
        class: usize,
        prior: ArrayView2<f32>,
        cfg: &'a RefineConfig,
    ) -> Result<Self> {
        Self::build(scorer, Some(gp_kernels), image, class, prior, cfg)
    }

    /// [`RefineLoop::new`] without a search session of its own: the driver
    /// brings each fitted GP ([`fit_scores`](Self::fit_scores)) to its
    /// posterior over [`search_grid`](Self::search_grid) with
    /// [`search_prior`](Self::search_prior) as the mean, hands back the UCB
    /// argmax ([`choose`](Self::choose)) and at the end the map
    /// ([`finish_batched`](Self::finish_batched)).
    pub fn detached(
        scorer: &Scorer,
        image: ArrayView3<'a, f32>,
        class: usize,
        prior: ArrayView2<f32>,
        cfg: &'a RefineConfig,
    ) -> Result<Self> {
        Self::build(scorer, None, image, class, prior, cfg)
    }

    fn build(
        scorer: &Scorer,
        gp_kernels: Option<&dyn GpKernels>,
        image: ArrayView3<'a, f32>,
        class: usize,
        prior: ArrayView2<f32>,
        cfg: &'a RefineConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        if !cfg.refiner.is_boxes() {
            // Not a box search: it continues the RISE prior's masks, which the refine pipeline runs with the prior.
            return Err(BorexError::invalid(format!(
                "objective {} continues a RISE prior's masks: it has no box loop (borex refine and borex eval run it with the prior)",
                cfg.refiner
            )));
        }
        let (_, h, w) = image.dim();
        if prior.dim() != (h, w) {
            return Err(BorexError::invalid(format!("prior is {:?}, the model input {h}×{w}", prior.dim())));
        }
        let grid = cfg.grid(h as u32, w as u32);
        let s0 = scale_prior(prior, cfg.prior_mean_abs)?;
        let covariate = match cfg.prior_mean {
            PriorMean::Scaled => s0.clone(),
            PriorMean::Fitted => box_average(&grid, s0.view()),
        };
        let stride = cfg.stride as u32;
        let search = cfg.search_grid(h as u32, w as u32);
        let session = match gp_kernels {
            Some(k) => Some(k.session(&search, &search_prior(&covariate, stride))?),
            None => None,
        };
        let probe = objective::Probe::new(scorer, image, class, cfg.objective, cfg.baseline)?;
        let gain = match cfg.relative_gain {
            // One more model evaluation: the class's probability on the whole input.
            true => cfg.effective_gain(objective::class_probability(scorer, image, class)?),
            false => cfg.gain,
        };
        let scale = RefineConfig::pixel_scale(h as u32, w as u32);
        let fit_options = cfg.fit_options(scale);
        if cfg.jitter_draws.as_ref().is_some_and(|d| d.len() + 1 < cfg.iters) {
            return Err(BorexError::invalid(format!(
                "{} jitter draws for {} queries",
                cfg.jitter_draws.as_ref().map_or(0, Vec::len),
                cfg.iters
            )));
        }
        // Standard-normal draws, scaled per axis in `observe`.
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        let first =
            covariate.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
        let smallest = (0..grid.sizes.len()).min_by_key(|&i| grid.sizes[i]).expect("validated: sizes are not empty");
        let (r, q, si) = ((first / w) as u32, (first % w) as u32, smallest);
        let stored = [r as f64, q as f64, grid.sizes[si] as f64];
        Ok(Self {
            cfg,
            h,
            w,
            grid,
            search,
            stride,
            s0,
            covariate,
            session,
            image,
            probe,
            gain,
            scale,
            fit_options,
            rng,
            t: 0,
            r,
            q,
            si,
            stored,
            observations: Vec::with_capacity(cfg.iters),
            xs: vec![],
            fs: vec![],
            covs: vec![],
            affine: (1.0, 0.0),
            gp: None,
            fit_failures: vec![],
            timings: RefineTimings::default(),
        })
    }

    /// Queries observed so far.
    pub fn observed(&self) -> usize {
        self.t
    }

    /// Whether every query is observed (the loop is ready to [`finish`](Self::finish)).
    pub fn is_done(&self) -> bool {
        self.t >= self.cfg.iters
    }

    /// The pending query's box (row, column, half-width), or `None` once done.
    pub fn pending(&self) -> Option<(u32, u32, u32)> {
        (!self.is_done()).then(|| (self.r, self.q, self.grid.sizes[self.si]))
    }

    /// The model inputs the pending query needs (its boxes on the objective's
    /// substrates, 0–2 images), or `None` once done. Score them and pass the
    /// class probabilities, in order, to [`observe_scores`](Self::observe_scores).
    pub fn pending_inputs(&self, kernels: &dyn ImageKernels) -> Result<Option<ndarray::Array4<f32>>> {
        self.pending_job().map(|job| job(kernels)).transpose()
    }

    /// [`pending_inputs`](Self::pending_inputs) as a job that borrows only
    /// what masking needs, not the loop (whose GP session is not `Sync`), so
    /// a driver can build many loops' inputs in parallel.
    pub(crate) fn pending_job(&self) -> Option<impl Fn(&dyn ImageKernels) -> Result<ndarray::Array4<f32>> + Sync + '_> {
        let (r, q, s) = self.pending()?;
        let (probe, image) = (&self.probe, self.image);
        Some(move |kernels: &dyn ImageKernels| probe.inputs(kernels, image, r, q, s))
    }

    /// The image and the objective's substrates, for a driver that keeps
    /// them on the device ([`crate::compute::MaskStore`]).
    pub(crate) fn mask_sources(&self) -> (ArrayView3<'a, f32>, Vec<ArrayView3<'_, f32>>) {
        (self.image, self.probe.substrates())
    }

    /// The pending query's boxes, inside side first, each with its
    /// substrate's index in [`mask_sources`](Self::mask_sources); `None` once done.
    pub(crate) fn pending_boxes(&self) -> Option<Vec<(usize, crate::compute::BoxMask)>> {
        let (r, q, s) = self.pending()?;
        Some(self.probe.boxes(r, q, s, self.h as u32, self.w as u32))
    }

    /// [`observe`](Self::observe) from the class probabilities of
    /// [`pending_inputs`](Self::pending_inputs)' images.
    pub fn observe_scores(&mut self, probs: &[f32]) -> Result<()> {
        let (p_inside, p_outside) = self.probe.combine(probs)?;
        self.observe(p_inside, p_outside)
    }

    /// Record the pending query's P_c(box kept) and P_c(box removed), refit
    /// the GP and, unless this was the last query, choose the next one.
    pub fn observe(&mut self, p_inside: f32, p_outside: f32) -> Result<()> {
        let step = self.fit_observation(p_inside, p_outside)?;
        let tp = Instant::now();
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| BorexError::invalid("a detached loop's posterior runs in its driver"))?;
        session.set_gp(&step.inputs)?;
        let next = match step.kappa {
            Some(kappa) => Some(session.ucb_argmax(kappa)?.0),
            None => None,
        };
        self.choose(next, tp.elapsed())
    }

    /// The first half of [`observe_scores`](Self::observe_scores) for a
    /// driver that runs the posterior itself: record the query, fit the GP,
    /// and return what the search posterior needs.
    pub fn fit_scores(&mut self, probs: &[f32]) -> Result<SearchStep> {
        let (p_inside, p_outside) = self.probe.combine(probs)?;
        self.fit_observation(p_inside, p_outside)
    }

    /// The second half: the UCB argmax over [`search_grid`](Self::search_grid)
    /// (`None` after the last query) places the next query; `posterior` is
    /// this loop's share of the time the posterior took.
    pub fn choose(&mut self, next: Option<usize>, posterior: Duration) -> Result<()> {
        let (cfg, t) = (self.cfg, self.t);
        if next.is_some() != (t + 1 < cfg.iters) || t >= cfg.iters {
            return Err(BorexError::invalid(format!(
                "query {t} of {}: the next query's argmax is {}",
                cfg.iters,
                if next.is_some() { "not wanted" } else { "missing" }
            )));
        }
        if let Some(idx) = next {
            let (i, j, si) = self.search.decode(idx);
            (self.r, self.q, self.si) = (i * self.stride, j * self.stride, si);
            let (g, z) = ([self.r as f64, self.q as f64, self.grid.sizes[self.si] as f64], self.draw(t));
            self.stored = [0, 1, 2].map(|d| g[d] + z[d] * cfg.jitter[d] * self.scale);
        }
        self.timings.posterior += posterior;
        self.t += 1;
        Ok(())
    }

    /// The UCB search's candidate grid (the full grid, or the coarse one with `--stride`).
    pub fn search_grid(&self) -> &CandidateGrid {
        &self.search
    }

    /// The search posterior's prior mean (one value per search candidate's pixel).
    pub fn search_prior(&self) -> Vec<f32> {
        search_prior(&self.covariate, self.stride)
    }

    /// Whether [`finish`](Self::finish) reads the map from the search
    /// posterior (the window readout without `--stride`); a driver running
    /// the posterior then passes it to [`finish_batched`](Self::finish_batched).
    pub fn wants_search_map(&self) -> bool {
        self.cfg.readout.is_windowed() && self.stride == 1
    }

    /// Record the query, refit the GP and say what the search posterior needs.
    fn fit_observation(&mut self, p_inside: f32, p_outside: f32) -> Result<SearchStep> {
        let (cfg, t) = (self.cfg, self.t);
        if t >= cfg.iters {
            return Err(BorexError::invalid(format!("all {} queries are already observed", cfg.iters)));
        }
        let (r, q, s) = (self.r, self.q, self.grid.sizes[self.si]);
        let diff = p_inside - p_outside;
        let f = objective_value(self.gain, diff);
        self.observations.push(Observation {
            row: r,
            col: q,
            size: s,
            stored: self.stored,
            p_inside,
            p_outside,
            f,
            length_scales: [0.0; 3],
        });
        self.xs.extend_from_slice(&self.stored);
        self.fs.push(f as f64);
        self.covs.push(self.covariate[[r as usize, q as usize]] as f64);
        let (a, b) = cfg.prior_mean.affine(&self.covs, &self.fs);
        self.affine = (a, b);
        let ys: Vec<f64> = self.fs.iter().zip(&self.covs).map(|(f, c)| f - (a * c + b)).collect();

        let tf = Instant::now();
        let x = ndarray::ArrayView2::from_shape((ys.len(), 3), &self.xs).expect("n×3");
        let fitted = match &self.gp {
            Some(last) if t % cfg.refit_every != 0 => {
                Gp::with_length_scales(x, &ys, last.length_scales(), self.fit_options.alpha)?
            }
            _ => Gp::fit(x, &ys, &self.fit_options)?,
        };
        if let (Some(o), [a, b, c]) = (self.observations.last_mut(), fitted.length_scales()) {
            o.length_scales = [*a, *b, *c];
        }
        if let Some(why) = fitted.fit_failure() {
            self.fit_failures.push((t, why.to_string()));
        }
        self.timings.gp_fit += tf.elapsed();

        // The session's mean is C + kᵀw (C the covariate); with m = a·C + b the
        // posterior is a·(C + kᵀα/a) + b, so weights α/a and κ/a give the same
        // UCB argmax and a map with the same order (a > 0).
        let inputs = self.session_inputs(&fitted);
        self.gp = Some(fitted);
        Ok(SearchStep { inputs, kappa: (t + 1 < cfg.iters).then(|| cfg.kappa / a as f32) })
    }

    /// `gp` as a session over the covariate takes it: weights divided by the
    /// prior mean's scale a (see [`PriorMean::Fitted`]).
    fn scaled_inputs(gp: &Gp, a: f64) -> crate::gp::PosteriorInputs {
        let mut inputs = gp.posterior_inputs();
        inputs.weights.iter_mut().for_each(|w| *w /= a as f32);
        inputs
    }

    /// [`Self::scaled_inputs`] for the search session: on the coarse grid's
    /// coordinates when the search is strided.
    fn session_inputs(&self, gp: &Gp) -> crate::gp::PosteriorInputs {
        match self.stride {
            1 => Self::scaled_inputs(gp, self.affine.0),
            s => coarse_inputs(&Self::scaled_inputs(gp, self.affine.0), s),
        }
    }

    /// Standard-normal jitter for the query after query `t`: the injected
    /// draws, else the seeded generator.
    fn draw(&mut self, t: usize) -> [f64; 3] {
        match &self.cfg.jitter_draws {
            Some(d) => d[t],
            None => [(); 3].map(|_| rand_distr::StandardNormal.sample(&mut self.rng)),
        }
    }

    /// The refined map (the last posterior's window-averaged mean); every
    /// query must be observed.
    pub fn finish(self, gp_kernels: &dyn GpKernels) -> Result<Refined> {
        self.finish_inner(gp_kernels, None)
    }

    /// [`finish`](Self::finish) for a [`detached`](Self::detached) loop, with
    /// what its driver's posterior gives back.
    pub fn finish_batched(self, gp_kernels: &dyn GpKernels, search: SearchResult) -> Result<Refined> {
        self.finish_inner(gp_kernels, Some(search))
    }

    fn finish_inner(mut self, gp_kernels: &dyn GpKernels, mut search: Option<SearchResult>) -> Result<Refined> {
        let gp = match (self.t == self.cfg.iters, self.gp) {
            (true, Some(gp)) => gp,
            _ => {
                return Err(BorexError::invalid(format!(
                    "refine finished after {} of {} queries",
                    self.t, self.cfg.iters
                )))
            }
        };
        let tp = Instant::now();
        // The prior in the GP's units: a·S0 + b (S0 itself unless fitted).
        let (a, b) = self.affine;
        let prior = self.s0.mapv(|v| (a * v as f64 + b) as f32);
        let map = match self.cfg.readout {
            full_res::Readout::Window | full_res::Readout::Detail => {
                let session_map = if self.stride > 1 {
                    // The search saw only the coarse points: one full-grid pass for the map.
                    let mut full =
                        gp_kernels.session(&self.grid, self.covariate.as_slice().expect("standard layout"))?;
                    full.set_gp(&Self::scaled_inputs(&gp, a))?;
                    full.mean_map()?
                } else {
                    match (&mut search, &mut self.session) {
                        (Some(s), _) => {
                            s.map.take().ok_or_else(|| BorexError::invalid("the driver's posterior gave no map"))?
                        }
                        (None, Some(session)) => session.mean_map()?,
                        (None, None) => return Err(BorexError::invalid("a detached loop's map comes from its driver")),
                    }
                };
                let mut map = Array2::from_shape_vec(
                    (self.h, self.w),
                    session_map.into_iter().map(|v| (a * v as f64 + b) as f32).collect(),
                )
                .expect("H×W map");
                if self.cfg.readout == full_res::Readout::Detail {
                    // a·(S0 − S̄0): the prior's detail below box scale, in the GP's units.
                    let smooth = box_average(&self.grid, self.s0.view());
                    ndarray::Zip::from(&mut map)
                        .and(&self.s0)
                        .and(&smooth)
                        .for_each(|m, s, sm| *m += (a * (*s - *sm) as f64) as f32);
                }
                map
            }
            full_res::Readout::Point => full_res::point_map(&gp, &prior, self.cfg, gp_kernels)?,
        };
        self.timings.posterior += tp.elapsed();
        let posterior_updates = match (search, &self.session) {
            (Some(s), _) => s.updates,
            (None, session) => session.as_ref().map(|s| s.updates()).unwrap_or_default(),
        };
        Ok(Refined {
            map,
            scaled_prior: prior,
            prior_affine: [a, b],
            gain: self.gain,
            observations: self.observations,
            gp: Some(gp),
            timings: self.timings,
            fit_failures: self.fit_failures,
            posterior_updates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn prior_scaling_and_rejection() {
        let p = array![[1.0f32, -3.0], [0.0, 4.0]];
        let s = scale_prior(p.view(), 0.1).unwrap();
        assert!((s.iter().map(|v| v.abs()).sum::<f32>() / 4.0 - 0.1).abs() < 1e-7);
        assert!((s[[1, 1]] - 0.2).abs() < 1e-7);
        assert!(scale_prior(array![[0.0f32, 0.0]].view(), 0.1).unwrap_err().to_string().contains("all zero"));
        assert!(scale_prior(array![[1.0f32, f32::NAN]].view(), 0.1).unwrap_err().to_string().contains("non-finite"));
    }

    #[test]
    fn prior_mean_affine_fit() {
        // Observations on an exact line f = 3·s + 1 give back its slope and offset.
        let s = [0.1, 0.4, 0.2, 0.9];
        let f: Vec<f64> = s.iter().map(|v| 3.0 * v + 1.0).collect();
        let (a, b) = PriorMean::Fitted.affine(&s, &f);
        assert!((a - 3.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12, "{a} {b}");
        // A prior the observations contradict (slope −2) is floored, the offset through the means.
        let g: Vec<f64> = s.iter().map(|v| -2.0 * v).collect();
        let (a, b) = PriorMean::Fitted.affine(&s, &g);
        assert_eq!(a, MIN_PRIOR_SLOPE);
        assert!((b - (g.iter().sum::<f64>() / 4.0 - MIN_PRIOR_SLOPE * s.iter().sum::<f64>() / 4.0)).abs() < 1e-12);
        // A constant prior has no slope to fit: a = 1, the offset still fitted.
        let (a, b) = PriorMean::Fitted.affine(&[0.5; 4], &f);
        assert!(a == 1.0 && (b - (f.iter().sum::<f64>() / 4.0 - 0.5)).abs() < 1e-12);
        // Too few observations, or the paper's scaling: unchanged.
        assert_eq!(PriorMean::Fitted.affine(&s[..2], &f[..2]), (1.0, 0.0));
        assert_eq!(PriorMean::Scaled.affine(&s, &f), (1.0, 0.0));
    }

    #[test]
    fn boxes_are_clipped_half_open() {
        let b = candidate_box(10, 220, 30, 224, 224, Keep::Inside);
        assert_eq!((b.r0, b.r1, b.c0, b.c1), (0, 40, 190, 224));
    }
}
