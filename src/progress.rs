//! Progress reporting: the library calls a [`Progress`] and draws nothing
//! itself. A program that wants bars installs a [`Reporter`] once
//! ([`set_reporter`]; the `borex` command installs terminal bars); without
//! one, or when a caller asks for quiet, every stage reports to [`NoProgress`].
//!
//! The reporter is process-wide rather than a parameter: stages deep in the
//! pipelines (a prior's RISE masks inside a refine) make their own reporter,
//! and threading a factory through every signature would tie each of them to
//! the command's notion of bars.

#![warn(missing_docs)]

use std::sync::OnceLock;

/// A unit of work being counted: the library sets its length, counts steps and finishes it.
pub trait Progress: Send + Sync {
    /// The number of steps (0: unknown until a stage sets it).
    fn set_length(&self, _len: u64) {}
    /// `delta` more steps are done.
    fn inc(&self, _delta: u64) {}
    /// What is being done now.
    fn message(&self, _msg: &str) {}
    /// The work is done (a bar clears itself).
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Makes a [`Progress`] for a stage: its length (0 when not yet known) and a short name.
pub trait Reporter: Send + Sync {
    /// A new progress for `len` steps of `what`.
    fn start(&self, len: u64, what: &str) -> Box<dyn Progress>;
    /// Like [`start`](Self::start), for a stream of units where a rate is worth showing.
    fn start_rate(&self, len: u64, what: &str) -> Box<dyn Progress> {
        self.start(len, what)
    }
}

static REPORTER: OnceLock<Box<dyn Reporter>> = OnceLock::new();

/// Install the process's reporter; only the first call counts (returns whether this one did).
pub fn set_reporter(reporter: Box<dyn Reporter>) -> bool {
    REPORTER.set(reporter).is_ok()
}

/// A progress for `len` steps of `what`: the installed reporter's, or none when `quiet` or none is installed.
pub fn bar(len: u64, what: &str, quiet: bool) -> Box<dyn Progress> {
    match REPORTER.get() {
        Some(r) if !quiet => r.start(len, what),
        _ => Box::new(NoProgress),
    }
}

/// [`bar`] for a stream of units (done/total with a rate).
pub fn rate_bar(len: u64, what: &str, quiet: bool) -> Box<dyn Progress> {
    match REPORTER.get() {
        Some(r) if !quiet => r.start_rate(len, what),
        _ => Box::new(NoProgress),
    }
}

impl<P: Progress + ?Sized> Progress for Box<P> {
    fn set_length(&self, len: u64) {
        (**self).set_length(len)
    }
    fn inc(&self, delta: u64) {
        (**self).inc(delta)
    }
    fn message(&self, msg: &str) {
        (**self).message(msg)
    }
    fn finish(&self) {
        (**self).finish()
    }
}
