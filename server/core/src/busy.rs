//! Whether steps are running, process-wide: work beside them (a remote cache
//! push's gzip) takes one core while any is, and every core once none is.
//!
//! On the 2-core bench machine, gzip on both cores during the cold seed run
//! made its `go build` 10-15% slower, while on one core it made the push
//! outlast the pipeline by the time the last layer took to compress.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of running steps.
struct Count(AtomicUsize);

static STEPS: Count = Count::new();

impl Count {
    const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    fn start(&'static self) -> Running {
        self.0.fetch_add(1, Ordering::Relaxed);
        Running(self)
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// A step running, from `step` until dropped.
#[must_use = "the step counts as running until this is dropped"]
pub(crate) struct Running(&'static Count);

impl Drop for Running {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a step as running until the value returned is dropped.
pub(crate) fn step() -> Running {
    STEPS.start()
}

/// Whether any step is running in this process now.
pub(crate) fn steps_running() -> bool {
    STEPS.any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_until_their_guards_drop() {
        // A count of its own: other tests in this process run steps too.
        static COUNT: Count = Count::new();
        assert!(!COUNT.any());
        let one = COUNT.start();
        let two = COUNT.start();
        assert!(COUNT.any());
        drop(one);
        assert!(COUNT.any());
        drop(two);
        assert!(!COUNT.any());
    }
}
