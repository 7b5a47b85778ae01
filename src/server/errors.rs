//! How a failure becomes an HTTP answer: always the contract's JSON error
//! object `{"error":{"code","message","action"}}`, with a status a client
//! can act on. The mapping is one pure function, [`http_status`].
//!
//! | codes | status |
//! |---|---|
//! | `INVALID_REFRESH_TOKEN`, `INVALID_CODE`, `INVALID_STATE` (a refused grant), `INVALID_ACCESS_TOKEN` (`validate`) | 400 |
//! | `CONFIGURATION_ERROR` (a missing setting, a malformed code, no token) | 400 |
//! | `BAD_REQUEST` (a body or query that does not parse; 413 when too large) | 400 |
//! | `UNAUTHORIZED` (credential missing or wrong) | 401 |
//! | `FORBIDDEN` (a reader credential on an admin endpoint, a named reader on another account) | 403 |
//! | `NOT_FOUND` (no such endpoint, no such account), `METHOD_NOT_ALLOWED` | 404, 405 |
//! | `NETWORK_ERROR`, `UPSTREAM_ERROR`, `RAILWAY_UPDATE_FAILED`; the proxy's `ANSWER_TOO_LARGE` | 502 |
//! | the proxy's `UPSTREAM_TIMEOUT` | 504 |
//! | the proxy's `RATE_LIMITED` (a budget spent: nothing sent) | 429 with `Retry-After` |
//! | `RATE_LIMITED`, `LOCK_TIMEOUT`, `STORE_UNAVAILABLE` | 503 with `Retry-After` |
//! | `CONFIGURATION_ERROR` for a corrupt store, `INTERNAL_ERROR`, others | 500 |
//!
//! A refresh held back by the backoff after a failure (`failures`) answers
//! with its cause's status and the time left of the backoff as
//! `Retry-After`. A `Retry-After` is never more than [`MAX_RETRY_AFTER`]
//! (Withings once asked for 10^12 seconds).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::output::{ErrorBody, ErrorReport};

/// What a client is told to wait before trying again (the CLI's action
/// says "after 30 s or more" for the same failures).
pub const RETRY_AFTER_SECS: u64 = 30;
/// The longest `Retry-After` a client is told, whatever Withings asked.
pub const MAX_RETRY_AFTER: u64 = 3600;

/// A failure of one request.
#[derive(Debug)]
pub enum ApiError {
    /// No credential, or not the right one.
    Unauthorized { message: String, action: String },
    /// The reader credential on an endpoint it does not open.
    Forbidden,
    /// The request itself does not parse (body, query), or names no route.
    Rejected {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Refused for what the request names (an account it may not read, or
    /// that does not exist), with its own words.
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
        action: String,
    },
    /// Over a budget (the app's, or the reader's share): not sent, and
    /// not to be sent again for `retry_after` seconds.
    TooManyRequests {
        message: String,
        action: String,
        retry_after: u64,
    },
    /// The work failed; the crate's error says why and what to do.
    Failed(Error),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::Failed(error)
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_REQUEST",
            message: message.into(),
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The error object of the answer (code, message, action).
    pub fn error_body(&self) -> ErrorBody {
        self.parts().2
    }

    /// The status, the `Retry-After` seconds (if any) and the body.
    fn parts(&self) -> (StatusCode, Option<u64>, ErrorBody) {
        match self {
            ApiError::Unauthorized { message, action } => (
                StatusCode::UNAUTHORIZED,
                None,
                body("UNAUTHORIZED", message.clone(), action.clone()),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                None,
                body(
                    "FORBIDDEN",
                    "the reader credential (WITHINGS_TOKEN_READER_TOKEN) opens only GET /v1/access-token and /v1/withings/PATH".into(),
                    "send `X-Admin-Token: $ADMIN_API_TOKEN` for the admin endpoints".into(),
                ),
            ),
            ApiError::Rejected { status, code, message } => (
                *status,
                None,
                body(
                    code,
                    message.clone(),
                    "see the endpoint table in docs/serve.md (`Endpoints`)".into(),
                ),
            ),
            ApiError::Refused {
                status,
                code,
                message,
                action,
            } => (*status, None, body(code, message.clone(), action.clone())),
            ApiError::TooManyRequests {
                message,
                action,
                retry_after,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                Some((*retry_after).clamp(1, MAX_RETRY_AFTER)),
                body("RATE_LIMITED", message.clone(), action.clone()),
            ),
            ApiError::Failed(error) => {
                let (status, retry_after) = http_status(error);
                (status, retry_after, ErrorBody::of(error))
            }
        }
    }
}

fn body(code: &'static str, message: String, action: String) -> ErrorBody {
    ErrorBody { code, message, action }
}

/// The one mapping from the crate's errors to HTTP statuses, and the
/// `Retry-After` of the transient ones.
pub fn http_status(error: &Error) -> (StatusCode, Option<u64>) {
    let (status, retry_after) = uncapped(error);
    (status, retry_after.map(|secs| secs.clamp(1, MAX_RETRY_AFTER)))
}

fn uncapped(error: &Error) -> (StatusCode, Option<u64>) {
    match error {
        Error::NotSaved { cause, .. } => uncapped(cause),
        Error::HeldBack { cause, retry_in } => (uncapped(cause).0, Some(retry_in.as_secs_f64().ceil() as u64)),
        Error::InvalidRefreshToken { .. }
        | Error::InvalidCode { .. }
        | Error::InvalidState { .. }
        | Error::InvalidAccessToken { .. } => (StatusCode::BAD_REQUEST, None),
        Error::Config { .. } => (StatusCode::BAD_REQUEST, None),
        // The account is someone else's: the request must say `replace`.
        Error::AccountMismatch { .. } => (StatusCode::CONFLICT, None),
        // The server's own file is broken: no request can fix that.
        Error::CorruptStore { .. } => (StatusCode::INTERNAL_SERVER_ERROR, None),
        Error::Network { .. } | Error::Upstream { .. } | Error::RailwayUpdateFailed { .. } | Error::Remote { .. } => {
            (StatusCode::BAD_GATEWAY, None)
        }
        // Withings' own wait, when it gave one, is the client's too.
        Error::RateLimited { wait: Some(wait), .. } => (StatusCode::SERVICE_UNAVAILABLE, Some(wait.as_secs())),
        Error::RateLimited { .. }
        | Error::LockTimeout { .. }
        | Error::StoreUnavailable { .. }
        | Error::AnswerDropped { .. }
        | Error::Interrupted { .. } => (StatusCode::SERVICE_UNAVAILABLE, Some(RETRY_AFTER_SECS)),
        // `exec` and `login` are CLI-only: a server never meets these.
        Error::EnvFileUpdateFailed { .. }
        | Error::OutputFailed { .. }
        | Error::CommandNotStarted { .. }
        | Error::LoginTimeout { .. }
        | Error::InvalidLoginState { .. }
        | Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, retry_after, error) = self.parts();
        let mut response = (status, Json(ErrorReport { error })).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"withings-token\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(error: Error) -> (u16, Option<u64>) {
        let (status, retry) = http_status(&error);
        (status.as_u16(), retry)
    }

    #[test]
    fn refused_grants_and_bad_input_are_400() {
        for e in [
            Error::InvalidRefreshToken { detail: "d".into() },
            Error::InvalidCode { detail: "d".into() },
            Error::InvalidState { detail: "d".into() },
            Error::config("m", "a"),
        ] {
            assert_eq!(status_of(e), (400, None));
        }
    }

    #[test]
    fn upstream_failures_are_502_and_waits_are_503_with_retry_after() {
        let network = Error::Network {
            what: "Withings",
            attempts: 4,
            detail: "d".into(),
        };
        let upstream = Error::Upstream {
            what: "Withings",
            attempts: 4,
            detail: "d".into(),
        };
        assert_eq!(status_of(network), (502, None));
        assert_eq!(status_of(upstream), (502, None));
        let limited = Error::RateLimited {
            what: "Withings",
            detail: "d".into(),
            wait: None,
        };
        let lock = Error::LockTimeout {
            place: "p".into(),
            waited: std::time::Duration::from_secs(60),
        };
        assert_eq!(status_of(limited), (503, Some(RETRY_AFTER_SECS)));
        let limited_for = Error::RateLimited {
            what: "Withings",
            detail: "d".into(),
            wait: Some(std::time::Duration::from_secs(120)),
        };
        assert_eq!(status_of(limited_for), (503, Some(120)));
        let limited_for_years = Error::RateLimited {
            what: "Withings",
            detail: "d".into(),
            wait: Some(std::time::Duration::from_secs(1_000_000_000_000)),
        };
        assert_eq!(status_of(limited_for_years), (503, Some(MAX_RETRY_AFTER)));
        assert_eq!(status_of(lock), (503, Some(RETRY_AFTER_SECS)));
    }

    #[test]
    fn a_held_back_refresh_has_its_cause_s_status_and_the_rest_of_the_backoff() {
        let held = |cause: Error, millis: u64| Error::HeldBack {
            cause: Box::new(cause),
            retry_in: std::time::Duration::from_millis(millis),
        };
        let upstream = Error::Upstream {
            what: "Withings",
            attempts: 1,
            detail: "d".into(),
        };
        assert_eq!(status_of(held(upstream.clone(), 6_200)), (502, Some(7)));
        assert_eq!(status_of(held(upstream, 10)), (502, Some(1)));
        let limited = Error::RateLimited {
            what: "Withings",
            detail: "d".into(),
            wait: Some(std::time::Duration::from_secs(1_000_000_000_000)),
        };
        assert_eq!(status_of(held(limited, 7_200_000)), (503, Some(MAX_RETRY_AFTER)));
    }

    #[test]
    fn a_corrupt_store_and_a_bug_are_500() {
        let corrupt = Error::CorruptStore {
            place: "p".into(),
            reason: "r".into(),
        };
        assert_eq!(status_of(corrupt), (500, None));
        assert_eq!(status_of(Error::internal(anyhow::anyhow!("x"))), (500, None));
    }

    #[test]
    fn every_answer_is_the_error_object_with_its_headers() {
        let response = ApiError::Failed(Error::LockTimeout {
            place: "p".into(),
            waited: std::time::Duration::from_secs(1),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let response = ApiError::Unauthorized {
            message: "m".into(),
            action: "a".into(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let (_, _, body) = ApiError::Forbidden.parts();
        assert_eq!(body.code, "FORBIDDEN");
    }

    #[test]
    fn a_spent_budget_is_429_with_its_retry_after_and_the_error_object() {
        let over = |retry_after| ApiError::TooManyRequests {
            message: "m".into(),
            action: "a".into(),
            retry_after,
        };
        let response = over(30).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let (_, retry_after, body) = over(0).parts();
        assert_eq!(
            (retry_after, body.code, body.message, body.action),
            (Some(1), "RATE_LIMITED", "m".into(), "a".into())
        );
        assert_eq!(over(1_000_000).parts().1, Some(MAX_RETRY_AFTER));
    }
}
