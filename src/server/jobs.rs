//! The store transactions of `serve`: a refresh (for the admin endpoint,
//! the schedule and the broker alike), an exchange and an `auth-url`.
//!
//! Each runs through [`transact`]: one at a time in this process (the
//! flight mutex: concurrent callers queue instead of each taking the file
//! lock), on a blocking thread (the store lock is waited for by sleeping,
//! which must not stall the threads that serve requests), and to its end
//! even when the request that asked for it is gone, because a rotated set
//! that is not saved is a lost one. The file lock taken inside
//! `rotation` serialises this process with CLI runs and other servers.
//! A refresh that queued behind one that failed, that would send a refused
//! token again, or that comes while the backoff after a failure of Withings
//! is on, is answered from `failures` instead of running (not for the
//! admin endpoints: an operator's explicit retry is sent).

use std::future::Future;
use std::sync::Arc;

use crate::consent::{self, AuthUrlRequest, Redirect, check_redirect_base};
use crate::copies::{self, Choices, Targets};
use crate::error::{Error, Result};
use crate::output::{AuthUrlReport, ReportOutcome, Secrets, TokenReport};
use crate::report::{Ending, deliver_and_build_report};
use crate::rotation::{self, Rotation};
use crate::settings::Settings;
use crate::store::StoreState;
use crate::tokens::{Policy, TokenSet};

use super::AppState;

/// What asked for a refresh; logs name it (and metrics may count by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Admin,
    Schedule,
    Broker,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Admin => "admin",
            Trigger::Schedule => "schedule",
            Trigger::Broker => "broker",
        }
    }
}

/// When a refresh rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `POST /admin/token/refresh`: always, unless a peer saved a new set
    /// while this request waited (then that set is the answer).
    Rotate,
    /// Only when the set expires within `buffer` (the schedule: the
    /// settings' buffer; the broker: `min_ttl`).
    IfDue { buffer: Option<chrono::Duration> },
}

/// A refresh that ended with a set in the store.
pub struct Refreshed {
    /// The contract's refresh report, tokens masked.
    pub report: TokenReport,
    /// The newest set this refresh knows of (unmasked: the broker's answer).
    pub tokens: TokenSet,
}

/// Why a refresh job gave no set.
enum Failed {
    /// It ran and failed: logged and counted like any refresh.
    Ran(Error),
    /// It did not run: the answer is the failure a refresh of the same set
    /// left (see `failures`).
    Remembered(Error),
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed::Ran(error)
    }
}

/// The one refresh job. `seen_before` is read before waiting for the
/// flight, so a set a peer saved meanwhile is recognised as the peer's; a
/// request that waited behind a refresh that failed gets its failure.
pub async fn refresh(state: &Arc<AppState>, trigger: Trigger, want: Want, choices: Choices) -> Result<Refreshed> {
    let started = std::time::Instant::now();
    let result = match run_refresh(state, trigger, want, choices).await {
        Ok(done) => Ok(done),
        Err(Failed::Ran(error)) => Err(error),
        Err(Failed::Remembered(error)) => return Err(error),
    };
    log_refresh(trigger, &result);
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record_refresh(result.as_ref().map(|done| &done.report), seconds);
    result
}

async fn run_refresh(
    state: &Arc<AppState>,
    trigger: Trigger,
    want: Want,
    choices: Choices,
) -> std::result::Result<Refreshed, Failed> {
    let targets = copies::targets(&state.settings, choices)?;
    let seen_before = state.store.load().await?;
    if let Some(remembered) = remembered(state, trigger, &seen_before) {
        return Err(Failed::Remembered(remembered));
    }
    let ticket = state.failures.ticket();
    transact(state, move |state| async move {
        let current = state.store.load().await?;
        if let Some(remembered) = remembered(&state, trigger, &current) {
            return Err(Failed::Remembered(remembered));
        }
        let set = set_in_use(&state.settings, &current);
        let token = set.map(|set| &set.refresh_token);
        if let Some(failure) = state.failures.failure_since(ticket, token) {
            return Err(Failed::Remembered(failure));
        }
        let result = rotate_and_deliver(&state, trigger, want, &seen_before, &targets).await;
        state.failures.end(token, &result, set.and_then(|set| set.expires_at));
        Ok(result?)
    })
    .await
}

/// The answer `failures` has for a refresh of the set in `store`: its
/// refused token, or the failure whose backoff is still on. The admin
/// endpoints send it anyway: an operator's explicit retry.
fn remembered(state: &AppState, trigger: Trigger, store: &StoreState) -> Option<Error> {
    if trigger == Trigger::Admin {
        return None;
    }
    let token = set_in_use(&state.settings, store).map(|set| &set.refresh_token);
    state
        .failures
        .refusal_of(token)
        .or_else(|| state.failures.held_back(token))
}

async fn rotate_and_deliver(
    state: &AppState,
    trigger: Trigger,
    want: Want,
    seen_before: &StoreState,
    targets: &Targets,
) -> Result<Refreshed> {
    let policy = policy(state, want, seen_before).await?;
    let rotation = rotation::refresh(
        &state.settings,
        state.store.as_ref(),
        seen_before,
        state.withings_for(trigger),
        policy,
        copies::none_behind(&state.settings, targets, seen_before),
    )
    .await?;
    deliver(state, targets, rotation).await
}

/// The set in use: the store's, else the environment's seed. Its refresh
/// token tells it apart from another (see `failures`).
fn set_in_use<'a>(settings: &'a Settings, state: &'a StoreState) -> Option<&'a TokenSet> {
    state.tokens.as_ref().or(settings.seed_tokens.as_ref())
}

/// `Want::Rotate` forces, except when the store's set changed since
/// `seen_before`: then `assess` calls it a peer's refresh, and the peer's
/// set is returned without a second rotation.
async fn policy(state: &AppState, want: Want, seen_before: &StoreState) -> Result<Policy> {
    let buffer = state.settings.buffer;
    match want {
        Want::IfDue { buffer } => Ok(Policy {
            buffer,
            force: false,
            cadence: state.settings.cadence(),
        }),
        Want::Rotate => {
            let now = state.store.load().await?;
            let unchanged = match (&now.tokens, &seen_before.tokens) {
                (Some(now), Some(seen)) => now.refresh_token_equals(seen),
                (None, None) => true,
                _ => false,
            };
            Ok(Policy {
                buffer,
                force: unchanged,
                cadence: state.settings.cadence(),
            })
        }
    }
}

/// Trades a code (state checked when given) and delivers the new set.
pub async fn exchange(state: &Arc<AppState>, redirect: Redirect, choices: Choices) -> Result<TokenReport> {
    let targets = copies::targets(&state.settings, choices)?;
    check_redirect_base(&redirect, state.settings.redirect_uri("exchange")?)?;
    let result = transact(state, move |state| async move {
        let rotation = consent::exchange(
            &state.settings,
            state.store.as_ref(),
            &state.withings,
            &redirect,
            consent::Replace::Refuse,
        )
        .await?;
        deliver(&state, &targets, rotation).await
    })
    .await;
    if let Ok(done) = &result {
        state.metrics.record_copies(&done.report);
    }
    match &result {
        Ok(done) => tracing::info!(
            "Token exchange successful. Expires at: {}",
            done.report.expires_at.as_deref().unwrap_or("unknown")
        ),
        Err(e) => tracing::error!("Token exchange failed [{}]: {e}", e.code()),
    }
    result.map(|done| done.report)
}

/// `auth-url`: a consent URL whose state is kept in the store.
pub async fn authorization_url(state: &Arc<AppState>) -> Result<AuthUrlReport> {
    transact(state, |state| async move {
        consent::issue(&AuthUrlRequest::default(), &state.settings, state.store.as_ref()).await
    })
    .await
}

/// Brings the copies up to date and builds the report, as the CLI does.
async fn deliver(state: &AppState, targets: &Targets, rotation: Rotation) -> Result<Refreshed> {
    let ending = deliver_and_build_report(
        &state.settings,
        &state.http,
        state.store.as_ref(),
        targets,
        rotation,
        // `serve`'s reports mask tokens, whatever `--reveal` says.
        Secrets::Masked,
    )
    .await;
    match ending {
        Ending::Delivered(done) => {
            let tokens = done.newest().ok_or_else(rotation::no_tokens_error)?;
            Ok(Refreshed {
                report: done.report,
                tokens,
            })
        }
        // `serve` leaves signals to its own handlers (see `signals`), so
        // no window holds one; should it happen, the set is still saved.
        Ending::Interrupted { signal, saved } => Err(Error::internal(anyhow::anyhow!(
            "signal {signal} arrived while the set was saved: {saved}"
        ))),
    }
}

/// Runs `job` as the only store transaction of this process, on a
/// blocking thread, to its end (see the module doc). Refused once the
/// server is stopping, so that shutdown waits for one transaction at most.
async fn transact<T, E, F, Fut>(state: &Arc<AppState>, job: F) -> std::result::Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(Arc<AppState>) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let flight = Arc::clone(&state.flight).lock_owned().await;
    if state.is_stopping() {
        return Err(Error::StoreUnavailable {
            detail: "the server is shutting down; nothing was sent".into(),
        }
        .into());
    }
    let runtime = tokio::runtime::Handle::current();
    let state = Arc::clone(state);
    let blocking = tokio::task::spawn_blocking(move || {
        // Held until the transaction ends, even if the request is dropped.
        let _flight = flight;
        runtime.block_on(job(state))
    });
    blocking
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("the store transaction stopped: {e}")))?
}

/// One log line per refresh, in the MCP service's words; never a token.
/// The schedule's failures are its own to say (once per change, see
/// `schedule`).
fn log_refresh(trigger: Trigger, result: &Result<Refreshed>) {
    let report = match result {
        Ok(done) => &done.report,
        Err(_) if trigger == Trigger::Schedule => return,
        Err(e) => {
            tracing::error!("Token refresh failed ({}) [{}]: {e}", trigger.name(), e.code());
            return;
        }
    };
    let expires = report.expires_at.as_deref().unwrap_or("unknown");
    let generation = report.generation;
    let trigger = trigger.name();
    match report.outcome {
        ReportOutcome::Refreshed => {
            tracing::info!("Token refresh successful. Expires at: {expires} ({trigger}, set generation {generation})")
        }
        ReportOutcome::AlreadyRefreshedByPeer => tracing::info!(
            "Token already refreshed by a peer. Expires at: {expires} ({trigger}, set generation {generation})"
        ),
        _ => tracing::debug!("Token not due. Expires at: {expires} ({trigger})"),
    }
    if let Some(error) = &report.railway_error {
        tracing::warn!(
            "the set is saved, but Railway was not updated [{}]: {}",
            error.code,
            error.message
        );
    }
    if let Some(error) = &report.env_file_error {
        tracing::warn!(
            "the set is saved, but the env file was not updated [{}]: {}",
            error.code,
            error.message
        );
    }
}
