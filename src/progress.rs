//! Progress bars on stderr, hidden when stderr is not a terminal or when quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A bar for a stream of units: done/total, units per second and ETA.
pub fn rate_bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    let pb = bar(len, what, quiet);
    if !pb.is_hidden() {
        pb.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} (ETA {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    pb
}
