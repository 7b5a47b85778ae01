//! The routes of `serve` and their handlers. Handlers parse, check the
//! credential, find the account (`?account=NAME`; none named: the only
//! one) and call `jobs`; every failure answers with the JSON error object
//! (`errors`). Request bodies are small JSON objects, capped at
//! [`MAX_BODY`]; an empty body means the defaults.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::accounts::AccountName;
use crate::consent::{AuthUrlRequest, Redirect, RedirectState, parse_code_or_url};
use crate::copies::Choices;
use crate::error::Error;
use crate::output::{AuthUrlReport, ErrorBody, TokenReport, UsageReport};
use crate::rotation::no_tokens_error_for;
use crate::validation::{self, Checked, Recheck, Refreshed};

use super::AppState;
use super::accounts::{Account, AccountRow, AccountsReport, in_order};
use super::auth::Caller;
use super::errors::ApiError;
use super::exposition::Exposition;
use super::jobs::{self, Trigger, Want};
use super::metrics::{BrokerResult, Scraped};
use super::view::{Broker, access_token_body};

/// The largest request body: the bodies here are a few dozen bytes.
pub const MAX_BODY: usize = 4 * 1024;
/// `min_ttl` when the consumer names none.
pub(super) const DEFAULT_MIN_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Withings' access tokens live 3 h: a `min_ttl` longer than a fresh token
/// lives would refresh on every request, so it is bounded well below that.
const MAX_MIN_TTL: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    let admin = Router::new()
        .route("/admin/token/status", get(token_status))
        .route("/admin/token/refresh", post(refresh))
        .route("/admin/authorization-url", get(authorization_url))
        .route("/admin/token/exchange", post(exchange))
        .route("/admin/token/validate", get(validate))
        .route("/admin/accounts", get(accounts))
        .route("/admin/usage", get(usage))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_admin));
    Router::new()
        .route("/admin/health", get(health))
        .route("/health", get(health))
        .route("/v1/access-token", get(access_token))
        .route("/v1/withings/{*path}", any(super::proxy::withings))
        .route("/metrics", get(metrics))
        .merge(admin)
        .merge(super::reconsent::routes(&state.settings))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn require_admin(State(state): Shared, request: Request, next: Next) -> Response {
    match state.credentials.admit_admin(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
    token_configured: bool,
}

#[derive(Serialize)]
struct Unhealthy {
    status: &'static str,
    error: ErrorBody,
}

/// No credential: platforms probe it. 503 when no account's store can be
/// read (one account's broken store must not make the platform restart
/// the service of every other: `/admin/accounts` names it);
/// `token_configured`: some account holds a set (or the environment one).
async fn health(State(state): Shared) -> Response {
    match token_configured(&state).await {
        Ok(configured) => Json(Health {
            status: "ok",
            service: "withings-token",
            version: env!("CARGO_PKG_VERSION"),
            token_configured: configured || state.settings.seed_tokens.is_some(),
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Unhealthy {
                status: "unavailable",
                error: ErrorBody::of(&e),
            }),
        )
            .into_response(),
    }
}

async fn token_configured(state: &AppState) -> crate::error::Result<bool> {
    let (mut read, mut failure) = (false, None);
    for account in state.accounts.all().values() {
        match account.view.snapshot(&account.settings).await {
            Ok(view) if view.state.tokens.is_some() => return Ok(true),
            Ok(_) => read = true,
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match failure {
        Some(e) if !read => Err(e),
        _ => Ok(false),
    }
}

/// `?account=NAME` on every endpoint that acts on one account.
#[derive(Debug, Default, Deserialize)]
struct AccountQuery {
    account: Option<String>,
}

/// The account an admin request names (none: the only one).
async fn admin_account(
    state: &AppState,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Arc<Account>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    state.accounts.find(query.account.as_deref(), &|_| true).await
}

/// The contract's `status --json` of one account (see `view`: rendered
/// once per second of an unchanged store).
async fn token_status(
    State(state): Shared,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let account = admin_account(&state, query).await?;
    let snapshot = account.view.snapshot(&account.settings).await?;
    // An unreadable event record costs the alert, not the whole status.
    let events = account.view.event_record().await.unwrap_or_else(|e| {
        tracing::warn!("{}the event record cannot be read [{}]: {e}", account.said(), e.code());
        Default::default()
    });
    let body = snapshot.status_body(&account.settings, &account.location, &events)?;
    Ok(json_response(body))
}

/// `GET /admin/accounts`: the accounts as the store lists them now, and
/// the state of each one's set.
async fn accounts(State(state): Shared) -> Result<Json<AccountsReport>, ApiError> {
    let accounts = state.accounts.list(false).await?;
    let mut rows = Vec::with_capacity(accounts.len());
    for account in in_order(&accounts) {
        rows.push(AccountRow::of(account).await);
    }
    Ok(Json(AccountsReport {
        version: 1,
        accounts: rows,
    }))
}

/// `GET /admin/usage`: the Withings proxy's calls of the last hour and
/// day, per reader and account (`?account=NAME`: that account's only).
async fn usage(
    State(state): Shared,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Json<UsageReport>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let account = match query.account {
        Some(name) => Some(state.accounts.find(Some(&name), &|_| true).await?.name.clone()),
        None => None,
    };
    Ok(Json(state.usage.report(crate::clock::now(), account.as_ref())))
}

/// A JSON body already rendered, with the header `Json` would give it.
fn json_response(body: Bytes) -> Response {
    let json = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, json)], body).into_response()
}

/// `POST /admin/token/refresh`: the MCP service's body, both keys optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    #[serde(default = "yes")]
    update_railway: bool,
    #[serde(default)]
    trigger_deployment: bool,
}

fn yes() -> bool {
    true
}

async fn refresh(
    State(state): Shared,
    query: Result<Query<AccountQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenReport>, ApiError> {
    let body: RefreshBody = parse_body(body)?;
    let delivery = delivery(body.update_railway, body.trigger_deployment)?;
    let account = admin_account(&state, query).await?;
    let done = jobs::refresh(&state, &account, Trigger::Admin, Want::Rotate, delivery).await?;
    Ok(Json(done.report))
}

/// The copies the API's two switches ask for.
fn delivery(update_railway: bool, trigger_deployment: bool) -> Result<Choices, ApiError> {
    if trigger_deployment && !update_railway {
        return Err(ApiError::bad_request(
            "trigger_deployment needs update_railway: a redeploy without new variables changes nothing",
        ));
    }
    Ok(Choices {
        env_file: true,
        railway: update_railway,
        deploy: trigger_deployment,
    })
}

/// `GET /admin/authorization-url`: `?account=NAME` of an account the store
/// does not hold yet creates it (its consent gives it its first set).
async fn authorization_url(
    State(state): Shared,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Json<AuthUrlReport>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let account = state.accounts.find_or_create(query.account.as_deref()).await?;
    Ok(Json(
        jobs::authorization_url(&state, &account, AuthUrlRequest::default()).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
struct ExchangeQuery {
    code: Option<String>,
    state: Option<String>,
    account: Option<String>,
}

/// `POST /admin/token/exchange` with a JSON body instead of the query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeBody {
    code: Option<String>,
    state: Option<String>,
    #[serde(default = "yes")]
    update_railway: bool,
    #[serde(default)]
    trigger_deployment: bool,
    /// Save the set even when it is another Withings user's than the
    /// account holds, or one another account holds (`exchange --replace`).
    #[serde(default)]
    replace: bool,
}

async fn exchange(
    State(state): Shared,
    query: Result<Query<ExchangeQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenReport>, ApiError> {
    let Query(mut query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body: ExchangeBody = parse_body(body)?;
    let named = query.account.take();
    let redirect = redirect_of(query, &body)?;
    let delivery = delivery(body.update_railway, body.trigger_deployment)?;
    let account = state.accounts.find_or_create(named.as_deref()).await?;
    let replace = crate::consent::Replace::when(body.replace);
    Ok(Json(
        jobs::exchange(&state, &account, redirect, delivery, replace).await?,
    ))
}

/// The code (bare, or a whole redirect URL) from the query, else the body;
/// a `state` given beside it is checked as a redirect URL's would be.
fn redirect_of(query: ExchangeQuery, body: &ExchangeBody) -> Result<Redirect, ApiError> {
    let code = query.code.or_else(|| body.code.clone()).ok_or_else(|| {
        ApiError::bad_request(
            "no code: pass `?code=CODE`, or a JSON body {\"code\": \"...\"} (the redirect URL works too)",
        )
    })?;
    let mut redirect = parse_code_or_url(&code)?;
    if let Some(given) = query.state.or_else(|| body.state.clone()) {
        match &redirect.state {
            RedirectState::Given(in_url) if *in_url != given => {
                return Err(Error::InvalidState {
                    detail: "the state given differs from the one in the redirect URL; nothing was sent".into(),
                }
                .into());
            }
            _ => redirect.state = RedirectState::Given(given),
        }
    }
    Ok(redirect)
}

#[derive(Debug, Default, Deserialize)]
struct ValidateQuery {
    #[serde(default)]
    refresh_if_invalid: bool,
    account: Option<String>,
}

/// `GET /admin/token/validate`: the body is always the validation report,
/// whose `error` key is the contract's error object when the token is not
/// valid; the HTTP status is that error's (400 invalid, 502/503 unknown).
async fn validate(
    State(state): Shared,
    query: Result<Query<ValidateQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let account = state.accounts.find(query.account.as_deref(), &|_| true).await?;
    let stored = account.store.load().await?;
    let tokens = validation::tokens_in_use(&account.settings, &stored)?;
    let refresh = query.refresh_if_invalid.then_some(async || {
        let done = jobs::refresh(&state, &account, Trigger::Admin, Want::Rotate, Choices::default()).await?;
        let newest = Some(done.tokens);
        Ok(ControlFlow::<Infallible, _>::Continue(Refreshed {
            report: done.report,
            newest,
        }))
    });
    let generation = stored.tokens_generation;
    let validated = validation::validate(&state.withings, &tokens, generation, refresh, Recheck::Newest).await?;
    let ControlFlow::Continue(Checked { report, result }) = validated;
    let (status, retry_after) = match &result {
        Ok(()) => (StatusCode::OK, None),
        Err(error) => super::errors::http_status(error),
    };
    let mut response = (status, Json(report)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
struct BrokerQuery {
    min_ttl: Option<String>,
    account: Option<String>,
}

/// `GET /metrics`: open unless `--metrics-auth` (then the admin token);
/// OpenMetrics when `Accept` asks for it, else the classic text format.
async fn metrics(State(state): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    if state.metrics_auth {
        state.credentials.admit_admin(&headers)?;
    }
    // An unreadable store leaves its gauges as they were: a scrape that
    // fails would hide the counters that say why.
    let accounts = state.accounts.all();
    let mut read = Vec::with_capacity(accounts.len());
    for account in accounts.values() {
        let snapshot = account.view.snapshot(&account.settings).await.ok();
        let events = account.view.event_record().await.ok();
        read.push((&account.name, snapshot, events));
    }
    let scraped = read.iter().map(|(name, snapshot, events)| Scraped {
        name,
        state: snapshot.as_ref().map(|s| &s.state),
        needs_reauthorization: events.as_ref().map(|events| {
            let generation = snapshot.as_ref().map_or(0, |s| s.state.tokens_generation);
            crate::report::alert_of(&events.health, generation).state == crate::output::AlertState::NeedsReauthorization
        }),
    });
    let accept = headers.get(header::ACCEPT).and_then(|accept| accept.to_str().ok());
    let format = Exposition::negotiate(accept);
    let text = state.metrics.render(format, scraped)?;
    // One URL, two formats: a cache in front must key on `Accept`.
    let headers = [(header::CONTENT_TYPE, format.content_type()), (header::VARY, "accept")];
    Ok((headers, text).into_response())
}

/// `GET /v1/access-token`: a token that lives at least `min_ttl` more,
/// refreshed first (single flight) when the stored one does not. The whole
/// request is taken, not a copy of its headers.
async fn access_token(State(state): Shared, request: Request) -> Result<Response, ApiError> {
    let answer = broker_answer(&state, request).await;
    let result = match &answer {
        Ok((_, true)) => BrokerResult::Refreshed,
        Ok((_, false)) => BrokerResult::Served,
        Err(_) => BrokerResult::Failed,
    };
    state.metrics.record_broker(result);
    answer.map(|(response, _)| response)
}

/// The broker's answer, and whether a refresh job ran for it.
async fn broker_answer(state: &Arc<AppState>, request: Request) -> Result<(Response, bool), ApiError> {
    let caller = state.credentials.admit_reader(request.headers())?;
    let Query(query) =
        Query::<BrokerQuery>::try_from_uri(request.uri()).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let min_ttl = parse_min_ttl(query.min_ttl.as_deref())?;
    let account = readable_account(state, caller, query.account.as_deref(), "GET /v1/access-token").await?;
    let (body, refreshed) = fresh_token_body(state, &account, min_ttl).await?;
    let mut response = json_response(body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok((response, refreshed))
}

/// The answer for the stored set when it lives `min_ttl` more (no lock, no
/// queue); otherwise for the set of the refresh job, whose waiters all get
/// the one new set. The flag says whether the job ran.
async fn fresh_token_body(
    state: &Arc<AppState>,
    account: &Arc<Account>,
    min_ttl: chrono::Duration,
) -> Result<(Bytes, bool), ApiError> {
    let snapshot = account.view.snapshot(&account.settings).await?;
    let (broker, in_force) = snapshot.broker(&account.settings, min_ttl)?;
    account.view.say_capped(&in_force);
    let want = match broker {
        Broker::Serve(body) => return Ok((body, false)),
        Broker::NoTokens => return Err(no_tokens_error_for(&snapshot.state).into()),
        Broker::Refresh(want) => want,
    };
    // Not held through the refresh: it reads the store itself.
    drop(snapshot);
    let done = jobs::refresh(state, account, Trigger::Broker, want, Choices::default()).await?;
    Ok((access_token_body(&done.tokens)?, true))
}

/// The account a broker request names (none: the only one the caller may
/// read), when the caller may read it. A named reader asking for another
/// account is refused before any lookup, and counted: by reader, and by
/// account when that account exists (never a name only a request said).
pub(super) async fn readable_account(
    state: &AppState,
    caller: Caller<'_>,
    requested: Option<&str>,
    route: &str,
) -> Result<Arc<Account>, ApiError> {
    if let Some(text) = requested {
        let name = AccountName::parse(text).map_err(|e| ApiError::bad_request(format!("account: {e}")))?;
        if !caller.may_read(&name) {
            let existing = state.accounts.all().contains_key(&name).then_some(&name);
            return Err(refuse(state, caller, existing, &name, route));
        }
    }
    let account = state.accounts.find(requested, &|name| caller.may_read(name)).await?;
    if !caller.may_read(&account.name) {
        return Err(refuse(state, caller, Some(&account.name), &account.name, route));
    }
    Ok(account)
}

/// The 403 of a named reader on an account not its own, counted.
fn refuse(
    state: &AppState,
    caller: Caller<'_>,
    existing: Option<&AccountName>,
    asked: &AccountName,
    route: &str,
) -> ApiError {
    let reader = caller.reader_name().unwrap_or_default();
    state.metrics.record_refusal(reader, existing);
    tracing::warn!("the reader {reader} was refused account {asked} ({route})");
    ApiError::Refused {
        status: StatusCode::FORBIDDEN,
        code: "FORBIDDEN",
        message: format!("the reader {reader} may not read account {asked}"),
        action: format!(
            "ask with the token of a reader of {asked}, or add it to `accounts` under [reader.{reader}] in the config file"
        ),
    }
}

/// `min_ttl`: the CLI's duration syntax, default 5m, at most 2h.
fn parse_min_ttl(text: Option<&str>) -> Result<chrono::Duration, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_MIN_TTL);
    };
    let ttl = crate::duration::parse_duration(text).map_err(|why| ApiError::bad_request(format!("min_ttl: {why}")))?;
    if ttl > MAX_MIN_TTL {
        return Err(ApiError::bad_request(
            "min_ttl is too long: at most 2h (a fresh Withings token lives 3h)",
        ));
    }
    chrono::Duration::from_std(ttl).map_err(|_| ApiError::bad_request("min_ttl is too long"))
}

/// A JSON object of the endpoint's keys; an empty body means `{}`.
fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        ApiError::Rejected {
            status,
            code: if status == StatusCode::PAYLOAD_TOO_LARGE {
                "PAYLOAD_TOO_LARGE"
            } else {
                "BAD_REQUEST"
            },
            message: format!("{} (the body may hold at most {MAX_BODY} bytes)", rejection.body_text()),
        }
    })?;
    let json: &[u8] = if bytes.trim_ascii().is_empty() { b"{}" } else { &bytes };
    let not_it = |e: serde_json::Error| {
        ApiError::bad_request(format!("the body is not the JSON object this endpoint takes: {e}"))
    };
    // serde would take `[]` for a struct of defaults: only an object is one.
    match serde_json::from_slice(json).map_err(not_it)? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(not_it),
        _ => Err(ApiError::bad_request(
            "the body must be a JSON object, e.g. {\"update_railway\": true}",
        )),
    }
}

async fn not_found() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::NOT_FOUND,
        code: "NOT_FOUND",
        message: "no such endpoint".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "METHOD_NOT_ALLOWED",
        message: "this endpoint does not take that method".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Result<Bytes, BytesRejection> {
        Ok(Bytes::from(text.to_owned()))
    }

    #[test]
    fn refresh_body_defaults_to_railway_without_deploy() {
        for empty in ["", "  \n", "{}"] {
            let b: RefreshBody = parse_body(body(empty)).unwrap();
            assert!(b.update_railway && !b.trigger_deployment, "{empty:?}");
        }
        let b: RefreshBody = parse_body(body(r#"{"update_railway": false}"#)).unwrap();
        assert!(!b.update_railway);
        let d = delivery(true, true).unwrap();
        assert!(d.railway && d.deploy);
        assert!(!delivery(false, false).unwrap().railway);
    }

    #[test]
    fn malformed_bodies_and_contradictions_are_bad_requests() {
        for bad in [
            "{",
            "[]",
            "null",
            r#"{"update_railways": true}"#,
            r#"{"update_railway": "yes"}"#,
        ] {
            let err = parse_body::<RefreshBody>(body(bad)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ApiError::Rejected {
                        status: StatusCode::BAD_REQUEST,
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(delivery(false, true).is_err());
    }

    fn exchange_body(text: &str) -> ExchangeBody {
        parse_body(body(text)).unwrap()
    }

    #[test]
    fn the_code_comes_from_the_query_or_the_body() {
        let none = exchange_body("");
        let query = ExchangeQuery {
            code: Some("abc".into()),
            ..ExchangeQuery::default()
        };
        let r = redirect_of(query, &none).unwrap();
        assert_eq!((r.code.as_str(), r.state), ("abc", RedirectState::BareCode));
        let b = exchange_body(r#"{"code": "https://example.com/cb?code=c&state=s"}"#);
        let r = redirect_of(ExchangeQuery::default(), &b).unwrap();
        assert_eq!((r.code.as_str(), r.state), ("c", RedirectState::Given("s".into())));
        assert!(redirect_of(ExchangeQuery::default(), &none).is_err());
    }

    #[test]
    fn a_state_given_beside_the_code_is_checked() {
        let b = exchange_body(r#"{"code": "c", "state": "s"}"#);
        let r = redirect_of(ExchangeQuery::default(), &b).unwrap();
        assert_eq!(r.state, RedirectState::Given("s".into()));
        let b = exchange_body(r#"{"code": "https://example.com/cb?code=c&state=s", "state": "other"}"#);
        let err = redirect_of(ExchangeQuery::default(), &b).unwrap_err();
        assert!(matches!(err, ApiError::Failed(Error::InvalidState { .. })));
    }

    #[test]
    fn min_ttl_has_a_default_and_bounds() {
        assert_eq!(parse_min_ttl(None).unwrap(), chrono::Duration::minutes(5));
        assert_eq!(parse_min_ttl(Some("90s")).unwrap(), chrono::Duration::seconds(90));
        assert_eq!(parse_min_ttl(Some("0s")).unwrap(), chrono::Duration::zero());
        assert_eq!(parse_min_ttl(Some("2h")).unwrap(), chrono::Duration::hours(2));
        for bad in ["3h", "1y", "", "-1s", "100000000000000d"] {
            assert!(parse_min_ttl(Some(bad)).is_err(), "{bad}");
        }
    }
}
