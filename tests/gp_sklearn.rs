//! borex's GP against scikit-learn's GaussianProcessRegressor on the committed
//! fixture (scripts/make_gp_fixture.py): fitted length scales to 1e-3 relative,
//! posterior mean and std to 1e-4 absolute.

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
    assert!(cases.len() >= 5);
    for c in cases {
        let x = matrix(&c["x"]);
        let y = vector(&c["y"]);
        let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap();
        let want = vector(&c["length_scales"]);
        for (got, want) in gp.length_scales().iter().zip(&want) {
            assert!((got - want).abs() <= 1e-3 * want, "seed {}: length scales {:?} vs sklearn {want:?}", c["seed"], gp.length_scales());
        }
        let lml = c["log_marginal_likelihood"].as_f64().unwrap();
        assert!((gp.log_marginal_likelihood() - lml).abs() < 1e-4 * lml.abs().max(1.0), "LML {} vs {lml}", gp.log_marginal_likelihood());
        let (mean, std) = gp.predict(matrix(&c["test_x"]).view());
        for (i, (m, s)) in vector(&c["mean"]).iter().zip(vector(&c["std"])).enumerate() {
            assert!((mean[i] - m).abs() <= 1e-4, "seed {} point {i}: mean {} vs {m}", c["seed"], mean[i]);
            assert!((std[i] - s).abs() <= 1e-4, "seed {} point {i}: std {} vs {s}", c["seed"], std[i]);
        }
    }
}
