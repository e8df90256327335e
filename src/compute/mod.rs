//! The backend seam: image kernels behind one trait, implemented by the wgpu
//! path (`gpu`) and its CPU twin (`cpu`), which is both the fallback and the
//! test oracle.

// The kernels behind `Backend`: tests, benches and the command line time and
// compare them directly, a library user picks a `Backend`.
#[doc(hidden)]
pub mod cpu;
#[doc(hidden)]
pub mod gpu;
pub(crate) mod rise_masks;

pub use rise_masks::RiseParams;

use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use ndarray::{Array2, Array3, Array4, ArrayView3};
use std::sync::Arc;

/// Which half of a box a mask keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep the pixels inside the box; everything else takes the baseline.
    Inside,
    /// Remove the box: it takes the baseline, the rest is kept.
    Outside,
}

/// An axis-aligned box mask: rows `[r0, r1)` × columns `[c0, c1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxMask {
    /// First row inside the box.
    pub r0: u32,
    /// One past the last row inside.
    pub r1: u32,
    /// First column inside.
    pub c0: u32,
    /// One past the last column inside.
    pub c1: u32,
    /// Whether the box or its outside is kept.
    pub keep: Keep,
}

impl BoxMask {
    /// Whether pixel (r, c) lies inside the box.
    pub fn contains(&self, r: u32, c: u32) -> bool {
        r >= self.r0 && r < self.r1 && c >= self.c0 && c < self.c1
    }

    /// The mask value at (r, c): 1 keeps the image, 0 takes the baseline.
    pub fn value(&self, r: u32, c: u32) -> f32 {
        if self.contains(r, c) == (self.keep == Keep::Inside) {
            1.0
        } else {
            0.0
        }
    }
}

/// A batch of masks: dense N×H×W values in [0, 1], or boxes that are never
/// materialised on the host.
#[derive(Debug, Clone, Copy)]
pub enum Masks<'a> {
    /// Dense N×H×W mask values.
    Dense(ArrayView3<'a, f32>),
    /// Boxes, drawn on the device (never materialised on the host).
    Boxes(&'a [BoxMask]),
}

impl Masks<'_> {
    /// Masks in the batch (N).
    pub fn len(&self) -> usize {
        match self {
            Masks::Dense(m) => m.dim().0,
            Masks::Boxes(b) => b.len(),
        }
    }

    /// Whether the batch has no masks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What removed pixels become (in the model's normalised input space).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum Baseline {
    /// 0 in the normalised space: the dataset's mean colour.
    #[default]
    Zero,
    /// A constant value in the normalised space.
    Constant(f32),
    /// A Gaussian-blurred copy of the image (kernel 11, σ 5, as RISE's insertion metric).
    Blur,
}

/// As the command line takes it: `zero`, `blur` or the constant.
impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zero => f.write_str("zero"),
            Self::Blur => f.write_str("blur"),
            Self::Constant(v) => write!(f, "{v}"),
        }
    }
}

impl std::str::FromStr for Baseline {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zero" => Ok(Self::Zero),
            "blur" => Ok(Self::Blur),
            other => other
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Self::Constant)
                .ok_or_else(|| format!("baseline must be zero, blur or a finite number, not {other:?}")),
        }
    }
}

/// Side of the RISE reference's Gaussian blur kernel, in pixels.
pub const BLUR_KERNEL_SIZE: usize = 11;
/// σ of that kernel, in pixels.
pub const BLUR_SIGMA: f64 = 5.0;

/// 1-D weights of the RISE reference's blur kernel: scipy's
/// `gaussian_filter` (truncate 4, mode "reflect") applied to a centred delta of
/// length `klen`. The reference's 2-D kernel is the outer product of these.
pub fn gaussian_kernel_1d(klen: usize, sigma: f64) -> Vec<f32> {
    assert!(klen % 2 == 1 && sigma > 0.0, "kernel length must be odd and sigma positive");
    let radius = (4.0 * sigma + 0.5) as i64;
    let w: Vec<f64> = (-radius..=radius).map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp()).collect();
    let total: f64 = w.iter().sum();
    let n = klen as i64;
    let centre = n / 2;
    // out[i] = Σ_j w[j] · delta[reflect(i + j)]: gather the weights whose reflected tap lands on the centre.
    (0..n)
        .map(|i| {
            let mut acc = 0.0;
            for j in -radius..=radius {
                let mut k = i + j;
                while k < 0 || k >= n {
                    k = if k < 0 { -k - 1 } else { 2 * n - k - 1 };
                }
                if k == centre {
                    acc += w[(j + radius) as usize];
                }
            }
            (acc / total) as f32
        })
        .collect()
}

/// One box of a batched masking call: `mask` over the store's image
/// `image`, the other pixels (or the box) from its substrate `substrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBox {
    /// Index of the image in the store.
    pub image: usize,
    /// Index of the substrate (the baseline) in the store.
    pub substrate: usize,
    /// The box and which side of it is kept.
    pub mask: BoxMask,
}

/// Images and substrates uploaded once for the life of a lockstep group: per
/// step only the boxes go in, and all their masked images (N×C×H×W, in the
/// boxes' order) come back in one piece.
pub trait MaskStore: Send {
    /// The masked images of `boxes` (N×C×H×W), each box over its stored image and substrate.
    fn apply(&self, boxes: &[StoredBox]) -> Result<Array4<f32>>;
}

/// The kernels every method is built from. Implemented by the GPU path and its
/// CPU twin; results agree to float rounding.
pub trait ImageKernels: Send + Sync {
    /// Separable blur of a C×H×W tensor with zero padding; `weights` has odd length.
    fn gaussian_blur(&self, image: ArrayView3<f32>, weights: &[f32]) -> Result<Array3<f32>>;

    /// N tensors `image·m + baseline·(1−m)`, shape N×C×H×W.
    fn apply_masks(&self, image: ArrayView3<f32>, baseline: ArrayView3<f32>, masks: Masks) -> Result<Array4<f32>>;

    /// One tensor per box, each `image` masked by the box over its own
    /// baseline (`(index into substrates, box)`), shape N×C×H×W: a query's
    /// inputs. By default the boxes of each run on one substrate in one
    /// [`apply_masks`](Self::apply_masks) call, joined.
    fn apply_boxes(
        &self,
        image: ArrayView3<f32>,
        substrates: &[ArrayView3<f32>],
        boxes: &[(usize, BoxMask)],
    ) -> Result<Array4<f32>> {
        let mut parts = vec![];
        for run in boxes.chunk_by(|a, b| a.0 == b.0) {
            let masks: Vec<BoxMask> = run.iter().map(|(_, m)| *m).collect();
            parts.push(self.apply_masks(image, *substrate(substrates, run[0].0)?, Masks::Boxes(&masks))?);
        }
        if parts.len() <= 1 {
            let (c, h, w) = image.dim();
            return Ok(parts.pop().unwrap_or_else(|| Array4::zeros((0, c, h, w))));
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| BorexError::Runtime(format!("query inputs: {e}")))
    }

    /// A streamed RISE run over `image` with `accumulators` weighted sums
    /// (zero baseline: masks multiply the image).
    fn rise_session(
        &self,
        image: ArrayView3<f32>,
        params: &RiseParams,
        accumulators: usize,
    ) -> Result<Box<dyn RiseSession>>;

    /// A [`MaskStore`] holding `images` and `substrates` (all C×H×W of one
    /// shape) where the masking runs, or `None` where masking box by box is
    /// as good (the CPU twin) or the store does not fit the device.
    fn mask_store(
        &self,
        images: &[ArrayView3<f32>],
        substrates: &[ArrayView3<f32>],
    ) -> Result<Option<Box<dyn MaskStore>>> {
        let _ = (images, substrates);
        Ok(None)
    }

    /// The baseline tensor for `image`.
    fn baseline(&self, image: ArrayView3<f32>, baseline: Baseline) -> Result<Array3<f32>> {
        Ok(match baseline {
            Baseline::Zero => Array3::zeros(image.raw_dim()),
            Baseline::Constant(v) => Array3::from_elem(image.raw_dim(), v),
            Baseline::Blur => self.gaussian_blur(image, &gaussian_kernel_1d(BLUR_KERNEL_SIZE, BLUR_SIGMA))?,
        })
    }
}

/// RISE in batches with flat memory: each batch's masks are generated where
/// the session lives, the masked images come out for scoring, and the scores
/// are folded into H×W sums where the masks are.
pub trait RiseSession {
    /// Generate masks `start..start+count` and return the masked images (count×C×H×W).
    fn masked(&mut self, start: usize, count: usize) -> Result<Array4<f32>>;
    /// Fold in the last batch: acc_j += Σ_k weights[k·J + j]·M_k, and the mask sum += Σ_k M_k.
    fn accumulate(&mut self, weights: &[f32]) -> Result<()>;
    /// The last batch's masks (count×H×W).
    fn last_masks(&mut self) -> Result<Array3<f32>>;
    /// The J accumulators and the mask sum, each H×W.
    fn finish(&mut self) -> Result<(Vec<Array2<f32>>, Array2<f32>)>;
}

/// The GP stages over the BOREx candidate grid. A session holds the grid and
/// the prior mean on its device for a whole refine; per iteration only the GP
/// (n observations) goes in and the argmax comes out.
pub trait GpKernels: Send + Sync {
    /// A session of one refine loop's GP stages over `grid` with the prior map `prior` (row-major H×W).
    fn session(&self, grid: &CandidateGrid, prior: &[f32]) -> Result<Box<dyn GpSession>>;

    /// The normalised map on any separable grid of continuous model
    /// coordinates (`rows` × `cols`), e.g. the original image's pixels: for
    /// each box size (model pixels) μ is evaluated there and window-averaged
    /// with the matching half-width in output pixels (`windows`), then the
    /// sizes are averaged. The prior (model resolution, `prior_hw`) is read
    /// bilinearly.
    fn map_on_grid(&self, grid: &MapGrid, gp: &PosteriorInputs) -> Result<Vec<f32>>;

    /// How many loops one [`GpBatch`] over `grid` holds; 0 where loops run
    /// apart (the CPU twin: sessions on the rayon pool).
    fn batch_capacity(&self, _grid: &CandidateGrid) -> usize {
        0
    }

    /// A batch of `priors.len()` loops over `grid` (at most
    /// [`batch_capacity`](Self::batch_capacity)), room for `rows` observations each.
    fn batch(&self, _grid: &CandidateGrid, _priors: &[&[f32]], _rows: usize) -> Result<Box<dyn GpBatch>> {
        Err(BorexError::invalid("this backend runs the GP stages of each loop apart"))
    }
}

/// Where [`GpKernels::map_on_grid`] evaluates the posterior mean.
#[derive(Debug, Clone)]
pub struct MapGrid<'a> {
    /// The prior map S0 (row-major, `prior_hw`).
    pub prior: &'a [f32],
    /// Rows and columns of `prior`.
    pub prior_hw: (usize, usize),
    /// Model row coordinate of each output row.
    pub rows: Vec<f32>,
    /// Model column coordinate of each output column.
    pub cols: Vec<f32>,
    /// Box half-widths in model pixels.
    pub sizes: Vec<f32>,
    /// The same half-widths in output pixels.
    pub windows: Vec<u32>,
}

impl MapGrid<'_> {
    pub(crate) fn check(&self, gp: &PosteriorInputs) -> Result<()> {
        if self.prior.len() != self.prior_hw.0 * self.prior_hw.1 || self.prior.is_empty() {
            return Err(BorexError::invalid("prior does not match its stated size"));
        }
        if self.sizes.len() != self.windows.len()
            || self.sizes.is_empty()
            || self.rows.is_empty()
            || self.cols.is_empty()
        {
            return Err(BorexError::invalid("map grid needs sizes, windows, rows and columns"));
        }
        if gp.length_scales.len() != 3 || gp.x.len() != 3 * gp.n {
            return Err(BorexError::invalid("the map grid needs 3-D GP inputs"));
        }
        Ok(())
    }

    /// Bilinear, clamped prior at a continuous model coordinate (the shader's twin).
    pub(crate) fn prior_at(&self, r: f32, c: f32) -> f32 {
        let (h, w) = self.prior_hw;
        let rc = r.clamp(0.0, (h - 1) as f32);
        let cc = c.clamp(0.0, (w - 1) as f32);
        let (r0, c0) = (rc.floor() as usize, cc.floor() as usize);
        let (r1, c1) = ((r0 + 1).min(h - 1), (c0 + 1).min(w - 1));
        let (fr, fc) = (rc - r0 as f32, cc - c0 as f32);
        let top = self.prior[r0 * w + c0] * (1.0 - fc) + self.prior[r0 * w + c1] * fc;
        let bottom = self.prior[r1 * w + c0] * (1.0 - fc) + self.prior[r1 * w + c1] * fc;
        top * (1.0 - fr) + bottom * fr
    }
}

/// One refine loop's GP stages on a backend: posterior, UCB search and the map over every candidate.
pub trait GpSession: Send {
    /// Load this iteration's fitted GP.
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()>;
    /// Index and value of the UCB maximum `μ + κσ` over all candidates; ties
    /// go to the first index.
    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)>;
    /// μ (prior mean included) and σ at every candidate.
    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)>;
    /// The normalised H×W map: for each size, the mean of μ over the
    /// (2s+1)² window around each pixel (in-image pixels only), averaged over sizes.
    fn mean_map(&mut self) -> Result<Vec<f32>>;
    /// How many GPs were brought in by each path so far.
    fn updates(&self) -> PosteriorUpdates;
}

/// One loop's GP in a [`GpBatch`] step.
#[derive(Debug, Clone, Copy)]
pub struct BatchStep<'a> {
    /// The loop's slot in the batch.
    pub slot: usize,
    /// The loop's fitted GP for this step.
    pub gp: &'a PosteriorInputs,
    /// `Some(κ)`: also the UCB argmax `μ + κσ` over the loop's candidates.
    pub kappa: Option<f32>,
}

/// What a [`GpBatch`] step brings back.
#[derive(Debug, Clone, Default)]
pub struct BatchOutput {
    /// Per step entry, in order: (index, value) of its UCB maximum when κ was given.
    pub argmax: Vec<Option<(usize, f32)>>,
    /// Per requested slot, in order: its map, as [`GpSession::mean_map`].
    pub maps: Vec<Vec<f32>>,
}

/// The GP stages of several BO loops over candidate grids of one shape (a
/// lockstep group), each loop with its own prior, observations and length
/// scales, advanced together: one step brings every listed loop's posterior
/// up to date, takes the UCB argmax of each loop's own candidates and the
/// final maps of the loops that end, with one pass per stage for all loops.
/// Per loop the results equal a [`GpSession`]'s.
pub trait GpBatch: Send {
    /// Loops (slots) the batch holds.
    fn loops(&self) -> usize;
    /// Load each entry's GP (a slot at most once), then the argmaxes, then
    /// the maps of `maps` (slots whose posterior is loaded).
    fn step(&mut self, steps: &[BatchStep], maps: &[usize]) -> Result<BatchOutput>;
    /// μ (prior mean included) and σ of `slot`'s candidates as of the last step.
    fn posterior(&mut self, slot: usize) -> Result<(Vec<f32>, Vec<f32>)>;
    /// How many GPs the loop in `slot` brought in by each path so far.
    fn updates(&self, slot: usize) -> PosteriorUpdates;
}

/// Posterior updates by path: `incremental` appended one observation to the
/// previous posterior (same length scales), `full` recomputed it from scratch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PosteriorUpdates {
    /// GPs brought into a session incrementally (one observation appended to the stored Cholesky factor).
    pub incremental: usize,
    /// GPs brought in by a full recompute.
    pub full: usize,
}

impl Evaluated {
    /// `gp`'s L⁻¹ starts with the stored one (it does when only an
    /// observation was appended; a different α, say, changes it).
    fn leading_rows_kept(&self, gp: &PosteriorInputs) -> bool {
        let (n, m) = (self.n, gp.n);
        (0..n).all(|j| gp.l_inv[j * m..j * m + n] == self.l_inv[j * n..(j + 1) * n])
    }
}

/// What a session's stored posterior was computed from, to tell how the next
/// GP can be brought in.
#[derive(Debug, Clone)]
pub(crate) struct Evaluated {
    pub n: usize,
    pub x: Vec<f32>,
    pub length_scales: Vec<f32>,
    pub weights: Vec<f32>,
    /// L⁻¹, n × n.
    pub l_inv: Vec<f32>,
    /// σ² is stored too (a mean-only pass may skip it).
    pub sigma: bool,
    /// Every observation's kernel row is kept.
    pub cached: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do.
    Same,
    /// `gp` is the stored GP plus one observation with the same length scales:
    /// L's leading block, hence L⁻¹'s leading rows, are unchanged.
    Append,
    Full,
}

impl Evaluated {
    pub fn new(gp: &PosteriorInputs, sigma: bool, cached: bool) -> Self {
        Self {
            n: gp.n,
            x: gp.x.clone(),
            length_scales: gp.length_scales.clone(),
            weights: gp.weights.clone(),
            l_inv: gp.l_inv.clone(),
            sigma,
            cached,
        }
    }

    /// How to go from `prev` to `gp` (σ² too when `sigma`).
    pub fn step(prev: Option<&Self>, gp: &PosteriorInputs, sigma: bool) -> Step {
        let Some(e) = prev else { return Step::Full };
        let d = gp.length_scales.len();
        let same_kernel =
            |n: usize| e.length_scales == gp.length_scales && gp.x.len() >= d * n && e.x[..] == gp.x[..d * n];
        if e.n == gp.n && same_kernel(e.n) && e.weights == gp.weights && (e.sigma || !sigma) {
            Step::Same
        } else if e.cached && e.n + 1 == gp.n && same_kernel(e.n) && e.leading_rows_kept(gp) && (e.sigma || !sigma) {
            Step::Append
        } else {
            Step::Full
        }
    }
}

/// The prior holds one value per pixel, or per frame and pixel on a clip grid.
pub(crate) fn check_session(grid: &CandidateGrid, prior: &[f32]) -> Result<()> {
    let frames = grid.time.as_ref().map_or(1, |t| t.frames as usize);
    if prior.len() != grid.pixels() * frames {
        return Err(BorexError::invalid(format!(
            "prior has {} values for a {frames}×{}×{} grid",
            prior.len(),
            grid.height,
            grid.width
        )));
    }
    if grid.planes() == 0 || grid.pixels() == 0 {
        return Err(BorexError::invalid("empty candidate grid"));
    }
    Ok(())
}

/// The GP's inputs have the grid's dimensions (3, or 5 with time).
pub(crate) fn check_gp_dims(grid: &CandidateGrid, gp: &PosteriorInputs) -> Result<()> {
    let d = grid.dims();
    if gp.length_scales.len() != d || gp.x.len() != d * gp.n || gp.n == 0 {
        return Err(BorexError::invalid(format!(
            "the candidate grid needs {d}-D GP inputs (row, column, size{}), got {} length scales",
            if d == 5 { ", frame, temporal half-width" } else { "" },
            gp.length_scales.len()
        )));
    }
    Ok(())
}

/// The T×H×W clip map from every plane's spatial window average (P×H×W, in
/// the grid's plane order): at frame f, per (size, τ), the mean over the
/// centre frames t ∈ [f − τ, f + τ] ∩ [0, T) — the space-time boxes whose
/// frames cover f, the temporal twin of the spatial window — then the mean
/// over sizes and temporal half-widths. Shared by both backends.
pub fn temporal_map(grid: &CandidateGrid, planes: &[f32]) -> Vec<f32> {
    let ax = grid.time.as_ref().expect("a grid with a time axis");
    let (hw, ns, nsp, nt) = (grid.pixels(), grid.sizes.len(), ax.spans.len(), ax.frames as usize);
    let mut out = vec![0.0f32; nt * hw];
    let scale = 1.0 / (ns * nsp) as f32;
    for (f, frame) in out.chunks_exact_mut(hw).enumerate() {
        for (spi, &span) in ax.spans.iter().enumerate() {
            let (t0, t1) = (f.saturating_sub(span as usize), (f + span as usize + 1).min(nt));
            let per = scale / (t1 - t0) as f32;
            for t in t0..t1 {
                for si in 0..ns {
                    let plane = &planes[((t * nsp + spi) * ns + si) * hw..][..hw];
                    for (o, v) in frame.iter_mut().zip(plane) {
                        *o += v * per;
                    }
                }
            }
        }
    }
    out
}

/// `substrates[i]`, or an error naming the index (a query's box on a substrate).
pub(crate) fn substrate<'s, 'a>(substrates: &'s [ArrayView3<'a, f32>], i: usize) -> Result<&'s ArrayView3<'a, f32>> {
    substrates.get(i).ok_or_else(|| BorexError::invalid(format!("substrate {i} of {}", substrates.len())))
}

pub(crate) fn check_masks(image: &ArrayView3<f32>, baseline: &ArrayView3<f32>, masks: &Masks) -> Result<()> {
    if image.dim() != baseline.dim() {
        return Err(BorexError::invalid(format!(
            "baseline shape {:?} differs from image shape {:?}",
            baseline.dim(),
            image.dim()
        )));
    }
    let (_, h, w) = image.dim();
    match masks {
        Masks::Dense(m) if (m.dim().1, m.dim().2) != (h, w) => {
            Err(BorexError::invalid(format!("masks are {}×{} but the image is {h}×{w}", m.dim().1, m.dim().2)))
        }
        _ => Ok(()),
    }
}

/// Where the kernels run. `auto` takes a hardware GPU adapter when there is
/// one; a software adapter (Mesa's llvmpipe) is reported but not used by
/// `auto`, because the CPU twin is much faster on the same cores (measured in
/// docs/benchmarks.md); `gpu` forces any adapter, software included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The GPU when there is an adapter, else the CPU (with a note why).
    #[default]
    Auto,
    /// The GPU; an error without an adapter.
    Gpu,
    /// The CPU.
    Cpu,
}

named_enum!(DeviceChoice, "device", { Auto => "auto", Gpu => "gpu", Cpu => "cpu" });

/// The chosen backend and what it runs on.
#[derive(Clone)]
pub struct Backend {
    /// Masking, blur and RISE accumulation.
    pub image: Arc<dyn ImageKernels>,
    /// The GP stages of the refine loop.
    pub gp: Arc<dyn GpKernels>,
    /// The wgpu context, when the GPU path was chosen.
    pub gpu: Option<Arc<gpu::GpuContext>>,
    /// Why `auto` fell back to the CPU, if it did.
    pub fallback_reason: Option<String>,
}

impl Backend {
    /// The backend for `choice`: `gpu` (an error without an adapter), `cpu`, or `auto` (the GPU, else the CPU with `fallback_reason`).
    pub fn select(choice: DeviceChoice) -> Result<Self> {
        let cpu = || Backend {
            image: Arc::new(cpu::CpuKernels),
            gp: Arc::new(cpu::CpuKernels),
            gpu: None,
            fallback_reason: None,
        };
        let gpu = |ctx: Arc<gpu::GpuContext>| {
            let k = Arc::new(gpu::GpuKernels::new(ctx.clone()));
            Backend { image: k.clone(), gp: k, gpu: Some(ctx), fallback_reason: None }
        };
        match choice {
            DeviceChoice::Cpu => Ok(cpu()),
            DeviceChoice::Gpu => Ok(gpu(gpu::GpuContext::shared()?)),
            DeviceChoice::Auto => match gpu::GpuContext::shared() {
                Ok(ctx) if !ctx.is_software() => Ok(gpu(ctx)),
                Ok(ctx) => Ok(Backend {
                    fallback_reason: Some(format!(
                        "only a software adapter ({}); its kernels run slower than the CPU twin on the same cores (--device gpu forces it)",
                        ctx.adapter_info().name
                    )),
                    ..cpu()
                }),
                Err(e) => Ok(Backend { fallback_reason: Some(e.to_string()), ..cpu() }),
            },
        }
    }

    /// "gpu" or "cpu".
    pub fn kind(&self) -> &'static str {
        if self.gpu.is_some() {
            "gpu"
        } else {
            "cpu"
        }
    }

    /// A one-line description of the device, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan, Cpu]".
    pub fn describe(&self) -> String {
        match &self.gpu {
            Some(g) => g.describe(),
            None => "cpu (ndarray + rayon)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_kernel_matches_scipy_reference() {
        // The 1-D factor of scipy.ndimage.gaussian_filter(delta 11×11, 5), printed by scripts/golden_blur_kernel.py.
        let golden = [
            0.087_958_15f32,
            0.088_896_12,
            0.090_474_2,
            0.092_191_12,
            0.093_489_39,
            0.093_982_06,
            0.093_489_39,
            0.092_191_12,
            0.090_474_2,
            0.088_896_12,
            0.087_958_15,
        ];
        let k = gaussian_kernel_1d(11, 5.0);
        for (a, b) in k.iter().zip(golden) {
            assert!((a - b).abs() < 1e-7, "{k:?}");
        }
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn posterior_step_appends_only_when_the_leading_factor_is_kept() {
        use crate::gp::Gp;
        let x = ndarray::array![[1.0, 2.0, 3.0], [7.0, 1.0, 3.5], [4.0, 9.0, 2.0]];
        let y = [0.3, -0.2, 0.5];
        let gp = |n: usize, ls: f64, alpha: f64| {
            Gp::with_length_scales(x.slice(ndarray::s![..n, ..]), &y[..n], &[ls; 3], alpha).unwrap().posterior_inputs()
        };
        let prev = Evaluated::new(&gp(2, 5.0, 0.01), true, true);
        assert_eq!(Evaluated::step(None, &gp(2, 5.0, 0.01), true), Step::Full);
        assert_eq!(Evaluated::step(Some(&prev), &gp(2, 5.0, 0.01), true), Step::Same);
        assert_eq!(Evaluated::step(Some(&prev), &gp(3, 5.0, 0.01), true), Step::Append);
        // Other length scales, another α, or no cached rows: recompute.
        assert_eq!(Evaluated::step(Some(&prev), &gp(3, 6.0, 0.01), true), Step::Full);
        assert_eq!(Evaluated::step(Some(&prev), &gp(3, 5.0, 0.02), true), Step::Full);
        assert_eq!(
            Evaluated::step(Some(&Evaluated { cached: false, ..prev.clone() }), &gp(3, 5.0, 0.01), true),
            Step::Full
        );
        // σ² wanted but not stored: recompute; not wanted: append anyway.
        let mean_only = Evaluated { sigma: false, ..prev.clone() };
        assert_eq!(Evaluated::step(Some(&mean_only), &gp(3, 5.0, 0.01), true), Step::Full);
        assert_eq!(Evaluated::step(Some(&mean_only), &gp(3, 5.0, 0.01), false), Step::Append);
        // A moved observation: recompute.
        let mut moved = gp(3, 5.0, 0.01);
        moved.x[0] += 1.0;
        assert_eq!(Evaluated::step(Some(&prev), &moved, true), Step::Full);
    }

    #[test]
    fn baseline_parses() {
        assert_eq!("zero".parse::<Baseline>().unwrap(), Baseline::Zero);
        assert_eq!("blur".parse::<Baseline>().unwrap(), Baseline::Blur);
        assert_eq!("-0.5".parse::<Baseline>().unwrap(), Baseline::Constant(-0.5));
        assert!("nan".parse::<Baseline>().is_err());
        assert!("grey".parse::<Baseline>().is_err());
    }
}
