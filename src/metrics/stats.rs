//! Rank statistics: Spearman's ρ, the paired Wilcoxon signed-rank test with
//! its matched-pairs rank-biserial effect size, and Krippendorff's α.
//!
//! Checked against scipy 1.17 and the PyPI `krippendorff` package by
//! `scripts/make_stats_fixture.py` (tests/stats_fixture.rs). No maintained
//! crate covers these: `statrs` (used here for the normal CDF) has no
//! signed-rank test nor α; the crates that do (`hypors`, `statest`) are
//! unmaintained and lack tie handling.

use statrs::distribution::{ContinuousCDF, Normal};

/// Ranks 1..n with ties given their average rank.
pub fn ranks<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
    let v: Vec<f64> = v.iter().map(|x| (*x).into()).collect();
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson's r of the average ranks); `None`
/// (undefined) when either input is constant, shorter than 2, or the lengths differ.
pub fn spearman<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// How the signed-rank test's p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WilcoxonMethod {
    /// Exact while n ≤ 50, else the normal approximation.
    Auto,
    /// The exact null distribution of W+ over the 2ⁿ sign flips of the
    /// observed ranks (tied ranks included: a permutation test, what scipy's
    /// `method="auto"` runs for tied samples of n ≤ 13).
    Exact,
    /// Normal approximation with the tie-corrected variance, no continuity correction.
    Approx,
}

/// An f64 field as JSON has it: a number, or `null` for the NaN that
/// serde_json writes as `null` (a statistic over no values, a test of ties).
pub(crate) fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A two-sided paired Wilcoxon signed-rank test.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Wilcoxon {
    /// Non-zero differences (zero differences are dropped before ranking:
    /// Wilcoxon's own rule, scipy's `zero_method="wilcox"`).
    pub n: usize,
    /// Zero differences dropped.
    pub zeros: usize,
    /// Sum of the ranks of the positive differences.
    #[serde(deserialize_with = "f64_or_nan")]
    pub w_plus: f64,
    /// Sum of the ranks of the negative differences.
    #[serde(deserialize_with = "f64_or_nan")]
    pub w_minus: f64,
    /// min(W+, W−), what scipy reports as the statistic.
    #[serde(deserialize_with = "f64_or_nan")]
    pub w: f64,
    /// Two-sided p-value.
    #[serde(deserialize_with = "f64_or_nan")]
    pub p: f64,
    /// The method actually used (Auto resolved).
    pub method: WilcoxonMethod,
    /// The normal approximation's z (for the approximation only).
    pub z: Option<f64>,
    /// Matched-pairs rank-biserial correlation (W+ − W−)/(W+ + W−), in [−1, 1];
    /// positive when the differences are mostly positive.
    #[serde(deserialize_with = "f64_or_nan")]
    pub rank_biserial: f64,
}

/// Two-sided signed-rank test of `diffs` (paired differences, e.g. refined −
/// prior). `None` (undefined) when no difference is non-zero or one is not finite.
pub fn wilcoxon(diffs: &[f64], method: WilcoxonMethod) -> Option<Wilcoxon> {
    if diffs.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let d: Vec<f64> = diffs.iter().copied().filter(|x| *x != 0.0).collect();
    let n = d.len();
    if n == 0 {
        return None;
    }
    let abs: Vec<f64> = d.iter().map(|x| x.abs()).collect();
    let r = ranks(&abs);
    // + 0.0: an empty f64 sum is −0.0.
    let w_plus: f64 = r.iter().zip(&d).filter(|(_, x)| **x > 0.0).map(|(r, _)| r).sum::<f64>() + 0.0;
    let total = (n * (n + 1)) as f64 / 2.0;
    let w_minus = total - w_plus;
    let method = match method {
        WilcoxonMethod::Auto if n <= 50 => WilcoxonMethod::Exact,
        WilcoxonMethod::Auto => WilcoxonMethod::Approx,
        m => m,
    };
    let (p, z) = match method {
        WilcoxonMethod::Exact => (exact_p(&r, w_plus), None),
        _ => {
            // Tie correction: Σ (t³ − t)/48 over groups of tied |d|.
            let mut sorted = abs.clone();
            sorted.sort_by(f64::total_cmp);
            let mut tie = 0.0;
            let mut i = 0;
            while i < n {
                let j = sorted[i..].iter().take_while(|v| **v == sorted[i]).count();
                tie += ((j * j * j) - j) as f64;
                i += j;
            }
            let var = (n * (n + 1) * (2 * n + 1)) as f64 / 24.0 - tie / 48.0;
            let z = (w_plus - total / 2.0) / var.sqrt();
            let p = 2.0 * Normal::standard().cdf(-z.abs());
            (p.min(1.0), Some(z))
        }
    };
    Some(Wilcoxon {
        n,
        zeros: diffs.len() - n,
        w_plus,
        w_minus,
        w: w_plus.min(w_minus),
        p,
        method,
        z,
        rank_biserial: (w_plus - w_minus) / total,
    })
}

/// Two-sided exact p of W+ = `w_plus` given the ranks: 2·min(P(W+ ≥ w), P(W+ ≤ w)),
/// capped at 1. Ranks are multiples of ½, so doubled ranks are integers and the
/// null distribution is a subset-sum count (probabilities, so large n cannot overflow).
fn exact_p(ranks: &[f64], w_plus: f64) -> f64 {
    let twice: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
    let max: usize = twice.iter().sum();
    let mut dist = vec![0.0f64; max + 1];
    dist[0] = 1.0;
    let mut reach = 0;
    for &t in &twice {
        for s in (0..=reach).rev() {
            let v = dist[s] * 0.5;
            dist[s] = v;
            dist[s + t] += v;
        }
        reach += t;
    }
    let w = (2.0 * w_plus).round() as usize;
    let below: f64 = dist[..=w].iter().sum();
    let above: f64 = dist[w..].iter().sum();
    (2.0 * below.min(above)).min(1.0)
}

/// Krippendorff's α for ordinal data: `data[rater][unit]`, `None` = missing.
/// The value domain is the distinct values present (as the `krippendorff`
/// package infers it); units with fewer than two values are not pairable.
/// `None` (undefined) when fewer than two distinct pairable values exist
/// (no expected disagreement).
pub fn krippendorff_alpha_ordinal(data: &[Vec<Option<f64>>]) -> Option<f64> {
    let units = data.iter().map(Vec::len).max().unwrap_or(0);
    let mut domain: Vec<f64> = data.iter().flatten().flatten().copied().filter(|v| v.is_finite()).collect();
    domain.sort_by(f64::total_cmp);
    domain.dedup();
    let v = domain.len();
    if v < 2 {
        return None;
    }
    let index = |x: f64| domain.binary_search_by(|d| d.total_cmp(&x)).ok();
    // Coincidences o[c][k] = Σ_u (n_uc·n_uk − [c = k]·n_uc)/(m_u − 1).
    let mut o = vec![vec![0.0f64; v]; v];
    for u in 0..units {
        let mut counts = vec![0.0f64; v];
        for rater in data {
            if let Some(i) = rater.get(u).copied().flatten().and_then(index) {
                counts[i] += 1.0;
            }
        }
        let m: f64 = counts.iter().sum();
        if m < 2.0 {
            continue;
        }
        for c in 0..v {
            for k in 0..v {
                o[c][k] += (counts[c] * counts[k] - if c == k { counts[c] } else { 0.0 }) / (m - 1.0);
            }
        }
    }
    let n_v: Vec<f64> = (0..v).map(|c| o[c].iter().sum()).collect();
    let n: f64 = n_v.iter().sum();
    // Ordinal distance: (Σ_{g=c..k} n_g − (n_c + n_k)/2)².
    let delta = |c: usize, k: usize| {
        let (a, b) = (c.min(k), c.max(k));
        (n_v[a..=b].iter().sum::<f64>() - (n_v[a] + n_v[b]) / 2.0).powi(2)
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..v {
        for k in 0..v {
            let d = delta(c, k);
            observed += o[c][k] * d;
            expected += (n_v[c] * n_v[k] - if c == k { n_v[c] } else { 0.0 }) / (n - 1.0) * d;
        }
    }
    (expected > 0.0 && expected.is_finite()).then(|| 1.0 - observed / expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_by_hand() {
        assert_eq!(ranks(&[10.0f32, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
        assert!((spearman(&[1.0f32, 2.0, 3.0], &[10.0, 20.0, 30.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0f32, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) = 0.8
        assert!((spearman(&[1.0f32, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(spearman(&[1.0f32, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn wilcoxon_small_cases_by_hand() {
        // All three positive: W+ = 6, P(W+ ≥ 6) = 1/8, two-sided 1/4.
        let w = wilcoxon(&[1.0, 2.0, 3.0, 0.0], WilcoxonMethod::Exact).unwrap();
        assert_eq!((w.n, w.zeros, w.w_plus, w.w_minus), (3, 1, 6.0, 0.0));
        assert!((w.p - 0.25).abs() < 1e-12);
        assert_eq!(w.rank_biserial, 1.0);
        assert!(wilcoxon(&[0.0, 0.0], WilcoxonMethod::Auto).is_none());
        assert!(wilcoxon(&[1.0, f64::NAN], WilcoxonMethod::Auto).is_none());
    }
}
