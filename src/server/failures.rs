//! What `serve` remembers of refreshes that failed, one memory shared by
//! the background refresh, the broker and the admin endpoints, so that a
//! failure costs Withings one refresh, not one per caller:
//!
//! - A request that queued behind a refresh that failed gets that failure
//!   at once, as one that queued behind a success gets the new set, unless
//!   the set in use changed meanwhile. Callers that arrive after it ended
//!   start a refresh of their own.
//! - A refresh token Withings refused is not sent again by the broker or the
//!   background refresh until the set in use is another one (an exchange, a
//!   CLI run, a peer): it would be refused again. `POST
//!   /admin/token/refresh` still sends it, once per call: an operator asking
//!   explicitly may know that Withings' refusal was an incident of theirs.
//! - After a transient failure of Withings (no answer, a 5xx, a rate
//!   limit), a refresh of the same set is not sent again until a backoff
//!   ends (without it, 300 broker calls in 30 s against a failing Withings
//!   send it 20 requests). The broker and the background
//!   refresh get the failure at once meanwhile, as `Error::HeldBack` with
//!   the time left (the broker's `Retry-After`). The backoff is the loop's
//!   ([`schedule::pause_after_failure`]) on a base of the check interval,
//!   at most [`MAX_HOLD_BASE`], so 5-10 s after a first failure, doubling
//!   with each failure in a row of any caller; longer when Withings asks to
//!   wait (up to an hour), never past 5 min before the access token
//!   expires. `POST /admin/token/refresh` (and `validate
//!   ?refresh_if_invalid`) is sent all the same, as with a refused token:
//!   an operator retrying by hand, one request per call; its result counts
//!   like any other (a success ends the backoff).
//!
//! A set is told apart from another by the store's refresh token (the
//! environment's seed when the store holds none): the one thing Withings
//! judges, so a store rewritten with the same generation number but another
//! token is another set. The seed cannot change while `serve` runs; the
//! store can.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::locked;
use crate::tokens::{now, rfc3339};

use super::schedule;

/// The base of the backoff after a failure is the check interval, but no
/// longer than this: callers are held back seconds, not the loop's minutes.
pub const MAX_HOLD_BASE: Duration = Duration::from_secs(5);

/// How many refreshes had ended when a request queued for the flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

pub struct Failures {
    inner: Mutex<Inner>,
    /// The backoff's base (see the module doc).
    base: Duration,
    /// What its log lines start with: the account's name, but for `default`.
    said: String,
}

#[derive(Default)]
struct Inner {
    /// Refreshes ended so far (each one that ran, not the ones answered
    /// from this memory).
    ended: u64,
    /// The last refresh that ended, when it failed.
    last_failure: Option<Failure>,
    refused: Option<Refusal>,
    /// The backoff after transient failures in a row, while one is on.
    backoff: Option<Backoff>,
}

struct Backoff {
    in_a_row: u32,
    /// The refresh token of the set that failed.
    token: Option<SecretString>,
    /// Until when no refresh of that set is sent.
    until: Instant,
    /// The last failure, the answer meanwhile.
    error: Error,
}

struct Failure {
    /// Its place among the ended refreshes (1 for the first).
    number: u64,
    /// The refresh token of the set it started from.
    token: Option<SecretString>,
    error: Error,
}

struct Refusal {
    token: SecretString,
    detail: String,
    at: DateTime<Utc>,
}

fn same_token(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        (None, None) => true,
        _ => false,
    }
}

/// The failures after which a refresh is not sent again at once: Withings'
/// own (its store, lock or a refusal are not).
fn backs_off(error: &Error) -> bool {
    matches!(
        error,
        Error::Network { what: "Withings", .. }
            | Error::Upstream { what: "Withings", .. }
            | Error::RateLimited { what: "Withings", .. }
    )
}

impl Failures {
    /// The memory of one account (its log lines start with `said`) of a
    /// server whose background refresh checks every `check_interval`.
    pub fn new(check_interval: Duration, said: String) -> Failures {
        Failures {
            inner: Mutex::new(Inner::default()),
            base: check_interval.min(MAX_HOLD_BASE),
            said,
        }
    }

    /// The last failure of a refresh of `token`'s set, with the time left
    /// (whole seconds, rounded up), while the backoff after it is on.
    pub fn held_back(&self, token: Option<&SecretString>) -> Option<Error> {
        let inner = locked(&self.inner);
        let backoff = inner.backoff.as_ref().filter(|b| same_token(b.token.as_ref(), token))?;
        let left = backoff.until.checked_duration_since(Instant::now())?;
        let retry_in = Duration::from_secs(left.as_secs_f64().ceil() as u64);
        (!retry_in.is_zero()).then(|| Error::HeldBack {
            cause: Box::new(backoff.error.clone()),
            retry_in,
        })
    }

    /// Taken before waiting for the flight.
    pub fn ticket(&self) -> Ticket {
        Ticket(locked(&self.inner).ended)
    }

    /// The refusal of `token` (see the module doc), when Withings refused it.
    pub fn refusal_of(&self, token: Option<&SecretString>) -> Option<Error> {
        let inner = locked(&self.inner);
        let refused = inner.refused.as_ref()?;
        same_token(Some(&refused.token), token).then(|| Error::InvalidRefreshToken {
            detail: format!(
                "{} (at {}; it is not sent again until the store holds another set)",
                refused.detail,
                rfc3339(refused.at)
            ),
        })
    }

    /// The failure of a refresh that ended after `ticket` was taken, when
    /// it was the last one to end and started from the set of `token`.
    pub fn failure_since(&self, ticket: Ticket, token: Option<&SecretString>) -> Option<Error> {
        let inner = locked(&self.inner);
        let failure = inner.last_failure.as_ref().filter(|f| f.number > ticket.0)?;
        same_token(failure.token.as_ref(), token).then(|| failure.error.clone())
    }

    /// Records how a refresh that started from the set of `token` (whose
    /// access token expires at `expires_at`) ended; says once that a
    /// refresh token was refused.
    pub fn end<T>(&self, token: Option<&SecretString>, result: &Result<T>, expires_at: Option<DateTime<Utc>>) {
        let token = token.cloned();
        let mut inner = locked(&self.inner);
        inner.ended += 1;
        let number = inner.ended;
        let Err(error) = result else {
            inner.last_failure = None;
            inner.backoff = None;
            return;
        };
        inner.backoff = backs_off(error).then(|| self.back_off(&inner, token.clone(), error, expires_at));
        if let (Error::InvalidRefreshToken { detail }, Some(token)) = (error, &token) {
            let known = inner.refused.as_ref().map(|r| &r.token);
            if !same_token(known, Some(token)) {
                tracing::error!(
                    "{}Withings refused the refresh token in use: the broker and the background refresh do not send it again until the store holds another set (re-authorise: GET /admin/authorization-url, then POST /admin/token/exchange)",
                    self.said
                );
            }
            inner.refused = Some(Refusal {
                token: token.clone(),
                detail: detail.clone(),
                at: now(),
            });
        }
        inner.last_failure = Some(Failure {
            number,
            token,
            error: error.clone(),
        });
    }

    /// The backoff after `error`, one more failure in a row of `token`'s set.
    fn back_off(
        &self,
        inner: &Inner,
        token: Option<SecretString>,
        error: &Error,
        expires_at: Option<DateTime<Utc>>,
    ) -> Backoff {
        let before = inner
            .backoff
            .as_ref()
            .filter(|b| same_token(b.token.as_ref(), token.as_ref()));
        let in_a_row = before.map_or(0, |b| b.in_a_row).saturating_add(1);
        let pause = schedule::pause_after_failure(
            in_a_row,
            self.base,
            schedule::asked_wait(error),
            schedule::jitter(),
            expires_at.map(|at| (now(), at)),
        );
        Backoff {
            in_a_row,
            token,
            until: Instant::now() + pause.length,
            error: error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(refresh: &str) -> SecretString {
        SecretString::from(refresh)
    }

    fn refused() -> Result<()> {
        Err(Error::InvalidRefreshToken {
            detail: "invalid refresh_token".into(),
        })
    }

    fn upstream() -> Result<()> {
        Err(Error::Upstream {
            what: "Withings",
            attempts: 4,
            detail: "HTTP 500".into(),
        })
    }

    #[test]
    fn a_waiter_gets_the_failure_of_the_refresh_it_queued_behind() {
        let failures = Failures::new(Duration::from_secs(60), String::new());
        let old = token("old-refresh");
        let waiting = failures.ticket();
        failures.end(Some(&old), &upstream(), None);
        let shared = failures.failure_since(waiting, Some(&old)).expect("shared");
        assert_eq!(shared.code(), "UPSTREAM_ERROR");
        // One who came after it ended starts a refresh of its own.
        assert!(failures.failure_since(failures.ticket(), Some(&old)).is_none());
        // So does one whose set changed meanwhile.
        assert!(failures.failure_since(waiting, Some(&token("reauthorised"))).is_none());
        // A success after the failure ends the sharing.
        failures.end(Some(&old), &Ok(()), None);
        assert!(failures.failure_since(waiting, Some(&old)).is_none());
    }

    #[test]
    fn after_a_transient_failure_callers_are_held_back_for_the_backoff() {
        let failures = Failures::new(Duration::from_secs(60), String::new());
        let old = token("old-refresh");
        assert!(failures.held_back(Some(&old)).is_none());
        failures.end(Some(&old), &upstream(), None);
        let held = failures.held_back(Some(&old)).expect("held back");
        let Error::HeldBack { cause, retry_in } = &held else {
            panic!("{held:?}");
        };
        assert_eq!(cause.code(), "UPSTREAM_ERROR");
        // The first failure: 5 to 10 s (a base of 5 s, not the 60 s interval).
        assert!((5..=10).contains(&retry_in.as_secs()), "{retry_in:?}");
        // Another set is not held back; a success ends it.
        assert!(failures.held_back(Some(&token("reauthorised"))).is_none());
        failures.end(Some(&old), &Ok(()), None);
        assert!(failures.held_back(Some(&old)).is_none());
        // A refusal is the refusal memory's, not a backoff.
        failures.end(Some(&old), &refused(), None);
        assert!(failures.held_back(Some(&old)).is_none());
    }

    #[test]
    fn the_backoff_doubles_with_failures_in_a_row_but_ends_before_the_expiry() {
        let failures = Failures::new(Duration::from_secs(60), String::new());
        let old = token("old-refresh");
        for _ in 0..3 {
            failures.end(Some(&old), &upstream(), None);
        }
        let held = failures.held_back(Some(&old)).expect("held back");
        let Error::HeldBack { retry_in, .. } = held else {
            panic!()
        };
        assert!((20..=40).contains(&retry_in.as_secs()), "{retry_in:?}");
        // Withings asking for years, the token alive 5 min 30 s more.
        let years = Error::RateLimited {
            what: "Withings",
            detail: "status 601".into(),
            wait: Some(Duration::from_secs(1_000_000_000_000)),
        };
        let expires_at = now() + chrono::Duration::seconds(330);
        failures.end::<()>(Some(&old), &Err(years), Some(expires_at));
        let held = failures.held_back(Some(&old)).expect("held back");
        let Error::HeldBack { retry_in, .. } = held else {
            panic!()
        };
        assert!((29..=30).contains(&retry_in.as_secs()), "{retry_in:?}");
        // The store or the lock failing is not Withings failing.
        let fresh = Failures::new(Duration::from_secs(60), String::new());
        let store = Error::StoreUnavailable { detail: "d".into() };
        fresh.end::<()>(Some(&old), &Err(store), None);
        assert!(fresh.held_back(Some(&old)).is_none());
    }

    #[test]
    fn a_refused_token_is_remembered_until_the_set_in_use_is_another() {
        let failures = Failures::new(Duration::from_secs(60), String::new());
        let old = token("old-refresh");
        assert!(failures.refusal_of(Some(&old)).is_none());
        failures.end(Some(&old), &refused(), None);
        let again = failures.refusal_of(Some(&old)).expect("remembered");
        assert_eq!(again.code(), "INVALID_REFRESH_TOKEN");
        assert!(again.to_string().contains("invalid refresh_token (at "), "{again}");
        assert!(failures.refusal_of(Some(&token("reauthorised"))).is_none());
        assert!(failures.refusal_of(None).is_none());
        // A transient failure of the same set does not forget the refusal.
        failures.end(Some(&old), &upstream(), None);
        assert!(failures.refusal_of(Some(&old)).is_some());
    }
}
