//! `status`: what the store (or the environment's seed) holds, offline.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::cli::parse_buffer;
use crate::copies;
use crate::error::{Result, Status};
use crate::output::{CopyReport, JSON_VERSION, Output, StatusReport};
use crate::settings::Settings;
use crate::store::StoreState;
use crate::tokens::{Action, Assessment, DueReason, Policy, TokenSet, assess, now, rfc3339};

/// Report the stored token set without touching the network
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  withings-token status\n  withings-token status --json\n  withings-token status --check || withings-token refresh   # exit 7 when due\n  withings-token status --buffer 30m"
)]
pub struct StatusArgs {
    /// Exit 7 (REFRESH_DUE) when a refresh is due or the token expired
    #[arg(long)]
    pub check: bool,

    /// How long before expiry a refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]
    #[arg(long, value_parser = parse_buffer, value_name = "DURATION")]
    pub buffer: Option<Duration>,
}

pub fn run(args: &StatusArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if let Some(server) = crate::server_client::ServerClient::of(settings, true)? {
        return super::remote::status(&server, args.check, out);
    }
    let store = super::store_of(settings)?;
    let state = super::load_now(store.as_ref())?;
    let report = build_report(&state, settings, store.location());
    if !report.token_configured && state.lost.is_some() {
        return Err(crate::rotation::no_tokens_error_for(&state));
    }
    if let Some(rescue) = store.waiting_rescue() {
        out.note_always(&format!(
            "note: a set a previous run could not save waits in {rescue}; the next `withings-token refresh --if-needed` saves it into the store"
        ));
    }
    print_report(&report, args.check, out)
}

/// Prints a status report (local or a server's); `check` turns it into
/// the exit code.
pub fn print_report(report: &StatusReport, check: bool, out: &Output) -> Result<Status> {
    if check && !report.token_configured {
        return Err(crate::rotation::no_tokens_error());
    }
    out.print(report)?;
    if !(check && report.should_refresh) {
        return Ok(Status::Success);
    }
    // An expiry that cannot be trusted is not the one to name.
    let untrusted = report.refresh_reason.as_deref() == Some(DueReason::TimesAhead.describe());
    let message = match &report.expires_at {
        Some(_) if untrusted => format!("a refresh is due: {}", DueReason::TimesAhead.describe()),
        Some(at) => format!("a refresh is due: the access token expires at {at}"),
        None => "a refresh is due: the expiry time is unknown".into(),
    };
    out.status_line("REFRESH_DUE", &message, "run `withings-token refresh`");
    Ok(Status::RefreshDue)
}

pub fn build_report(state: &StoreState, settings: &Settings, store: String) -> StatusReport {
    let now = now();
    let seed = crate::rotation::seed_for(settings, state);
    let assessment = assess_status(state, seed, settings, now);
    crate::rotation::log_decision(&assessment);
    report_of(assessment, state, settings, store, now)
}

/// The decision `status` reports: the settings' buffer, nothing forced.
pub fn assess_status(
    state: &StoreState,
    seed: Option<&TokenSet>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Assessment {
    let policy = Policy {
        buffer: settings.buffer,
        force: false,
    };
    assess(state.tokens.as_ref(), seed, None, now, policy)
}

/// The report of `assessment`, made at `now`. Pure: the same arguments give
/// the same report, so `serve` renders it once per second at most.
pub fn report_of(
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
        tokens: assessment.tokens,
    }
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
        .filter(|f| f.file.holds_any(&crate::tokens::TOKEN_KEYS))
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

/// Hours with one decimal; never `-0.0`.
fn hours_one_decimal(d: chrono::Duration) -> f64 {
    let tenths = (d.num_seconds() as f64 / 360.0).round();
    if tenths == 0.0 { 0.0 } else { tenths / 10.0 }
}
