//! The store transactions of `serve`: a refresh (for the admin endpoint,
//! the schedule and the broker alike), an exchange and an `auth-url`.
//!
//! Each runs through [`transact`]: one at a time per account in this
//! process (the account's flight mutex: concurrent callers queue instead of
//! each taking the file lock; another account's never wait for it), on a blocking thread (the store lock is waited for by sleeping,
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
use crate::tokens::{self, AccessDigest, Policy, TokenSet};

use super::AppState;
use super::accounts::Account;

/// What asked for a refresh; logs name it (and metrics may count by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Admin,
    Schedule,
    Broker,
    /// The Withings proxy: a token about to expire, or one Withings refused.
    Proxy,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Admin => "admin",
            Trigger::Schedule => "schedule",
            Trigger::Broker => "broker",
            Trigger::Proxy => "proxy",
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
    /// The proxy's, after Withings refused the access token it sent (known
    /// by its digest): rotate only when the set in use still holds that
    /// token, judged again under the lock; a set saved since (a peer's
    /// refresh) is the answer (Nango #2494: check again once the flight is
    /// yours). See `tokens::replacing`.
    Replace { sent: AccessDigest },
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
pub async fn refresh(
    state: &Arc<AppState>,
    account: &Arc<Account>,
    trigger: Trigger,
    want: Want,
    choices: Choices,
) -> Result<Refreshed> {
    let started = std::time::Instant::now();
    let result = match run_refresh(state, account, trigger, want, choices).await {
        Ok(done) => Ok(done),
        Err(Failed::Ran(error)) => Err(error),
        Err(Failed::Remembered(error)) => return Err(error),
    };
    log_refresh(account, trigger, &result);
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record_refresh(&account.name, result.as_ref().map(|done| &done.report), seconds);
    result
}

async fn run_refresh(
    state: &Arc<AppState>,
    account: &Arc<Account>,
    trigger: Trigger,
    want: Want,
    choices: Choices,
) -> std::result::Result<Refreshed, Failed> {
    let targets = copies::targets(&account.settings, choices)?;
    let seen_before = account.store.load().await?;
    if let Some(remembered) = remembered(account, trigger, &seen_before) {
        return Err(Failed::Remembered(remembered));
    }
    let ticket = account.failures.ticket();
    transact(state, account, move |state, account| async move {
        let current = account.store.load().await?;
        if let Some(remembered) = remembered(&account, trigger, &current) {
            return Err(Failed::Remembered(remembered));
        }
        let set = set_in_use(&account.settings, &current);
        let token = set.map(|set| &set.refresh_token);
        if let Some(failure) = account.failures.failure_since(ticket, token) {
            return Err(Failed::Remembered(failure));
        }
        let result = rotate_and_deliver(&state, &account, trigger, want, &seen_before, &targets).await;
        account.failures.end(token, &result, set.and_then(|set| set.expires_at));
        Ok(result?)
    })
    .await
}

/// The answer `failures` has for a refresh of the set in `store`: its
/// refused token, or the failure whose backoff is still on. The admin
/// endpoints send it anyway: an operator's explicit retry.
fn remembered(account: &Account, trigger: Trigger, store: &StoreState) -> Option<Error> {
    if trigger == Trigger::Admin {
        return None;
    }
    let token = set_in_use(&account.settings, store).map(|set| &set.refresh_token);
    account
        .failures
        .refusal_of(token)
        .or_else(|| account.failures.held_back(token))
}

async fn rotate_and_deliver(
    state: &AppState,
    account: &Account,
    trigger: Trigger,
    want: Want,
    seen_before: &StoreState,
    targets: &Targets,
) -> Result<Refreshed> {
    let policy = policy(account, want, seen_before);
    // A rotation asked for and not forced (a peer saved a set meanwhile)
    // is answered from the store under the lock, not from `seen_before`,
    // which may be the set the peer replaced.
    let asked_to_rotate = matches!(want, Want::Rotate | Want::Replace { .. });
    let shortcut = !asked_to_rotate && copies::none_behind(&account.settings, targets, seen_before);
    let rotation = rotation::refresh(
        &account.settings,
        account.store.as_ref(),
        seen_before,
        state.withings_for(trigger),
        policy,
        shortcut,
    )
    .await?;
    deliver(state, account, targets, rotation).await
}

/// The set in use: the store's, else the environment's seed. Its refresh
/// token tells it apart from another (see `failures`).
fn set_in_use<'a>(settings: &'a Settings, state: &'a StoreState) -> Option<&'a TokenSet> {
    state.tokens.as_ref().or(settings.seed_tokens.as_ref())
}

/// `Want::Rotate` and `Want::Replace` make the set due rather than forcing
/// it (`tokens::rotating`, `tokens::replacing`): under the lock, a store
/// whose set changed since `seen_before` is a peer's refresh, and the
/// peer's set is returned without a second rotation.
fn policy(account: &Account, want: Want, seen_before: &StoreState) -> Policy {
    let cadence = account.settings.cadence();
    match want {
        Want::IfDue { buffer } => Policy {
            buffer,
            force: false,
            cadence,
        },
        Want::Replace { sent } => rotation::replacing_policy(&account.settings, seen_before, sent),
        Want::Rotate => tokens::rotating(cadence),
    }
}

/// Trades a code (state checked when given) and delivers the new set.
pub async fn exchange(
    state: &Arc<AppState>,
    account: &Arc<Account>,
    redirect: Redirect,
    choices: Choices,
    replace: consent::Replace,
) -> Result<TokenReport> {
    let targets = copies::targets(&account.settings, choices)?;
    check_redirect_base(&redirect, account.settings.redirect_uri("exchange")?)?;
    let result = transact(state, account, move |state, account| async move {
        let rotation = consent::exchange(
            &account.settings,
            account.store.as_ref(),
            &state.withings,
            &redirect,
            replace,
        )
        .await?;
        deliver(&state, &account, &targets, rotation).await
    })
    .await;
    if let Ok(done) = &result {
        state.metrics.record_copies(&account.name, &done.report);
    }
    let said = account.said();
    match &result {
        Ok(done) => tracing::info!(
            "{said}Token exchange successful. Expires at: {}",
            done.report.expires_at.as_deref().unwrap_or("unknown")
        ),
        Err(e) => tracing::error!("{said}Token exchange failed [{}]: {e}", e.code()),
    }
    result.map(|done| done.report)
}

/// `auth-url`: a consent URL whose state is kept in the account's store.
pub async fn authorization_url(
    state: &Arc<AppState>,
    account: &Arc<Account>,
    request: AuthUrlRequest,
) -> Result<AuthUrlReport> {
    transact(state, account, |_, account| async move {
        consent::issue(&request, &account.settings, account.store.as_ref()).await
    })
    .await
}

/// Brings the copies up to date and builds the report, as the CLI does.
async fn deliver(state: &AppState, account: &Account, targets: &Targets, rotation: Rotation) -> Result<Refreshed> {
    let ending = deliver_and_build_report(
        &account.settings,
        &state.http,
        account.store.as_ref(),
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

/// Runs `job` as the only store transaction of `account` in this process,
/// on a blocking thread, to its end (see the module doc). Refused once the
/// server is stopping, so that shutdown waits for one transaction per
/// account at most.
async fn transact<T, E, F, Fut>(state: &Arc<AppState>, account: &Arc<Account>, job: F) -> std::result::Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(Arc<AppState>, Arc<Account>) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let flight = Arc::clone(&account.flight).lock_owned().await;
    if state.is_stopping() {
        return Err(Error::StoreUnavailable {
            detail: "the server is shutting down; nothing was sent".into(),
        }
        .into());
    }
    let runtime = tokio::runtime::Handle::current();
    let state = Arc::clone(state);
    let account = Arc::clone(account);
    let blocking = tokio::task::spawn_blocking(move || {
        // Held until the transaction ends, even if the request is dropped.
        let _flight = flight;
        runtime.block_on(job(state, account))
    });
    blocking
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("the store transaction stopped: {e}")))?
}

/// One log line per refresh, in the MCP service's words; never a token.
/// The schedule's failures are its own to say (once per change, see
/// `schedule`).
fn log_refresh(account: &Account, trigger: Trigger, result: &Result<Refreshed>) {
    let said = account.said();
    let report = match result {
        Ok(done) => &done.report,
        Err(_) if trigger == Trigger::Schedule => return,
        Err(e) => {
            tracing::error!("{said}Token refresh failed ({}) [{}]: {e}", trigger.name(), e.code());
            return;
        }
    };
    let expires = report.expires_at.as_deref().unwrap_or("unknown");
    let generation = report.generation;
    let trigger = trigger.name();
    match report.outcome {
        ReportOutcome::Refreshed => {
            tracing::info!(
                "{said}Token refresh successful. Expires at: {expires} ({trigger}, set generation {generation})"
            )
        }
        ReportOutcome::AlreadyRefreshedByPeer => tracing::info!(
            "{said}Token already refreshed by a peer. Expires at: {expires} ({trigger}, set generation {generation})"
        ),
        _ => tracing::debug!("{said}Token not due. Expires at: {expires} ({trigger})"),
    }
    if let Some(error) = &report.railway_error {
        tracing::warn!(
            "{said}the set is saved, but Railway was not updated [{}]: {}",
            error.code,
            error.message
        );
    }
    if let Some(error) = &report.env_file_error {
        tracing::warn!(
            "{said}the set is saved, but the env file was not updated [{}]: {}",
            error.code,
            error.message
        );
    }
}
