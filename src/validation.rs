//! Validation, the work `validate` and the API's `/admin/token/validate`
//! share: the set in use, one use of its access token with Withings
//! (`getdevice`), and the report of what Withings said: `valid`, `invalid`
//! (refused) or `unknown` (no answer could tell). A refused token may be
//! refreshed once, as the face refreshes, and the new set checked
//! ([`validate`]).

use std::ops::ControlFlow;

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
        cadence: settings.cadence(),
    };
    rotation::assess_in_use(settings, state, now(), policy)
        .tokens
        .ok_or_else(rotation::no_tokens_error)
}

/// The set a validation checks again after its refresh. The faces differ
/// here: `validate --refresh-if-invalid` checks the set its refresh saved;
/// `/admin/token/validate` checks the newest set its refresh knows of (a
/// newer one a peer saved meanwhile, which the refresh pushed to Railway
/// instead), as `serve`'s broker hands that one out too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    Saved,
    Newest,
}

/// What the refresh of a validation gave.
pub struct Refreshed {
    /// Its report; its `tokens` are the set it saved.
    pub report: TokenReport,
    /// The newest set it knows of (see [`Recheck::Newest`]).
    pub newest: Option<TokenSet>,
}

/// A validation's report, and what Withings said (an error when the token
/// is not valid).
pub struct Checked {
    pub report: ValidationReport,
    pub result: Result<()>,
}

/// Checks `tokens`, the set in use (set generation `generation`), with
/// Withings. When Withings refuses it and `refresh` is given, refreshes
/// once and checks the set that gave (`recheck`), the report marked
/// refreshed and holding the refresh's. A refresh that ends the run (a
/// signal held during its save) breaks off with what it gave.
pub async fn validate<B, F>(
    client: &WithingsClient,
    tokens: &TokenSet,
    generation: u64,
    refresh: Option<F>,
    recheck: Recheck,
) -> Result<ControlFlow<B, Checked>>
where
    F: AsyncFnOnce() -> Result<ControlFlow<B, Refreshed>>,
{
    let first = check(client, tokens).await;
    let Some(refresh) = refresh.filter(|_| is_invalid(&first)) else {
        let report = build_report(&first, tokens, generation, None);
        return Ok(ControlFlow::Continue(Checked { report, result: first }));
    };
    let refreshed = match refresh().await? {
        ControlFlow::Continue(refreshed) => refreshed,
        ControlFlow::Break(ended) => return Ok(ControlFlow::Break(ended)),
    };
    let tokens = match recheck {
        Recheck::Saved => refreshed.report.tokens.clone(),
        Recheck::Newest => refreshed.newest,
    };
    let tokens = tokens.ok_or_else(rotation::no_tokens_error)?;
    let second = check(client, &tokens).await;
    let generation = refreshed.report.generation;
    let mut report = build_report(&second, &tokens, generation, Some(refreshed.report));
    report.refreshed = true;
    Ok(ControlFlow::Continue(Checked { report, result: second }))
}

/// `Ok` when Withings took the token; `INVALID_ACCESS_TOKEN` when it refused
/// it (or there is none to send); any other error when nothing could tell.
async fn check(client: &WithingsClient, tokens: &TokenSet) -> Result<()> {
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
fn is_invalid(result: &Result<()>) -> bool {
    matches!(result, Err(Error::InvalidAccessToken { .. }))
}

/// The report of a validation of `tokens` (set generation `generation`),
/// with the report of the refresh it took, if any.
fn build_report(
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
