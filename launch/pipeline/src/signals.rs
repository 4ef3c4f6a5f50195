//! SIGINT and SIGTERM (what Slurm sends at a job's time limit) as a clean stop: the first one
//! sets the run's [`Shutdown`], every loop sees it and ends at a step boundary (the learner with
//! a checkpoint); a second one ends the process at once, as usual.

use gfn_common::pipe::Shutdown;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// The signal received, 0 for none. A signal handler may only touch atomics.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
    // The next one takes the default action (ends the process).
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Installs the handlers and returns the shutdown value they trigger (through a watcher thread,
/// since a handler cannot).
pub fn install() -> Shutdown {
    let shutdown = Shutdown::default();
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic and resets its own disposition, both
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    let watched = shutdown.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            if let Some(s) = received() {
                tracing::warn!("{s}: stopping at the next step boundary");
                watched.trigger();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch for signals: {e}");
    }
    shutdown
}

/// The signal received so far, by name.
fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// The exit code of a process stopped by a signal: 128 + its number (130, 143), by convention.
pub fn exit_code() -> Option<u8> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some((128 + s) as u8),
    }
}
