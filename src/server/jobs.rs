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

use std::future::Future;
use std::sync::Arc;

use crate::cli::DeliveryArgs;
use crate::commands::auth_url::{self, AuthUrlArgs};
use crate::commands::exchange::{Redirect, check_redirect_base};
use crate::commands::{Delivered, Ending, deliver_and_build_report};
use crate::copies::{self, Targets};
use crate::error::{Error, Result};
use crate::output::{AuthUrlReport, ReportOutcome, TokenReport};
use crate::rotation::{self, Rotation};
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

/// The delivery a request without a body gets: the env file and Railway
/// when configured, no redeploy (the admin API's defaults).
pub fn default_delivery() -> DeliveryArgs {
    DeliveryArgs {
        no_env_file_update: false,
        no_railway: false,
        trigger_deployment: false,
    }
}

/// The one refresh job. `seen_before` is read before waiting for the
/// flight, so a set a peer saved meanwhile is recognised as the peer's.
pub async fn refresh(
    state: &Arc<AppState>,
    trigger: Trigger,
    want: Want,
    delivery: &DeliveryArgs,
) -> Result<Refreshed> {
    let started = std::time::Instant::now();
    let result = async {
        let targets = copies::targets(&state.settings, delivery)?;
        let seen_before = state.store.load().await?;
        transact(state, move |state| async move {
            let policy = policy(&state, want, &seen_before).await?;
            let rotation = rotation::refresh(
                &state.settings,
                state.store.as_ref(),
                &seen_before,
                &state.withings,
                policy,
                copies::none_behind(&state.settings, &targets, &seen_before),
            )
            .await?;
            deliver(&state, &targets, rotation).await
        })
        .await
    }
    .await;
    log_refresh(trigger, &result);
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record_refresh(result.as_ref().map(|done| &done.report), seconds);
    result
}

/// `Want::Rotate` forces, except when the store's set changed since
/// `seen_before`: then `assess` calls it a peer's refresh, and the peer's
/// set is returned without a second rotation.
async fn policy(state: &AppState, want: Want, seen_before: &StoreState) -> Result<Policy> {
    let buffer = state.settings.buffer;
    match want {
        Want::IfDue { buffer } => Ok(Policy { buffer, force: false }),
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
            })
        }
    }
}

/// Trades a code (state checked when given) and delivers the new set.
pub async fn exchange(state: &Arc<AppState>, redirect: Redirect, delivery: &DeliveryArgs) -> Result<TokenReport> {
    let targets = copies::targets(&state.settings, delivery)?;
    check_redirect_base(&redirect, state.settings.redirect_uri("exchange")?)?;
    let result = transact(state, move |state| async move {
        let url_state = redirect.url_state.as_ref().map(|s| s.as_deref());
        let rotation = rotation::exchange(
            &state.settings,
            state.store.as_ref(),
            &state.withings,
            &redirect.code,
            url_state,
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
        let args = AuthUrlArgs {
            state: None,
            demo_account: false,
        };
        auth_url::issue(&args, &state.settings, state.store.as_ref()).await
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
        &state.masked,
    )
    .await;
    match ending {
        Ending::Delivered(done) => {
            let Delivered { report, deliveries, .. } = *done;
            let tokens = match (deliveries.pushed, &report.tokens) {
                (Some((newer, _)), _) => newer,
                (None, Some(tokens)) => tokens.clone(),
                (None, None) => return Err(rotation::no_tokens_error()),
            };
            Ok(Refreshed { report, tokens })
        }
        // `serve` leaves signals to its own handlers (see `signals`), so
        // no window holds one; should it happen, the set is still saved.
        Ending::Interrupted { signal, saved } => Err(Error::Internal(anyhow::anyhow!(
            "signal {signal} arrived while the set was saved: {saved}"
        ))),
    }
}

/// Runs `job` as the only store transaction of this process, on a
/// blocking thread, to its end (see the module doc). Refused once the
/// server is stopping, so that shutdown waits for one transaction at most.
async fn transact<T, F, Fut>(state: &Arc<AppState>, job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<AppState>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    let flight = Arc::clone(&state.flight).lock_owned().await;
    if state.is_stopping() {
        return Err(Error::StoreUnavailable {
            detail: "the server is shutting down; nothing was sent".into(),
        });
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
        .map_err(|e| Error::Internal(anyhow::anyhow!("the store transaction stopped: {e}")))?
}

/// One log line per refresh, in the origin service's words; never a token.
fn log_refresh(trigger: Trigger, result: &Result<Refreshed>) {
    let trigger = trigger.name();
    let report = match result {
        Ok(done) => &done.report,
        Err(e) => {
            tracing::error!("Token refresh failed ({trigger}) [{}]: {e}", e.code());
            return;
        }
    };
    let expires = report.expires_at.as_deref().unwrap_or("unknown");
    let generation = report.generation;
    match report.outcome {
        ReportOutcome::Refreshed => {
            tracing::info!("Token refresh successful. Expires at: {expires} ({trigger}, generation {generation})")
        }
        ReportOutcome::AlreadyRefreshedByPeer => tracing::info!(
            "Token already refreshed by a peer. Expires at: {expires} ({trigger}, generation {generation})"
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
