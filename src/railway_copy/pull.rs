//! `pull --from railway`'s work: Railway's four variables read as a token
//! set ([`read_variables`], [`railway_set`]) and imported into the store
//! when newer than the stored one (by `WITHINGS_TOKEN_LAST_REFRESHED`). The
//! decision is [`decide`], pure; [`import`] takes it again under the store
//! lock, on the set reloaded there, so a peer's refresh meanwhile is never
//! replaced by Railway's older set. Nothing is sent to Withings.

use std::collections::BTreeMap;

use crate::copies::railway_key;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::output::ReportOutcome;
use crate::settings::Settings;
use crate::store::{StoreLease, StoreState, TokenStore};
use crate::tokens::{TOKEN_KEYS, TokenSet, VariablesProblem, rfc3339, set_of_variables};

/// What to do with Railway's set, given the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullDecision {
    /// Railway's set is newer (or the store holds none).
    Import,
    /// The store's set is as new or newer, but `--force` was given.
    ImportForced,
    /// The store's set is as new or newer: it stays.
    Keep,
}

/// Railway's set is imported only when it is strictly newer: a store with
/// no set is older than anything; a set without a time is older than one
/// with a time; equal times keep the store's.
pub(crate) fn decide(stored: Option<&TokenSet>, railway: &TokenSet, force: bool) -> PullDecision {
    let Some(stored) = stored else {
        return PullDecision::Import;
    };
    let newer = match (railway.last_refreshed, stored.last_refreshed) {
        (Some(railway), Some(stored)) => railway > stored,
        (Some(_), None) => true,
        (None, _) => false,
    };
    match (newer, force) {
        (true, _) => PullDecision::Import,
        (false, true) => PullDecision::ImportForced,
        (false, false) => PullDecision::Keep,
    }
}

/// The service's variables. Reading changes nothing, so a refusal is a
/// setting to fix (exit 3), and a failure to get an answer is exit 5.
pub(crate) async fn read_variables(settings: &Settings, http: &HttpClient) -> Result<BTreeMap<String, String>> {
    let read = super::read_variables(settings, http)
        .await
        .map(|(_, variables)| variables);
    read.map_err(|e| match e {
        Error::RailwayUpdateFailed { detail } => Error::config(
            format!("could not read the Railway service's variables: {detail}; nothing was written"),
            "check RAILWAY_TOKEN (or RAILWAY_API_TOKEN), RAILWAY_PROJECT_ID and RAILWAY_SERVICE_ID, then run `withings-token pull --from railway` again",
        ),
        other => other,
    })
}

/// Railway's four variables as a token set. A missing or blank refresh
/// token, or a time that does not parse, is exit 3 naming the variable
/// (never its value: it may be a token put in the wrong place).
pub(crate) fn railway_set(variables: &BTreeMap<String, String>) -> Result<TokenSet> {
    set_of_variables(|name| variables.get(name).map(String::as_str)).map_err(|problem| match problem {
        VariablesProblem::ControlCharacter(name) => Error::config(
            format!("the Railway service's {name} holds a control character inside it; nothing was written"),
            format!(
                "set {name} on Railway to the value alone (`withings-token railway-sync --dry-run` shows it with the character written out)"
            ),
        ),
        VariablesProblem::NoRefreshToken => Error::config(
            format!(
                "the Railway service has no {} (missing or blank); nothing was written",
                TOKEN_KEYS[1]
            ),
            "push a set to it first from a host that has one (`withings-token railway-sync`), or authorise this host: run `withings-token auth-url`, then `exchange`",
        ),
        VariablesProblem::NotATime(name) => Error::config(
            format!("the Railway service's {name} is not an RFC 3339 time; nothing was written"),
            format!("set {name} on Railway like 2025-01-15T12:00:00Z (a `withings-token railway-sync` from a host with the set writes all four)"),
        ),
    })
}

/// Decides again under the lock, on the store as it is now, and saves
/// Railway's set when it is to be imported. Returns the store after, and
/// the set that was replaced (if any).
pub(crate) async fn import(
    settings: &Settings,
    store: &dyn TokenStore,
    railway: TokenSet,
    force: bool,
) -> Result<(PullDecision, StoreState, Option<TokenSet>)> {
    let lock = store.lock(settings.lock_timeout).await?;
    let imported = import_under(settings, lock.as_ref(), railway, force).await;
    lock.release().await;
    imported
}

async fn import_under(
    settings: &Settings,
    lock: &dyn StoreLease,
    railway: TokenSet,
    force: bool,
) -> Result<(PullDecision, StoreState, Option<TokenSet>)> {
    let state = lock.load().await?;
    let decision = decide(state.tokens.as_ref(), &railway, force);
    if decision == PullDecision::Keep {
        return Ok((decision, state, None));
    }
    let ours = state.tokens.as_ref().is_some_and(|t| t.refresh_token_equals(&railway));
    if !ours {
        crate::consent::refuse_another_accounts_token(
            settings,
            &railway,
            "in the Railway service's variables",
            &format!(
                "point this account at its own Railway service (`railway_service_id` in its `[account.{}]` table), or replace the service's WITHINGS_* variables with this account's set",
                settings.account_name()
            ),
        )
        .await?;
    }
    let replaced = state.tokens.clone();
    let mut next = crate::rotation::with_outside_set(&state, railway);
    // Railway holds exactly this set: no push is owed to it.
    next.copies.insert(railway_key(settings), state.generation + 1);
    let generation = lock.save(state.generation, &next).await?;
    let saved = StoreState {
        generation,
        tokens_generation: generation,
        ..next
    };
    Ok((decision, saved, replaced))
}

/// The report's outcome and its note for a person.
pub(crate) fn describe(
    decision: PullDecision,
    tokens: &TokenSet,
    replaced: Option<&TokenSet>,
) -> (ReportOutcome, String) {
    let when = |t: &TokenSet| {
        t.last_refreshed
            .map(rfc3339)
            .unwrap_or_else(|| "an unknown time".into())
    };
    match (decision, replaced) {
        (PullDecision::Keep, _) => (
            ReportOutcome::NotPulled,
            format!(
                "not pulled: the store's set (last refreshed {}) is as new as or newer than Railway's; nothing was written (`--force` imports Railway's anyway)",
                when(tokens)
            ),
        ),
        (_, None) => (
            ReportOutcome::Pulled,
            format!(
                "pulled Railway's set (last refreshed {}) into an empty store",
                when(tokens)
            ),
        ),
        (_, Some(old)) => (
            ReportOutcome::Pulled,
            format!(
                "pulled Railway's set (last refreshed {}), replacing the store's (last refreshed {})",
                when(tokens),
                when(old)
            ),
        ),
    }
}
