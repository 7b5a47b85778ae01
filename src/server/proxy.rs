//! `ANY /v1/withings/{path}`: a consumer calls Withings' data API through
//! `serve` and never holds a token. The credential and the account are
//! checked as the broker checks them (`api::readable_account`), the token
//! is the broker's (refreshed first, single flight, when it lives less
//! than the broker's default `min_ttl`), each call sent takes its units of
//! the budgets first (`shares`), and the call itself is the core's
//! (`withings::proxy`).
//!
//! When Withings refuses the token just sent (`{"status": 401}`), the
//! token is replaced (one refresh however many calls saw the refusal:
//! `Want::Replace` rotates only while the set in use still holds the token
//! refused, judged under the lock, and not when Withings issued that set a
//! moment ago: `tokens::replacing`) and a read is sent once more (unless
//! the set was kept); a write (`subscribe`, `revoke`,
//! …) is never sent twice: its answer comes back with the proxy's own
//! error object beside Withings' (`"proxy": {code, message, action}`).
//! Every call that reached an account is recorded (`usage`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use url::Url;

use crate::copies::Choices;
use crate::error::Error;
use crate::output::ErrorBody;
use crate::rotation::no_tokens_error_for;
use crate::tokens::{self, AccessDigest};
use crate::withings::proxy::{self, ACCOUNT_HEADER, ACCOUNT_PARAM, Answer, Call, ProxyFailure};

use super::AppState;
use super::accounts::Account;
use super::api::{DEFAULT_MIN_TTL, readable_account};
use super::auth::Caller;
use super::errors::ApiError;
use super::jobs::{self, Trigger, Want};
use super::shares;
use super::usage::{self, Outcome, ProxyCall};
use super::view::Bearer;

/// The route's prefix, before the Withings path.
const PREFIX: &str = "/v1/withings/";
/// The largest request body forwarded: Withings' requests are forms of a
/// few hundred bytes.
const MAX_REQUEST: usize = 1024 * 1024;
const ROUTE: &str = "/v1/withings";
/// How long a request body may take to come (at most; `--proxy-timeout`
/// when shorter): a form of a few hundred bytes.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The status audited for a call whose consumer went away (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;
/// The code of the proxy's object on a write it did not send again.
pub const WRITE_NOT_RETRIED: &str = "WRITE_NOT_RETRIED";

pub async fn withings(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match proxied(&state, request).await {
        Ok(response) => response,
        Err(refused) => refused.into_response(),
    }
}

async fn proxied(state: &Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let caller = state.credentials.admit_reader(request.headers())?;
    let named = account_named(request.uri(), request.headers())?;
    let account = readable_account(state, caller, named.as_deref(), ROUTE).await?;
    if !matches!(request.method(), &Method::GET | &Method::POST) {
        return Err(ApiError::Rejected {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: format!("{} is not a method of Withings' API: GET or POST", request.method()),
        });
    }
    let (parts, body) = request.into_parts();
    let body = request_body(&parts.headers, body, state.proxy.timeout.min(BODY_TIMEOUT)).await?;
    let call = Call {
        method: parts.method,
        path: parts.uri.path().strip_prefix(PREFIX).unwrap_or_default().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let mut audit = Audit {
        state,
        started,
        status: None,
        call: ProxyCall {
            reader: caller.label().to_owned(),
            account: account.name.clone(),
            path: call.path.clone(),
            action: call.action(),
            status: 0,
            withings_status: None,
            outcome: Outcome::NotSent,
            upstream: None,
            duration: Duration::ZERO,
            retried: false,
            budget_wait: None,
            refused_by: None,
        },
    };
    let result = forward(state, caller, &account, &call, &mut audit.call).await;
    audit.status = Some(match &result {
        Ok(response) => response.status().as_u16(),
        Err(refused) => refused.status().as_u16(),
    });
    result
}

/// A call's record, recorded (`usage::record`) when it is dropped: when
/// the call ended, or when the consumer went away before its answer and
/// the route's future was dropped mid-call (then `abandoned`, status 499
/// as proxies log it), so that no call that may have reached Withings goes
/// unaudited.
struct Audit<'a> {
    state: &'a AppState,
    started: Instant,
    /// The status answered, once the call ended.
    status: Option<u16>,
    call: ProxyCall,
}

impl Drop for Audit<'_> {
    fn drop(&mut self) {
        self.call.duration = self.started.elapsed();
        self.call.status = self.status.unwrap_or_else(|| {
            self.call.outcome = Outcome::Abandoned;
            CLIENT_CLOSED_REQUEST
        });
        usage::record(self.state, &self.call);
    }
}

/// Sends `call` with the account's token; once more with a new token when
/// Withings refused it and the call only reads.
async fn forward(
    state: &Arc<AppState>,
    caller: Caller<'_>,
    account: &Arc<Account>,
    call: &Call,
    record: &mut ProxyCall,
) -> Result<Response, ApiError> {
    let url = proxy::check_path(state.settings.api_url()?, call).map_err(|failure| failed(account, failure))?;
    let token = fresh_bearer(state, account).await?;
    let answer = send_once(state, caller, account, (call, &url), &token, record).await?;
    if !answer.refused_token() {
        return Ok(passed_on(answer, record));
    }
    let renewed = replaced_bearer(state, account, &token).await;
    if !proxy::is_read(record.action.as_deref()) {
        return Ok(write_not_retried(answer, renewed, record));
    }
    let Some(token) = renewed? else {
        // Not replaced (issued a moment ago): the same token would be
        // refused again.
        return Ok(passed_on(answer, record));
    };
    record.retried = true;
    let answer = send_once(state, caller, account, (call, &url), &token, record).await?;
    Ok(passed_on(answer, record))
}

/// One call sent to Withings (at `url`, `proxy::check_path`'s), its
/// budget taken first; its time and the way it failed go into `record`.
async fn send_once(
    state: &AppState,
    caller: Caller<'_>,
    account: &Account,
    (call, url): (&Call, &Url),
    token: &SecretString,
    record: &mut ProxyCall,
) -> Result<Answer, ApiError> {
    match shares::admit(state, caller).await {
        Ok(waited) => record.budget_wait = sum(record.budget_wait, waited),
        Err(refused) => {
            record.refused_by = refused.refused_by;
            if refused.refused_by.is_some() {
                record.outcome = Outcome::BudgetRefused;
            }
            return Err(refused.error);
        }
    }
    let sent = Instant::now();
    let answer = proxy::send_to(&state.http, url.clone(), call, token, state.proxy).await;
    let upstream = sent.elapsed();
    state.metrics.record_proxy_send(upstream);
    record.upstream = sum(record.upstream, Some(upstream));
    answer.map_err(|failure| {
        record.outcome = match failure {
            ProxyFailure::BadPath(_) => Outcome::NotSent,
            ProxyFailure::Timeout(_) => Outcome::Timeout,
            ProxyFailure::Unreachable(_) | ProxyFailure::Broken(_) => Outcome::Unreachable,
            ProxyFailure::TooLarge(_) => Outcome::TooLarge,
        };
        failed(account, failure)
    })
}

fn sum(total: Option<Duration>, more: Option<Duration>) -> Option<Duration> {
    match (total, more) {
        (Some(total), Some(more)) => Some(total + more),
        (total, more) => total.or(more),
    }
}

/// Withings' answer as it came.
fn passed_on(answer: Answer, record: &mut ProxyCall) -> Response {
    record.withings_status = answer.withings_status;
    record.outcome = Outcome::of_answer(answer.status.as_u16(), answer.withings_status);
    let mut response = Response::new(Body::new(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

/// A write whose token Withings refused: its answer, with the proxy's
/// object saying it was not sent again and whether the token was renewed
/// (`renewed`: the new token, none when the set was kept, or why not). Withings' own members stay as they came, in
/// their order; the proxy's is added last.
fn write_not_retried(
    answer: Answer,
    renewed: Result<Option<SecretString>, ApiError>,
    record: &mut ProxyCall,
) -> Response {
    let Some(whole) = answer.whole.clone() else {
        return passed_on(answer, record);
    };
    let action = record.action.as_deref().unwrap_or("the call");
    let (renewed, next) = match &renewed {
        Ok(Some(_)) => (
            "the account's token was refreshed".to_owned(),
            "send the call again if it should still be made: the next one carries the new token".to_owned(),
        ),
        Ok(None) => (
            format!(
                "the account's token was kept: it was issued less than {} s ago, so the refusal is not about its age",
                tokens::REPLACE_GRACE.num_seconds()
            ),
            "check the app's scopes and the call; `withings-token status` on the server's host shows the set"
                .to_owned(),
        ),
        Err(refused) => {
            let refused = refused.error_body();
            (
                format!(
                    "the token could not be refreshed: {} [{}]",
                    refused.message, refused.code
                ),
                refused.action,
            )
        }
    };
    let said = ErrorBody {
        code: WRITE_NOT_RETRIED,
        message: format!(
            "Withings refused the access token sent with `{action}` (status {}); a call that changes state at Withings is never sent twice by the proxy; {renewed}",
            proxy::INVALID_TOKEN_STATUS
        ),
        action: next,
    };
    let Some(body) = serde_json::to_string(&said)
        .ok()
        .and_then(|said| with_member(&whole, "proxy", &said))
    else {
        return passed_on(answer, record);
    };
    record.withings_status = answer.withings_status;
    record.outcome = Outcome::InvalidToken;
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = answer.headers;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The JSON object `object` with `name: value` (JSON text) added as its
/// last member, the rest byte for byte; `None` when `object` is not a JSON
/// object.
fn with_member(object: &[u8], name: &str, value: &str) -> Option<Bytes> {
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(object).ok()?;
    let text = std::str::from_utf8(object).ok()?.trim_end();
    let open = text.strip_suffix('}')?;
    let separator = if parsed.is_empty() { "" } else { "," };
    let name = serde_json::Value::from(name);
    Some(Bytes::from(format!("{open}{separator}{name}:{value}}}")))
}

/// The consumer's body, whole: refused at once when it says it is larger
/// than [`MAX_REQUEST`], and when it takes longer than `within` to come (a
/// body trickled in would hold the connection for ever).
async fn request_body(headers: &HeaderMap, body: Body, within: Duration) -> Result<Bytes, ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_REQUEST as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(within, axum::body::to_bytes(body, MAX_REQUEST)).await {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(ApiError::Rejected {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "REQUEST_TIMEOUT",
            message: format!(
                "the request body did not come within {}",
                crate::duration::humanize(within)
            ),
        }),
    }
}

/// `?account=NAME` or `Withings-Account: NAME` (none: the only account the
/// caller may read); both, naming two accounts, is a mistake said back.
fn account_named(uri: &Uri, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let named: Vec<String> = uri
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .filter(|(name, _)| name == ACCOUNT_PARAM)
                .map(|(_, value)| value.into_owned())
                .collect()
        })
        .unwrap_or_default();
    if named.len() > 1 || headers.get_all(ACCOUNT_HEADER).iter().count() > 1 {
        return Err(ApiError::bad_request("the account is named more than once: name one"));
    }
    let in_query = named.into_iter().next();
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
    refreshed_bearer(state, account, want).await
}

/// A token in place of `sent`, which Withings refused: one refresh for all
/// the calls that saw it refused (those after the first find the new set);
/// `None` when the set in use was kept (see `tokens::replacing`).
async fn replaced_bearer(
    state: &Arc<AppState>,
    account: &Arc<Account>,
    sent: &SecretString,
) -> Result<Option<SecretString>, ApiError> {
    let sent = AccessDigest::of(sent);
    let token = refreshed_bearer(state, account, Want::Replace { sent }).await?;
    Ok((AccessDigest::of(&token) != sent).then_some(token))
}

async fn refreshed_bearer(state: &Arc<AppState>, account: &Arc<Account>, want: Want) -> Result<SecretString, ApiError> {
    let done = jobs::refresh(state, account, Trigger::Proxy, want, Choices::default()).await?;
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
        ProxyFailure::Broken(detail) => {
            tracing::warn!(
                "{}the proxied call to Withings broke after it was sent: {detail}",
                account.said()
            );
            refused(
                StatusCode::BAD_GATEWAY,
                "UPSTREAM_ERROR",
                format!(
                    "the connection to Withings broke after the call was sent ({detail}); it may or may not have carried the call out"
                ),
                "try again later; a write (subscribe, revoke) may have been done: check before repeating it",
            )
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
    fn a_member_is_added_last_and_the_rest_kept_as_it_came() {
        let value = "{\"code\":\"X\"}";
        let added =
            |text: &str| with_member(text.as_bytes(), "proxy", value).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(
            added("{\"status\":401, \"body\":{}}\n").as_deref(),
            Some("{\"status\":401, \"body\":{},\"proxy\":{\"code\":\"X\"}}")
        );
        assert_eq!(added("{}").as_deref(), Some("{\"proxy\":{\"code\":\"X\"}}"));
        assert_eq!(added("[1]"), None);
        assert_eq!(added("{\"a\":"), None);
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
        let twice: Uri = "/v1/withings/measure?account=alice&account=bob".parse().unwrap();
        assert!(account_named(&twice, &headers(&[])).is_err());
    }
}
