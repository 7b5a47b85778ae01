//! Re-consent with one tap, hosted by `serve`: `GET /auth/start` sends a
//! browser to Withings' consent page for one account, and the callback
//! (`GET /auth/callback`, and the path of WITHINGS_REDIRECT_URI) trades
//! the code it brings back at once, through the account's job queue as the
//! admin exchange does (so it waits for a refresh in flight, never races
//! it), and pushes the copies.
//!
//! `/auth/start` opens for a one-time link (`events::link`: signed for one
//! account, working for an hour, and once: its nonce is marked used in the
//! account's event record when its consent is saved, so a link preview
//! that fetched it first does not use it up) or for the admin token.
//! The state it issues names the account (`alice.<32 hex>`), so the
//! callback knows whose consent came back; the exchange still checks it
//! against the one kept in that account's store, so a state of another
//! account, a forged one or a stale one is refused before anything is
//! sent. Every answer is a page (`consent::page`) or a redirect, never
//! JSON, never a token or a code.

mod pages;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::accounts::AccountName;
use crate::consent::page::{Page, SAFE_HEADERS};
use crate::consent::{AuthUrlRequest, RedirectState, Replace, parse_code_or_url};
use crate::copies::Choices;
use crate::error::Error;
use crate::events::link::{self, Claim, Refusal};
use crate::settings::Settings;

use super::AppState;
use super::accounts::Account;
use super::auth::{ADMIN_HEADER, Credentials};
use super::jobs;

/// Where Withings sends the browser back when WITHINGS_REDIRECT_URI names
/// no other path.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// The paths of `serve`'s other endpoints: the callback is never put there.
const ENDPOINTS: [&str; 4] = ["/health", "/metrics", "/v1/access-token", link::START_PATH];

type Shared = State<Arc<AppState>>;

/// `/auth/start`, and the callback at [`CALLBACK_PATH`] and at the path of
/// WITHINGS_REDIRECT_URI (see [`registered_path`]).
pub fn routes(settings: &Settings) -> Router<Arc<AppState>> {
    let router = Router::new()
        .route(link::START_PATH, get(start).head(looked_at))
        .route(CALLBACK_PATH, get(callback).head(looked_at));
    match registered_path(settings.redirect_uri.as_deref()) {
        Some(path) => router.route(&path, get(callback).head(looked_at)),
        None => router,
    }
}

/// A `HEAD` (a link checker, a chat's preview) spends no link and no
/// code: only a `GET` does.
async fn looked_at() -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
    (StatusCode::OK, content_type, SAFE_HEADERS).into_response()
}

/// The path of WITHINGS_REDIRECT_URI when the callback must be answered
/// there too: another path than [`CALLBACK_PATH`], and one no endpoint
/// has and axum can route as written (a clash would stop the server at
/// start; it is said instead).
fn registered_path(redirect_uri: Option<&str>) -> Option<String> {
    let url = url::Url::parse(redirect_uri?).ok()?;
    let path = url.path();
    if path == CALLBACK_PATH {
        return None;
    }
    let taken = ENDPOINTS.contains(&path) || path == "/admin" || path.starts_with("/admin/");
    // axum reads `{name}` as a capture and refuses a segment starting with
    // `:` or `*` (the old capture syntax).
    let unroutable = path.contains(['{', '}']) || path.split('/').any(|s| s.starts_with([':', '*']));
    if taken || unroutable {
        tracing::warn!(
            "the path of WITHINGS_REDIRECT_URI ({path}) cannot be the consent callback of `serve` (another endpoint has it, or it cannot be routed as written); the callback is answered at {CALLBACK_PATH} only: register a redirect URI with that path to use one-tap re-consent"
        );
        return None;
    }
    Some(path.to_owned())
}

#[derive(Debug, Default, Deserialize)]
struct StartQuery {
    account: Option<String>,
    expires: Option<String>,
    nonce: Option<String>,
    sig: Option<String>,
}

/// Who opened `/auth/start`.
#[derive(Debug)]
enum Opener {
    /// A one-time link, verified, not yet marked used.
    Link(Claim),
    /// The admin token, for the account named.
    Admin(String),
}

impl Opener {
    fn account(&self) -> &str {
        match self {
            Opener::Link(claim) => claim.account.as_str(),
            Opener::Admin(name) => name,
        }
    }

    /// For the log.
    fn describe(&self) -> &'static str {
        match self {
            Opener::Link(_) => "a one-time link",
            Opener::Admin(_) => "the admin token",
        }
    }
}

/// `GET /auth/start`: a redirect to Withings' consent page for the
/// account, or a page saying why not (nothing started).
async fn start(State(state): Shared, headers: HeaderMap, query: Result<Query<StartQuery>, QueryRejection>) -> Response {
    match consent_url(&state, &headers, query).await {
        Ok(url) => redirect_to(&url),
        Err(page) => refused("/auth/start", page).into_response(),
    }
}

async fn consent_url(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    query: Result<Query<StartQuery>, QueryRejection>,
) -> Result<String, Page> {
    let Query(query) = query.map_err(|_| pages::malformed())?;
    let now = crate::tokens::now();
    let opener = open(&state.credentials, headers, &query, now)?;
    let account = state
        .accounts
        .find(Some(opener.account()), &|_| true)
        .await
        .map_err(|_| pages::no_such_account(opener.account()))?;
    configured_for_consent(&account)?;
    let claim = match &opener {
        Opener::Link(claim) => {
            refuse_used_link(&account, claim, now).await?;
            if let Some(url) = consent_under_way(&account, claim).await {
                return Ok(url);
            }
            Some(claim)
        }
        Opener::Admin(_) => None,
    };
    let request = AuthUrlRequest {
        state: Some(new_state(&account.name, claim)?),
        demo_account: false,
    };
    let report = jobs::authorization_url(state, &account, request)
        .await
        .map_err(|e| pages::not_started(&account.name, &e))?;
    tracing::info!(
        "{}new consent started at {} (by {})",
        account.said(),
        link::START_PATH,
        opener.describe()
    );
    Ok(report.authorization_url)
}

/// The settings a consent URL needs (`consent::issue` would fail without).
fn configured_for_consent(account: &Account) -> Result<(), Page> {
    let settings = &account.settings;
    for needed in [settings.client_id("auth-url"), settings.redirect_uri("auth-url")] {
        needed.map_err(|e| pages::not_started(&account.name, &e))?;
    }
    settings
        .authorize_url()
        .map(|_| ())
        .map_err(|e| pages::not_started(&account.name, &e))
}

/// A one-time link when the query carries any of its parts (all must
/// verify), else the admin token in `X-Admin-Token`.
fn open(
    credentials: &Credentials,
    headers: &HeaderMap,
    query: &StartQuery,
    now: DateTime<Utc>,
) -> Result<Opener, Page> {
    let account = query.account.as_deref().ok_or_else(pages::no_account_named)?;
    let parts = [&query.expires, &query.nonce, &query.sig];
    if parts.iter().any(|part| part.is_some()) {
        let [Some(expires), Some(nonce), Some(sig)] = parts.map(Option::as_deref) else {
            return Err(pages::link_invalid());
        };
        return match link::verify(&credentials.admin, account, expires, nonce, sig, now) {
            Ok(claim) => Ok(Opener::Link(claim)),
            Err(Refusal::Invalid) => Err(pages::link_invalid()),
            Err(Refusal::Expired { at }) => Err(pages::link_expired(account, at)),
        };
    }
    if headers.contains_key(ADMIN_HEADER) && credentials.admit_admin(headers).is_ok() {
        return Ok(Opener::Admin(account.to_owned()));
    }
    Err(pages::link_needed())
}

/// Refuses a link whose consent already came back (its nonce is marked
/// used in the account's event record, by this server or another sharing
/// the store). A link is spent only when its consent is saved, not when it
/// is opened: a chat's link preview or a mail scanner fetches it first,
/// and must not use up the person's one tap.
async fn refuse_used_link(account: &Account, claim: &Claim, now: DateTime<Utc>) -> Result<(), Page> {
    let record = crate::notify::load_record_strictly(account.store.as_ref())
        .await
        .map_err(|e| pages::not_started(&account.name, &e))?;
    let used = record
        .used_links
        .iter()
        .any(|l| l.nonce == claim.nonce && l.expires_at > now);
    if used {
        return Err(pages::link_used(&account.name));
    }
    Ok(())
}

/// The consent URL of a consent this link started already, when its state
/// is still the one kept: a second tap, another browser or a scanner that
/// opened the link first then continue that consent instead of replacing
/// its state (which would fail the first one's callback), and opening the
/// link again writes nothing.
async fn consent_under_way(account: &Account, claim: &Claim) -> Option<String> {
    let state = account.store.load().await.ok()?.pending_auth?.state;
    let (nonce, _) = link_of_state(&state)?;
    if nonce != claim.nonce {
        return None;
    }
    let settings = &account.settings;
    let url = crate::consent::authorization_url(
        settings.authorize_url().ok()?,
        settings.client_id("auth-url").ok()?,
        &settings.scope,
        settings.redirect_uri("auth-url").ok()?,
        &state,
        false,
    );
    Some(url.to_string())
}

/// Marks the link of a consent just saved used, so it never opens again.
async fn spend_link(account: &Account, nonce: &str, expires_at: DateTime<Utc>) {
    let now = crate::tokens::now();
    let spent = crate::notify::swap_record(account.store.as_ref(), |record| {
        record.use_link(nonce, expires_at, now);
    })
    .await;
    if let Err(e) = spent {
        tracing::warn!(
            "{}the one-time link could not be marked used [{}]: {e}",
            account.said(),
            e.code()
        );
    }
}

/// A fresh state that names its account: `alice.<32 hex>` (an account
/// name has no `.`), and for a link's consent the link's nonce and expiry
/// after it (`alice.<32 hex>.<nonce>.<unix time>`), so that the callback
/// spends the link once the consent is saved. The exchange checks the
/// whole state against the one kept in the account's store, so none of it
/// can be made up.
fn new_state(account: &AccountName, link: Option<&Claim>) -> Result<String, Page> {
    let random = crate::fsutil::random_hex(16).map_err(|e| pages::not_started(account, &Error::internal(e)))?;
    Ok(match link {
        Some(claim) => format!("{account}.{random}.{}.{}", claim.nonce, claim.expires_at.timestamp()),
        None => format!("{account}.{random}"),
    })
}

/// The link a state carries (see [`new_state`]): its nonce and expiry.
fn link_of_state(state: &str) -> Option<(&str, DateTime<Utc>)> {
    let mut parts = state.split('.').skip(2);
    let nonce = parts.next()?;
    let expires = parts.next()?.parse::<i64>().ok()?;
    Some((nonce, DateTime::<Utc>::from_timestamp(expires, 0)?))
}

/// The account a state names (see [`new_state`]): only a hint of whose
/// store to check it against.
fn account_of_state(state: &str) -> Option<&str> {
    state.split_once('.').map(|(account, _)| account)
}

/// The answer that sends the browser on, with the pages' headers.
fn redirect_to(url: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, url)], SAFE_HEADERS).into_response()
}

/// `GET /auth/callback`: the code exchanged and a page naming the account
/// now connected, or a page saying why not.
async fn callback(State(state): Shared, RawQuery(query): RawQuery) -> Page {
    match connect(&state, query.as_deref().unwrap_or_default()).await {
        Ok(page) => page,
        Err(page) => refused(CALLBACK_PATH, page),
    }
}

async fn connect(state: &Arc<AppState>, query: &str) -> Result<Page, Page> {
    if let Some((error, description)) = withings_error(query) {
        return Err(pages::declined(&error, description.as_deref()));
    }
    // Parsed as a pasted redirect's query is: one code, one state, no
    // repeats; no URL to compare, since the browser came to this route.
    let redirect = parse_code_or_url(&format!("?{query}")).map_err(|e| pages::not_a_redirect(&e))?;
    let RedirectState::Given(given) = &redirect.state else {
        return Err(pages::unknown_state());
    };
    let name = account_of_state(given).ok_or_else(pages::unknown_state)?;
    let account = state
        .accounts
        .find(Some(name), &|_| true)
        .await
        .map_err(|_| pages::unknown_state())?;
    let code = redirect.code.clone();
    let link = link_of_state(given).map(|(nonce, expires)| (nonce.to_owned(), expires));
    match jobs::exchange(state, &account, redirect, Choices::default(), Replace::Refuse).await {
        Ok(report) => {
            if let Some((nonce, expires_at)) = link {
                spend_link(&account, &nonce, expires_at).await;
            }
            Ok(pages::connected(&account.name, &report))
        }
        Err(e) => Err(pages::not_connected(&account.name, &e, &code)),
    }
}

/// Withings' `error` and `error_description` (the first of each), when the
/// consent was not given.
fn withings_error(query: &str) -> Option<(String, Option<String>)> {
    let (mut error, mut description) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "error" => error = error.or(Some(value.into_owned())),
            "error_description" => description = description.or(Some(value.into_owned())),
            _ => {}
        }
    }
    error.map(|error| (error, description))
}

/// A refusal, said in the log (its title, as a person saw it).
fn refused(path: &str, page: Page) -> Page {
    tracing::warn!(
        "{path}: refused with HTTP {} ({})",
        page.status().as_u16(),
        crate::redact::clip(page.title())
    );
    page
}
