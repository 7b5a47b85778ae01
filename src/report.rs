//! The reports both faces build. The token report of a transaction that
//! saved (or kept) a set, once its copies are delivered; the status report
//! of the set in use, with the decision `status` makes about it. The CLI
//! prints them (`output`), `serve` answers with them.

use chrono::{DateTime, Utc};

use crate::accounts::AccountRow;
use crate::copies::{self, CopyKind, Deliveries, Delivery, Targets};
use crate::error::Result;
use crate::events::{EventRecord, Health};
use crate::http::HttpClient;
use crate::output::{
    AccountEntry, AccountStatus, AccountsReport, AlertReport, AlertState, CopyReport, CopyStatus, ErrorBody,
    JSON_VERSION, ReportOutcome, Secrets, StatusReport, StatusRowsReport, TokenReport,
};
use crate::rotation::{self, Outcome, Rotation, Via, describe_via};
use crate::settings::Settings;
use crate::store::{StoreState, TokenStore};
use crate::tokens::{Action, Assessment, Policy, SeenBefore, TokenSet, TokenSource, now, rfc3339};

/// How a transaction that saved (or kept) a set ended, before printing.
pub(crate) enum Ending {
    /// A held signal ended the run right after the save; no copy was written.
    Interrupted { signal: i32, saved: String },
    /// The copies were brought up to date (or failed, each saying so).
    Delivered(Box<Delivered>),
}

pub(crate) struct Delivered {
    pub report: TokenReport,
    pub deliveries: Deliveries,
    /// Where the set is saved, for notes and errors.
    pub saved: String,
}

impl Delivered {
    /// The newest set this transaction knows of: a newer one a peer saved
    /// meanwhile, which the push to Railway took instead, else the one
    /// reported.
    pub fn newest(&self) -> Option<TokenSet> {
        match &self.deliveries.pushed {
            Some((newer, _)) => Some(newer.clone()),
            None => self.report.tokens.clone(),
        }
    }
}

/// Brings the copies of a saved (or kept) set up to date and builds its
/// report, printing nothing: the CLI prints it, `serve` answers with it.
/// A signal held during the save ends the transaction before the copies.
pub(crate) async fn deliver_and_build_report(
    settings: &Settings,
    http: &HttpClient,
    store: &dyn TokenStore,
    targets: &Targets,
    rotation: Rotation,
    secrets: Secrets,
) -> Ending {
    let (outcome, via, message) = describe(&rotation.outcome);
    let generation = rotation.state.tokens_generation;
    let which = if rotation.outcome.rotated() {
        "the new set"
    } else {
        "the set in use"
    };
    let saved = format!("{which} is saved in {} (set generation {generation})", store.location());
    if let Some(signal) = rotation.signal {
        if let Some(lock) = rotation.lock {
            lock.release().await;
        }
        return Ending::Interrupted { signal, saved };
    }
    let rotated = rotation.outcome.rotated();
    let (tokens, source) = (rotation.tokens.clone(), rotation.source);
    let deliveries = copies::deliver(settings, http, store, targets, rotation).await;
    let message = match (rotated, healed(&deliveries)) {
        (false, Some(healed)) => Some(format!(
            "{}; brought {healed} up to date without rotating",
            message.unwrap_or_default()
        )),
        _ => message,
    };
    let facts = Facts {
        outcome,
        via,
        tokens: &tokens,
        source,
        generation,
        store,
        message,
    };
    let report = token_report(secrets, facts, &deliveries);
    Ending::Delivered(Box::new(Delivered {
        report,
        deliveries,
        saved,
    }))
}

/// The copies a run that did not rotate brought up to date, for its note.
fn healed(deliveries: &Deliveries) -> Option<String> {
    let names: Vec<&str> = [(&deliveries.env_file, "the env file"), (&deliveries.railway, "Railway")]
        .into_iter()
        .filter(|(d, _)| matches!(d, Delivery::Delivered))
        .map(|(_, name)| name)
        .collect();
    (!names.is_empty()).then(|| names.join(" and "))
}

/// The facts a token report is made of.
pub(crate) struct Facts<'a> {
    pub outcome: ReportOutcome,
    pub via: Option<Via>,
    pub tokens: &'a TokenSet,
    pub source: TokenSource,
    pub generation: u64,
    pub store: &'a dyn TokenStore,
    pub message: Option<String>,
}

/// The token report of `refresh`, `exchange`, `railway-sync`, `pull` and
/// the API, tokens shown as `secrets` says.
pub(crate) fn token_report(secrets: Secrets, facts: Facts<'_>, deliveries: &Deliveries) -> TokenReport {
    let tokens = facts.tokens;
    let env_file_updated = match &deliveries.env_file {
        Delivery::Delivered => deliveries.env_file_path.as_ref().map(|p| p.display().to_string()),
        _ => None,
    };
    TokenReport {
        version: JSON_VERSION,
        outcome: facts.outcome,
        via: facts.via.map(via_key),
        access_token: tokens.access_token.as_ref().map(|t| secrets.show(t)),
        refresh_token: secrets.show(&tokens.refresh_token),
        expires_at: tokens.expires_at.map(rfc3339),
        last_refreshed: tokens.last_refreshed.map(rfc3339),
        userid: tokens.userid.clone(),
        scope: tokens.scope.clone(),
        source: facts.source,
        generation: facts.generation,
        set_generation: facts.generation,
        store: facts.store.location(),
        env_file_updated,
        env_file: copy_status(&deliveries.env_file),
        env_file_reason: (!railway_only(facts.outcome))
            .then(|| deliveries.env_file.reason(CopyKind::EnvFile))
            .flatten(),
        railway: copy_status(&deliveries.railway),
        railway_reason: deliveries.railway.reason(CopyKind::Railway),
        deployment_triggered: deliveries.deployed,
        message: facts.message,
        error: deliveries.failures().next().map(ErrorBody::of),
        env_file_error: deliveries.env_file.error().map(ErrorBody::of),
        railway_error: deliveries.railway.error().map(ErrorBody::of),
        tokens: Some(tokens.clone()),
    }
}

/// The outcomes of commands that write Railway only (`railway-sync`, `pull`).
fn railway_only(outcome: ReportOutcome) -> bool {
    matches!(
        outcome,
        ReportOutcome::Pushed | ReportOutcome::Pulled | ReportOutcome::NotPulled
    )
}

fn copy_status(delivery: &Delivery) -> CopyStatus {
    match delivery {
        Delivery::Delivered => CopyStatus::Updated,
        Delivery::Skipped(_) => CopyStatus::Skipped,
        Delivery::Failed(_) => CopyStatus::Failed,
    }
}

fn via_key(via: Via) -> &'static str {
    match via {
        Via::Current => "current",
        Via::Previous => "previous",
        Via::StoreFallback => "store_fallback",
    }
}

/// The report's `outcome` key and its note for a person.
pub(crate) fn describe(outcome: &Outcome) -> (ReportOutcome, Option<Via>, Option<String>) {
    match outcome {
        Outcome::Refreshed { via: Via::Current } => (ReportOutcome::Refreshed, Some(Via::Current), None),
        Outcome::Refreshed { via } => (
            ReportOutcome::Refreshed,
            Some(*via),
            Some(format!(
                "the refresh token in use was refused; recovered with {}",
                describe_via(*via)
            )),
        ),
        Outcome::Exchanged => (ReportOutcome::Exchanged, None, None),
        Outcome::NotDue { expires_at, refresh_at } => (
            ReportOutcome::NotDue,
            None,
            Some(format!(
                "not refreshed: the token expires at {} and is due from {}",
                rfc3339(*expires_at),
                rfc3339(*refresh_at)
            )),
        ),
        Outcome::RefreshedByPeer => (
            ReportOutcome::AlreadyRefreshedByPeer,
            None,
            Some("not refreshed: another withings-token process refreshed it while this one waited".into()),
        ),
    }
}

/// The status report of the set in use in `state`, now, its decision
/// logged (`-vv`).
pub fn status_report(state: &StoreState, settings: &Settings, store: String) -> StatusReport {
    let now = now();
    let assessment = assess_status(state, rotation::seed_for(settings, state), settings, now);
    status_report_of(assessment, state, settings, store, now)
}

/// The decision `status` reports, logged: the settings' buffer, nothing
/// forced. `seed`: the environment's set when in use ([`rotation::seed_for`];
/// `serve` keeps that answer with its snapshot of the store).
pub fn assess_status(
    state: &StoreState,
    seed: Option<&TokenSet>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Assessment {
    let policy = Policy {
        buffer: settings.buffer,
        force: false,
        cadence: settings.cadence(),
    };
    rotation::decide(state, seed, SeenBefore::NotLooked, now, policy)
}

/// The report of `assessment`, made at `now`. Pure: the same arguments give
/// the same report, so `serve` renders it once a second at most.
pub fn status_report_of(
    assessment: Assessment,
    state: &StoreState,
    settings: &Settings,
    store: String,
    now: DateTime<Utc>,
) -> StatusReport {
    let tokens = assessment.tokens.as_ref();
    let expires_at = tokens.and_then(|t| t.expires_at);
    StatusReport {
        version: JSON_VERSION,
        token_configured: tokens.is_some(),
        source: assessment.source,
        expires_at: expires_at.map(rfc3339),
        expires_in_hours: expires_at.map(|at| hours_one_decimal(at.signed_duration_since(now))),
        should_refresh: assessment.is_due(),
        refresh_reason: match assessment.action {
            Action::Refresh(reason) => Some(reason.describe().to_owned()),
            _ => None,
        },
        next_refresh_recommended: assessment.refresh_at().map(rfc3339),
        last_refreshed: tokens.and_then(|t| t.last_refreshed).map(rfc3339),
        refresh_buffer_minutes: assessment.buffer.map(|b| b.num_minutes()),
        userid: tokens.and_then(|t| t.userid.clone()),
        scope: tokens.and_then(|t| t.scope.clone()),
        generation: state.generation,
        store_generation: state.generation,
        set_generation: state.tokens_generation,
        previous_rotated_at: state.previous.as_ref().map(|p| rfc3339(p.rotated_at)),
        store,
        copies: copy_reports(state, settings),
        // The event record's to say (`StatusReport::say_reauthorization`).
        needs_reauthorization: false,
        needs_reauthorization_since: None,
        alert: AlertReport::default(),
        events_waiting: 0,
        events_dropped: 0,
        tokens: assessment.tokens,
    }
}

/// `report` with the account's alert state and outbox, from its event
/// `record`. A failure recorded for an older set than the one in use is
/// over (new consent, or a peer's refresh, saved a newer set since: the
/// record learns it at the next run) and is not reported.
pub fn with_events(mut report: StatusReport, record: &EventRecord) -> StatusReport {
    report.alert = alert_of(&record.health, report.set_generation);
    let needs = report.alert.state == AlertState::NeedsReauthorization;
    report.needs_reauthorization = needs;
    report.needs_reauthorization_since = report.alert.since.clone().filter(|_| needs);
    report.events_waiting = record.outbox.len();
    report.events_dropped = record.dropped;
    report
}

/// The `alert` of `health`, for a store whose set in use is of
/// `set_generation`.
pub fn alert_of(health: &Health, set_generation: u64) -> AlertReport {
    match health {
        Health::Failing {
            since,
            code,
            attempts,
            generation,
        } if *generation >= set_generation => AlertReport {
            state: AlertState::RefreshFailing,
            since: Some(rfc3339(*since)),
            code: Some(code.clone()),
            attempts: Some(*attempts),
        },
        Health::NeedsReauthorization {
            since,
            code,
            generation,
        } if *generation >= set_generation => AlertReport {
            state: AlertState::NeedsReauthorization,
            since: Some(rfc3339(*since)),
            code: Some(code.clone()),
            attempts: None,
        },
        _ => AlertReport::default(),
    }
}

/// The account's event record, read without a runtime (a file store);
/// `None` for Redis (see [`event_record`]). One small file: `status`
/// stays as fast as it was.
pub fn event_record_local(store: &dyn TokenStore) -> Option<EventRecord> {
    crate::notify::load_record_local(store).map(readable)
}

/// The account's event record, from any store.
pub async fn event_record(store: &dyn TokenStore) -> EventRecord {
    readable(crate::notify::load_record(store).await.map(|(record, _)| record))
}

/// A record a report could not read is said on stderr and read as empty:
/// it holds no token, and the report of the set must not fail for it.
fn readable(loaded: Result<EventRecord>) -> EventRecord {
    loaded.unwrap_or_else(|e| {
        tracing::warn!("the account's alert state is not shown: {e}");
        EventRecord::default()
    })
}

/// The copies this configuration keeps (env file with token keys, Railway),
/// and whether each lacks the stored set.
fn copy_reports(state: &StoreState, settings: &Settings) -> Vec<CopyReport> {
    if state.tokens.is_none() {
        return Vec::new();
    }
    let env_file = settings
        .env_file
        .as_ref()
        .filter(|f| copies::holds_token_keys(&f.file, &settings.variable_prefix))
        .map(|f| copies::env_file_key(settings, &f.path));
    let railway = settings.railway.is_configured().then(|| copies::railway_key(settings));
    env_file
        .into_iter()
        .chain(railway)
        .map(|key| CopyReport {
            received_generation: state.copies.get(&key).copied().unwrap_or(0),
            behind: copies::behind(state, &key),
            copy: key,
        })
        .collect()
}

/// `accounts`' list of `rows` (see `accounts::overview`), made at `now`:
/// `serve`'s `GET /admin/accounts` can answer with the same.
pub fn accounts_report(rows: &[AccountRow], now: DateTime<Utc>) -> AccountsReport {
    let accounts = rows
        .iter()
        .map(|row| {
            let age = row.refresh_token_age(now).map(hours_one_decimal);
            match &row.status {
                Ok(s) => AccountEntry {
                    account: row.name.to_string(),
                    userid: s.userid.clone(),
                    expires_at: s.expires_at.clone(),
                    refresh_token_age_hours: age,
                    copies_behind: s.copies.iter().filter(|c| c.behind).map(|c| c.copy.clone()).collect(),
                    should_refresh: s.should_refresh,
                    refresh_reason: s.refresh_reason.clone(),
                    alert: Some(s.alert.clone()),
                    events_waiting: s.events_waiting,
                    events_dropped: s.events_dropped,
                    error: None,
                },
                Err(e) => AccountEntry {
                    account: row.name.to_string(),
                    userid: None,
                    expires_at: None,
                    refresh_token_age_hours: None,
                    copies_behind: Vec::new(),
                    should_refresh: false,
                    refresh_reason: None,
                    alert: None,
                    events_waiting: 0,
                    events_dropped: 0,
                    error: Some(ErrorBody::of(e)),
                },
            }
        })
        .collect();
    AccountsReport {
        version: JSON_VERSION,
        accounts,
    }
}

/// `status`' report of several accounts: each account's own status report.
pub fn status_rows_report(rows: Vec<AccountRow>) -> StatusRowsReport {
    let accounts = rows
        .into_iter()
        .map(|row| {
            let (status, error) = match row.status {
                Ok(status) => (Some(status), None),
                Err(e) => (None, Some(ErrorBody::of(&e))),
            };
            AccountStatus {
                account: row.name.to_string(),
                status,
                error,
            }
        })
        .collect();
    StatusRowsReport {
        version: JSON_VERSION,
        accounts,
    }
}

/// Hours with one decimal; never `-0.0`.
fn hours_one_decimal(d: chrono::Duration) -> f64 {
    let tenths = (d.num_seconds() as f64 / 360.0).round();
    if tenths == 0.0 { 0.0 } else { tenths / 10.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_refusal_of_the_set_in_use_is_needs_reauthorization_since_then() {
        let refused = Health::NeedsReauthorization {
            since: at("2026-12-01T10:00:00Z"),
            code: "INVALID_REFRESH_TOKEN".into(),
            generation: 3,
        };
        let expected = AlertReport {
            state: AlertState::NeedsReauthorization,
            since: Some("2026-12-01T10:00:00Z".into()),
            code: Some("INVALID_REFRESH_TOKEN".into()),
            attempts: None,
        };
        assert_eq!(alert_of(&refused, 3), expected);
        // A set saved since (new consent, a peer's refresh) ends it.
        assert_eq!(alert_of(&refused, 4), AlertReport::default());
    }

    #[test]
    fn a_passing_failure_carries_its_attempts() {
        let failing = Health::Failing {
            since: at("2026-12-01T10:00:00Z"),
            code: "NETWORK_ERROR".into(),
            attempts: 4,
            generation: 7,
        };
        let alert = alert_of(&failing, 7);
        assert_eq!(alert.state, AlertState::RefreshFailing);
        assert_eq!(alert.attempts, Some(4));
        assert_eq!(alert.code.as_deref(), Some("NETWORK_ERROR"));
        assert_eq!(alert_of(&failing, 8), AlertReport::default());
        assert_eq!(alert_of(&Health::Healthy, 0), AlertReport::default());
    }

    #[test]
    fn the_outbox_is_counted_with_what_it_dropped() {
        let settings = {
            let global = crate::cli::overrides(&["--no-env-file", "--store", "/unused"]);
            Settings::resolve(&global, None, &|_: &str| None).unwrap()
        };
        let report = status_report(&StoreState::default(), &settings, "/unused".into());
        let mut record = EventRecord {
            dropped: 5,
            ..EventRecord::default()
        };
        for _ in 0..2 {
            let event = Event::new(EventKind::Test, "default", now(), "TEST", "m".into(), String::new());
            record.enqueue(event, &["webhook:0123456789ab".to_owned()]);
        }
        let report = with_events(report, &record);
        assert_eq!((report.events_waiting, report.events_dropped), (2, 5));
        assert_eq!(report.alert, AlertReport::default());
    }
}
