//! The linear minimisation oracle of the perturbation set
//! C = {δ : ‖δ‖_p ≤ ε, x + δ ∈ \[0,1\]^d}, 1 < p < ∞ (Boreiko et al. 2022).
//!
//! argmin_{δ∈C} ⟨g, δ⟩ moves each coordinate against its gradient: with
//! a_i = |g_i| and the room b_i left by the box in that direction, the KKT
//! conditions give |δ_i| = min(b_i, μ·a_i^{1/(p−1)}) for one scale μ ≥ 0, the
//! one where Σ|δ_i|^p = ε^p (or every coordinate at its bound if the whole
//! box fits in the ball). Σ min(b_i, μ·w_i)^p is increasing in μ with
//! breakpoints μ_i = b_i / w_i: sorting them finds μ exactly in O(d log d).

/// Exponents the oracle accepts: beyond these, a^{1/(p−1)} over- or underflows in f64.
pub const MIN_P: f64 = 1.01;
/// The largest p the LMO takes (beyond it the dual exponent underflows).
pub const MAX_P: f64 = 100.0;

/// δ minimising ⟨grad, δ⟩ over C, written into `delta`. `x` is the image in
/// \[0,1\]; slices have equal lengths.
pub fn lmo(grad: &[f32], x: &[f32], eps: f64, p: f64, delta: &mut [f32]) {
    assert!(grad.len() == x.len() && x.len() == delta.len());
    assert!(p > 1.0 && p.is_finite() && eps > 0.0);
    let q = 1.0 / (p - 1.0);
    // Per coordinate: weight w = a^q (scaled by the largest a for range), room b.
    let amax = grad.iter().fold(0.0f64, |m, g| m.max((*g as f64).abs()));
    delta.iter_mut().for_each(|d| *d = 0.0);
    if amax == 0.0 || !amax.is_finite() {
        return;
    }
    let mut active: Vec<(f64, f64, usize)> = Vec::with_capacity(x.len()); // (breakpoint μ_i, w_i, i)
    let mut ws = vec![0.0f64; x.len()];
    let mut bs = vec![0.0f64; x.len()];
    for (i, (&g, &xi)) in grad.iter().zip(x).enumerate() {
        let g = g as f64;
        let xi = (xi as f64).clamp(0.0, 1.0);
        // Descent direction is −sign(g): room up to 1 − x, or down to 0.
        let b = if g < 0.0 { 1.0 - xi } else { xi };
        let w = (g.abs() / amax).powf(q);
        if w > 0.0 && b > 0.0 {
            ws[i] = w;
            bs[i] = b;
            active.push((b / w, w, i));
        }
    }
    active.sort_by(|a, b| a.0.total_cmp(&b.0));
    let budget = eps.powf(p);
    // Walk the breakpoints: coordinates before index k are saturated (at b_i).
    let mut saturated = 0.0f64; // Σ b_i^p over saturated coordinates
    let mut free: f64 = active.iter().map(|t| t.1.powf(p)).sum(); // Σ w_i^p over the rest
    let mut mu = f64::INFINITY;
    for &(bp, w, i) in &active {
        // At μ = bp every earlier coordinate is saturated and this one just reaches b_i.
        let at_bp = saturated + bp.powf(p) * free;
        if at_bp >= budget {
            mu = ((budget - saturated).max(0.0) / free).powf(1.0 / p);
            break;
        }
        saturated += bs[i].powf(p);
        free = (free - w.powf(p)).max(0.0);
    }
    for (i, d) in delta.iter_mut().enumerate() {
        if ws[i] == 0.0 {
            continue;
        }
        let mag = bs[i].min(mu * ws[i]);
        *d = (if grad[i] < 0.0 { mag } else { -mag }) as f32;
    }
}

/// ‖v‖_p for p ≥ 1 (p = ∞ for the largest magnitude), in f64.
pub fn norm(v: &[f32], p: f64) -> f64 {
    if p.is_infinite() {
        return v.iter().fold(0.0f64, |m, x| m.max((*x as f64).abs()));
    }
    v.iter().map(|x| (*x as f64).abs().powf(p)).sum::<f64>().powf(1.0 / p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_without_active_box_is_the_scaled_negative_gradient() {
        // Closed form: δ = −ε g/‖g‖₂ when x is far from the box faces.
        let g = [0.3f32, -0.4, 0.0];
        let x = [0.5f32; 3];
        let mut d = [0.0f32; 3];
        lmo(&g, &x, 0.1, 2.0, &mut d);
        assert!((d[0] + 0.06).abs() < 1e-6 && (d[1] - 0.08).abs() < 1e-6 && d[2] == 0.0, "{d:?}");
    }

    #[test]
    fn a_ball_larger_than_the_box_gives_the_box_vertex() {
        let g = [1.0f32, -2.0, 0.5];
        let x = [0.2f32, 0.7, 0.0];
        let mut d = [0.0f32; 3];
        lmo(&g, &x, 10.0, 1.5, &mut d);
        assert_eq!(d, [-0.2, 0.3, 0.0]);
    }
}
