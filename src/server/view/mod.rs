//! What the read-only endpoints see of the store: the state as
//! `TokenStore::load` would read it now, kept in memory while the store's
//! stamp says it has not changed, and the answers of `GET
//! /admin/token/status` and of the broker rendered from it at most once per
//! second.
//!
//! Both are exact, not approximations:
//! - A file store is looked at (one `stat`) on every request, and read
//!   again when its stamp differs: another inode (a CLI `refresh`, another
//!   server, a set this server saved: every save is a rename), another
//!   size, modification or change time, or a file too recently changed for
//!   its times to be trusted (see `store::FileStore`). So a change made
//!   anywhere is seen by the very next request.
//! - The status report and the broker's decision are pure functions of the
//!   state, the settings and the time in whole seconds (`tokens::now`), so
//!   what was rendered for this state in this second is what the request
//!   would have built itself.
//!
//! A Redis store gives no stamp, so every request reads the key.
//! A copy kept for even a second could be one another host had already
//! replaced: the status would lag, and the broker would hand out an access
//! token just rotated away. That one stays usable until its expiry only if
//! Withings does not revoke it on rotation, which nothing here checks; one
//! `GET` per request is the price of never relying on it.
//!
//! The account's alert state (`needs_reauthorization`, an outbox waiting)
//! comes from its event record, beside the set (`notify::load_record`), which
//! gives no stamp: it is read at most once per second of `tokens::now`. It
//! changes once per outage, so a second's lag misleads no one, and a status
//! request stays one `stat` when the store is unchanged.
//!
//! The refresh jobs (`jobs`) never use this view: they read the store
//! themselves, under the lock, as the CLI does.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use secrecy::zeroize::Zeroize;
use serde::Serialize;

use crate::broker::{self, Freshness, Log};
use crate::error::{Error, Result};
use crate::events::EventRecord;
use crate::locked;
use crate::report::{assess_status, status_report_of};
use crate::rotation::no_tokens_error;
use crate::settings::Settings;
use crate::store::{StoreStamp, StoreState, TokenStore};
use crate::tokens::{MinTtl, TokenSet, now, rfc3339};

use super::jobs::Want;

/// The latest state read, shared by every request while it is current.
pub struct StoreView {
    store: Arc<dyn TokenStore>,
    latest: Mutex<Option<Arc<Snapshot>>>,
    /// The capped `min_ttl`s already said (see [`StoreView::say_capped`]).
    capped_said: Mutex<Vec<MinTtl>>,
    /// The account's event record, as read in this second.
    events: Mutex<Option<(i64, Arc<EventRecord>)>>,
}

/// How many distinct capped `min_ttl`s are said; consumers asking for more
/// kinds than this are not worth a line each.
const CAPPED_SAID_MAX: usize = 16;

impl StoreView {
    pub fn new(store: Arc<dyn TokenStore>) -> StoreView {
        StoreView {
            store,
            latest: Mutex::new(None),
            capped_said: Mutex::new(Vec::new()),
            events: Mutex::new(None),
        }
    }

    /// The account's event record (its alert state and outbox), as read in
    /// this second (see the module doc).
    pub async fn event_record(&self) -> Result<Arc<EventRecord>> {
        self.event_record_in(now().timestamp()).await
    }

    async fn event_record_in(&self, second: i64) -> Result<Arc<EventRecord>> {
        if let Some((at, record)) = &*locked(&self.events)
            && *at == second
        {
            return Ok(Arc::clone(record));
        }
        let (record, _) = crate::notify::load_record(self.store.as_ref()).await?;
        let record = Arc::new(record);
        *locked(&self.events) = Some((second, Arc::clone(&record)));
        Ok(record)
    }

    /// Warns that a consumer's `min_ttl` was capped, once per asked value
    /// and lifetime.
    pub fn say_capped(&self, min_ttl: &MinTtl) {
        let Some(note) = min_ttl.capped_note("min_ttl") else {
            return;
        };
        let mut said = locked(&self.capped_said);
        if said.len() < CAPPED_SAID_MAX && !said.contains(min_ttl) {
            said.push(*min_ttl);
            tracing::warn!("{note} (GET /v1/access-token)");
        }
    }

    /// The state as the store holds it now: the one read before while the
    /// stamp is the same, else read again (and kept, when it has a stamp).
    pub async fn snapshot(&self, settings: &Settings) -> Result<Arc<Snapshot>> {
        if let Some(stamp) = self.store.stamp() {
            let latest = locked(&self.latest).clone();
            if let Some(snapshot) = latest.filter(|s| s.stamp == Some(stamp)) {
                return Ok(snapshot);
            }
        }
        let (state, stamp) = self.store.load_stamped().await?;
        let snapshot = Arc::new(Snapshot::new(state, stamp, settings));
        if stamp.is_some() {
            *locked(&self.latest) = Some(Arc::clone(&snapshot));
        }
        Ok(snapshot)
    }
}

/// One state read from the store, and what was rendered from it.
pub struct Snapshot {
    pub state: StoreState,
    stamp: Option<StoreStamp>,
    /// Whether the environment's seed takes part in decisions (it does not
    /// when the store says it was rotated away): decided, and said, once.
    seed_in_use: bool,
    rendered: Mutex<Rendered>,
}

/// Answers rendered from a snapshot, each for one second (Unix time).
#[derive(Default)]
struct Rendered {
    status: Option<(StatusKey, Bytes)>,
    broker: Option<(i64, chrono::Duration, Broker, MinTtl)>,
}

/// What a status body was rendered for: the second, the alert state and
/// the outbox's counts.
type StatusKey = (i64, crate::output::AlertReport, usize, u64);

/// What the broker does for one `min_ttl`.
#[derive(Debug, Clone)]
pub enum Broker {
    /// The set in use lives `min_ttl` more: its answer, as sent.
    Serve(Bytes),
    /// It does not: this refresh job first.
    Refresh(Want),
    /// Neither the store nor the environment holds a set.
    NoTokens,
}

impl Snapshot {
    fn new(state: StoreState, stamp: Option<StoreStamp>, settings: &Settings) -> Snapshot {
        let seed_in_use = crate::rotation::seed_for(settings, &state).is_some();
        Snapshot {
            state,
            stamp,
            seed_in_use,
            rendered: Mutex::new(Rendered::default()),
        }
    }

    fn seed<'a>(&self, settings: &'a Settings) -> Option<&'a TokenSet> {
        settings.seed_tokens.as_ref().filter(|_| self.seed_in_use)
    }

    /// The body of `GET /admin/token/status` (the `status --json` report)
    /// for a store at `store`, now, with the alert state and outbox of the
    /// account's event record `events` (see [`StoreView::event_record`]).
    pub fn status_body(&self, settings: &Settings, store: &str, events: &EventRecord) -> Result<Bytes> {
        self.status_body_at(settings, store, events, now())
    }

    fn status_body_at(
        &self,
        settings: &Settings,
        store: &str,
        events: &EventRecord,
        now: DateTime<Utc>,
    ) -> Result<Bytes> {
        let alert = crate::report::alert_of(&events.health, self.state.tokens_generation);
        let key = (now.timestamp(), alert, events.outbox.len(), events.dropped);
        if let Some((at, body)) = &locked(&self.rendered).status
            && *at == key
        {
            return Ok(body.clone());
        }
        let assessment = assess_status(&self.state, self.seed(settings), settings, now);
        let report = status_report_of(assessment, &self.state, settings, store.to_owned(), now);
        let report = crate::report::with_events(report, events);
        let body = Bytes::from(serde_json::to_vec(&report).map_err(Error::internal)?);
        locked(&self.rendered).status = Some((key, body.clone()));
        Ok(body)
    }

    /// What the broker does now for a consumer asking for `min_ttl`, and
    /// the `min_ttl` in force (capped to half the set's lifetime).
    pub fn broker(&self, settings: &Settings, min_ttl: chrono::Duration) -> Result<(Broker, MinTtl)> {
        self.broker_at(settings, min_ttl, now())
    }

    fn broker_at(
        &self,
        settings: &Settings,
        min_ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<(Broker, MinTtl)> {
        let second = now.timestamp();
        if let Some((at, ttl, broker, in_force)) = &locked(&self.rendered).broker
            && (*at, *ttl) == (second, min_ttl)
        {
            return Ok((broker.clone(), *in_force));
        }
        let (freshness, in_force) = broker::decide(
            &self.state,
            self.seed(settings),
            now,
            (min_ttl, settings.cadence()),
            Log::Quiet,
        );
        let broker = match freshness {
            Freshness::NoTokens => Broker::NoTokens,
            Freshness::Fresh(tokens) => Broker::Serve(access_token_body(&tokens)?),
            Freshness::NoAccessToken => Broker::Refresh(Want::Rotate),
            Freshness::Due { .. } => Broker::Refresh(Want::IfDue {
                buffer: Some(in_force.ttl),
            }),
        };
        locked(&self.rendered).broker = Some((second, min_ttl, broker.clone(), in_force));
        Ok((broker, in_force))
    }
}

/// What the proxy does now for `min_ttl`.
pub enum Bearer {
    /// The set in use lives `min_ttl` more: its access token.
    Send(secrecy::SecretString),
    Refresh(Want),
    NoTokens,
}

impl Snapshot {
    /// The broker's decision for the proxy, and the `min_ttl` in force.
    /// Not rendered and kept like the broker's answer: the proxy needs the
    /// token itself, not a body.
    pub fn bearer(&self, settings: &Settings, min_ttl: chrono::Duration) -> (Bearer, MinTtl) {
        let (freshness, in_force) = broker::decide(
            &self.state,
            self.seed(settings),
            now(),
            (min_ttl, settings.cadence()),
            Log::Quiet,
        );
        let bearer = match freshness {
            Freshness::NoTokens => Bearer::NoTokens,
            Freshness::Fresh(TokenSet {
                access_token: Some(token),
                ..
            }) => Bearer::Send(token),
            Freshness::Fresh(_) | Freshness::NoAccessToken => Bearer::Refresh(Want::Rotate),
            Freshness::Due { .. } => Bearer::Refresh(Want::IfDue {
                buffer: Some(in_force.ttl),
            }),
        };
        (bearer, in_force)
    }
}

/// What a consumer gets: the access token itself, unmasked.
#[derive(Serialize)]
struct AccessTokenAnswer<'a> {
    access_token: &'a str,
    expires_at: Option<String>,
    userid: Option<&'a str>,
    scope: Option<&'a str>,
}

/// The broker's JSON answer for `tokens`; the one place `serve` hands out
/// a token (never logged). The buffer is wiped when the last copy of the
/// answer is dropped.
pub fn access_token_body(tokens: &TokenSet) -> Result<Bytes> {
    let access_token = tokens.access_token.as_ref().ok_or_else(no_tokens_error)?;
    let answer = AccessTokenAnswer {
        access_token: access_token.expose_secret(),
        expires_at: tokens.expires_at.map(rfc3339),
        userid: tokens.userid.as_deref(),
        scope: tokens.scope.as_deref(),
    };
    // Sized so that it never grows (a grown buffer leaves a copy behind).
    let mut body = Vec::with_capacity(256 + access_token.expose_secret().len());
    serde_json::to_writer(&mut body, &answer).map_err(Error::internal)?;
    Ok(Bytes::from_owner(Wiped(body)))
}

/// Bytes that are zeroed when dropped.
struct Wiped(Vec<u8>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests;
