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
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::account_name::AccountName;
use crate::error::{Error, Result};
use crate::events::{Claim, Context, Event, EventRecord, Noted};
use crate::http::HttpClient;
use crate::settings::Settings;
use crate::store::TokenStore;

pub use self::ping::{PingStage, Pinged, ping, ping_at_exit, ping_each, ping_left, ping_waits};
pub use self::sent::{Sent, SinkInfo, shown_url};
pub use self::sinks::{Sinks, test_event};

/// A claim outlives its run's deadline by this much.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

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
    let aging_after = chrono::Duration::from_std(settings.events.aging_after).unwrap_or(chrono::Duration::MAX);
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

/// Offers every waiting event of the account to this process's sinks that
/// still owe it, until `deadline`; records what was delivered. Each sink
/// takes its events in order, and the sinks at once, so one that never
/// answers holds up no other; after a failure a sink gets no later event
/// (a `recovered` never arrives before its `refresh_failed`). The events
/// are claimed in the record first, so that two runs at once do not both
/// send them.
pub async fn deliver_outbox(
    settings: &Settings,
    store: &dyn TokenStore,
    sinks: &Arc<Sinks>,
    deadline: Instant,
) -> Result<Settled> {
    let claimer = Claimer::new(sinks, deadline);
    let mut claimed = Claimed::default();
    swap_record(store, |record| claimed = claimer.claim(record)).await?;
    deliver_claimed(settings, store, sinks, claimed, deadline).await
}

/// Offers the events this run claimed to its sinks; records the outcome.
async fn deliver_claimed(
    settings: &Settings,
    store: &dyn TokenStore,
    sinks: &Arc<Sinks>,
    claimed: Claimed,
    deadline: Instant,
) -> Result<Settled> {
    if claimed.events.is_empty() {
        return Ok(Settled {
            waiting: claimed.waiting,
            ..Settled::default()
        });
    }
    let http = HttpClient::new(settings.http)?;
    let outcomes = offer(sinks, &http, &claimed.events, deadline).await;
    let mut settled = Settled::default();
    swap_record(store, |record| {
        settled = Settled::default();
        for outcome in &outcomes {
            match &outcome.sent {
                Sent::Delivered => {
                    record.delivered(&outcome.id, &outcome.sink);
                    settled.delivered += 1;
                }
                Sent::Refused { .. } => record.delivered(&outcome.id, &outcome.sink),
                Sent::Retry { .. } => record.failed_try(&outcome.id),
            }
        }
        for (event, _) in &claimed.events {
            record.release_claim(&event.id);
        }
        settled.waiting = record.outbox.len();
    })
    .await?;
    say_undelivered(sinks, &outcomes);
    Ok(settled)
}

/// The events this run claimed, each with the sinks of ours it owes.
#[derive(Default)]
struct Claimed {
    events: Vec<(Event, Vec<String>)>,
    waiting: usize,
}

/// This process, claiming the waiting events no other run is delivering
/// for its sinks, until a little after `deadline` (a run that dies leaves
/// its claim to run out, or to be found gone).
struct Claimer {
    sinks: Vec<String>,
    by: String,
    until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Claimer {
    fn new(sinks: &Sinks, deadline: Instant) -> Claimer {
        let left = deadline.saturating_duration_since(Instant::now());
        let until = (!left.is_zero()).then(|| {
            crate::tokens::now() + chrono::Duration::from_std(left + CLAIM_MARGIN).unwrap_or(chrono::Duration::MAX)
        });
        Claimer {
            sinks: sinks.ids(),
            by: format!("{}:{}", crate::clock::host_name(), std::process::id()),
            until,
        }
    }

    fn claim(&self, record: &mut EventRecord) -> Claimed {
        let waiting = record.outbox.len();
        let Some(until) = self.until.filter(|_| !self.sinks.is_empty()) else {
            return Claimed {
                events: Vec::new(),
                waiting,
            };
        };
        let claim = Claim {
            sinks: &self.sinks,
            by: self.by.clone(),
            is_gone: &claimer_is_gone,
        };
        Claimed {
            events: record.claim(&claim, crate::tokens::now(), until),
            waiting,
        }
    }
}

/// Whether the claimer `host:pid` is a process of this host that is gone
/// (killed while delivering): its claim is void. Another host's claim
/// runs out on its own.
fn claimer_is_gone(by: &str) -> bool {
    let Some((host, pid)) = by.rsplit_once(':') else {
        return false;
    };
    host == crate::clock::host_name() && !std::path::Path::new("/proc").join(pid).exists()
}

/// One delivery try's end, for the record and the log.
struct Outcome {
    id: String,
    kind: &'static str,
    sink: String,
    sent: Sent,
}

/// Every sink its events, in order, the sinks at once.
async fn offer(
    sinks: &Arc<Sinks>,
    http: &HttpClient,
    events: &[(Event, Vec<String>)],
    deadline: Instant,
) -> Vec<Outcome> {
    let mut tasks = tokio::task::JoinSet::new();
    for sink in sinks.ids() {
        let owed: Vec<Event> = events
            .iter()
            .filter(|(_, owed)| owed.contains(&sink))
            .map(|(event, _)| event.clone())
            .collect();
        if owed.is_empty() {
            continue;
        }
        let (sinks, http) = (Arc::clone(sinks), http.clone());
        tasks.spawn(async move { offer_in_order(&sinks, &sink, &http, owed, deadline).await });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(done) => outcomes.extend(done),
            Err(e) => tracing::warn!("a delivery task ended early: {e}"),
        }
    }
    outcomes
}

async fn offer_in_order(
    sinks: &Sinks,
    sink: &str,
    http: &HttpClient,
    events: Vec<Event>,
    deadline: Instant,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut held: Option<String> = None;
    for event in events {
        let sent = match &held {
            Some(why) => Sent::Retry {
                after: None,
                why: why.clone(),
            },
            None if Instant::now() >= deadline => Sent::Retry {
                after: None,
                why: "the notify timeout ran out first".to_owned(),
            },
            None => sinks.send(sink, &event, http, deadline).await,
        };
        if held.is_none() && matches!(sent, Sent::Retry { .. }) {
            held = Some("an earlier event to this sink is not delivered yet".to_owned());
        }
        outcomes.push(Outcome {
            id: event.id.clone(),
            kind: event.kind.as_str(),
            sink: sink.to_owned(),
            sent,
        });
    }
    outcomes
}

/// What could not be delivered, on stderr: never the exit code's business.
fn say_undelivered(sinks: &Sinks, outcomes: &[Outcome]) {
    for Outcome { kind, sink, sent, .. } in outcomes {
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

/// The record as stored, refused when it cannot be read as one: what a
/// one-time link is checked against (a record started anew would forget
/// the links already used).
pub async fn load_record_strictly(store: &dyn TokenStore) -> Result<EventRecord> {
    let Some(bytes) = store.load_events().await? else {
        return Ok(EventRecord::default());
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::config(
            format!("the event record of {} cannot be read ({e})", store.location()),
            "move it aside (it holds alert state and undelivered events, no token); a one-time link works again after that",
        )
    })
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
    // Busy, not unreachable: another run kept swapping it meanwhile.
    Err(Error::LockTimeout {
        place: format!("the event record of {}", store.location()),
        waited: Duration::from_millis(5).saturating_mul(SWAP_TRIES as u32),
    })
}
