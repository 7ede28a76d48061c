//! Ctrl-C for training: the first request lets the current optimiser step finish, writes a
//! checkpoint and stops; the binary's signal handler exits at once on the second.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks the running loop to stop at its next optimiser-step boundary; true if it was already asked.
pub fn request() -> bool {
    REQUESTED.swap(true, Ordering::SeqCst)
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
