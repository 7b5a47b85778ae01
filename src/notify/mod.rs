//! Delivering events: what this process noted (`events::take_notes`) moves
//! each account's event record (`EventRecord::observe`), the events that
//! causes join the account's outbox (kept in the store beside the set, so a
//! run killed before it delivered leaves them for the next run or `serve`),
//! and every waiting event is offered to the sinks (`sinks`: commands,
//! webhooks; `ping` is the dead-man check, never queued). A CLI run waits
//! for deliveries until its deadline (`--notify-timeout`); what fails is
//! said on stderr and never changes the exit code.

mod command;
mod ping;
mod sent;
mod sinks;
#[cfg(test)]
mod tests;
mod webhook;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::account_name::AccountName;
use crate::error::{Error, Result};
use crate::events::{Context, Event, EventRecord, Noted};
use crate::http::HttpClient;
use crate::settings::Settings;
use crate::store::TokenStore;

pub use self::ping::{PingStage, Pinged, ping, ping_each};
pub use self::sent::{Sent, SinkInfo, shown_url};
pub use self::sinks::{Sinks, test_event};

/// How often a swap of the record is tried against other runs' swaps.
const SWAP_TRIES: usize = 20;

/// What a settle did, for the caller's summary and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    pub queued: usize,
    pub delivered: usize,
    /// Events still waiting (for the next run, or `serve`'s next turn).
    pub waiting: usize,
}

/// Settles this process's notes for every account noted in `settings`'
/// deployment, and offers each such account's outbox to its sinks until
/// `deadline`. `settings` is the run's (an account's, or the deployment's):
/// another account's settings are resolved from it.
pub async fn settle(settings: &Settings, deadline: Instant) -> Settled {
    let mut by_account: BTreeMap<AccountName, Vec<Noted>> = BTreeMap::new();
    for noted in crate::events::take_notes() {
        by_account.entry(noted.account.clone()).or_default().push(noted);
    }
    let mut total = Settled::default();
    for (account, notes) in by_account {
        let account_settings = match settings_of(settings, &account) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("events of account {account} not recorded: {e}");
                continue;
            }
        };
        match settle_account(&account_settings, &account, &notes, deadline).await {
            Ok(settled) => {
                total.queued += settled.queued;
                total.delivered += settled.delivered;
                total.waiting += settled.waiting;
            }
            Err(e) => tracing::warn!("events of account {account} not recorded: {e}"),
        }
    }
    total
}

/// Settles without a runtime when it can: every account noted has a file
/// store whose record the notes leave as it is, with nothing waiting (a
/// cron `refresh --if-needed` that found nothing due). Returns whether it
/// did; otherwise the notes are left for [`settle`].
pub fn settled_without_change(settings: &Settings) -> bool {
    let notes = crate::events::take_notes();
    let unchanged = notes.iter().all(|noted| {
        let Ok(account_settings) = settings_of(settings, &noted.account) else {
            return false;
        };
        let Ok(store) = crate::store::open(&account_settings) else {
            return false;
        };
        let Some(Ok(record)) = load_record_local(store.as_ref()) else {
            return false;
        };
        let mut moved = record.clone();
        let none = || None;
        let cx = Context {
            account: noted.account.as_str(),
            now: noted.at,
            aging_after: chrono::Duration::from_std(account_settings.events.aging_after)
                .unwrap_or(chrono::Duration::MAX),
            reconsent_link: &none,
        };
        moved.observe(&noted.observation, &cx).is_empty() && moved == record && record.outbox.is_empty()
    });
    if !unchanged {
        crate::events::restore_notes(notes);
    }
    unchanged
}

/// The settings of `account`: the run's own when they are its.
fn settings_of(settings: &Settings, account: &AccountName) -> Result<Settings> {
    if settings.account.as_ref() == Some(account) || (settings.account.is_none() && account.is_default()) {
        return Ok(settings.clone());
    }
    settings.for_account(account)
}

/// One account: its notes recorded, then its outbox delivered.
pub async fn settle_account(
    settings: &Settings,
    account: &AccountName,
    notes: &[Noted],
    deadline: Instant,
) -> Result<Settled> {
    let sinks = Sinks::of(settings)?;
    let store = crate::store::open(settings)?;
    let queued = match record_notes(settings, store.as_ref(), account, notes, &sinks).await {
        Ok(queued) => queued,
        Err(Error::StoreUnavailable { .. }) => {
            return Ok(deliver_unrecorded(settings, account, notes, &sinks, deadline).await);
        }
        Err(e) => return Err(e),
    };
    let mut settled = deliver_outbox(settings, store.as_ref(), &sinks, deadline).await?;
    settled.queued = queued;
    Ok(settled)
}

/// With the store unreachable the record cannot be read or kept: the
/// events `notes` cause from a fresh record go straight to the sinks (so
/// an unreachable store is still said), undeduplicated and unkept.
async fn deliver_unrecorded(
    settings: &Settings,
    account: &AccountName,
    notes: &[Noted],
    sinks: &Sinks,
    deadline: Instant,
) -> Settled {
    let mut record = EventRecord::default();
    let none = || None;
    let events: Vec<Event> = notes
        .iter()
        .flat_map(|noted| {
            let cx = Context {
                account: account.as_str(),
                now: noted.at,
                aging_after: chrono::Duration::MAX,
                reconsent_link: &none,
            };
            record.observe(&noted.observation, &cx)
        })
        .collect();
    let Ok(http) = HttpClient::new(settings.http) else {
        return Settled::default();
    };
    let mut settled = Settled::default();
    for event in &events {
        log_event(event);
        for sink in sinks.ids() {
            match sinks.send(&sink, event, &http, deadline).await {
                Sent::Delivered => settled.delivered += 1,
                Sent::Retry { why, .. } | Sent::Refused { why } => tracing::warn!(
                    "the {} event was not delivered to {} ({why}); the store is unreachable, so it is not kept",
                    event.kind.as_str(),
                    sinks.shown(&sink)
                ),
            }
        }
    }
    settled
}

/// Moves the account's record by `notes`, queueing the events that causes
/// for `sinks`. Returns how many were queued; writes nothing when nothing
/// changed.
pub async fn record_notes(
    settings: &Settings,
    store: &dyn TokenStore,
    account: &AccountName,
    notes: &[Noted],
    sinks: &Sinks,
) -> Result<usize> {
    let ids = sinks.ids();
    let link = || reconsent_link(settings, account);
    let mut queued = 0;
    swap_record(store, |record| {
        queued = 0;
        for noted in notes {
            let cx = Context {
                account: account.as_str(),
                now: noted.at,
                aging_after: chrono::Duration::from_std(settings.events.aging_after).unwrap_or(chrono::Duration::MAX),
                reconsent_link: &link,
            };
            for event in record.observe(&noted.observation, &cx) {
                log_event(&event);
                record.enqueue(event, &ids);
                queued += 1;
            }
        }
        record.forget_sinks_except(&ids);
    })
    .await?;
    Ok(queued)
}

/// Every event is logged as it is made, whatever the sinks: at `info`,
/// which `serve` logs by default; a CLI run has said the same as its
/// error or report already.
fn log_event(event: &Event) {
    tracing::info!(event = event.kind.as_str(), account = %event.account, code = %event.code, "{}", event.message);
}

/// The one-time re-consent link for `account`, when `serve` has a public
/// address and links can be signed.
fn reconsent_link(settings: &Settings, account: &AccountName) -> Option<String> {
    let public = settings.events.public_url.as_deref()?;
    let key = settings.server.admin_token.as_ref()?;
    crate::events::link::issue(public, key, account, crate::tokens::now()).ok()
}

/// Offers every waiting event of the account to the sinks that still owe
/// it, until `deadline`; records what was delivered.
pub async fn deliver_outbox(
    settings: &Settings,
    store: &dyn TokenStore,
    sinks: &Sinks,
    deadline: Instant,
) -> Result<Settled> {
    let record = load_record(store).await?.0;
    if record.outbox.is_empty() || Instant::now() >= deadline {
        return Ok(Settled {
            waiting: record.outbox.len(),
            ..Settled::default()
        });
    }
    let http = HttpClient::new(settings.http)?;
    let mut outcomes: Vec<(String, String, Sent)> = Vec::new();
    for pending in &record.outbox {
        for sink in &pending.owed {
            let sent = if Instant::now() >= deadline {
                Sent::Retry {
                    after: None,
                    why: "the notify timeout ran out first".to_owned(),
                }
            } else {
                sinks.send(sink, &pending.event, &http, deadline).await
            };
            outcomes.push((pending.event.id.clone(), sink.clone(), sent));
        }
    }
    let mut settled = Settled::default();
    swap_record(store, |record| {
        settled = Settled::default();
        for (id, sink, sent) in &outcomes {
            match sent {
                Sent::Delivered => {
                    record.delivered(id, sink);
                    settled.delivered += 1;
                }
                Sent::Refused { .. } => record.delivered(id, sink),
                Sent::Retry { .. } => record.failed_try(id),
            }
        }
        settled.waiting = record.outbox.len();
    })
    .await?;
    say_undelivered(sinks, &record, &outcomes);
    Ok(settled)
}

/// What could not be delivered, on stderr: never the exit code's business.
fn say_undelivered(sinks: &Sinks, record: &EventRecord, outcomes: &[(String, String, Sent)]) {
    for (id, sink, sent) in outcomes {
        let kind = record
            .outbox
            .iter()
            .find(|p| &p.event.id == id)
            .map_or("event", |p| p.event.kind.as_str());
        match sent {
            Sent::Delivered => {}
            Sent::Retry { why, .. } => tracing::warn!(
                "the {kind} event was not delivered to {}: {why}; it stays in the outbox for the next run",
                sinks.shown(sink)
            ),
            Sent::Refused { why } => tracing::warn!(
                "{} refused the {kind} event ({why}); it is not sent there again",
                sinks.shown(sink)
            ),
        }
    }
}

/// The record as stored (an unreadable one counts as empty, and is
/// replaced: it holds no token, and refusing to record would silence every
/// alert), with the bytes it was read from for the swap.
pub async fn load_record(store: &dyn TokenStore) -> Result<(EventRecord, Option<Vec<u8>>)> {
    let bytes = store.load_events().await?;
    Ok((parse_record(bytes.as_deref()), bytes))
}

/// [`load_record`] without a runtime (a file store); `None` for Redis.
pub fn load_record_local(store: &dyn TokenStore) -> Option<Result<EventRecord>> {
    let bytes = store.load_events_local()?;
    Some(bytes.map(|bytes| parse_record(bytes.as_deref())))
}

fn parse_record(bytes: Option<&[u8]>) -> EventRecord {
    let Some(bytes) = bytes else {
        return EventRecord::default();
    };
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        tracing::warn!("the event record could not be read ({e}); starting a new one");
        EventRecord::default()
    })
}

/// Applies `change` to the stored record and saves it when it changed,
/// retried while other runs swap theirs in between.
pub async fn swap_record(store: &dyn TokenStore, mut change: impl FnMut(&mut EventRecord)) -> Result<()> {
    for _ in 0..SWAP_TRIES {
        let (mut record, bytes) = load_record(store).await?;
        let before = record.clone();
        change(&mut record);
        if record == before {
            return Ok(());
        }
        let next = serde_json::to_vec(&record).map_err(Error::internal)?;
        if store.swap_events(bytes.as_deref(), &next).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(Error::StoreUnavailable {
        detail: format!(
            "the event record in {} kept changing under {SWAP_TRIES} tries",
            store.location()
        ),
    })
}
