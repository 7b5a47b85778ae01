//! `ANY /v1/withings/{path}`: a consumer calls Withings' data API through
//! `serve` and never holds a token. The credential and the account are
//! checked as the broker checks them (`api::readable_account`), the token
//! is the broker's (refreshed first, single flight, when it lives less
//! than the broker's default `min_ttl`), and the call itself is the core's
//! (`withings::proxy`). Not yet: a retry after an invalid-token answer,
//! the shared budget, usage counters.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use crate::copies::Choices;
use crate::error::Error;
use crate::rotation::no_tokens_error_for;
use crate::withings::proxy::{self, ACCOUNT_HEADER, ACCOUNT_PARAM, Call, ProxyFailure};

use super::AppState;
use super::accounts::Account;
use super::api::{DEFAULT_MIN_TTL, readable_account};
use super::errors::ApiError;
use super::jobs::{self, Trigger};
use super::view::Bearer;

/// The route's prefix, before the Withings path.
const PREFIX: &str = "/v1/withings/";
/// The largest request body forwarded: Withings' requests are forms of a
/// few hundred bytes.
const MAX_REQUEST: usize = 1024 * 1024;
const ROUTE: &str = "/v1/withings";

pub async fn withings(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match proxied(&state, request).await {
        Ok(response) => response,
        Err(refused) => refused.into_response(),
    }
}

async fn proxied(state: &Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let caller = state.credentials.admit_reader(request.headers())?;
    let named = account_named(request.uri(), request.headers())?;
    let account = readable_account(state, caller, named.as_deref(), ROUTE).await?;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST).await.map_err(|_| too_large())?;
    let token = fresh_bearer(state, &account).await?;
    let call = Call {
        method: parts.method,
        path: parts.uri.path().strip_prefix(PREFIX).unwrap_or_default().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let api_url = state.settings.api_url()?;
    let answer = proxy::send(&state.http, api_url, call, &token, state.proxy)
        .await
        .map_err(|failure| failed(&account, failure))?;
    let mut response = Response::new(Body::new(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    Ok(response)
}

/// `?account=NAME` or `Withings-Account: NAME` (none: the only account the
/// caller may read); both, naming two accounts, is a mistake said back.
fn account_named(uri: &Uri, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let in_query = uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == ACCOUNT_PARAM)
            .map(|(_, value)| value.into_owned())
    });
    let in_header = match headers.get(ACCOUNT_HEADER) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_request("Withings-Account: not an account name"))?
                .to_owned(),
        ),
        None => None,
    };
    match (in_query, in_header) {
        (Some(query), Some(header)) if query != header => Err(ApiError::bad_request(format!(
            "?account={query} and Withings-Account: {header} name two accounts: name one"
        ))),
        (query, header) => Ok(query.or(header)),
    }
}

/// The account's access token when it lives the broker's default
/// `min_ttl` more; else the one of the refresh job the broker's requests
/// share (one upstream call for every request that waits on it).
async fn fresh_bearer(state: &Arc<AppState>, account: &Arc<Account>) -> Result<SecretString, ApiError> {
    let snapshot = account.view.snapshot(&account.settings).await?;
    let (bearer, in_force) = snapshot.bearer(&account.settings, DEFAULT_MIN_TTL);
    account.view.say_capped(&in_force);
    let want = match bearer {
        Bearer::Send(token) => return Ok(token),
        Bearer::NoTokens => return Err(no_tokens_error_for(&snapshot.state).into()),
        Bearer::Refresh(want) => want,
    };
    // Not held through the refresh: it reads the store itself.
    drop(snapshot);
    let done = jobs::refresh(state, account, Trigger::Broker, want, Choices::default()).await?;
    done.tokens
        .access_token
        .ok_or_else(|| Error::internal(anyhow::anyhow!("the refresh gave no access token")).into())
}

fn too_large() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "PAYLOAD_TOO_LARGE",
        message: format!("the request body may hold at most {MAX_REQUEST} bytes"),
    }
}

/// The proxy's own error object for a call that brought no answer back,
/// logged (the detail names no token: see `withings::proxy`).
fn failed(account: &Account, failure: ProxyFailure) -> ApiError {
    let refused = |status, code, message: String, action: &str| ApiError::Refused {
        status,
        code,
        message,
        action: action.to_owned(),
    };
    match failure {
        ProxyFailure::BadPath(message) => ApiError::bad_request(message),
        ProxyFailure::Timeout(detail) => {
            tracing::warn!("{}the proxied call to Withings timed out: {detail}", account.said());
            refused(
                StatusCode::GATEWAY_TIMEOUT,
                "UPSTREAM_TIMEOUT",
                format!("Withings gave {detail}; it may or may not have carried the call out"),
                "try again later; a write (subscribe, revoke) may have been done: check before repeating it",
            )
        }
        ProxyFailure::Unreachable(detail) => {
            tracing::warn!("{}the proxied call to Withings failed: {detail}", account.said());
            ApiError::Failed(Error::Network {
                what: "Withings",
                attempts: 1,
                detail,
            })
        }
        ProxyFailure::TooLarge(cap) => {
            tracing::warn!("{}a proxied answer was over the cap of {cap} bytes", account.said());
            refused(
                StatusCode::BAD_GATEWAY,
                "ANSWER_TOO_LARGE",
                format!("Withings' answer is larger than the proxy's cap of {cap} bytes; nothing of it was passed on"),
                "ask for less (a shorter date range, fewer types), or raise `serve --proxy-max-bytes`",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_account_comes_from_the_query_or_the_header() {
        let uri: Uri = "/v1/withings/measure?action=getmeas&account=alice".parse().unwrap();
        assert_eq!(account_named(&uri, &headers(&[])).unwrap().as_deref(), Some("alice"));
        let bare: Uri = "/v1/withings/measure".parse().unwrap();
        let by_header = headers(&[("Withings-Account", "bob")]);
        assert_eq!(account_named(&bare, &by_header).unwrap().as_deref(), Some("bob"));
        assert_eq!(account_named(&bare, &headers(&[])).unwrap(), None);
        let same = headers(&[("Withings-Account", "alice")]);
        assert_eq!(account_named(&uri, &same).unwrap().as_deref(), Some("alice"));
        assert!(account_named(&uri, &by_header).is_err());
    }
}
