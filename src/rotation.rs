//! The one place a token set changes: take the store lock, reload, decide,
//! mark the request in the journal, ask Withings, save, rewrite the env file,
//! release. Railway is told afterwards, in a second short hold of the lock,
//! from the set on disk: a failing Railway never endangers the saved set, and
//! two overlapping runs can never leave Railway with the older of two sets.

use std::path::PathBuf;

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};

use crate::envfile;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::output::{TOKEN_KEYS, token_variables};
use crate::railway::RailwayClient;
use crate::settings::Settings;
use crate::store::{FileStore, PreviousToken, StoreLock, StoreState};
use crate::tokens::{Decision, TokenSet, TokenSource, choose_tokens, decide, effective_buffer, now, rfc3339};
use crate::withings::{Grant, WithingsClient};

/// Withings keeps a rotated refresh token alive for about this long.
const PREVIOUS_TOKEN_GRACE: Duration = Duration::hours(8);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Refreshed {
        used_previous: bool,
    },
    Exchanged,
    NotDue {
        expires_at: chrono::DateTime<chrono::Utc>,
        refresh_at: chrono::DateTime<chrono::Utc>,
    },
    AlreadyRefreshedByPeer,
}

/// The set in use after a transaction, and what happened to it.
#[derive(Debug)]
pub struct Rotation {
    pub outcome: Outcome,
    pub tokens: TokenSet,
    pub generation: u64,
    pub source: TokenSource,
    pub env_file_updated: Option<PathBuf>,
}

pub fn no_tokens_error() -> Error {
    Error::config(
        "no token to work with: the store holds no token set and WITHINGS_REFRESH_TOKEN is not set",
        "authorise once: run `withings-token auth-url`, open it, then `withings-token exchange '<redirect URL>'` (or set WITHINGS_REFRESH_TOKEN)",
    )
}

/// Refreshes under the lock. With `if_needed`, a set that is not due (or that
/// a peer refreshed while we waited for the lock) is left alone.
pub async fn refresh(
    settings: &Settings,
    store: &FileStore,
    client: &WithingsClient,
    if_needed: bool,
    update_env_file: bool,
) -> Result<Rotation> {
    let before = store.load()?;
    let lock = store.lock(settings.lock_timeout)?;
    let state = lock.load()?;
    report_interrupted(&lock);
    let (tokens, source) = choose_tokens(state.tokens.as_ref(), settings.seed_tokens.as_ref());
    let tokens = tokens.ok_or_else(no_tokens_error)?;
    let buffer = effective_buffer(&tokens, settings.buffer);
    // A peer that rotated the set while we waited for the lock already did
    // what `--if-needed` asked for, whatever the buffer says now.
    let peer_rotated = match (&before.tokens, &state.tokens) {
        (Some(seen), Some(now_stored)) => !seen.refresh_token_equals(now_stored),
        (None, Some(_)) => true,
        _ => false,
    };
    let skip = match decide(&tokens, now(), buffer, if_needed) {
        _ if if_needed && peer_rotated => Some(Outcome::AlreadyRefreshedByPeer),
        Decision::NotDue { expires_at, refresh_at } => Some(Outcome::NotDue { expires_at, refresh_at }),
        Decision::Refresh(_) => None,
    };
    if let Some(outcome) = skip {
        return Ok(Rotation {
            outcome,
            tokens,
            generation: state.generation,
            source,
            env_file_updated: None,
        });
    }
    lock.begin_request(state.generation, "refresh_token")?;
    let result = request_with_fallback(client, &tokens, source, &state).await;
    let saved = result.and_then(|(new, rotated, used_previous)| {
        let new = carry_over(new, &tokens);
        // `rotated` is the token that was sent: Withings honours it for a
        // while, so it is the one worth keeping as the previous generation.
        let next = StoreState {
            generation: state.generation,
            tokens: Some(new.clone()),
            previous: Some(PreviousToken {
                refresh_token: rotated,
                rotated_at: now(),
            }),
            pending_auth: state.pending_auth.clone(),
            ..state.clone()
        };
        save_new_set(&lock, &state, &next).map(|generation| (new, generation, used_previous))
    });
    lock.end_request();
    let (new, generation, used_previous) = saved?;
    let env_file_updated = if update_env_file {
        rewrite_env_file(settings, &new)
    } else {
        None
    };
    Ok(Rotation {
        outcome: Outcome::Refreshed { used_previous },
        tokens: new,
        generation,
        source,
        env_file_updated,
    })
}

/// Trades an authorization code under the lock, after checking the state.
pub async fn exchange(
    settings: &Settings,
    store: &FileStore,
    client: &WithingsClient,
    code: &str,
    url_state: Option<&str>,
    update_env_file: bool,
) -> Result<Rotation> {
    let redirect_uri = settings.redirect_uri("exchange")?;
    let lock = store.lock(settings.lock_timeout)?;
    let state = lock.load()?;
    report_interrupted(&lock);
    check_state(&state, url_state)?;
    lock.begin_request(state.generation, "authorization_code")?;
    let result = client.request_token(&Grant::Code { code, redirect_uri }).await;
    let saved = result.and_then(|new| {
        let next = StoreState {
            generation: state.generation,
            tokens: Some(new.clone()),
            previous: None,
            // The state stays: a second paste of the same redirect then
            // reaches Withings and is reported as what it is, a reused code.
            pending_auth: state.pending_auth.clone(),
            ..state.clone()
        };
        save_new_set(&lock, &state, &next).map(|generation| (new, generation))
    });
    lock.end_request();
    let (new, generation) = saved?;
    let env_file_updated = if update_env_file {
        rewrite_env_file(settings, &new)
    } else {
        None
    };
    Ok(Rotation {
        outcome: Outcome::Exchanged,
        tokens: new,
        generation,
        source: TokenSource::Store,
        env_file_updated,
    })
}

/// Keeps the pending `auth-url` state (for `exchange`) under the lock.
pub fn remember_auth_state(settings: &Settings, store: &FileStore, state: &str) -> Result<()> {
    let lock = store.lock(settings.lock_timeout)?;
    let current = lock.load()?;
    let next = StoreState {
        pending_auth: Some(crate::store::PendingAuth {
            state: state.to_owned(),
            created_at: now(),
        }),
        ..current.clone()
    };
    lock.save(current.generation, &next).map(|_| ())
}

fn check_state(state: &StoreState, url_state: Option<&str>) -> Result<()> {
    let Some(given) = url_state else {
        tracing::info!("a bare code carries no state; it is exchanged without a state check");
        return Ok(());
    };
    match &state.pending_auth {
        Some(pending) if pending.state == given => Ok(()),
        Some(_) => Err(Error::InvalidState {
            detail: "the redirect URL's state does not match the one `auth-url` issued; it may come from another consent or another person, so nothing was sent".into(),
        }),
        None => Err(Error::InvalidState {
            detail: "the redirect URL carries a state, but this store has no pending `auth-url` (it was never issued here or was already used); nothing was sent".into(),
        }),
    }
}

/// A save failure after Withings rotated the token must say the old token
/// still works: nobody has used the new access token yet.
fn save_new_set(lock: &StoreLock, state: &StoreState, next: &StoreState) -> Result<u64> {
    lock.save(state.generation, next).map_err(|e| match e {
        Error::Config { message, .. } => Error::config(
            format!("{message}; the new tokens could not be saved"),
            "fix the disk or permissions and run `withings-token refresh` again: the stored refresh token stays valid for about 8 hours because the new one was never used",
        ),
        other => other,
    })
}

/// The one token worth trying after a refusal: the store's own set when the
/// refused one came from the environment, else the previous generation's
/// while Withings still honours it. Returns it with a description.
fn fallback_token<'a>(
    tokens: &TokenSet,
    source: TokenSource,
    state: &'a StoreState,
) -> Option<(&'a SecretString, String)> {
    let differs = |t: &SecretString| t.expose_secret() != tokens.refresh_token.expose_secret();
    if source == TokenSource::Env {
        let stored = state.tokens.as_ref().filter(|t| differs(&t.refresh_token))?;
        return Some((&stored.refresh_token, "the store's refresh token".to_owned()));
    }
    let previous = state
        .previous
        .as_ref()
        .filter(|p| now() - p.rotated_at < PREVIOUS_TOKEN_GRACE && differs(&p.refresh_token))?;
    let label = format!(
        "the previous generation's refresh token (rotated {})",
        rfc3339(previous.rotated_at)
    );
    Some((&previous.refresh_token, label))
}

/// Returns the new set, the refresh token that obtained it, and whether
/// that was the fallback.
async fn request_with_fallback(
    client: &WithingsClient,
    tokens: &TokenSet,
    source: TokenSource,
    state: &StoreState,
) -> Result<(TokenSet, SecretString, bool)> {
    let mut detail = match client.request_token(&Grant::Refresh(&tokens.refresh_token)).await {
        Err(Error::InvalidRefreshToken { detail }) => detail,
        other => return other.map(|set| (set, tokens.refresh_token.clone(), false)),
    };
    if source == TokenSource::Env {
        detail.push_str(" (the refused token came from WITHINGS_REFRESH_TOKEN, newer than the store's by its WITHINGS_TOKEN_LAST_REFRESHED)");
    }
    let Some((fallback, label)) = fallback_token(tokens, source, state) else {
        return Err(Error::InvalidRefreshToken { detail });
    };
    tracing::warn!("Withings refused the refresh token in use; trying {label}");
    match client.request_token(&Grant::Refresh(fallback)).await {
        Ok(set) => {
            let note = format!("note: recovered with {label}; the new set is saved");
            crate::logging::user_line(tracing::Level::WARN, &note);
            Ok((set, fallback.clone(), true))
        }
        Err(Error::InvalidRefreshToken { .. }) => Err(Error::InvalidRefreshToken { detail }),
        // A transient failure of the second try is not a refusal: retry later.
        Err(other) => Err(other),
    }
}

/// Withings omits `userid`/`scope` at times; keep what we knew.
fn carry_over(mut new: TokenSet, old: &TokenSet) -> TokenSet {
    if new.userid.is_none() {
        new.userid = old.userid.clone();
    }
    if new.scope.is_none() {
        new.scope = old.scope.clone();
    }
    new
}

fn report_interrupted(lock: &StoreLock) {
    if let Some(mark) = lock.interrupted_request() {
        tracing::warn!(
            "a previous run (pid {}) died while asking Withings for a {} grant at {}; the stored set (generation {}) is the last one saved, and its refresh token stays valid because the lost answer was never used",
            mark.pid,
            mark.grant,
            rfc3339(mark.started_at),
            mark.generation
        );
        lock.end_request();
    }
}

/// Rewrites the token keys of the env file the settings came from, when it
/// holds any. A failure here is a warning: the store already has the set.
fn rewrite_env_file(settings: &Settings, tokens: &TokenSet) -> Option<PathBuf> {
    let loaded = settings.env_file.as_ref()?;
    if !loaded.file.holds_any(&TOKEN_KEYS) {
        return None;
    }
    let updates: Vec<(&str, String)> = token_variables(tokens).into_iter().collect();
    match envfile::rewrite_file(&loaded.path, &updates) {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!(
                "the new tokens are saved in the store, but {} was not updated: {e}",
                loaded.path.display()
            );
            None
        }
    }
}

/// The store holds no set, so there is nothing for Railway.
pub fn nothing_to_push(store: &FileStore) -> Error {
    Error::config(
        format!("the token store {} holds no token set to push", store.path().display()),
        "run `withings-token refresh` or `withings-token exchange` first",
    )
}

/// Pushes the stored set to the configured Railway service in one upsert
/// and, when asked, redeploys it once. Returns whether a deploy was
/// triggered. The push happens under the store lock and reads the set from
/// the store, so a slow run can never leave Railway holding an older set
/// than the one a faster peer saved (and pushed) meanwhile.
pub async fn push_to_railway(settings: &Settings, http: &HttpClient, store: &FileStore, deploy: bool) -> Result<bool> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let lock = store.lock(settings.lock_timeout)?;
    let tokens = lock.load()?.tokens.ok_or_else(|| nothing_to_push(store))?;
    let target = client.resolve_target(&settings.railway).await?;
    let variables = token_variables(&tokens).into_iter().collect();
    client.upsert(&target, &variables).await?;
    tracing::info!("Railway service {} now holds the stored token set", target.service_id);
    if deploy {
        client.redeploy(&target).await?;
        tracing::info!("Railway redeploy of service {} triggered", target.service_id);
    }
    drop(lock);
    Ok(deploy)
}
