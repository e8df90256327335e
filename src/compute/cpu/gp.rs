//! CPU twin of the GP posterior, UCB argmax and window averaging over the
//! candidate grid. Work is split by grid row (one (size, row) pair per task),
//! and the inner loops run along the row so they vectorise.

use crate::compute::{check_session, GpSession};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use rayon::prelude::*;

const SQRT3: f32 = 1.732_050_8;

pub struct CpuGpSession {
    grid: CandidateGrid,
    prior: Vec<f32>,
    gp: Option<PosteriorInputs>,
}

impl CpuGpSession {
    pub fn new(grid: &CandidateGrid, prior: &[f32]) -> Result<Self> {
        check_session(grid, prior)?;
        Ok(Self { grid: grid.clone(), prior: prior.to_vec(), gp: None })
    }

    fn gp(&self) -> Result<&PosteriorInputs> {
        self.gp.as_ref().ok_or_else(|| BorexError::invalid("GP session used before set_gp"))
    }

    /// μ and σ for the grid row (size index `si`, row `r`) into `mu`/`sigma` (length W).
    fn row(&self, gp: &PosteriorInputs, si: usize, r: u32, mu: &mut [f32], sigma: Option<&mut [f32]>) {
        let w = self.grid.width as usize;
        let n = gp.n;
        let s = self.grid.sizes[si] as f32;
        let (lr, lq, ls) = (gp.length_scales[0], gp.length_scales[1], gp.length_scales[2]);
        let prior_row = &self.prior[r as usize * w..(r as usize + 1) * w];
        mu.copy_from_slice(prior_row);
        // k[i·W + q] = Matérn(candidate (r, q, s), observation i)
        let mut k = vec![0.0f32; n * w];
        for i in 0..n {
            let (xr, xq, xs) = (gp.x[3 * i], gp.x[3 * i + 1], gp.x[3 * i + 2]);
            let base = ((r as f32 - xr) / lr).powi(2) + ((s - xs) / ls).powi(2);
            let wi = gp.weights[i];
            let ki = &mut k[i * w..(i + 1) * w];
            for (q, (kv, m)) in ki.iter_mut().zip(mu.iter_mut()).enumerate() {
                let dq = (q as f32 - xq) / lq;
                let t = SQRT3 * (base + dq * dq).sqrt();
                *kv = (1.0 + t) * (-t).exp();
                *m += wi * *kv;
            }
        }
        if let Some(sigma) = sigma {
            // σ² = 1 − Σ_j (Σ_{i≤j} L⁻¹[j, i] k_i)²
            let mut var = vec![1.0f32; w];
            let mut v = vec![0.0f32; w];
            for j in 0..n {
                v.iter_mut().for_each(|x| *x = 0.0);
                for i in 0..=j {
                    let l = gp.l_inv[j * n + i];
                    for (vq, kq) in v.iter_mut().zip(&k[i * w..(i + 1) * w]) {
                        *vq += l * kq;
                    }
                }
                for (a, vq) in var.iter_mut().zip(&v) {
                    *a -= vq * vq;
                }
            }
            for (sg, a) in sigma.iter_mut().zip(var) {
                *sg = a.max(0.0).sqrt();
            }
        }
    }

    fn rows(&self) -> impl IndexedParallelIterator<Item = (usize, u32)> + '_ {
        let h = self.grid.height;
        (0..self.grid.sizes.len() * h as usize).into_par_iter().map(move |i| (i / h as usize, (i % h as usize) as u32))
    }
}

impl GpSession for CpuGpSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        if gp.length_scales.len() != 3 || gp.x.len() != 3 * gp.n {
            return Err(BorexError::invalid("the candidate grid needs 3-D GP inputs (row, column, size)"));
        }
        self.gp = Some(gp.clone());
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        let gp = self.gp()?;
        let w = self.grid.width as usize;
        let best = self
            .rows()
            .map(|(si, r)| {
                let (mut mu, mut sigma) = (vec![0.0; w], vec![0.0; w]);
                self.row(gp, si, r, &mut mu, Some(&mut sigma));
                let mut best = (usize::MAX, f32::NEG_INFINITY);
                for q in 0..w {
                    let a = mu[q] + kappa * sigma[q];
                    let a = if a.is_nan() { f32::NEG_INFINITY } else { a };
                    if a > best.1 || best.0 == usize::MAX {
                        best = (self.grid.encode(r, q as u32, si), a);
                    }
                }
                best
            })
            .reduce(|| (usize::MAX, f32::NEG_INFINITY), first_max);
        Ok(best)
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let gp = self.gp()?;
        let w = self.grid.width as usize;
        let mut mu = vec![0.0f32; self.grid.len()];
        let mut sigma = vec![0.0f32; self.grid.len()];
        mu.par_chunks_mut(w).zip(sigma.par_chunks_mut(w)).zip(self.rows()).for_each(|((m, s), (si, r))| {
            self.row(gp, si, r, m, Some(s));
        });
        Ok((mu, sigma))
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        let gp = self.gp()?;
        let w = self.grid.width as usize;
        let mut mu = vec![0.0f32; self.grid.len()];
        mu.par_chunks_mut(w).zip(self.rows()).for_each(|(m, (si, r))| self.row(gp, si, r, m, None));
        Ok(window_average(&self.grid, &mu))
    }
}

/// Larger value wins; equal values go to the smaller index.
pub(crate) fn first_max(a: (usize, f32), b: (usize, f32)) -> (usize, f32) {
    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) { b } else { a }
}

/// Per size, the mean of `m(·, ·, s)` over the in-image part of the (2s+1)²
/// window around each pixel; then the average over sizes. Separable: a
/// horizontal window sum, then a vertical one (the GPU kernel's order).
pub fn window_average(grid: &CandidateGrid, m: &[f32]) -> Vec<f32> {
    let (h, w) = (grid.height as usize, grid.width as usize);
    let mut out = vec![0.0f32; h * w];
    for (si, &s) in grid.sizes.iter().enumerate() {
        let s = s as usize;
        let plane = &m[si * h * w..(si + 1) * h * w];
        let mut horiz = vec![0.0f32; h * w];
        horiz.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            let src = &plane[r * w..(r + 1) * w];
            for (q, o) in row.iter_mut().enumerate() {
                *o = src[q.saturating_sub(s)..(q + s + 1).min(w)].iter().sum();
            }
        });
        let scale = 1.0 / grid.sizes.len() as f32;
        out.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
            let (r0, r1) = (r.saturating_sub(s), (r + s + 1).min(h));
            for (q, o) in row.iter_mut().enumerate() {
                let cols = ((q + s + 1).min(w) - q.saturating_sub(s)) as f32;
                let sum: f32 = (r0..r1).map(|rr| horiz[rr * w + q]).sum();
                *o += sum / (cols * (r1 - r0) as f32) * scale;
            }
        });
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
        let grid = CandidateGrid { height: 12, width: 16, sizes: vec![3, 5] };
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

    #[test]
    fn window_average_by_hand() {
        let grid = CandidateGrid { height: 3, width: 4, sizes: vec![1] };
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
