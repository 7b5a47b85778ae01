//! The outbox's delivery: a run claims the waiting events no other run is
//! delivering, offers each sink its events in order and all sinks at once,
//! and records what was delivered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::swap_record;
use super::sent::Sent;
use super::sinks::Sinks;
use crate::error::Result;
use crate::events::{Claim, Event, EventRecord};
use crate::http::HttpClient;
use crate::settings::Settings;
use crate::store::TokenStore;

/// A claim outlives its run's deadline by this much.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// What a settle did, for the caller's summary and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    pub queued: usize,
    pub delivered: usize,
    /// Events still waiting (for the next run, or `serve`'s next turn).
    pub waiting: usize,
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
pub(super) async fn deliver_claimed(
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
pub(super) struct Claimed {
    events: Vec<(Event, Vec<String>)>,
    waiting: usize,
}

/// This process, claiming the waiting events no other run is delivering
/// for its sinks, until a little after `deadline` (a run that dies leaves
/// its claim to run out, or to be found gone).
pub(super) struct Claimer {
    sinks: Vec<String>,
    by: String,
    until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Claimer {
    pub(super) fn new(sinks: &Sinks, deadline: Instant) -> Claimer {
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

    pub(super) fn claim(&self, record: &mut EventRecord) -> Claimed {
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
