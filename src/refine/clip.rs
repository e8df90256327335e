//! BOREx on clips (SPEC §1, video (b)): for a classifier whose input has a
//! time axis (N×T×C×H×W), a query is a space-time box — rows and columns as
//! in [`super::refine`], plus a centre frame t and a temporal half-width τ —
//! shown to the model frame by frame: inside [t − τ, t + τ] the box is kept
//! or removed on the objective's substrates, outside it the frame is the
//! substrate (box kept) or the image (box removed). The GP has two more
//! coordinates (t and τ, each with its own length scale), the prior and the
//! refined map are T×H×W.

use super::objective::SideSpec;
use super::{candidate_box, objective_value, scale_prior, RefineConfig, RefineTimings};
use crate::compute::{BoxMask, GpKernels, ImageKernels, Keep, Masks, PosteriorUpdates};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, Gp, TimeAxis};
use crate::model::Scorer;
use ndarray::{Array3, Array4, Array5, ArrayView3, ArrayView4, Axis};
use rand::SeedableRng;
use rand_distr::Distribution;
use serde::Serialize;
use std::time::Instant;

/// GP units per frame at 224 pixels (scaled with the input like every
/// spatial distance): the time coordinates share the spatial length-scale
/// start and bounds, so [1, 20] px is [1/8, 2.5] frames and the start 12 px
/// is 1.5 frames.
pub const TIME_UNIT: f64 = 8.0;

/// Clip mode's knobs: every refine knob, plus the temporal half-widths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipConfig {
    /// Every refine knob (its `sizes` are the spatial half-widths).
    pub refine: RefineConfig,
    /// Temporal half-widths τ in frames; `None`: [`ClipConfig::default_spans`].
    pub spans: Option<Vec<u32>>,
}

impl ClipConfig {
    /// {1, T/2} (one neighbour either side, and most of the clip); {0} for T = 1.
    pub fn default_spans(frames: u32) -> Vec<u32> {
        let mut s = vec![1.min(frames - 1), (frames / 2).min(frames - 1)];
        s.dedup();
        s
    }

    /// The temporal half-widths for a clip of `frames` frames.
    pub fn spans(&self, frames: u32) -> Vec<u32> {
        self.spans.clone().unwrap_or_else(|| Self::default_spans(frames))
    }

    /// The space-time candidate grid of an H×W clip of T frames.
    pub fn grid(&self, frames: u32, height: u32, width: u32) -> Result<CandidateGrid> {
        let spans = self.spans(frames);
        crate::limits::distinct_in_range("temporal_sizes", &spans, 0, frames.saturating_sub(1)).map_err(
            |e| match e {
                // The setting stays named (each front end spells it), the clip's length added.
                BorexError::Setting { name, value, message } => BorexError::Setting {
                    name,
                    value,
                    message: format!("{message} (temporal half-widths must be below the clip length {frames})"),
                },
                other => other,
            },
        )?;
        let unit = (TIME_UNIT * RefineConfig::pixel_scale(height, width)) as f32;
        Ok(CandidateGrid { time: Some(TimeAxis { frames, spans, unit }), ..self.refine.grid(height, width) })
    }

    /// Every knob within its limit, or an error naming the flag.
    pub fn validate(&self) -> Result<()> {
        self.refine.validate()?;
        if !self.refine.readout.is_window() {
            return Err(BorexError::invalid(
                "clip mode reads the map by window average only (--readout point is not supported)",
            ));
        }
        if self.refine.stride != 1 || self.refine.refit_every != 1 {
            return Err(BorexError::invalid("clip mode searches every candidate and refits every query (--stride and --refit-every are not supported)"));
        }
        if !self.refine.prior_mean.is_scaled() {
            return Err(BorexError::invalid(
                "clip mode uses the paper's scaled prior mean only (--prior-mean fitted is not supported)",
            ));
        }
        if self.refine.jitter_draws.is_some() {
            return Err(BorexError::invalid("injected jitter draws are not supported in clip mode"));
        }
        Ok(())
    }
}

/// One space-time query.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ClipObservation {
    /// Row of the box centre, in model-input pixels.
    pub row: u32,
    /// Column of the box centre.
    pub col: u32,
    /// Spatial half-width.
    pub size: u32,
    /// Centre frame and temporal half-width.
    pub frame: u32,
    /// Temporal half-width, in frames.
    pub span: u32,
    /// The GP training input (row, column, size, t·unit, τ·unit), jittered.
    pub stored: Vec<f64>,
    /// P_c of the clip with the box kept.
    pub p_inside: f32,
    /// P_c with the box removed.
    pub p_outside: f32,
    /// The objective value.
    pub f: f32,
}

/// A clip's refine loop result: its T×H×W map and every query.
pub struct ClipRefined {
    /// The refined T×H×W map (the last posterior's mean, window-averaged in space and time).
    pub map: Array3<f32>,
    /// The prior as the GP used it (scaled to mean |S0| = m).
    pub scaled_prior: Array3<f32>,
    /// Every query, in order.
    pub observations: Vec<ClipObservation>,
    /// The last fit's length scales (row, column, size, t, τ) in GP units.
    pub length_scales: Vec<f64>,
    /// Where the time went.
    pub timings: RefineTimings,
    /// Iterations whose length-scale fit failed, with the optimiser's reason.
    pub fit_failures: Vec<(usize, String)>,
    /// Posterior updates by path.
    pub posterior_updates: PosteriorUpdates,
}

/// One side of a clip query, on T substrate frames, or a constant probability.
enum Side {
    Box { keep: Keep, substrate: Array4<f32> },
    Constant(f32),
}

/// Class `class`'s probability on one whole clip (one model evaluation).
fn clip_probability(scorer: &Scorer, clip: ArrayView4<f32>, class: usize) -> Result<f32> {
    let p = scorer.score_clips(clip.insert_axis(Axis(0)))?;
    Ok(crate::model::class_column(&p, class)?[0])
}

/// How a clip's queries are shown to the model under an objective.
struct ClipProbe {
    sides: [Side; 2],
}

impl ClipProbe {
    fn new(scorer: &Scorer, clip: ArrayView4<f32>, class: usize, cfg: &RefineConfig) -> Result<Self> {
        let (inside, outside, _) = cfg.objective.sides(cfg.baseline);
        let substrate = |b| -> Result<Array4<f32>> {
            let frames = clip.outer_iter().map(|f| scorer.kernels.baseline(f, b)).collect::<Result<Vec<_>>>()?;
            let views: Vec<_> = frames.iter().map(|f| f.view()).collect();
            ndarray::stack(Axis(0), &views).map_err(|e| BorexError::Runtime(format!("clip substrate: {e}")))
        };
        let side = |spec| -> Result<Side> {
            Ok(match spec {
                SideSpec::Box { keep, substrate: b } => Side::Box { keep, substrate: substrate(b)? },
                SideSpec::Constant(b) => Side::Constant(match b {
                    None => clip_probability(scorer, clip, class)?,
                    Some(b) => clip_probability(scorer, substrate(b)?.view(), class)?,
                }),
            })
        };
        Ok(Self { sides: [side(inside)?, side(outside)?] })
    }

    /// The clips the query needs (one per side that is a box, inside first).
    fn inputs(
        &self,
        kernels: &dyn ImageKernels,
        clip: ArrayView4<f32>,
        (r, q, s): (u32, u32, u32),
        (t, span): (u32, u32),
    ) -> Result<Array5<f32>> {
        let (nt, c, h, w) = clip.dim();
        let boxes: Vec<_> = self
            .sides
            .iter()
            .filter_map(|s| if let Side::Box { keep, substrate } = s { Some((*keep, substrate)) } else { None })
            .collect();
        let mut out = Array5::<f32>::zeros((boxes.len(), nt, c, h, w));
        for (k, (keep, substrate)) in boxes.into_iter().enumerate() {
            for f in 0..nt {
                // Outside the box's frames an empty box: all substrate when kept, all image when removed.
                let mask = if (f as i64 - t as i64).unsigned_abs() <= span as u64 {
                    candidate_box(r, q, s, h as u32, w as u32, keep)
                } else {
                    BoxMask { r0: 0, r1: 0, c0: 0, c1: 0, keep }
                };
                let x = kernels.apply_masks(
                    clip.index_axis(Axis(0), f),
                    substrate.index_axis(Axis(0), f),
                    Masks::Boxes(&[mask]),
                )?;
                out.index_axis_mut(Axis(0), k).index_axis_mut(Axis(0), f).assign(&x.index_axis(Axis(0), 0));
            }
        }
        Ok(out)
    }

    /// (P_in, P_out) from the class probabilities of [`ClipProbe::inputs`]' clips.
    fn combine(&self, probs: &[f32]) -> Result<(f32, f32)> {
        let mut scores = probs.iter().copied();
        let mut side = |s: &Side| match s {
            Side::Constant(p) => Ok(*p),
            Side::Box { .. } => scores.next().ok_or_else(|| BorexError::invalid("too few scores for a clip query")),
        };
        Ok((side(&self.sides[0])?, side(&self.sides[1])?))
    }
}

/// Refine `prior` (T×H×W) for `class` on `clip` (T×C×H×W, model inputs): the
/// BOREx loop over space-time boxes, each query's clips scored in one batch.
pub fn refine_clip(
    scorer: &Scorer,
    gp_kernels: &dyn GpKernels,
    clip: ArrayView4<f32>,
    class: usize,
    prior: ArrayView3<f32>,
    cfg: &ClipConfig,
    progress: &dyn crate::progress::Progress,
) -> Result<ClipRefined> {
    cfg.validate()?;
    let rc = &cfg.refine;
    let (nt, _, h, w) = clip.dim();
    if prior.dim() != (nt, h, w) {
        return Err(BorexError::invalid(format!("clip prior is {:?}, the clip {nt}×{h}×{w}", prior.dim())));
    }
    let grid = cfg.grid(nt as u32, h as u32, w as u32)?;
    let unit = grid.time.as_ref().map_or(1.0, |t| t.unit as f64);
    let flat = prior.as_standard_layout().into_owned().into_shape_with_order((nt * h, w)).expect("T·H × W");
    let s0 = scale_prior(flat.view(), rc.prior_mean_abs)?.into_shape_with_order((nt, h, w)).expect("T×H×W");
    let mut session = gp_kernels.session(&grid, s0.as_slice().expect("standard layout"))?;
    let probe = ClipProbe::new(scorer, clip, class, rc)?;
    let gain = match rc.relative_gain {
        true => rc.effective_gain(clip_probability(scorer, clip, class)?),
        false => rc.gain,
    };
    let scale = RefineConfig::pixel_scale(h as u32, w as u32);
    let mut fit_options = rc.fit_options(scale);
    // t and τ start where the rows and columns do (GP units are pixels).
    fit_options.init.extend([fit_options.init[0]; 2]);
    let jitter = [rc.jitter[0], rc.jitter[1], rc.jitter[2], rc.jitter[2], rc.jitter[2]].map(|j| j * scale);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(rc.seed);

    // The first query: the prior's peak (first on ties) with the smallest box and span.
    let first = s0.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
    let smallest = |v: &[u32]| (0..v.len()).min_by_key(|&i| v[i]).expect("validated: not empty");
    let spans = grid.time.as_ref().expect("a clip grid").spans.clone();
    let (mut t, mut r, mut q) = ((first / (h * w)) as u32, (first / w % h) as u32, (first % w) as u32);
    let (mut si, mut sp) = (smallest(&grid.sizes), smallest(&spans));
    let coords = |r: u32, q: u32, si: usize, t: u32, sp: usize| {
        [r as f64, q as f64, grid.sizes[si] as f64, t as f64 * unit, spans[sp] as f64 * unit]
    };
    let mut stored = coords(r, q, si, t, sp);

    let (mut xs, mut ys) = (vec![], vec![]);
    let mut observations = Vec::with_capacity(rc.iters);
    let mut timings = RefineTimings::default();
    let mut fit_failures = vec![];
    let mut length_scales = vec![];
    for it in 0..rc.iters {
        let tm = Instant::now();
        let inputs = probe.inputs(scorer.kernels, clip, (r, q, grid.sizes[si]), (t, spans[sp]))?;
        let probs = scorer.score_clips(inputs.view())?;
        let (p_inside, p_outside) = probe.combine(&crate::model::class_column(&probs, class)?)?;
        timings.model += tm.elapsed();
        let f = objective_value(gain, p_inside - p_outside);
        observations.push(ClipObservation {
            row: r,
            col: q,
            size: grid.sizes[si],
            frame: t,
            span: spans[sp],
            stored: stored.to_vec(),
            p_inside,
            p_outside,
            f,
        });
        xs.extend_from_slice(&stored);
        ys.push(f as f64 - s0[[t as usize, r as usize, q as usize]] as f64);

        let tf = Instant::now();
        let x = ndarray::ArrayView2::from_shape((ys.len(), 5), &xs).expect("n×5");
        let fitted = Gp::fit(x, &ys, &fit_options)?;
        if let Some(why) = fitted.fit_failure() {
            fit_failures.push((it, why.to_string()));
        }
        length_scales = fitted.length_scales().to_vec();
        timings.gp_fit += tf.elapsed();

        let tp = Instant::now();
        session.set_gp(&fitted.posterior_inputs())?;
        if it + 1 < rc.iters {
            let (idx, _) = session.ucb_argmax(rc.kappa)?;
            (r, q, si) = grid.decode(idx);
            (t, sp) = grid.decode_time(idx);
            let g = coords(r, q, si, t, sp);
            stored = [0, 1, 2, 3, 4].map(|d| {
                let z: f64 = rand_distr::StandardNormal.sample(&mut rng);
                g[d] + z * jitter[d]
            });
        }
        timings.posterior += tp.elapsed();
        progress.inc(1);
    }
    let tp = Instant::now();
    let map = Array3::from_shape_vec((nt, h, w), session.mean_map()?).expect("T×H×W map");
    timings.posterior += tp.elapsed();
    Ok(ClipRefined {
        map,
        scaled_prior: s0,
        observations,
        length_scales,
        timings,
        fit_failures,
        posterior_updates: session.updates(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu::CpuKernels;

    /// A space-time box, written out pixel by pixel: inside frames [t−τ, t+τ]
    /// the box shows the image when kept (the substrate elsewhere) or the
    /// substrate when removed; other frames are all substrate when kept, all
    /// image when removed.
    #[test]
    fn queries_apply_the_box_frame_by_frame_within_its_span() {
        let (nt, c, h, w) = (5, 2, 9, 11);
        let clip = Array4::from_shape_fn((nt, c, h, w), |(t, ch, y, x)| (t * 1000 + ch * 100 + y * 10 + x) as f32);
        let blur = Array4::from_elem((nt, c, h, w), -1.0f32);
        let zero = Array4::from_elem((nt, c, h, w), -2.0f32);
        let probe = ClipProbe {
            sides: [
                Side::Box { keep: Keep::Inside, substrate: blur },
                Side::Box { keep: Keep::Outside, substrate: zero },
            ],
        };
        let (r, q, s, t, span) = (4u32, 2u32, 2u32, 3u32, 1u32);
        let x = probe.inputs(&CpuKernels, clip.view(), (r, q, s), (t, span)).unwrap();
        assert_eq!(x.dim(), (2, nt, c, h, w));
        for ((k, f, ch, y, xx), v) in x.indexed_iter() {
            let in_frames = (2..=4).contains(&f);
            let in_box = (2..6).contains(&y) && (0..4).contains(&xx);
            let image = clip[[f, ch, y, xx]];
            let want = match k {
                0 if in_frames && in_box => image,
                0 => -1.0,
                _ if in_frames && in_box => -2.0,
                _ => image,
            };
            assert_eq!(*v, want, "side {k} frame {f} ({y}, {xx})");
        }
        assert_eq!(probe.combine(&[0.7, 0.2]).unwrap(), (0.7, 0.2));
        assert!(probe.combine(&[0.7]).is_err());
    }

    #[test]
    fn default_spans_fit_the_clip() {
        assert_eq!(ClipConfig::default_spans(8), vec![1, 4]);
        assert_eq!(ClipConfig::default_spans(2), vec![1]);
        assert_eq!(ClipConfig::default_spans(1), vec![0]);
        let cfg = ClipConfig { refine: RefineConfig::default(), spans: Some(vec![0, 4]) };
        assert!(cfg.grid(4, 224, 224).unwrap_err().to_string().contains("temporal_sizes"));
        let g = cfg.grid(5, 112, 112).unwrap();
        assert_eq!((g.dims(), g.planes(), g.time.unwrap().unit), (5, 4 * 5 * 2, 4.0));
    }
}
