//! PNG plots of an evaluation (plotters, bitmap backend, the embedded DejaVu
//! Sans font: no system fonts needed): mean insertion/deletion curves per
//! method, and prior vs refined per (image, seed).

use super::{EvalJob, Record};
use crate::error::{BorexError, Result};
use crate::output;
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped inside the `dejavu` crate.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Render into an RGB buffer and write it atomically.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>) -> DrawResult<()>,
) -> Result<()> {
    register_font();
    let mut buf = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(root).map_err(|e| BorexError::io(path, std::io::Error::other(e.to_string())))?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf).expect("buffer matches the size");
    output::write_png(path, &img)
}

/// Mean of equal-length curves (shorter ones are skipped: maps of another size).
fn mean_curve<'a>(curves: impl Iterator<Item = &'a Vec<f32>>) -> Vec<(f32, f32)> {
    let all: Vec<&Vec<f32>> = curves.collect();
    let Some(len) = all.first().map(|c| c.len()) else { return vec![] };
    let same: Vec<&&Vec<f32>> = all.iter().filter(|c| c.len() == len).collect();
    (0..len)
        .map(|i| ((i as f32) / (len.max(2) - 1) as f32, same.iter().map(|c| c[i]).sum::<f32>() / same.len() as f32))
        .collect()
}

/// The records of one method and variant (`None`: its priors).
fn of<'a>(records: &'a [Record], method: &'a str, variant: Option<&'a str>) -> impl Iterator<Item = &'a Record> + 'a {
    records.iter().filter(move |r| r.method == method && r.variant.as_deref() == variant)
}

/// Writes `curves_METHOD.png` and, with refinement, `scatter_METHOD.png` into `dir`; returns the file names.
pub fn write_plots<'a>(dir: &Path, job: &'a EvalJob, records: &'a [Record]) -> Result<Vec<String>> {
    output::prepare_dir(dir)?;
    let mut names = vec![];
    let maps: Vec<Option<&str>> =
        std::iter::once(None).chain(job.variants.iter().map(|v| Some(v.label.as_str()))).collect();
    for method in &job.methods {
        let of = |v: Option<&'a str>| of(records, method, v);
        if of(None).next().is_none() {
            continue;
        }
        let safe = super::file_safe(method);
        let name = format!("curves_{safe}.png");
        render(&dir.join(&name), (1500, 480), |root| {
            root.fill(&WHITE)?;
            let panels = root.split_evenly((1, 3));
            let titles = ["insertion, blur start", "insertion, zero start", "deletion, to zero"];
            for (k, panel) in panels.iter().enumerate() {
                let mut chart = ChartBuilder::on(panel)
                    .caption(format!("{method}: {} (mean P_c)", titles[k]), ("sans-serif", 18))
                    .margin(10)
                    .x_label_area_size(35)
                    .y_label_area_size(45)
                    .build_cartesian_2d(0f32..1f32, 0f32..1f32)?;
                chart
                    .configure_mesh()
                    .x_desc("fraction of pixels")
                    .y_desc("P(class)")
                    .label_style(("sans-serif", 13))
                    .draw()?;
                for (i, v) in maps.iter().enumerate() {
                    let pts = mean_curve(of(*v).map(|r| match k {
                        0 => &r.scores.curves.insertion_blur,
                        1 => &r.scores.curves.insertion_zero,
                        _ => &r.scores.curves.deletion,
                    }));
                    let colour = COLOURS[i % COLOURS.len()];
                    let label = v.map_or("prior".to_string(), |v| format!("refined {v}"));
                    chart
                        .draw_series(LineSeries::new(pts, colour.stroke_width(2)))?
                        .label(label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 13))
                    .draw()?;
            }
            root.present()?;
            Ok(())
        })?;
        names.push(name);
        if job.variants.is_empty() {
            continue;
        }
        let name = format!("scatter_{safe}.png");
        let prior: std::collections::HashMap<(String, u64), f64> =
            of(None).map(|r| ((r.key.clone(), r.seed), super::metric(r, "ins_del_blur"))).collect();
        let series: Vec<(String, Vec<(f32, f32)>)> = job
            .variants
            .iter()
            .map(|v| {
                let pts = of(Some(&v.label))
                    .filter_map(|r| {
                        prior
                            .get(&(r.key.clone(), r.seed))
                            .map(|p| (*p as f32, super::metric(r, "ins_del_blur") as f32))
                    })
                    .collect();
                (v.label.clone(), pts)
            })
            .collect();
        let all: Vec<f32> = series
            .iter()
            .flat_map(|(_, p)| p.iter().flat_map(|(a, b)| [*a, *b]))
            .chain(prior.values().map(|v| *v as f32))
            .collect();
        let lo = all.iter().copied().fold(0.0f32, f32::min) - 0.05;
        let hi = all.iter().copied().fold(0.0f32, f32::max) + 0.05;
        render(&dir.join(&name), (640, 600), |root| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(format!("{method}: insertion(blur) − deletion per image × seed"), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo..hi, lo..hi)?;
            chart
                .configure_mesh()
                .x_desc("prior")
                .y_desc("refined (above the diagonal: better)")
                .label_style(("sans-serif", 13))
                .draw()?;
            chart.draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], RGBColor(150, 150, 150)))?;
            for (i, (label, pts)) in series.iter().enumerate() {
                let colour = COLOURS[(i + 1) % COLOURS.len()];
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 4, colour.filled())))?
                    .label(format!("refined {label}"))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()?;
            root.present()?;
            Ok(())
        })?;
        names.push(name);
    }
    Ok(names)
}
