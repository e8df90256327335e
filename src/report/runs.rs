//! Pages of runs over many images or frames: a sortable table whose rows
//! link to each one's section, thumbnails, and for video the maps as a strip
//! over time and the overlay video.

use super::html::{self, esc, img, legend, png_uri, Cell, Scale};
use super::views::{read_array, read_json, read_map};
use super::{refine, Problems};
use crate::error::Result;
use crate::refine::bulk::{SummaryRow, SUMMARY_HEADER};
use crate::video::clip::{ClipReport, ClipRow, CSV_HEADER as CLIPS_HEADER};
use crate::video::run::{FrameRow, CSV_HEADER as FRAMES_HEADER};
use ndarray::{Array2, ArrayView2};
use std::fmt::Write;
use std::path::Path;

/// Sections (full maps) beyond this many frames or images are left out (the table and strip keep every row).
pub const MAX_SECTIONS: usize = 100;
/// Thumbnails in a video strip beyond this many are left out.
pub const MAX_STRIP: usize = 600;
/// An overlay video up to this size is embedded as a data URI; larger ones are linked.
pub const MAX_EMBEDDED_VIDEO: u64 = 4 << 20;

fn thumb(uri: &str, alt: &str) -> String {
    img(uri, alt, r#"class="thumb""#)
}

/// `borex refine IMAGE...`.
pub fn refine_many(dir: &Path, problems: &mut Problems) -> Result<String> {
    let summary: Vec<SummaryRow> = crate::output::read_csv_rows(&dir.join("summary.csv"), &SUMMARY_HEADER)?;
    let mut rows = vec![];
    let mut sections = String::new();
    for (i, row) in summary.iter().enumerate() {
        let (name, folder, status) = (row.image.as_str(), row.folder.as_str(), row.status.as_str());
        let id = format!("img-{i}");
        let mut thumb_html = String::from("–");
        if status == "ok" && i < MAX_SECTIONS {
            let mut sub_problems = Problems::default();
            match super::confined(dir, folder, &dir.join("summary.csv"))
                .and_then(|sub| refine::load(&sub, &mut sub_problems))
            {
                Ok(l) => {
                    if let (Some(im), Some(m)) = (&l.image, &l.refined) {
                        let sc = Scale::of(&[m.view()]);
                        thumb_html = thumb(
                            &png_uri(&html::shrink(&html::blend(im, m.view(), &sc), 64)),
                            &format!("Refined map of {name} over the image"),
                        );
                    }
                    let body = refine::section(&l, &id, false, &mut sub_problems);
                    let _ = write!(
                        sections,
                        r##"<section id="{id}" aria-labelledby="{id}-h"><h2 id="{id}-h">{}</h2>{body}<p><a href="#top">back to the table</a></p></section>"##,
                        esc(name)
                    );
                }
                Err(e) => sub_problems.push(e.to_string()),
            }
            problems.0.extend(sub_problems.0);
        }
        let gain = |p: Option<f64>, r: Option<f64>, higher| refine::gain(p, r, higher);
        // A long name is cut to the column's width, whole on hover (title): the table stays on screen.
        let link = if sections.contains(&format!("id=\"{id}\"")) {
            format!(r##"<a href="#{id}" class="fname" title="{}">{}</a>"##, esc(name), esc(name))
        } else {
            format!(r#"<span class="fname" title="{}">{}</span>"#, esc(name), esc(name))
        };
        let class = row.class.map(|c| c.to_string()).unwrap_or_default();
        rows.push(vec![
            Cell::html(link, name),
            Cell::html(thumb_html, ""),
            Cell::text(status),
            Cell::html(esc(&format!("{} ({})", row.label.as_deref().unwrap_or(""), class)), &class),
            Cell::num(row.probability),
            Cell::num(row.prior_insertion),
            Cell::num(row.refined_insertion),
            Cell::num(gain(row.prior_insertion, row.refined_insertion, true)),
            Cell::num(row.prior_deletion),
            Cell::num(row.refined_deletion),
            Cell::num(gain(row.prior_deletion, row.refined_deletion, false)),
            Cell::text(&row.error),
        ]);
    }
    let mut s = format!(
        r#"<p id="top">{} images from <code>summary.csv</code>; each name links to its section. Gains are refined better than prior when &gt; 0 (deletion: lower is better).</p>"#,
        summary.len()
    );
    s.push_str(&html::sortable_table(
        "images",
        "Images",
        &[
            "image",
            "refined",
            "status",
            "class",
            "probability",
            "prior ins.",
            "refined ins.",
            "ins. gain",
            "prior del.",
            "refined del.",
            "del. gain",
            "error",
        ],
        &rows,
    ));
    if summary.len() > MAX_SECTIONS {
        s.push_str(&html::missing(&format!("sections of the images after the first {MAX_SECTIONS} are left out")));
    }
    s.push_str(&sections);
    Ok(s)
}

/// The overlay video: embedded when small, else linked by its path.
fn overlay_video(dir: &Path, problems: &mut Problems) -> String {
    let p = dir.join("overlay.mp4");
    match std::fs::metadata(&p) {
        // A FIFO or device has no length to judge by: read_bounded refuses it by name.
        Ok(m) if m.len() <= MAX_EMBEDDED_VIDEO => {
            match crate::limits::read_bounded(&p, MAX_EMBEDDED_VIDEO, "overlay video") {
                Ok(bytes) => format!(
                    r#"<figure><video controls muted preload="metadata" aria-label="Overlay video: the refined map over each frame" src="{}"></video><figcaption>overlay.mp4 ({} KB, embedded)</figcaption></figure>"#,
                    html::data_uri("video/mp4", &bytes),
                    bytes.len() / 1024
                ),
                Err(e) => {
                    problems.keep::<()>(Err(e));
                    html::missing("overlay.mp4 could not be read")
                }
            }
        }
        Ok(m) => format!(
            r#"<p>The overlay video is {} MB, too large to embed: <a href="{}">{}</a> (a file beside the run).</p>"#,
            m.len() >> 20,
            esc(&p.display().to_string()),
            esc(&p.display().to_string())
        ),
        Err(_) => {
            problems.push(format!("{}: absent", p.display()));
            html::missing("overlay.mp4 is absent")
        }
    }
}

/// `borex video` in frame mode: `job.json`, `frames.csv`, `maps/` (or `maps.npy`), `overlay.mp4`.
pub fn video_frames(dir: &Path, problems: &mut Problems) -> Result<String> {
    let job = crate::job::JobDescription::read(dir)?
        .ok_or_else(|| crate::error::BorexError::invalid(format!("{}: absent", dir.join("job.json").display())))?;
    let csv_path = dir.join("frames.csv");
    let frames = if csv_path.exists() {
        FrameRow::read_csv(&csv_path)?
    } else {
        return Err(crate::error::BorexError::invalid(format!(
            "{}: absent (an unfinished run or a shard: run it to the end or `borex video merge` the shards)",
            csv_path.display()
        )));
    };
    // Every frame's map, in the table's order.
    let stack = dir.join("maps.npy");
    let maps: Vec<Option<Array2<f32>>> = if stack.exists() {
        match problems.keep(read_array(&stack)) {
            Some(a) if a.ndim() == 3 => {
                let a = a.into_dimensionality::<ndarray::Ix3>().expect("3-D");
                (0..frames.len())
                    .map(|i| (i < a.shape()[0]).then(|| a.index_axis(ndarray::Axis(0), i).to_owned()))
                    .collect()
            }
            _ => vec![None; frames.len()],
        }
    } else {
        frames
            .iter()
            .map(|row| problems.keep(read_map(&dir.join(format!("maps/frame_{:06}.npy", row.frame)))))
            .collect()
    };
    let views: Vec<ArrayView2<f32>> = maps.iter().flatten().map(|m| m.view()).collect();
    let scale = Scale::of(&views);
    let mut s = String::new();
    let mut info = vec![];
    // job.json through its type, flattened to key–value rows for the page.
    html::flatten("", &serde_json::to_value(&job).unwrap_or_default(), &mut info);
    info.retain(|(k, _)| !k.starts_with("settings.refine.") || k.ends_with("iters") || k.ends_with("objective"));
    let _ = write!(
        s,
        r#"<p id="top">{} frames from <code>frames.csv</code>; each frame links to its section.</p>"#,
        frames.len()
    );
    s.push_str(&overlay_video(dir, problems));
    s.push_str(r#"<h2 id="strip-h">The maps over time</h2><div class="strip" role="list" aria-labelledby="strip-h">"#);
    let mut rows = vec![];
    let mut sections = String::new();
    for (i, (row, m)) in frames.iter().zip(&maps).enumerate() {
        let frame = &row.frame.to_string();
        let id = format!("frame-{frame}");
        let uri = m.as_ref().map(|m| png_uri(&html::colorize(m.view(), &scale)));
        if i < MAX_STRIP {
            match &uri {
                Some(_) => {
                    let small = png_uri(&html::shrink(&html::colorize(m.as_ref().expect("map").view(), &scale), 72));
                    let link = if i < MAX_SECTIONS { format!("#{id}") } else { "#top".into() };
                    let _ = write!(
                        s,
                        r#"<figure role="listitem"><a href="{link}">{}</a><figcaption>{}<br>{}</figcaption></figure>"#,
                        img(&small, &format!("Refined map of frame {frame}"), ""),
                        esc(frame),
                        esc(&format!("{:.6}", row.timestamp))
                    );
                }
                None => {
                    let _ = write!(
                        s,
                        r#"<figure role="listitem">{}</figure>"#,
                        html::missing(&format!("frame {frame}: no map"))
                    );
                }
            }
        }
        let thumb_html = match m {
            Some(m) => thumb(
                &png_uri(&html::shrink(&html::colorize(m.view(), &scale), 64)),
                &format!("Refined map of frame {frame}"),
            ),
            None => "–".into(),
        };
        if i < MAX_SECTIONS {
            let _ = write!(
                sections,
                r#"<section id="{id}" aria-labelledby="{id}-h"><h3 id="{id}-h">Frame {}</h3><div class="row">"#,
                esc(frame)
            );
            match &uri {
                Some(u) => {
                    let _ = write!(
                        sections,
                        r#"<figure class="panel" data-panel="frame">{}<figcaption>Refined map, frame {}</figcaption></figure>"#,
                        img(u, &format!("Refined map of frame {frame}"), ""),
                        esc(frame)
                    );
                }
                None => sections.push_str(&html::missing(&format!("frame {frame}: its map is missing or unreadable"))),
            }
            let kv = frame_kv(row);
            sections.push_str(&html::kv_table(&format!("Frame {frame}"), &kv));
            sections.push_str(r##"</div><p><a href="#top">back to the table</a></p></section>"##);
        }
        let link = if i < MAX_SECTIONS { format!(r##"<a href="#{id}">{}</a>"##, esc(frame)) } else { esc(frame) };
        rows.push(vec![
            Cell::html(link, frame),
            Cell::html(thumb_html, ""),
            Cell::num(Some(row.timestamp)),
            Cell::html(esc(&format!("{} ({})", row.label, row.class)), &row.class.to_string()),
            Cell::num(Some(row.probability)),
            Cell::num(row.insertion),
            Cell::num(row.deletion),
            Cell::num(row.insertion.zip(row.deletion).map(|(a, b)| a - b)),
            Cell::num(Some(row.model_evaluations as f64)),
            Cell::num(Some(row.time_ms)),
        ]);
    }
    s.push_str("</div>");
    if frames.len() > MAX_STRIP {
        s.push_str(&html::missing(&format!("the strip shows the first {MAX_STRIP} frames")));
    }
    s.push_str(&legend(&scale, "Every frame's refined map shares this scale"));
    s.push_str(r#"<h2>Frames</h2>"#);
    s.push_str(&html::sortable_table(
        "frames",
        "Frames (refined map's insertion and deletion AUC)",
        &[
            "frame",
            "map",
            "time (s)",
            "class",
            "probability",
            "insertion",
            "deletion",
            "ins. − del.",
            "model evaluations",
            "time (ms)",
        ],
        &rows,
    ));
    if frames.len() > MAX_SECTIONS {
        s.push_str(&html::missing(&format!("sections of the frames after the first {MAX_SECTIONS} are left out")));
    }
    s.push_str(&sections);
    s.push_str("<h2>Job</h2>");
    s.push_str(&html::kv_table("job.json", &info));
    Ok(s)
}

/// A frame's row as the key–value table of its section (the CSV's columns and cells).
fn frame_kv(row: &FrameRow) -> Vec<(String, String)> {
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let cells = [
        row.frame.to_string(),
        row.timestamp.to_string(),
        row.class.to_string(),
        row.label.clone(),
        row.probability.to_string(),
        opt(row.insertion),
        opt(row.deletion),
        row.model_evaluations.to_string(),
        row.time_ms.to_string(),
    ];
    FRAMES_HEADER.iter().map(|h| h.to_string()).zip(cells).collect()
}

/// `borex video --mode clip`: `clips.csv`, `maps/clip_NNNNNN.npy` (T×H×W), `report.json`, `overlay.mp4`.
pub fn video_clip(dir: &Path, problems: &mut Problems) -> Result<String> {
    let clips = ClipRow::read_csv(&dir.join("clips.csv"))?;
    let report: Option<ClipReport> = problems.keep(read_json(&dir.join("report.json")));
    let maps: Vec<Option<ndarray::Array3<f32>>> = clips
        .iter()
        .map(|row| {
            let p = dir.join(format!("maps/clip_{:06}.npy", row.clip));
            problems.keep(read_array(&p)).and_then(|a| {
                let shape = a.shape().to_vec();
                let r = a.into_dimensionality::<ndarray::Ix3>().ok();
                if r.is_none() {
                    problems.push(format!("{}: a {shape:?} array, not T×H×W", p.display()));
                }
                r
            })
        })
        .collect();
    let planes: Vec<ArrayView2<f32>> = maps.iter().flatten().flat_map(|m| m.outer_iter().collect::<Vec<_>>()).collect();
    let scale = Scale::of(&planes);
    let mut s = format!(r#"<p id="top">{} clips from <code>clips.csv</code>.</p>"#, clips.len());
    s.push_str(&overlay_video(dir, problems));
    s.push_str("<h2>The maps over time</h2>");
    let mut rows = vec![];
    for (i, (row, m)) in clips.iter().zip(&maps).enumerate() {
        let clip = &row.clip.to_string();
        let id = format!("clip-{clip}");
        if i < MAX_SECTIONS {
            let _ = write!(
                s,
                r#"<section id="{id}"><h3>Clip {} (frames {}–{})</h3><div class="strip" role="list">"#,
                esc(clip),
                row.first_frame,
                row.last_frame
            );
            match m {
                Some(m) => {
                    for (t, plane) in m.outer_iter().enumerate() {
                        let _ = write!(
                            s,
                            r#"<figure role="listitem">{}<figcaption>t = {t}</figcaption></figure>"#,
                            img(
                                &png_uri(&html::colorize(plane, &scale)),
                                &format!("Clip {clip}, map at frame {t} of the clip"),
                                ""
                            )
                        );
                    }
                }
                None => s.push_str(&html::missing(&format!("clip {clip}: its map is missing or unreadable"))),
            }
            s.push_str("</div></section>");
        }
        let link = if i < MAX_SECTIONS { format!(r##"<a href="#{id}">{}</a>"##, esc(clip)) } else { esc(clip) };
        let n = |x: f64| Cell::num(Some(x));
        rows.push(vec![
            Cell::html(link, clip),
            n(row.first_frame as f64),
            n(row.last_frame as f64),
            n(row.start_time),
            n(row.end_time),
            n(row.class as f64),
            Cell::text(&row.label),
            n(row.probability),
            n(row.peak_frame as f64),
            n(row.model_evaluations as f64),
            n(row.time_ms),
        ]);
    }
    s.push_str(&legend(&scale, "Every clip's maps share this scale"));
    s.push_str(&html::sortable_table("clips", "Clips", &CLIPS_HEADER, &rows));
    let mut info = vec![];
    // The report through its type, flattened to key–value rows for the page.
    if let Some(r) = &report {
        html::flatten("", &serde_json::to_value(r).unwrap_or_default(), &mut info);
    }
    s.push_str(&html::kv_table("report.json", &info));
    Ok(s)
}
