//! Holding SIGINT and SIGTERM while a rotated set is on its way to disk.
//!
//! Once Withings has answered a refresh, the old refresh token is dying and
//! the answer exists only in this process: a Ctrl-C or a `kill` from cron's
//! timeout at that instant would lose it. So from just before the request
//! is sent until the answer is saved, the first such signal is only noted;
//! the transaction finishes, and the command then exits with 128 + signal.
//! SIGHUP (a closed terminal or ssh session) is held the same way. While a
//! signal is held no new attempt or backoff starts, and the person is told
//! at once that the request already sent is being finished. A second signal
//! still stops the process at once (the default action, as the issue asks),
//! so a user is never stuck; the journal then records the lost answer.
//! Outside that window the signals act as usual.
//!
//! `serve` handles SIGINT/SIGTERM itself (it stops accepting and lets the
//! transaction in flight end before it exits), so it calls
//! [`leave_to_the_process`] first: `hold` is then a no-op, and no handler
//! here can kill the server between two refreshes.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;

struct Flags {
    /// True outside the window, and after the first signal inside it.
    act_now: Arc<AtomicBool>,
    /// The signal that arrived inside the window (0: none).
    arrived: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();

/// A file-size limit (`ulimit -f`) must fail a write with EFBIG, which is
/// reported (and, after a rotation, leaves the set saved and says so),
/// rather than kill the process silently with SIGXFSZ halfway through the
/// copies. A handler (not SIG_IGN) so that `exec`'s command gets the
/// default back.
pub fn survive_file_size_limits() {
    if let Err(e) = flag::register(signal_hook::consts::SIGXFSZ, Arc::new(AtomicBool::new(false))) {
        tracing::debug!("SIGXFSZ stays fatal: {e}");
    }
}

/// Installs the handlers once per process. Order matters: the default
/// action is checked before the first signal arms it.
fn flags() -> Option<&'static Flags> {
    FLAGS
        .get_or_init(|| {
            let flags = Flags {
                act_now: Arc::new(AtomicBool::new(true)),
                arrived: Arc::new(AtomicUsize::new(0)),
            };
            for signal in [SIGINT, SIGTERM, SIGHUP] {
                let installed = flag::register_conditional_default(signal, Arc::clone(&flags.act_now))
                    .and_then(|_| flag::register(signal, Arc::clone(&flags.act_now)))
                    .and_then(|_| flag::register_usize(signal, Arc::clone(&flags.arrived), signal as usize));
                if let Err(e) = installed {
                    tracing::warn!("cannot hold signals during the token request: {e}");
                    return None;
                }
            }
            Some(flags)
        })
        .as_ref()
}

/// A stop that a process handling its own signals (`serve`) asked for.
static STOP_REQUESTED: AtomicUsize = AtomicUsize::new(0);

/// For a process that handles its own signals: no new attempt or backoff
/// starts from now on; the request in flight still ends and is saved.
pub fn request_stop(signal: i32) {
    STOP_REQUESTED.store(usize::try_from(signal).unwrap_or(1), Ordering::SeqCst);
}

/// The signal held in the current window, or the stop asked for, if any.
pub fn pending() -> Option<i32> {
    let held = FLAGS
        .get()
        .and_then(Option::as_ref)
        .map_or(0, |f| f.arrived.load(Ordering::SeqCst));
    match held.max(STOP_REQUESTED.load(Ordering::SeqCst)) {
        0 => None,
        n => i32::try_from(n).ok(),
    }
}

/// Runs `work`, and tells the person as soon as a signal is held that the
/// request already sent is being finished (a handler cannot print).
pub async fn announce_held<F: std::future::Future>(work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = tick.tick() => announce_once(),
        }
    }
}

/// Sleeps `pause` (a retry backoff), cut short when a signal is held.
pub async fn sleep_unless_held(pause: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + pause;
    while tokio::time::Instant::now() < deadline && pending().is_none() {
        let step = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(step.min(std::time::Duration::from_millis(100))).await;
    }
    announce_once();
}

fn announce_once() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if pending().is_some() && !SAID.swap(true, Ordering::SeqCst) {
        crate::logging::user_line(
            tracing::Level::WARN,
            "note: interrupted: finishing the request already sent so that its answer is saved; nothing more will be sent (a second signal stops at once and loses that answer)",
        );
    }
}

/// Blocks until SIGINT, SIGTERM or SIGHUP arrives and returns which: for a
/// process that has something to clean up before it ends (`sandbox`'s own
/// store). Never returns early; `None` when the handlers cannot be set.
pub fn wait_for_stop() -> Option<i32> {
    use std::io::Read;
    let (mut woken, waker) = std::os::unix::net::UnixStream::pair().ok()?;
    let arrived = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        flag::register_usize(signal, Arc::clone(&arrived), signal as usize).ok()?;
        signal_hook::low_level::pipe::register(signal, waker.try_clone().ok()?).ok()?;
    }
    let mut byte = [0u8; 1];
    loop {
        // EINTR (the signal itself) and the handler's byte both end a wait.
        let _ = woken.read(&mut byte);
        if let Ok(signal) = i32::try_from(arrived.load(Ordering::SeqCst))
            && signal != 0
        {
            return Some(signal);
        }
    }
}

/// Turns `hold` into a no-op for this process, whose own handlers never
/// end it in the middle of a save (`serve`). False when it is too late:
/// a window was already opened and the handlers are installed.
pub fn leave_to_the_process() -> bool {
    FLAGS.set(None).is_ok()
}

/// While alive, a first SIGINT/SIGTERM/SIGHUP is held; `release` says which came.
pub struct HeldSignals {
    flags: Option<&'static Flags>,
}

impl HeldSignals {
    pub fn hold() -> HeldSignals {
        let flags = flags();
        if let Some(f) = flags {
            f.arrived.store(0, Ordering::SeqCst);
            f.act_now.store(false, Ordering::SeqCst);
        }
        HeldSignals { flags }
    }

    /// Ends the window; the signal that arrived inside it, if any.
    pub fn release(self) -> Option<i32> {
        let f = self.flags?;
        f.act_now.store(true, Ordering::SeqCst);
        match f.arrived.swap(0, Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }
}

impl Drop for HeldSignals {
    /// An early return (an error) ends the window too.
    fn drop(&mut self) {
        if let Some(f) = self.flags {
            f.act_now.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_inside_the_window_is_held_and_reported() {
        let held = HeldSignals::hold();
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(held.release(), Some(SIGTERM));
        // Nothing arrived in a second window.
        assert_eq!(HeldSignals::hold().release(), None);
    }
}
