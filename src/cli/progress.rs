//! The command's progress bars: indicatif on stderr, hidden when stderr is not
//! a terminal; passed to the library as its [`borex::progress::Reporter`].

use borex::progress::{Progress, Reporter};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

struct Bar(ProgressBar);

impl Progress for Bar {
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn inc(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn new_bar(len: u64, what: &str, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    pb.set_message(what.to_string());
    pb
}

struct Bars;

impl Reporter for Bars {
    fn start(&self, len: u64, what: &str) -> Box<dyn Progress> {
        Box::new(Bar(new_bar(len, what, "{msg:>10} [{bar:40}] {pos}/{len} ({eta})")))
    }
    fn start_rate(&self, len: u64, what: &str) -> Box<dyn Progress> {
        Box::new(Bar(new_bar(len, what, "{msg:>10} [{bar:40}] {pos}/{len} {per_sec} (ETA {eta})")))
    }
}

/// What the library reports progress to: indicatif bars, or nothing with `--quiet`.
pub fn reporter(quiet: bool) -> &'static dyn Reporter {
    if quiet {
        &borex::progress::Quiet
    } else {
        &Bars
    }
}
