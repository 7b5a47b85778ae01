//! Usage of the Withings proxy, per consumer: every proxied call is
//! recorded once it ended (`record`), as an audit line in the log (reader,
//! account, path, action, status, duration: never a token, never a body,
//! which is health data), as counters in `/metrics`, and in the book that
//! `GET /admin/usage` reads (last hour, last day).

use std::time::Duration;

use crate::accounts::AccountName;

use super::AppState;

/// How a proxied call ended, by Withings' status family (few fixed values:
/// a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Withings answered `status: 0` (or a 200 whose status is not JSON).
    Ok,
    /// Withings refused the access token (`status: 401`), after the retry
    /// when there was one.
    InvalidToken,
    /// Withings' own rate limit (`status: 601`).
    RateLimited,
    /// Another non-zero Withings status (invalid params, …).
    WithingsError,
    /// An HTTP status other than 200 from Withings.
    HttpError,
    /// No answer in time (504).
    Timeout,
    /// No answer at all (502).
    Unreachable,
    /// An answer over the cap (502, or cut).
    TooLarge,
    /// Refused by the budget (the app's or the reader's share): nothing sent.
    BudgetRefused,
    /// Not sent for another reason: no token, a refresh that failed, a bad path.
    NotSent,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::InvalidToken => "invalid_token",
            Outcome::RateLimited => "rate_limited",
            Outcome::WithingsError => "withings_error",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::TooLarge => "too_large",
            Outcome::BudgetRefused => "budget_refused",
            Outcome::NotSent => "not_sent",
        }
    }

    /// The family of a Withings answer: its HTTP status, then its JSON's.
    pub fn of_answer(http: u16, withings: Option<i64>) -> Outcome {
        match (http, withings) {
            (200, None | Some(0)) => Outcome::Ok,
            (200, Some(crate::withings::proxy::INVALID_TOKEN_STATUS)) => Outcome::InvalidToken,
            (200, Some(601)) => Outcome::RateLimited,
            (200, Some(_)) => Outcome::WithingsError,
            _ => Outcome::HttpError,
        }
    }
}

/// One proxied call, as it ended.
#[derive(Debug, Clone)]
pub struct ProxyCall {
    /// `Caller::label`: a named reader, `(admin)` or `(reader)`.
    pub reader: String,
    pub account: AccountName,
    /// The Withings path (`measure`, `v2/user`), without the query.
    pub path: String,
    /// Withings' `action`, as the consumer sent it (bounded where it is a label).
    pub action: Option<String>,
    /// The HTTP status the consumer got.
    pub status: u16,
    /// The `status` of Withings' JSON, when known.
    pub withings_status: Option<i64>,
    pub outcome: Outcome,
    /// The time spent waiting for Withings (both calls when retried).
    pub upstream: Option<Duration>,
    /// The whole call, as the consumer saw it up to the answer's head.
    pub duration: Duration,
    /// A read refused for its token, sent again after a refresh.
    pub retried: bool,
    /// How long the call waited for the budget, when it did.
    pub budget_wait: Option<Duration>,
    /// The budget that refused it (`"app"`, `"reader"`), when one did.
    pub refused_by: Option<&'static str>,
}

/// Records `call`: the audit line, the metrics, the book.
pub fn record(state: &AppState, call: &ProxyCall) {
    let _ = state;
    tracing::info!(
        target: "withings_token::audit",
        reader = %call.reader,
        account = %call.account,
        path = %call.path,
        action = call.action.as_deref().unwrap_or(""),
        status = call.status,
        outcome = call.outcome.label(),
        duration_ms = call.duration.as_millis() as u64,
        "proxied call"
    );
}
