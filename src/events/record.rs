//! An account's event record: the state its observations moved (is it
//! failing, since when, which copies are behind), the outbox of events not
//! yet delivered, and the one-time links already used. Kept as JSON beside
//! the account's set (`store::events`); it holds no token.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Context, Event, EventKind, Observation, Problem};

/// The most events an account's outbox keeps; beyond, the oldest goes and
/// is counted in [`EventRecord::dropped`].
pub const MAX_OUTBOX: usize = 100;

/// The most used one-time links remembered (each for its hour).
const MAX_USED_LINKS: usize = 64;

/// Whether the account's refreshes work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    #[default]
    Healthy,
    /// Refreshes fail for a reason that passes (network, 5xx, 429).
    Failing {
        since: DateTime<Utc>,
        code: String,
        attempts: u32,
        /// The set generation that failed: a newer one is a recovery.
        generation: u64,
    },
    /// Withings refused the refresh token: new consent is needed.
    NeedsReauthorization {
        since: DateTime<Utc>,
        code: String,
        generation: u64,
    },
}

impl Health {
    fn since(&self) -> Option<DateTime<Utc>> {
        match self {
            Health::Healthy => None,
            Health::Failing { since, .. } | Health::NeedsReauthorization { since, .. } => Some(*since),
        }
    }

    fn generation(&self) -> Option<u64> {
        match self {
            Health::Healthy => None,
            Health::Failing { generation, .. } | Health::NeedsReauthorization { generation, .. } => Some(*generation),
        }
    }
}

/// An event waiting for sinks, and the sinks (by [`crate::notify`]'s id)
/// that have not taken it yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub event: Event,
    pub owed: Vec<String>,
    /// Failed delivery tries, for the log and the backoff.
    #[serde(default)]
    pub tries: u32,
    /// A run is delivering it until then: others leave it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<DateTime<Utc>>,
    /// That run, `host:pid`: a claim of a process of this host that is
    /// gone (killed while delivering) is no claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
}

/// Who claims the waiting events, for which sinks, and how to tell that
/// another claimer is gone.
pub struct Claim<'a> {
    pub sinks: &'a [String],
    /// `host:pid` of this process.
    pub by: String,
    pub is_gone: &'a (dyn Fn(&str) -> bool + Sync),
}

/// A one-time link that was followed, until it would have expired anyway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsedLink {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(default)]
    pub health: Health,
    /// Copies whose last delivery failed, and since when.
    #[serde(default)]
    pub copies_failing: BTreeMap<String, DateTime<Utc>>,
    /// The set generation `refresh_token_aging` was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aging_sent_for: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_unavailable_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub outbox: VecDeque<Pending>,
    /// Events dropped from a full outbox, never delivered.
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub used_links: Vec<UsedLink>,
    /// The set generation of the last recovery: a failure of an older set,
    /// recorded late (`serve` records every half second), is over already.
    #[serde(default)]
    pub good_generation: u64,
    /// The sinks of the last run that had any: a run without sinks (an
    /// `access-token` beside a `serve` that alerts) queues its events for
    /// these, rather than dropping them.
    #[serde(default)]
    pub sinks: Vec<String>,
}

impl EventRecord {
    /// The events `observation` causes (none when it changes nothing), with
    /// the record moved to the state it describes.
    pub fn observe(&mut self, observation: &Observation, cx: &Context) -> Vec<Event> {
        match observation {
            Observation::Checked {
                generation,
                rotated,
                refresh_token_age,
            } => {
                let mut events = self.succeeded(*generation, *rotated, cx);
                events.extend(self.aging(*generation, *refresh_token_age, cx));
                if *rotated {
                    events.push(Event::new(
                        EventKind::Refreshed,
                        cx.account,
                        cx.now,
                        "REFRESHED",
                        format!("the tokens were refreshed (set generation {generation})"),
                        String::new(),
                    ));
                }
                events
            }
            Observation::Consented { generation } => self.succeeded(*generation, true, cx),
            Observation::RefreshFailed { problem, generation } => {
                self.refresh_failed(problem, *generation, cx).into_iter().collect()
            }
            Observation::GrantRefused { problem, generation } => {
                self.grant_refused(problem, *generation, cx).into_iter().collect()
            }
            Observation::CopyDelivered { copy } => self.copy_delivered(copy, cx).into_iter().collect(),
            Observation::CopyFailed { copy, problem } => self.copy_failed(copy, problem, cx).into_iter().collect(),
            Observation::StoreUnavailable(problem) => self.store_unavailable(problem, cx).into_iter().collect(),
            Observation::StoreAvailable => self.store_available(cx).into_iter().collect(),
        }
    }

    /// A set in use: a recovery when the account was failing and this set
    /// is new (rotated here, or a generation the failure did not see). A
    /// set found not due is no proof: a forced refresh that failed, then a
    /// cron run that found nothing due, would flap failed/recovered.
    fn succeeded(&mut self, generation: u64, rotated: bool, cx: &Context) -> Vec<Event> {
        let new_set = rotated || self.health.generation().is_some_and(|failed| generation > failed);
        if self.health == Health::Healthy || !new_set {
            return Vec::new();
        }
        // Kept at a recovery only: a working account's record is not
        // rewritten by every check.
        self.good_generation = self.good_generation.max(generation);
        let was = std::mem::take(&mut self.health);
        let what = match &was {
            Health::NeedsReauthorization { .. } => "new consent was saved",
            _ => "the tokens were refreshed again",
        };
        let mut event = Event::new(
            EventKind::Recovered,
            cx.account,
            cx.now,
            "RECOVERED",
            format!("{what}: the account works again (set generation {generation})"),
            String::new(),
        );
        event.since = was.since();
        vec![event]
    }

    fn refresh_failed(&mut self, problem: &Problem, generation: u64, cx: &Context) -> Option<Event> {
        if generation < self.good_generation {
            return None;
        }
        match &mut self.health {
            Health::Failing { attempts, .. } => {
                *attempts = attempts.saturating_add(1);
                None
            }
            Health::NeedsReauthorization { .. } => None,
            Health::Healthy => {
                self.health = Health::Failing {
                    since: cx.now,
                    code: problem.code.clone(),
                    attempts: 1,
                    generation,
                };
                let mut event = problem_event(EventKind::RefreshFailed, problem, cx);
                event.attempts = Some(1);
                Some(event)
            }
        }
    }

    fn grant_refused(&mut self, problem: &Problem, generation: u64, cx: &Context) -> Option<Event> {
        if matches!(self.health, Health::NeedsReauthorization { .. }) || generation < self.good_generation {
            return None;
        }
        self.health = Health::NeedsReauthorization {
            since: cx.now,
            code: problem.code.clone(),
            generation,
        };
        let mut event = problem_event(EventKind::ReauthorizationRequired, problem, cx);
        event.link = (cx.reconsent_link)();
        if let Some(link) = &event.link {
            event.action = format!(
                "open {link} and approve access (the link works once, for an hour); or run `withings-token login --account {}`",
                cx.account
            );
        }
        Some(event)
    }

    fn copy_failed(&mut self, copy: &str, problem: &Problem, cx: &Context) -> Option<Event> {
        if self.copies_failing.contains_key(copy) {
            return None;
        }
        self.copies_failing.insert(copy.to_owned(), cx.now);
        let mut event = problem_event(EventKind::CopyFailed, problem, cx);
        event.copy = Some(copy.to_owned());
        Some(event)
    }

    fn copy_delivered(&mut self, copy: &str, cx: &Context) -> Option<Event> {
        let since = self.copies_failing.remove(copy)?;
        let mut event = Event::new(
            EventKind::CopyHealed,
            cx.account,
            cx.now,
            "COPY_HEALED",
            format!("the copy {copy} holds the tokens in use again"),
            String::new(),
        );
        event.copy = Some(copy.to_owned());
        event.since = Some(since);
        Some(event)
    }

    fn aging(&mut self, generation: u64, age: Option<chrono::Duration>, cx: &Context) -> Option<Event> {
        let age = age?;
        if age < cx.aging_after || self.aging_sent_for == Some(generation) {
            return None;
        }
        self.aging_sent_for = Some(generation);
        Some(Event::new(
            EventKind::RefreshTokenAging,
            cx.account,
            cx.now,
            "REFRESH_TOKEN_AGING",
            format!(
                "the refresh token in use was issued {} days ago and has not been rotated since; Withings ends a refresh token unused for a year",
                age.num_days()
            ),
            format!(
                "run `withings-token refresh --account {}` (or set `refresh_at_least`, e.g. 7d, so that it is rotated on its own)",
                cx.account
            ),
        ))
    }

    fn store_unavailable(&mut self, problem: &Problem, cx: &Context) -> Option<Event> {
        if self.store_unavailable_since.is_some() {
            return None;
        }
        self.store_unavailable_since = Some(cx.now);
        Some(problem_event(EventKind::StoreUnavailable, problem, cx))
    }

    fn store_available(&mut self, cx: &Context) -> Option<Event> {
        let since = self.store_unavailable_since.take()?;
        let mut event = Event::new(
            EventKind::Recovered,
            cx.account,
            cx.now,
            "RECOVERED",
            "the token store answers again".to_owned(),
            String::new(),
        );
        event.since = Some(since);
        Some(event)
    }

    /// Queues `event` for `sinks` (none: nowhere to send it, not queued);
    /// a full outbox drops its oldest and counts it.
    pub fn enqueue(&mut self, event: Event, sinks: &[String]) {
        if sinks.is_empty() {
            return;
        }
        while self.outbox.len() >= MAX_OUTBOX {
            self.outbox.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.outbox.push_back(Pending {
            event,
            owed: sinks.to_vec(),
            tries: 0,
            claimed_until: None,
            claimed_by: None,
        });
    }

    /// Records that `sink` took the event `id`; an event every sink took
    /// leaves the outbox.
    pub fn delivered(&mut self, id: &str, sink: &str) {
        for pending in self.outbox.iter_mut().filter(|p| p.event.id == id) {
            pending.owed.retain(|s| s != sink);
        }
        self.outbox.retain(|p| !p.owed.is_empty());
    }

    /// Claims, until `until`, the events owed to any of `sinks` that no
    /// other run has claimed (or whose claim ran out); returns them, each
    /// with those of `sinks` it owes, oldest first.
    pub fn claim(&mut self, claim: &Claim, now: DateTime<Utc>, until: DateTime<Utc>) -> Vec<(Event, Vec<String>)> {
        let mut claimed = Vec::new();
        for pending in &mut self.outbox {
            let owed: Vec<String> = pending
                .owed
                .iter()
                .filter(|s| claim.sinks.contains(s))
                .cloned()
                .collect();
            let held = pending.claimed_until.is_some_and(|at| at > now)
                && !pending.claimed_by.as_deref().is_some_and(|by| (claim.is_gone)(by));
            if owed.is_empty() || held {
                continue;
            }
            pending.claimed_until = Some(until);
            pending.claimed_by = Some(claim.by.clone());
            claimed.push((pending.event.clone(), owed));
        }
        claimed
    }

    /// Gives up this run's claim on the event `id` (delivered or not).
    pub fn release_claim(&mut self, id: &str) {
        for pending in self.outbox.iter_mut().filter(|p| p.event.id == id) {
            pending.claimed_until = None;
            pending.claimed_by = None;
        }
    }

    /// Records a failed try of the event `id`.
    pub fn failed_try(&mut self, id: &str) {
        for pending in self.outbox.iter_mut().filter(|p| p.event.id == id) {
            pending.tries = pending.tries.saturating_add(1);
        }
    }

    /// Forgets what is owed to sinks no longer configured.
    pub fn forget_sinks_except(&mut self, sinks: &[String]) {
        for pending in &mut self.outbox {
            pending.owed.retain(|s| sinks.contains(s));
        }
        self.outbox.retain(|p| !p.owed.is_empty());
    }

    /// Marks the link `nonce` used; false when it already was.
    pub fn use_link(&mut self, nonce: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.used_links.retain(|l| l.expires_at > now);
        if self.used_links.iter().any(|l| l.nonce == nonce) {
            return false;
        }
        if self.used_links.len() >= MAX_USED_LINKS {
            self.used_links.remove(0);
        }
        self.used_links.push(UsedLink {
            nonce: nonce.to_owned(),
            expires_at,
        });
        true
    }
}

fn problem_event(kind: EventKind, problem: &Problem, cx: &Context) -> Event {
    Event::new(
        kind,
        cx.account,
        cx.now,
        &problem.code,
        problem.message.clone(),
        problem.action.clone(),
    )
}
