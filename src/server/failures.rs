//! What `serve` remembers of refreshes that failed, one memory shared by
//! the background refresh, the broker and the admin endpoints (issue 18,
//! item 9), so that a failure costs Withings one refresh, not one per
//! caller:
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
//!
//! A set is told apart from another by the store's refresh token (the
//! environment's seed when the store holds none): the one thing Withings
//! judges, so a store rewritten with the same generation number but another
//! token is another set. The seed cannot change while `serve` runs; the
//! store can.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::locked;
use crate::tokens::{now, rfc3339};

/// How many refreshes had ended when a request queued for the flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Default)]
pub struct Failures {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Refreshes ended so far (each one that ran, not the ones answered
    /// from this memory).
    ended: u64,
    /// The last refresh that ended, when it failed.
    last_failure: Option<Failure>,
    refused: Option<Refusal>,
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

impl Failures {
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
        same_token(failure.token.as_ref(), token).then(|| failure.error.duplicate())
    }

    /// Records how a refresh that started from the set of `token` ended;
    /// says once that a refresh token was refused.
    pub fn end<T>(&self, token: Option<&SecretString>, result: &Result<T>) {
        let token = token.cloned();
        let mut inner = locked(&self.inner);
        inner.ended += 1;
        let number = inner.ended;
        let Err(error) = result else {
            inner.last_failure = None;
            return;
        };
        if let (Error::InvalidRefreshToken { detail }, Some(token)) = (error, &token) {
            let known = inner.refused.as_ref().map(|r| &r.token);
            if !same_token(known, Some(token)) {
                tracing::error!(
                    "Withings refused the refresh token in use: the broker and the background refresh do not send it again until the store holds another set (re-authorise: GET /admin/authorization-url, then POST /admin/token/exchange)"
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
            error: error.duplicate(),
        });
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
        let failures = Failures::default();
        let old = token("old-refresh");
        let waiting = failures.ticket();
        failures.end(Some(&old), &upstream());
        let shared = failures.failure_since(waiting, Some(&old)).expect("shared");
        assert_eq!(shared.code(), "UPSTREAM_ERROR");
        // One who came after it ended starts a refresh of its own.
        assert!(failures.failure_since(failures.ticket(), Some(&old)).is_none());
        // So does one whose set changed meanwhile.
        assert!(failures.failure_since(waiting, Some(&token("reauthorised"))).is_none());
        // A success after the failure ends the sharing.
        failures.end(Some(&old), &Ok(()));
        assert!(failures.failure_since(waiting, Some(&old)).is_none());
    }

    #[test]
    fn a_refused_token_is_remembered_until_the_set_in_use_is_another() {
        let failures = Failures::default();
        let old = token("old-refresh");
        assert!(failures.refusal_of(Some(&old)).is_none());
        failures.end(Some(&old), &refused());
        let again = failures.refusal_of(Some(&old)).expect("remembered");
        assert_eq!(again.code(), "INVALID_REFRESH_TOKEN");
        assert!(again.to_string().contains("invalid refresh_token (at "), "{again}");
        assert!(failures.refusal_of(Some(&token("reauthorised"))).is_none());
        assert!(failures.refusal_of(None).is_none());
        // A transient failure of the same set does not forget the refusal.
        failures.end(Some(&old), &upstream());
        assert!(failures.refusal_of(Some(&old)).is_some());
    }
}
