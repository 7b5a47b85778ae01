//! `serve`'s events: what this process noted (the schedule's refreshes, the
//! broker's, the admin API's, a consent) is recorded in each account's
//! event record as soon as it is noted, and every account's outbox is
//! offered to its sinks in the background, so no delivery ever holds up a
//! refresh or an answer. Events a CLI run on this store left undelivered
//! are picked up by the sweep, at most once a check interval (at least a
//! minute), at a wake of the background refresh (it nudges this task), so
//! that no timer of its own wakes an idle server. With `ping_url`, the
//! dead-man check is pinged on a timer of its own, once a check interval
//! (at least a minute): success while every account works, else `/fail`.
//! A sink that fails is tried again after a pause that doubles (up to ten
//! minutes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::AppState;
use super::accounts::Account;
use crate::account_name::AccountName;
use crate::events::Health;
use crate::notify::{PingStage, Sinks};

/// The shortest sweep: every account's outbox looked at, noted or not.
const MIN_SWEEP: Duration = Duration::from_secs(60);
/// How long one account's deliveries may take at one turn.
const DELIVERY_WINDOW: Duration = Duration::from_secs(30);
/// The longest pause before a failed sink is tried again.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(600);

/// An account whose deliveries failed: not before `next`.
struct Backoff {
    next: Instant,
    failures: u32,
}

pub async fn run(state: Arc<AppState>, check_interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut backoff: HashMap<AccountName, Backoff> = HashMap::new();
    let sweep_every = check_interval.max(MIN_SWEEP);
    let pings = !state.settings.events.ping_urls.is_empty();
    // The first sweep (and ping) at start: what CLI runs left is sent.
    let mut sweep_at = Instant::now();
    let mut ping_at = Instant::now();
    loop {
        let retry_at = backoff.values().map(|b| b.next).min();
        let timer = [retry_at, pings.then_some(ping_at)].into_iter().flatten().min();
        let stopping = tokio::select! {
            () = crate::events::noted() => false,
            () = sleep_until(timer) => false,
            _ = stop.wait_for(|stop| *stop) => true,
        };
        let accounts = state.accounts.all();
        let mut due = record_notes(&accounts).await;
        if stopping {
            break;
        }
        let now = Instant::now();
        due.extend(
            backoff
                .iter()
                .filter(|(_, b)| b.next <= now)
                .map(|(name, _)| name.clone()),
        );
        let sweep = now >= sweep_at;
        if sweep {
            sweep_at = now + sweep_every;
            due.extend(accounts.keys().cloned());
        }
        due.sort();
        due.dedup();
        for name in due {
            let Some(account) = accounts.get(&name) else { continue };
            if backoff.get(&name).is_some_and(|b| Instant::now() < b.next) {
                continue;
            }
            deliver(account, &mut backoff).await;
        }
        if pings && now >= ping_at {
            ping_at = now + sweep_every;
            ping(&state, &accounts).await;
        }
    }
}

/// Sleeps until `at`, or for ever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Records this process's notes in their accounts' records; returns the
/// accounts noted (their outboxes may have grown).
async fn record_notes(accounts: &super::accounts::Map) -> Vec<AccountName> {
    let mut noted = Vec::new();
    for (name, notes) in crate::events::take_notes_by_account() {
        let Some(account) = accounts.get(&name) else {
            tracing::debug!("events of account {name}, which this server does not serve, are not recorded");
            continue;
        };
        // A sink that cannot be used costs its deliveries, not the state.
        let sinks = Sinks::of(&account.settings).unwrap_or_else(|_| Sinks::none());
        let recorded =
            crate::notify::record_notes(&account.settings, account.store.as_ref(), &name, &notes, &sinks).await;
        match recorded {
            Ok(_) => noted.push(name),
            Err(e) => {
                // Tried again at the next turn: a store's blip loses nothing.
                tracing::warn!("events of account {name} not recorded yet [{}]: {e}", e.code());
                crate::events::restore_notes(notes);
            }
        }
    }
    noted
}

/// Offers one account's outbox to its sinks; a failure pauses it.
async fn deliver(account: &Account, backoff: &mut HashMap<AccountName, Backoff>) {
    let deadline = Instant::now() + DELIVERY_WINDOW;
    let delivered = match Sinks::of(&account.settings) {
        Ok(sinks) => {
            let sinks = Arc::new(sinks);
            crate::notify::deliver_outbox(&account.settings, account.store.as_ref(), &sinks, deadline).await
        }
        Err(e) => Err(e),
    };
    match delivered {
        Ok(settled) if settled.waiting == 0 => {
            backoff.remove(&account.name);
        }
        Ok(_) | Err(_) => {
            if let Err(e) = &delivered {
                tracing::warn!("events of account {} not delivered [{}]: {e}", account.name, e.code());
            }
            let entry = backoff.entry(account.name.clone()).or_insert(Backoff {
                next: Instant::now(),
                failures: 0,
            });
            entry.failures = entry.failures.saturating_add(1);
            let pause = Duration::from_secs(5).saturating_mul(1 << entry.failures.min(8));
            entry.next = Instant::now() + pause.min(MAX_RETRY_PAUSE);
        }
    }
}

/// The dead-man ping: success while every account's record says it works.
async fn ping(state: &AppState, accounts: &super::accounts::Map) {
    let mut failing = Vec::new();
    for (name, account) in accounts.iter() {
        if let Ok((record, _)) = crate::notify::load_record(account.store.as_ref()).await
            && record.health != Health::Healthy
        {
            failing.push(name.to_string());
        }
    }
    let deadline = Instant::now() + state.settings.events.notify_timeout.max(Duration::from_secs(5));
    if failing.is_empty() {
        crate::notify::ping(
            &state.settings,
            PingStage::Success,
            "withings-token serve: every account works",
            deadline,
        )
        .await;
    } else {
        let body = format!("withings-token serve: failing accounts: {}", failing.join(", "));
        crate::notify::ping(&state.settings, PingStage::Fail, &body, deadline).await;
    }
}
