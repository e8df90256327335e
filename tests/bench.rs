//! `borex bench` end to end on a tiny problem: the JSON report parses, holds
//! every stage on both paths with consistent figures, and bad options fail
//! with one clear line.

mod common;

use borex::report_types::{BenchReport, Breakdown};
use common::{assert_error, gpu_or_skip, run_borex};

const STAGES: [&str; 10] =
    ["masking", "blur", "rise-masks", "rise", "posterior", "posterior-append", "fit", "refine", "insdel", "video"];

#[test]
fn tiny_bench_reports_every_stage_on_both_paths() {
    let gpu = gpu_or_skip("tiny_bench_reports_every_stage_on_both_paths").is_some();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.json");
    let args = [
        "-q",
        "bench",
        "--repeat",
        "1",
        "--size",
        "32",
        "--masks",
        "8",
        "--iters",
        "3",
        "--observations",
        "3",
        "--batch",
        "4",
        "--lockstep",
        "2",
        "--json",
        "-o",
        file.to_str().unwrap(),
    ];
    let out = run_borex(&args, &[]);
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    // Both copies read back through the report's own type.
    let r = BenchReport::from_json(std::str::from_utf8(&out.stdout).unwrap()).expect("stdout is the JSON report");
    let saved = BenchReport::read(&file).unwrap();
    assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::to_value(&saved).unwrap(), "-o writes the same report");

    assert_eq!(r.schema, 1);
    let env = &r.environment;
    assert!(env.logical_cores >= 1);
    assert!(!env.cpu_model.is_empty());
    assert_eq!(env.input_size, [32, 32]);
    assert_eq!(env.execution_provider, "cpu");
    assert!(env.onnxruntime.starts_with("1."), "{}", env.onnxruntime);
    let results = &r.results;
    assert_eq!(results.len(), 2 * STAGES.len());
    for (k, stage) in STAGES.iter().enumerate() {
        for (j, path) in ["cpu", "gpu"].iter().enumerate() {
            let row = &results[2 * k + j];
            assert_eq!((row.stage.name(), row.path.name()), (*stage, *path));
            if *path == "gpu" && !gpu {
                assert!(!row.available);
                continue;
            }
            assert!(row.available, "{row:?}");
            let t = row.time.as_ref().unwrap();
            let (median, min, max) = (t.median_ms, t.min_ms, t.max_ms);
            assert_eq!(t.samples_ms.len(), 1, "--repeat 1");
            assert!(median > 0.0 && min <= median && median <= max, "{row:?}");
            // Throughput is the work per run over the median time.
            let per_s = row.throughput.as_ref().unwrap().per_second;
            let units = per_s * median / 1e3;
            let want = match *stage {
                "masking" | "rise-masks" => 4.0,
                "rise" => 8.0,
                "video" => 2.0,
                "posterior" | "posterior-append" => 0.0, // checked below
                _ => 1.0,
            };
            if want > 0.0 {
                assert!((units - want).abs() < 1e-6 * want, "{stage}: {units} units per run");
            }
            if ["rise", "refine", "insdel", "video"].contains(stage) {
                let b = row.model_bound.as_ref().unwrap().median_ms;
                assert!((row.bound_ratio.unwrap() - median / b).abs() < 1e-9);
            } else {
                assert!(row.model_bound.is_none() && row.bound_ratio.is_none(), "{row:?}");
            }
            // Memory-bound stages against a memcpy of their output bytes.
            if ["masking", "blur", "rise-masks"].contains(stage) {
                let m = row.memcpy.as_ref().unwrap().median_ms;
                assert!(m > 0.0 && (row.memcpy_ratio.unwrap() - median / m).abs() < 1e-9, "{row:?}");
            } else {
                assert!(row.memcpy.is_none() && row.memcpy_ratio.is_none(), "{row:?}");
            }
            assert!(t.cpu_median_ms.is_some_and(|c| c >= 0.0), "{row:?}");
            if *path == "gpu" {
                let cpu = results[2 * k].time.as_ref().unwrap().median_ms;
                assert!((row.gpu_over_cpu.unwrap() - median / cpu).abs() < 1e-9);
            }
        }
    }
    // The refine ran 3 queries; its breakdown counts every posterior update.
    let refine = &results[2 * 7];
    let Some(Breakdown::Refine { posterior_updates: u, .. }) = &refine.breakdown else {
        panic!("the refine row has no refine breakdown: {refine:?}")
    };
    assert_eq!(u.incremental + u.full, 3, "{refine:?}");
    // Posterior rows count the 32×32 grid's candidates (4 box sizes).
    for row in &results[8..12] {
        if row.available {
            let units = row.throughput.as_ref().unwrap().per_second * row.time.as_ref().unwrap().median_ms / 1e3;
            assert!((units - 4096.0).abs() < 1e-6 * 4096.0, "{row:?}");
        }
    }
}

#[test]
fn table_names_the_machine_and_bad_options_fail_cleanly() {
    let out =
        run_borex(&["-q", "--device", "cpu", "bench", "--stages", "blur,fit", "--repeat", "2", "--size", "32"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("CPU: "), "{table}");
    assert!(table.contains("ONNX Runtime"), "{table}");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("blur ") || l.starts_with("fit ")).collect();
    assert_eq!(rows.len(), 2, "cpu only: {table}");
    assert_error(&run_borex(&["bench", "--stages", "masking,warp"], &[]), &["--stages", "unknown stage \"warp\""]);
    assert_error(&run_borex(&["bench", "--repeat", "0"], &[]), &["--repeat"]);
    assert_error(&run_borex(&["bench", "--observations", "1"], &[]), &["--observations"]);
    // A report of another schema, or none, is refused by name rather than half-read.
    let e = BenchReport::from_json(r#"{"schema": 9, "results": []}"#).unwrap_err().to_string();
    assert!(e.contains("schema 9") && e.contains("reads schema 1"), "{e}");
    let e = BenchReport::from_json(r#"{"results": []}"#).unwrap_err().to_string();
    assert!(e.contains("no schema"), "{e}");
}
