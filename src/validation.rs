//! Validation, the work `validate` and the API's `/admin/token/validate`
//! share: the set in use, one use of its access token with Withings
//! (`getdevice`), and the report of what Withings said: `valid`, `invalid`
//! (refused) or `unknown` (no answer could tell).

use crate::error::{Error, Result};
use crate::output::{ErrorBody, JSON_VERSION, TokenReport, Validation, ValidationReport};
use crate::rotation;
use crate::settings::Settings;
use crate::store::StoreState;
use crate::tokens::{Policy, TokenSet, now, rfc3339};
use crate::withings::{AccessCheck, WithingsClient};

/// The set `status` would report (store, else the environment's seed).
pub fn tokens_in_use(settings: &Settings, state: &StoreState) -> Result<TokenSet> {
    let policy = Policy {
        buffer: settings.buffer,
        force: false,
    };
    rotation::assess_in_use(settings, state, now(), policy)
        .tokens
        .ok_or_else(rotation::no_tokens_error)
}

/// `Ok` when Withings took the token; `INVALID_ACCESS_TOKEN` when it refused
/// it (or there is none to send); any other error when nothing could tell.
pub async fn check(client: &WithingsClient, tokens: &TokenSet) -> Result<()> {
    let Some(access_token) = &tokens.access_token else {
        return Err(Error::InvalidAccessToken {
            detail: "the token set holds no access token; nothing was sent".into(),
        });
    };
    match client.check_access_token(access_token).await? {
        AccessCheck::Valid => Ok(()),
        AccessCheck::Refused { detail } => Err(Error::InvalidAccessToken { detail }),
    }
}

/// Whether Withings refused the token (a refresh may help).
pub fn is_invalid(result: &Result<()>) -> bool {
    matches!(result, Err(Error::InvalidAccessToken { .. }))
}

/// The report of a validation of `tokens` (set generation `generation`),
/// with the report of the refresh it took, if any.
pub fn build_report(
    result: &Result<()>,
    tokens: &TokenSet,
    generation: u64,
    refresh: Option<TokenReport>,
) -> ValidationReport {
    let validation = match result {
        Ok(()) => Validation::Valid,
        Err(Error::InvalidAccessToken { .. }) => Validation::Invalid,
        Err(_) => Validation::Unknown,
    };
    ValidationReport {
        version: JSON_VERSION,
        validation,
        expires_at: tokens.expires_at.map(rfc3339),
        userid: tokens.userid.clone(),
        generation,
        set_generation: generation,
        refreshed: false,
        refresh,
        error: result.as_ref().err().map(ErrorBody::of),
    }
}
