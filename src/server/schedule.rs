//! The background refresh: the store is assessed with the same decision and
//! buffer as `refresh --if-needed`, and refreshed through the same job when
//! due. Between checks it sleeps until the set is due, but never longer
//! than `--check-interval` (pizauth's `MAX_WAIT_SECS`): a suspended host, a
//! jumped clock or a set a peer changed is noticed within one interval.
//!
//! A check sends one request at most (see `AppState::schedule_withings`).
//! While checks fail (Withings down, the store unreadable), the loop backs
//! off ([`backoff`]) and honours a wait Withings asks for (`Retry-After`,
//! status 601). It says so once when checks start failing (and when the
//! failure changes), nothing while they go on failing the same way, and
//! once when one works again. A refused refresh token is the `failures`
//! memory's to say, and is not sent again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Error;
use crate::http::humanize;
use crate::tokens::{Action, Policy, assess, now};

use super::AppState;
use super::jobs::{self, Trigger, Want};

/// The shortest pause, so that a clock at the due instant never spins.
const MIN_PAUSE: Duration = Duration::from_millis(100);
/// While checks fail, they come at most this many intervals apart ...
const BACKOFF_INTERVALS: u32 = 16;
/// ... and at most this far apart, so that a recovered Withings is used
/// long before a set whose check failed expires.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest wait Withings may ask of the loop.
const MAX_ASKED_WAIT: Duration = Duration::from_secs(3600);

/// What the loop remembers between checks.
#[derive(Default)]
struct Memory {
    /// Checks that failed in a row.
    failures: u32,
    /// The code of the failure said last, while checks go on failing.
    said: Option<&'static str>,
    /// Whether "no token set" was already said.
    said_no_tokens: bool,
}

/// How one check ended.
enum Checked {
    /// It worked (refreshed, or nothing was due): the next check after this.
    Worked(Duration),
    /// The refresh token in use was refused before (or now).
    Refused,
    Failed(Error),
}

/// Checks at once, then after each pause, until `stop` turns true. A check
/// in progress (a refresh included) is finished before it returns.
pub async fn run(state: Arc<AppState>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut memory = Memory::default();
    loop {
        let pause = match check(&state, interval, &mut memory).await {
            Checked::Worked(pause) => {
                memory.worked();
                pause
            }
            Checked::Refused => {
                memory.failures = 0;
                memory.said = None;
                interval
            }
            Checked::Failed(error) => memory.failed(&error, interval),
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

impl Memory {
    fn worked(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                "the background refresh works again, after {} failed check(s)",
                self.failures
            );
        }
        self.failures = 0;
        self.said = None;
    }

    /// Counts the failure, says it when it is new, and returns the pause.
    fn failed(&mut self, error: &Error, interval: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let pause = backoff(self.failures, interval, asked_wait(error), jitter());
        if self.said != Some(error.code()) {
            tracing::error!(
                "the background refresh failed [{}]: {error}; next check in {}, then less often while it fails (at most {} apart); this is said again only when the failure changes or ends",
                error.code(),
                humanize(pause),
                humanize(backoff_cap(interval))
            );
            self.said = Some(error.code());
        }
        pause
    }
}

/// One check.
async fn check(state: &Arc<AppState>, interval: Duration, memory: &mut Memory) -> Checked {
    let stored = match state.store.load().await {
        Ok(stored) => stored,
        Err(e) => return Checked::Failed(e),
    };
    let policy = Policy {
        buffer: state.settings.buffer,
        force: false,
    };
    let seed = crate::rotation::seed_for(&state.settings, &stored);
    let assessment = assess(stored.tokens.as_ref(), seed, None, now(), policy);
    memory.said_no_tokens &= assessment.action == Action::NoTokens;
    match assessment.action {
        Action::NoTokens => {
            if !memory.said_no_tokens {
                tracing::warn!(
                    "no token set yet: authorise with GET /admin/authorization-url, then POST /admin/token/exchange"
                );
                memory.said_no_tokens = true;
            }
            Checked::Worked(interval)
        }
        // A set a run could not save waits: the job adopts it, due or not.
        Action::NotDue { refresh_at, .. }
            if state.store.waiting_rescue().is_none() && !crate::rotation::unsaved_waiting() =>
        {
            let until_due = (refresh_at - now()).to_std().unwrap_or(Duration::ZERO);
            Checked::Worked(until_due.clamp(MIN_PAUSE, interval.max(MIN_PAUSE)))
        }
        Action::NotDue { .. } | Action::Refresh(_) | Action::RefreshedByPeer => {
            let want = Want::IfDue { buffer: policy.buffer };
            match jobs::refresh(state, Trigger::Schedule, want, &jobs::default_delivery()).await {
                Ok(_) => Checked::Worked(interval),
                Err(Error::InvalidRefreshToken { .. }) => Checked::Refused,
                Err(e) => Checked::Failed(e),
            }
        }
    }
}

/// The wait Withings asked for, when it did (HTTP 429's `Retry-After`,
/// status 601's `wait_seconds`).
fn asked_wait(error: &Error) -> Option<Duration> {
    match error {
        Error::RateLimited { wait, .. } => *wait,
        _ => None,
    }
}

/// The longest pause between failing checks for `interval`.
fn backoff_cap(interval: Duration) -> Duration {
    interval
        .saturating_mul(BACKOFF_INTERVALS)
        .min(MAX_BACKOFF)
        .max(interval)
}

/// The pause after the `failures`-th failed check in a row (1 for the
/// first): `interval · 2^failures`, at most [`backoff_cap`], taken at the
/// point `jitter` (0 to 1) of its upper half, so that the first retry comes
/// one to two intervals later and servers sharing a store spread their
/// tries; never shorter than a `wait` Withings asked for (up to an hour).
pub fn backoff(failures: u32, interval: Duration, wait: Option<Duration>, jitter: f64) -> Duration {
    let doubled = interval.saturating_mul(2u32.saturating_pow(failures.max(1)));
    let ceiling = doubled.min(backoff_cap(interval));
    let half = ceiling / 2;
    let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
    let jittered = half + half.mul_f64(jitter);
    let asked = wait.unwrap_or(Duration::ZERO).min(MAX_ASKED_WAIT);
    jittered.max(asked).max(MIN_PAUSE)
}

/// A random point from 0 to 1; the middle if the system has no randomness
/// to give (the backoff still works, only in step with other servers).
fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_pause_doubles_from_one_interval_within_its_upper_half() {
        for (failures, low, high) in [(1, 1, 2), (2, 2, 4), (3, 4, 8), (4, 8, 16)] {
            assert_eq!(backoff(failures, MINUTE, None, 0.0), MINUTE * low, "{failures}");
            assert_eq!(backoff(failures, MINUTE, None, 1.0), MINUTE * high, "{failures}");
            let middle = backoff(failures, MINUTE, None, 0.5);
            assert!(
                middle > MINUTE * low && middle < MINUTE * high,
                "{failures}: {middle:?}"
            );
        }
    }

    #[test]
    fn the_pause_is_capped_at_sixteen_intervals_and_an_hour() {
        for failures in [5, 6, 30, u32::MAX] {
            assert_eq!(backoff(failures, MINUTE, None, 1.0), MINUTE * 16, "{failures}");
            assert_eq!(backoff(failures, MINUTE, None, 0.0), MINUTE * 8, "{failures}");
        }
        let ms100 = Duration::from_millis(100);
        assert_eq!(backoff(40, ms100, None, 1.0), Duration::from_millis(1600));
        // A long interval: an hour at most, but never less than the interval.
        assert_eq!(backoff(40, MINUTE * 10, None, 1.0), MINUTE * 60);
        assert_eq!(backoff(40, MINUTE * 60, None, 1.0), MINUTE * 60);
        assert_eq!(backoff(1, MINUTE * 60, None, 0.0), MINUTE * 30);
    }

    #[test]
    fn a_wait_withings_asked_for_is_honoured_up_to_an_hour() {
        assert_eq!(backoff(1, MINUTE, Some(MINUTE * 5), 1.0), MINUTE * 5);
        // Shorter than the backoff: the backoff.
        assert_eq!(backoff(3, MINUTE, Some(Duration::from_secs(5)), 0.0), MINUTE * 4);
        assert_eq!(backoff(1, MINUTE, Some(MINUTE * 600), 0.0), MINUTE * 60);
        let limited = Error::RateLimited {
            what: "Withings",
            detail: "status 601".into(),
            wait: Some(MINUTE),
        };
        assert_eq!(asked_wait(&limited), Some(MINUTE));
    }

    #[test]
    fn a_tiny_interval_never_spins_and_odd_jitter_stays_in_range() {
        assert_eq!(backoff(1, Duration::ZERO, None, 0.5), MIN_PAUSE);
        assert_eq!(backoff(1, MINUTE, None, f64::NAN), backoff(1, MINUTE, None, 0.0));
        assert_eq!(backoff(1, MINUTE, None, 7.0), MINUTE * 2);
        assert_eq!(backoff(0, MINUTE, None, 0.0), MINUTE);
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
