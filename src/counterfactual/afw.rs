//! Auto-Frank-Wolfe (Boreiko et al. 2022): maximise log p_target(x) over
//! x = x₀ + δ, δ ∈ C = {‖δ‖_p ≤ ε, x ∈ \[0,1\]^d}. Each step moves towards the
//! LMO vertex of the momentum-averaged gradient, x ← x + γ(s − x), which stays
//! in C without any projection. γ = M/(2 + √k); M starts at 1 and is halved at
//! Auto-PGD's checkpoints when progress stalls (too few improving steps since
//! the last checkpoint, or no new best with M unchanged), restarting from the
//! best point found. Every item (image × target × restart) advances in
//! lockstep: one model call per step for the whole batch.

use super::lmo;
use crate::error::{BorexError, Result};
use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// What AFW maximises: log p_target of each row of `x` (items × d, in the
/// perturbation space), its gradient, and every class probability.
pub trait Objective {
    /// log p_target and its gradient at each point of `x` (items × d) for that item's target class.
    fn eval(&self, x: ArrayView2<f32>, targets: &[usize]) -> Result<Evaluation>;
}

/// The model's value and gradient at a batch of points.
pub struct Evaluation {
    /// log p_target per item.
    pub value: Vec<f32>,
    /// ∂ value / ∂ x, items × d.
    pub grad: Array2<f32>,
    /// Class probabilities, items × classes.
    pub probs: Array2<f32>,
}

/// Auto-Frank-Wolfe's settings: the l_p ball, steps, restarts and momentum.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AfwConfig {
    /// Radius ε of the l_p ball around the image (in [0, 1] pixel units).
    pub eps: f64,
    /// Exponent p of the ball (1 < p < ∞).
    pub p: f64,
    /// Frank-Wolfe steps per run.
    pub steps: usize,
    /// Runs per item; the first starts at the image itself, the others at a random point of C (seeded).
    pub restarts: usize,
    /// Weight of the previous direction in the gradient momentum.
    pub momentum: f32,
    /// Seed of the random restarts.
    pub seed: u64,
}

impl AfwConfig {
    /// The ball's exponent and radius: 1 < p < ∞ within the LMO's range, ε finite and > 0.
    pub fn validate(&self) -> Result<()> {
        let p = self.p;
        if p.is_infinite() || p <= 1.0 || p.is_nan() {
            return Err(BorexError::setting(
                "p",
                Some(p.to_string()),
                "is not supported: the exact LMO here is for 1 < p < ∞ (the paper's 1.5, or 2); p = 1 and p = ∞ have no sparse-and-smooth LMO in borex",
            ));
        }
        if !(lmo::MIN_P..=lmo::MAX_P).contains(&p) {
            return Err(BorexError::setting(
                "p",
                Some(p.to_string()),
                format!("is out of range: it must be between {} and {}", lmo::MIN_P, lmo::MAX_P),
            ));
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(BorexError::setting("eps", None, format!("must be a finite number > 0, not {}", self.eps)));
        }
        Ok(())
    }
}

impl Default for AfwConfig {
    fn default() -> Self {
        Self { eps: 15.0, p: 1.5, steps: 75, restarts: 1, momentum: 0.75, seed: 0 }
    }
}

/// One item's result: the best point over its restarts and the trace of the run that found it.
#[derive(Debug, Clone)]
pub struct AfwResult {
    /// The best point (items × d flattened, in [0, 1]).
    pub x: Vec<f32>,
    /// log p_target at `x`.
    pub value: f32,
    /// Per step (0 = the start): probabilities of the start class and of the target at the iterate.
    pub trace_start: Vec<f32>,
    /// Per step: the target's probability at the iterate.
    pub trace_target: Vec<f32>,
    /// Probabilities of every class at `x`.
    pub probs: Vec<f32>,
    /// Times the step scale M was halved.
    pub halvings: usize,
}

/// Auto-PGD checkpoints ⌈p_j·N⌉: p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06).
pub fn checkpoints(steps: usize) -> Vec<usize> {
    let (mut prev, mut cur) = (0.0f64, 0.22f64);
    let mut out = vec![];
    while cur < 1.0 {
        // The tolerance keeps 0.41·100 = 41.000000000000004 at 41.
        let w = (cur * steps as f64 - 1e-9).ceil() as usize;
        if w > 0 && out.last() != Some(&w) {
            out.push(w);
        }
        let next = cur + (cur - prev - 0.03).max(0.06);
        prev = cur;
        cur = next;
    }
    out
}

/// Run AFW on `x0` (items × d, in \[0,1\]) towards `targets`; `start` is each
/// item's start class (for the trace). `on_step` is called after every step.
pub fn run(
    obj: &dyn Objective,
    x0: ArrayView2<f32>,
    start: &[usize],
    targets: &[usize],
    cfg: &AfwConfig,
    on_step: impl FnMut(),
) -> Result<Vec<AfwResult>> {
    run_from(obj, x0, start, targets, cfg, 0, on_step)
}

/// [`run`] on items `first_item..` of a larger set: random restarts are seeded
/// by the item's place in the whole set, so a set run in chunks (memory bounded
/// by the chunk) gives what one run of the whole set gives.
pub fn run_from(
    obj: &dyn Objective,
    x0: ArrayView2<f32>,
    start: &[usize],
    targets: &[usize],
    cfg: &AfwConfig,
    first_item: usize,
    mut on_step: impl FnMut(),
) -> Result<Vec<AfwResult>> {
    cfg.validate()?;
    let (n, d) = x0.dim();
    let r = cfg.restarts.max(1);
    // Items × restarts, restart-major within an item: row i·r + j.
    let rows = n * r;
    let orig = Array2::from_shape_fn((rows, d), |(k, c)| x0[[k / r, c]].clamp(0.0, 1.0));
    let tg: Vec<usize> = (0..rows).map(|k| targets[k / r]).collect();
    let st: Vec<usize> = (0..rows).map(|k| start[k / r]).collect();
    let mut x = orig.clone();
    let mut delta = vec![0.0f32; d];
    for k in 0..rows {
        if k % r == 0 {
            continue;
        }
        // A random start: half-way to the LMO vertex of a random direction (inside C, as C is convex and holds 0).
        let row = (first_item * r + k) as u64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let dir: Vec<f32> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
        lmo::lmo(&dir, orig.row(k).as_slice().expect("standard layout"), cfg.eps, cfg.p, &mut delta);
        for c in 0..d {
            x[[k, c]] = orig[[k, c]] + 0.5 * delta[c];
        }
    }

    let checkpoints = checkpoints(cfg.steps);
    let mut ev = obj.eval(x.view(), &tg)?;
    let mut momentum = normalised(ev.grad.view());
    let mut best_x = x.clone();
    let mut best_v = ev.value.clone();
    let mut best_grad = momentum.clone();
    let mut best_probs = ev.probs.clone();
    let mut scale = vec![1.0f64; rows];
    let mut halvings = vec![0usize; rows];
    let mut improved = vec![0usize; rows]; // steps since the last checkpoint that raised the value
    let mut last_cp = 0usize;
    let mut best_at_cp = best_v.clone();
    let mut halved_at_cp = vec![false; rows];
    let mut trace_start: Vec<Vec<f32>> = (0..rows).map(|k| vec![ev.probs[[k, st[k]]]]).collect();
    let mut trace_target: Vec<Vec<f32>> = (0..rows).map(|k| vec![ev.probs[[k, tg[k]]]]).collect();
    let mut prev_v = ev.value.clone();

    for step in 0..cfg.steps {
        let gamma_base = 1.0 / (2.0 + (step as f64).sqrt());
        for k in 0..rows {
            // Ascent on the value: the LMO minimises ⟨−m, δ⟩.
            let neg: Vec<f32> = momentum.row(k).iter().map(|v| -v).collect();
            lmo::lmo(&neg, orig.row(k).as_slice().expect("standard layout"), cfg.eps, cfg.p, &mut delta);
            let gamma = (scale[k] * gamma_base).min(1.0) as f32;
            for c in 0..d {
                let s = orig[[k, c]] + delta[c];
                x[[k, c]] += gamma * (s - x[[k, c]]);
            }
        }
        ev = obj.eval(x.view(), &tg)?;
        let g = normalised(ev.grad.view());
        for k in 0..rows {
            let v = ev.value[k];
            if v > prev_v[k] {
                improved[k] += 1;
            }
            prev_v[k] = v;
            if v > best_v[k] {
                best_v[k] = v;
                best_x.row_mut(k).assign(&x.row(k));
                best_grad.row_mut(k).assign(&g.row(k));
                best_probs.row_mut(k).assign(&ev.probs.row(k));
            }
            let mut m = momentum.row_mut(k);
            m.zip_mut_with(&g.row(k), |m, g| *m = cfg.momentum * *m + (1.0 - cfg.momentum) * g);
            trace_start[k].push(ev.probs[[k, st[k]]]);
            trace_target[k].push(ev.probs[[k, tg[k]]]);
        }
        let done = step + 1;
        if checkpoints.contains(&done) {
            let span = done - last_cp;
            for k in 0..rows {
                let few_improvements = (improved[k] as f64) < 0.75 * span as f64;
                let stalled = !halved_at_cp[k] && best_v[k] <= best_at_cp[k];
                halved_at_cp[k] = few_improvements || stalled;
                if halved_at_cp[k] {
                    scale[k] *= 0.5;
                    halvings[k] += 1;
                    // Restart from the best point, its gradient as the momentum.
                    x.row_mut(k).assign(&best_x.row(k));
                    momentum.row_mut(k).assign(&best_grad.row(k));
                    prev_v[k] = best_v[k];
                }
                improved[k] = 0;
                best_at_cp[k] = best_v[k];
            }
            last_cp = done;
        }
        on_step();
    }

    // Best restart per item.
    Ok((0..n)
        .map(|i| {
            let k =
                (i * r..(i + 1) * r).max_by(|a, b| best_v[*a].total_cmp(&best_v[*b]).then(b.cmp(a))).expect("r ≥ 1");
            AfwResult {
                x: best_x.row(k).to_vec(),
                value: best_v[k],
                trace_start: std::mem::take(&mut trace_start[k]),
                trace_target: std::mem::take(&mut trace_target[k]),
                probs: best_probs.row(k).to_vec(),
                halvings: halvings[k],
            }
        })
        .collect())
}

/// Each gradient row divided by its mean magnitude, so the momentum mixes
/// directions rather than being dominated by one large gradient.
fn normalised(g: ArrayView2<f32>) -> Array2<f32> {
    let mut out = g.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let m = row.iter().map(|v| v.abs() as f64).sum::<f64>() / row.len().max(1) as f64;
        if m > 0.0 {
            row.mapv_inplace(|v| (v as f64 / m) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_follow_auto_pgd() {
        // p: 0.22, 0.41, 0.57, 0.7, 0.8, 0.87, 0.93, 0.99 (Croce & Hein 2020).
        assert_eq!(checkpoints(100), vec![22, 41, 57, 70, 80, 87, 93, 99]);
    }
}
