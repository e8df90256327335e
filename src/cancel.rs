//! Cancelling a call from outside it. A caller installs a check for the
//! current thread ([`with_check`]); the library polls it before every model
//! call ([`checkpoint`]) and stops with [`BorexError::Interrupted`] once it
//! says so. The Python package checks for Ctrl-C there, so `KeyboardInterrupt`
//! arrives within one model batch instead of when the call ends.
//!
//! Per thread, not per process: two Python threads share one engine, and a
//! signal cancels only the main thread's call. Model calls made on rayon's
//! workers see no check and run to their batch's end, which costs latency,
//! never correctness.

#![warn(missing_docs)]

use crate::error::{BorexError, Result};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once Ctrl-C / SIGTERM arrived: work still running is dropped, not recorded.
/// Kept here, below every module that polls it, so the check needs nothing above it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether [`mark_interrupted`] was called: a bulk run then records nothing more
/// (an image whose model call was cut short did not fail), and no new file is started.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Mark the whole process interrupted (a signal handler's first step,
/// [`crate::output::interrupt`]); every later [`checkpoint`] stops.
pub fn mark_interrupted() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

type Check = Box<dyn Fn() -> bool>;

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
}

/// Run `f` with `check` installed on this thread: every [`checkpoint`] in
/// `f` asks it whether to stop. The previous check (if any) is restored
/// afterwards, also when `f` panics.
pub fn with_check<T>(check: impl Fn() -> bool + 'static, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Check>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CHECK.with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    *c = prev;
                }
            });
        }
    }
    // Busy: a check's own code (a Python signal handler) called into borex; the outer check stays.
    let Some(prev) = CHECK.with(|c| c.try_borrow_mut().ok().map(|mut c| c.replace(Box::new(check)))) else {
        return f();
    };
    let _restore = Restore(prev);
    f()
}

/// `Err(Interrupted)` when the process was interrupted ([`mark_interrupted`])
/// or this thread's check asks to stop; the library calls it before each model call.
pub fn checkpoint() -> Result<()> {
    if interrupted() {
        return Err(BorexError::Interrupted);
    }
    // try_borrow: a check that itself reaches a checkpoint must not panic on the RefCell.
    let stop = CHECK.with(|c| c.try_borrow().ok().and_then(|c| c.as_ref().map(|f| f())).unwrap_or(false));
    if stop {
        return Err(BorexError::Interrupted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn a_check_stops_only_its_own_scope() {
        assert!(checkpoint().is_ok());
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let r = with_check(
            move || {
                c.set(c.get() + 1);
                c.get() >= 2
            },
            || (checkpoint().is_ok(), checkpoint().is_err()),
        );
        assert_eq!(r, (true, true));
        assert_eq!(calls.get(), 2);
        // Restored after the scope, also after a panic inside it.
        assert!(checkpoint().is_ok());
        let caught = std::panic::catch_unwind(|| with_check(|| true, || panic!("inside")));
        assert!(caught.is_err());
        assert!(checkpoint().is_ok());
        // Another thread never sees this thread's check.
        assert!(with_check(|| true, || std::thread::spawn(|| checkpoint().is_ok()).join().unwrap()));
    }
}
