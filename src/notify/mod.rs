//! Delivering events: what this process noted (`events::take_notes_by_account`) moves
//! each account's event record (`EventRecord::observe`), the events that
//! causes join the account's outbox (kept in the store beside the set, so a
//! run killed before it delivered leaves them for the next run or `serve`),
//! and every waiting event is offered to the sinks (`sinks`: commands,
//! webhooks; `ping` is the dead-man check, never queued). A CLI run waits
//! for deliveries until its deadline (`--notify-timeout`); what fails is
//! said on stderr and never changes the exit code.

mod command;
mod outbox;
mod ping;
mod record;
mod sent;
mod sinks;
#[cfg(test)]
mod tests;
mod webhook;

use std::sync::Arc;
use std::time::Instant;

use crate::account_name::AccountName;
use crate::error::{Error, Result};
use crate::events::{Context, Event, EventRecord, Noted};
use crate::http::HttpClient;
use crate::settings::Settings;
use crate::store::TokenStore;

use self::outbox::{Claimed, Claimer, deliver_claimed};
pub use self::outbox::{Settled, deliver_outbox};
pub use self::ping::{PingStage, Pinged, ping, ping_at_exit, ping_each, ping_left, ping_waits};
pub use self::record::{load_record, load_record_local, load_record_strictly, reseal_record, swap_record};
pub use self::sent::{Sent, SinkInfo, shown_url};
pub use self::sinks::{Sinks, test_event};

/// Settles this process's notes for every account noted in `settings`'
/// deployment, and offers each such account's outbox to its sinks until
/// `deadline`. `settings` is the run's (an account's, or the deployment's):
/// another account's settings are resolved from it.
pub async fn settle(settings: &Settings, deadline: Instant) -> Settled {
    let mut total = Settled::default();
    for (account, notes) in crate::events::take_notes_by_account() {
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
    let by_account = crate::events::take_notes_by_account();
    let unchanged = by_account
        .iter()
        .all(|(account, notes)| leaves_unchanged(settings, account, notes));
    if !unchanged {
        crate::events::restore_notes(by_account.into_values().flatten().collect());
    }
    unchanged
}

/// Whether `notes` leave `account`'s record (a file store's, read without
/// a runtime) as it is, with nothing waiting in its outbox.
fn leaves_unchanged(settings: &Settings, account: &AccountName, notes: &[Noted]) -> bool {
    let Ok(account_settings) = settings_of(settings, account) else {
        return false;
    };
    let Ok(store) = crate::store::open(&account_settings) else {
        return false;
    };
    let Some(Ok(record)) = load_record_local(store.as_ref()) else {
        return false;
    };
    if !record.outbox.is_empty() {
        return false;
    }
    let mut moved = record.clone();
    let none = || None;
    notes.iter().all(|noted| {
        let cx = Context {
            account: account.as_str(),
            now: noted.at,
            aging_after: aging_after(&account_settings),
            reconsent_link: &none,
        };
        moved.observe(&noted.observation, &cx).is_empty()
    }) && moved == record
}

/// The age of a refresh token past which it is reported.
fn aging_after(settings: &Settings) -> chrono::Duration {
    chrono::Duration::from_std(settings.events.aging_after).unwrap_or(chrono::Duration::MAX)
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
    // A sink that cannot be used (a webhook URL that is not one) costs the
    // deliveries, not the alert state that `status` shows.
    let sinks = Arc::new(Sinks::of(settings).unwrap_or_else(|e| {
        tracing::warn!("no event is delivered for account {account}: {e} [{}]", e.code());
        Sinks::none()
    }));
    let store = crate::store::open(settings)?;
    // One swap records the notes and claims what this run delivers.
    let claimer = Claimer::new(&sinks, deadline);
    let recorded = swap_notes(settings, store.as_ref(), (account, notes), &sinks, Some(&claimer)).await;
    let (queued, claimed) = match recorded {
        Ok(recorded) => recorded,
        Err(Error::StoreUnavailable { .. }) => {
            return Ok(deliver_unrecorded(settings, account, notes, &sinks, deadline).await);
        }
        Err(e) => return Err(e),
    };
    let mut settled = deliver_claimed(settings, store.as_ref(), &sinks, claimed, deadline).await?;
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
    let (queued, _) = swap_notes(settings, store, (account, notes), sinks, None).await?;
    Ok(queued)
}

/// [`record_notes`], and with `claimer` the claim of what it delivers, in
/// one swap of the record.
async fn swap_notes(
    settings: &Settings,
    store: &dyn TokenStore,
    (account, notes): (&AccountName, &[Noted]),
    sinks: &Sinks,
    claimer: Option<&Claimer>,
) -> Result<(usize, Claimed)> {
    let ids = sinks.ids();
    let link = || reconsent_link(settings, account);
    let aging_after = aging_after(settings);
    let mut queued = 0;
    let mut claimed = Claimed::default();
    swap_record(store, |record| {
        queued = 0;
        if !ids.is_empty() {
            record.forget_sinks_except(&ids);
            record.sinks.clone_from(&ids);
        }
        let owed = record.sinks.clone();
        for noted in notes {
            let cx = Context {
                account: account.as_str(),
                now: noted.at,
                aging_after,
                reconsent_link: &link,
            };
            for event in record.observe(&noted.observation, &cx) {
                log_event(&event);
                record.enqueue(event, &owed);
                queued += 1;
            }
        }
        claimed = match claimer {
            Some(claimer) => claimer.claim(record),
            None => Claimed::default(),
        };
    })
    .await?;
    Ok((queued, claimed))
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
    crate::events::link::issue(public, key, account, crate::tokens::now())
        .map_err(|e| tracing::warn!("{e}"))
        .ok()
}
