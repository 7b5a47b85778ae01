//! What a proxied call takes from the budgets before it is sent: first one
//! unit of its reader's share when the config file gives it one
//! (`[reader.NAME] budget = "30/min"`), so a runaway script is refused
//! before it starves the other consumers; then one unit of the app's
//! upstream budget, the one refreshes take from (shared through Redis
//! across hosts). A share is never waited for: over it, the call is
//! refused at once. The app's budget is waited for as a refresh waits
//! (up to `budget::MAX_WAIT`). A refusal is a 429 with `Retry-After`, and
//! nothing is sent to Withings.
//!
//! With a Redis store a share is counted there too, so the hosts sharing
//! it give a reader its share once between them; this process's bucket
//! is taken first (a reader over its share is refused without a round
//! trip) and its unit given back when Redis refuses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::budget::{self, Rate, Share, SharedBudget, UpstreamBudget};
use crate::error::Error;

use super::AppState;
use super::auth::{Caller, ScopedReader};
use super::errors::ApiError;

/// `ProxyCall::refused_by` of a refusal by the app's budget.
pub const BY_APP: &str = "app";
/// `ProxyCall::refused_by` of a refusal by the reader's share.
pub const BY_READER: &str = "reader";

/// The budgets of the proxied calls, built once at start.
pub struct Budgets {
    app: Arc<UpstreamBudget>,
    /// The store's count every host sees (Redis), when there is one.
    shared: Option<Arc<dyn SharedBudget>>,
    /// By reader name: the named readers given a `budget`.
    shares: HashMap<String, Share>,
}

impl Budgets {
    pub fn new(app: Arc<UpstreamBudget>, shared: Option<Arc<dyn SharedBudget>>, readers: &[ScopedReader]) -> Budgets {
        let now = Instant::now();
        let shares = readers
            .iter()
            .filter_map(|reader| Some((reader.name.clone(), Share::new(reader.budget?, now))))
            .collect();
        Budgets { app, shared, shares }
    }
}

/// A call that may not be sent: which budget refused it (none when the
/// count itself failed, e.g. Redis did not answer) and the answer.
#[derive(Debug)]
pub struct NotAdmitted {
    pub refused_by: Option<&'static str>,
    pub error: ApiError,
}

/// Takes the call's units: `Ok(Some(wait))` when it had to wait for the
/// app's budget; a 429 with `Retry-After` when it may not be sent now.
pub async fn admit(state: &AppState, caller: Caller<'_>) -> Result<Option<Duration>, NotAdmitted> {
    let budgets = &state.budgets;
    let share = match caller {
        Caller::Scoped(reader) => budgets.shares.get(&reader.name),
        _ => None,
    };
    if let (Caller::Scoped(reader), Some(share)) = (caller, share) {
        take_share(budgets.shared.as_deref(), &reader.name, share).await?;
    }
    let taken = budgets.app.take(budgets.shared.as_deref()).await;
    if taken.is_err()
        && let Some(share) = share
    {
        // Nothing is sent: the reader's unit in this process goes back (one
        // counted in Redis is not: it refills at the share's rate).
        share.give_back(Instant::now());
    }
    taken.map_err(|refused| app_refusal(&budgets.app, budgets.shared.is_some(), refused))
}

async fn take_share(shared: Option<&dyn SharedBudget>, reader: &str, share: &Share) -> Result<(), NotAdmitted> {
    if let Err(wait) = share.take(Instant::now()) {
        return Err(share_refusal(reader, share.rate(), wait));
    }
    let Some(shared) = shared else { return Ok(()) };
    let counted = shared.take_share(reader, share.rate()).await;
    if !matches!(counted, Ok(None)) {
        share.give_back(Instant::now());
    }
    match counted {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(share_refusal(reader, share.rate(), wait)),
        Err(failed) => Err(NotAdmitted {
            refused_by: None,
            error: failed.into(),
        }),
    }
}

/// Whole seconds, rounded up: a call sent again then finds a unit.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn share_refusal(reader: &str, rate: Rate, wait: Duration) -> NotAdmitted {
    let secs = whole_seconds(wait);
    NotAdmitted {
        refused_by: Some(BY_READER),
        error: ApiError::TooManyRequests {
            message: format!(
                "reader {reader}'s share of the budget ({rate}) is spent; nothing was sent to Withings; its next call may be sent in {secs} s"
            ),
            action: format!(
                "send it again after Retry-After ({secs} s); if {reader} needs more, raise `budget` in [reader.{reader}] of the config file and restart `serve`"
            ),
            retry_after: secs,
        },
    }
}

/// A refusal by the app's budget is the proxy's 429; any other failure of
/// the count (a signal, Redis not answering) keeps its own answer.
fn app_refusal(app: &UpstreamBudget, across_hosts: bool, refused: Error) -> NotAdmitted {
    let wait = match refused {
        Error::RateLimited {
            what: budget::WHAT,
            wait,
            ..
        } => wait.unwrap_or(budget::MAX_WAIT),
        other => {
            return NotAdmitted {
                refused_by: None,
                error: other.into(),
            };
        }
    };
    let secs = whole_seconds(wait);
    let per_minute = app.per_minute();
    let hosts = if across_hosts {
        " on every host sharing the store"
    } else {
        ""
    };
    NotAdmitted {
        refused_by: Some(BY_APP),
        error: ApiError::TooManyRequests {
            message: format!(
                "the app's budget of {per_minute} requests a minute to Withings, shared by every consumer and every token refresh{hosts}, is spent; nothing was sent to Withings; its next unit is free in {secs} s"
            ),
            action: format!(
                "send it again after Retry-After ({secs} s); if Withings allows your app more than {per_minute} requests a minute, raise `serve --upstream-budget` (WITHINGS_TOKEN_UPSTREAM_BUDGET)"
            ),
            retry_after: secs,
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn a_spent_app_budget_is_the_proxy_s_429_and_another_failure_keeps_its_answer() {
        let app = UpstreamBudget::new("app", 2);
        let spent = Error::RateLimited {
            what: budget::WHAT,
            detail: "d".into(),
            wait: Some(Duration::from_millis(29_200)),
        };
        let refused = app_refusal(&app, true, spent);
        assert_eq!(refused.refused_by, Some(BY_APP));
        assert_eq!(refused.error.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = refused.error.error_body();
        assert_eq!(
            body.message,
            "the app's budget of 2 requests a minute to Withings, shared by every consumer and every token refresh on every host sharing the store, is spent; nothing was sent to Withings; its next unit is free in 30 s"
        );
        // Withings' own 601, a Redis that does not answer: not a budget's refusal.
        for other in [
            Error::RateLimited {
                what: "Withings",
                detail: "d".into(),
                wait: None,
            },
            Error::StoreUnavailable { detail: "d".into() },
        ] {
            let failed = app_refusal(&app, true, other);
            assert_eq!(failed.refused_by, None);
            assert_eq!(failed.error.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    #[test]
    fn a_reader_s_refusal_names_it_and_rounds_the_wait_up_to_whole_seconds() {
        let refused = share_refusal("script", Rate::per_minute(2), Duration::from_millis(100));
        assert_eq!(refused.refused_by, Some(BY_READER));
        let ApiError::TooManyRequests {
            message, retry_after, ..
        } = &refused.error
        else {
            panic!("{refused:?}")
        };
        assert_eq!(*retry_after, 1);
        assert!(
            message.starts_with("reader script's share of the budget (2/min) is spent"),
            "{message}"
        );
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds(Duration::from_nanos(30_000_000_001)), 31);
    }

    #[test]
    fn only_the_readers_given_a_budget_have_a_share() {
        let grant = |name: &str, budget| crate::settings::ReaderGrant {
            name: name.into(),
            sha256: "0".repeat(64),
            accounts: Vec::new(),
            all_accounts: true,
            budget,
        };
        let readers = [grant("script", Some(Rate::per_minute(2))), grant("mcp", None)]
            .iter()
            .map(|g| ScopedReader::of(g).unwrap())
            .collect::<Vec<_>>();
        let budgets = Budgets::new(budget::for_client("shares-test", 120), None, &readers);
        let named: Vec<&String> = budgets.shares.keys().collect();
        assert_eq!(named, ["script"]);
        assert_eq!(budgets.shares["script"].rate(), Rate::per_minute(2));
    }
}
