//! borex's GP against scikit-learn's GaussianProcessRegressor on the committed
//! fixture (scripts/make_gp_fixture.py): fitted length scales to 1e-3 relative
//! (L-BFGS-B's tolerance; where the likelihood is flat the two optimisers stop
//! at slightly different points, so borex's optimum must be at least as good),
//! and, at sklearn's length scales, the likelihood and the posterior mean and
//! std at test points on, near and away from the data to 1e-7.

mod common;

use borex::gp::{FitOptions, Gp};
use ndarray::Array2;
use serde_json::Value;

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn vector(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn matches_scikit_learn() {
    let text = std::fs::read_to_string(common::fixture("gp_sklearn.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut interior = 0;
    for c in cases {
        let (seed, x, y) = (&c["seed"], matrix(&c["x"]), vector(&c["y"]));
        let want = vector(&c["length_scales"]);
        let lml = c["log_marginal_likelihood"].as_f64().unwrap();
        // The fit: the same optimum to L-BFGS-B's tolerance, and never a worse one.
        let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap();
        assert_eq!(gp.fit_failure(), None);
        for (got, want) in gp.length_scales().iter().zip(&want) {
            assert!(
                (got - want).abs() <= 1e-3 * want,
                "seed {seed}: length scales {:?} vs sklearn {want:?}",
                gp.length_scales()
            );
        }
        assert!(
            gp.log_marginal_likelihood() >= lml - 1e-6 * lml.abs(),
            "seed {seed}: LML {} below sklearn's {lml}",
            gp.log_marginal_likelihood()
        );
        interior += want.iter().all(|l| *l > 1.01 && *l < 19.9) as usize;
        // The posterior at sklearn's length scales, on, near and away from the data: the formulas exactly.
        let at = Gp::with_length_scales(x.view(), &y, &want, FitOptions::default().alpha).unwrap();
        assert!(
            (at.log_marginal_likelihood() - lml).abs() <= 1e-9 * lml.abs(),
            "seed {seed}: LML {} vs {lml}",
            at.log_marginal_likelihood()
        );
        let (mean, std) = at.predict(matrix(&c["test_x"]).view());
        for (i, (m, s)) in vector(&c["mean"]).iter().zip(vector(&c["std"])).enumerate() {
            assert!((mean[i] - m).abs() <= 1e-7, "seed {seed} point {i}: mean {} vs {m}", mean[i]);
            assert!((std[i] - s).abs() <= 1e-7, "seed {seed} point {i}: std {} vs {s}", std[i]);
        }
    }
    assert!(interior >= 4, "cases with every length scale inside the bounds: {interior}");
}
