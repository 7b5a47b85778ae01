//! The background refresh: the store is assessed with the same decision and
//! buffer as `refresh --if-needed`, and refreshed through the same job when
//! due. Between checks it sleeps until the set is due, but never longer
//! than `--check-interval` (pizauth's `MAX_WAIT_SECS`): a suspended host, a
//! jumped clock or a set a peer changed is noticed within one interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Error;
use crate::tokens::{Action, Policy, assess, now};

use super::AppState;
use super::jobs::{self, Trigger, Want};

/// The shortest pause, so that a clock at the due instant never spins.
const MIN_PAUSE: Duration = Duration::from_millis(100);

/// What the loop remembers between checks.
#[derive(Default)]
struct Memory {
    /// The token generation whose refresh token Withings refused: it is not
    /// sent again (every try would be refused too) until the store holds
    /// another set (`exchange`, a CLI run, a peer).
    refused: Option<u64>,
    /// Whether "no token set" was already said.
    said_no_tokens: bool,
}

/// Checks at once, then after each pause, until `stop` turns true. A check
/// in progress (a refresh included) is finished before it returns.
pub async fn run(state: Arc<AppState>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut memory = Memory::default();
    loop {
        let pause = check(&state, interval, &mut memory).await;
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// One check; returns how long to wait before the next one.
async fn check(state: &Arc<AppState>, interval: Duration, memory: &mut Memory) -> Duration {
    let stored = match state.store.load().await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!("cannot check the token store [{}]: {e}", e.code());
            return interval;
        }
    };
    if memory.refused.is_some_and(|g| g == stored.tokens_generation) {
        return interval;
    }
    let policy = Policy {
        buffer: state.settings.buffer,
        force: false,
    };
    let seed = crate::rotation::seed_for(&state.settings, &stored);
    let assessment = assess(stored.tokens.as_ref(), seed, None, now(), policy);
    memory.said_no_tokens &= assessment.action == Action::NoTokens;
    match assessment.action {
        Action::NoTokens => {
            if !memory.said_no_tokens {
                tracing::warn!(
                    "no token set yet: authorise with GET /admin/authorization-url, then POST /admin/token/exchange"
                );
                memory.said_no_tokens = true;
            }
            interval
        }
        Action::NotDue { refresh_at, .. } => {
            let until_due = (refresh_at - now()).to_std().unwrap_or(Duration::ZERO);
            until_due.clamp(MIN_PAUSE, interval.max(MIN_PAUSE))
        }
        Action::Refresh(_) | Action::RefreshedByPeer => {
            let want = Want::IfDue { buffer: policy.buffer };
            let done = jobs::refresh(state, Trigger::Schedule, want, &jobs::default_delivery()).await;
            if let Err(Error::InvalidRefreshToken { .. }) = done {
                tracing::error!(
                    "the stored refresh token was refused; no refresh is tried until the store holds another set (re-authorise: GET /admin/authorization-url, then POST /admin/token/exchange)"
                );
                memory.refused = Some(stored.tokens_generation);
            }
            interval
        }
    }
}
