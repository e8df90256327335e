//! Progress reporting: the library calls a [`Progress`] and draws nothing
//! itself. Each call that reports progress takes a [`Reporter`] (the `borex`
//! command passes terminal bars, or [`Quiet`] for `--quiet`; the engine and
//! Python pass [`Quiet`]), and the stages it runs (a prior's RISE masks inside
//! a refine) start their own progress from that same reporter: nothing is
//! process-wide.

#![warn(missing_docs)]

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

/// Reports nothing: `--quiet`, and every caller that shows no progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Reporter for Quiet {
    fn start(&self, _len: u64, _what: &str) -> Box<dyn Progress> {
        Box::new(NoProgress)
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
