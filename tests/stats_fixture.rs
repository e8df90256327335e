//! Rank statistics against scipy 1.17 and the PyPI `krippendorff` package on the
//! committed fixture (scripts/make_stats_fixture.py), to 1e-6; undefined cases
//! (null in the fixture) must come back as None, not a number.

mod common;

use borex::metrics::stats::{krippendorff_alpha_ordinal, spearman, wilcoxon, WilcoxonMethod};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("stats_scipy.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

fn close(name: &str, what: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{name} {what}: {g} vs scipy {w}"),
        (g, _) => panic!("{name} {what}: got {g:?}, reference {want}"),
    }
}

#[test]
fn wilcoxon_matches_scipy() {
    let f = fixture();
    let cases = f["wilcoxon"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let method = if c["method"] == "exact" { WilcoxonMethod::Exact } else { WilcoxonMethod::Approx };
        let r = wilcoxon(&floats(&c["diffs"]), method);
        close(name, "statistic", r.as_ref().map(|r| r.w), &c["statistic"]);
        close(name, "p", r.as_ref().map(|r| r.p), &c["p"]);
        close(name, "rank-biserial", r.as_ref().map(|r| r.rank_biserial), &c["rank_biserial"]);
        if let Some(z) = c.get("z") {
            // scipy reports −|z| for the two-sided test.
            close(name, "z", r.as_ref().and_then(|r| r.z).map(|z| -z.abs()), z);
        }
    }
}

#[test]
fn auto_is_exact_up_to_50_pairs() {
    let f = fixture();
    let c = f["wilcoxon"].as_array().unwrap().iter().find(|c| c["name"] == "exact_n45_no_ties").unwrap();
    let r = wilcoxon(&floats(&c["diffs"]), WilcoxonMethod::Auto).unwrap();
    assert_eq!(r.method, WilcoxonMethod::Exact);
    close("n45 auto", "p", Some(r.p), &c["p"]);
}

#[test]
fn spearman_matches_scipy() {
    for c in fixture()["spearman"].as_array().unwrap() {
        close(c["name"].as_str().unwrap(), "rho", spearman(&floats(&c["a"]), &floats(&c["b"])), &c["rho"]);
    }
}

#[test]
fn krippendorff_alpha_matches_the_package() {
    let f = fixture();
    let cases = f["krippendorff_ordinal"].as_array().unwrap();
    assert!(cases.iter().any(|c| c["alpha"].is_null()) && cases.iter().any(|c| c["alpha"].is_number()));
    for c in cases {
        let data: Vec<Vec<Option<f64>>> = serde_json::from_value(c["data"].clone()).unwrap();
        close(c["name"].as_str().unwrap(), "alpha", krippendorff_alpha_ordinal(&data), &c["alpha"]);
    }
}
