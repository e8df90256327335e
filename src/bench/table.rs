//! The plain-text table `borex bench` prints.

use super::{BenchReport, StageResult};
use std::fmt::Write;

/// The report as the plain-text table `borex bench` prints.
pub fn render_table(report: &BenchReport) -> String {
    let e = &report.environment;
    let o = &report.options;
    let mut out = String::new();
    let _ = writeln!(out, "CPU: {} ({} logical cores)", e.cpu_model, e.logical_cores);
    let _ = writeln!(out, "GPU path: {}", e.adapter);
    let _ = writeln!(
        out,
        "ONNX Runtime {} (execution provider: {}); model {} at {}×{}",
        e.onnxruntime, e.execution_provider, e.model, e.input_size[0], e.input_size[1]
    );
    let _ = writeln!(
        out,
        "image {}; {} timed runs after one warm-up; batch {}; RISE N = {}; refine {} queries; n = {} observations",
        e.image, o.repeat, o.batch, o.masks, o.iters, o.observations
    );
    let _ = writeln!(out);
    let header = [
        "stage",
        "path",
        "median ms",
        "min–max ms",
        "CPU ms",
        "GPU/CPU",
        "throughput",
        "model-only ms",
        "÷ bound",
        "memcpy ms",
        "÷ memcpy",
    ];
    let rows: Vec<[String; COLUMNS]> = report.results.iter().map(row).collect();
    let mut width = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; COLUMNS]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w - c.chars().count();
            // Text columns left-aligned, numbers right-aligned.
            if i < 2 || i == 6 {
                let _ = write!(l, "{c}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(l, "{}{c}  ", " ".repeat(pad));
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r.each_ref().map(String::as_str)));
    }
    // One line per stage, unless its paths differ.
    let mut notes: Vec<String> = Vec::new();
    for r in &report.results {
        let Some(n) = &r.note else { continue };
        let same = report.results.iter().filter(|o| o.stage == r.stage).all(|o| o.note.as_ref() == Some(n));
        let line = if same {
            format!("{}: {n}", r.stage.name())
        } else {
            format!("{} ({}): {n}", r.stage.name(), r.path.name())
        };
        if !notes.contains(&line) {
            notes.push(line);
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
        for n in notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    out
}

/// Columns of the table.
const COLUMNS: usize = 11;

fn row(r: &StageResult) -> [String; COLUMNS] {
    let f = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else if v >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    let Some(t) = &r.time else {
        let mut cells: [String; COLUMNS] = Default::default();
        (cells[0], cells[1], cells[2], cells[6]) =
            (r.stage.name().into(), r.path.name().into(), "—".into(), "not available".into());
        return cells;
    };
    [
        r.stage.name().into(),
        r.path.name().into(),
        f(t.median_ms),
        format!("{}–{}", f(t.min_ms), f(t.max_ms)),
        t.cpu_median_ms.map(f).unwrap_or_default(),
        r.gpu_over_cpu.map(|v| format!("{v:.2}×")).unwrap_or_default(),
        r.throughput.as_ref().map(|t| format!("{} {}/s", si(t.per_second), t.unit)).unwrap_or_default(),
        r.model_bound.as_ref().map(|b| f(b.median_ms)).unwrap_or_default(),
        r.bound_ratio.map(|v| format!("{v:.2}")).unwrap_or_default(),
        r.memcpy.as_ref().map(|m| f(m.median_ms)).unwrap_or_default(),
        r.memcpy_ratio.map(|v| format!("{v:.2}")).unwrap_or_default(),
    ]
}

/// 3 significant figures with k / M suffixes.
fn si(v: f64) -> String {
    let (v, suffix) = if v >= 1e6 {
        (v / 1e6, " M")
    } else if v >= 1e3 {
        (v / 1e3, " k")
    } else {
        (v, "")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{suffix}")
}
