//! `status`: what the store (or the environment's seed) holds, offline.

use crate::cli::StatusArgs;
use crate::error::{Error, Result};
use crate::output::{JSON_VERSION, Output, StatusReport};
use crate::settings::Settings;
use crate::store::StoreState;
use crate::tokens::{Decision, choose_tokens, decide, effective_buffer, now, rfc3339};

pub fn run(args: &StatusArgs, settings: &Settings, out: &Output) -> Result<()> {
    let store = super::store_of(settings);
    let state = store.load()?;
    let report = build_report(&state, settings, store.path().display().to_string());
    if args.check && !report.token_configured {
        return Err(crate::rotation::no_tokens_error());
    }
    out.status(&report);
    if !args.check {
        return Ok(());
    }
    if report.should_refresh {
        return Err(Error::RefreshDue {
            detail: match &report.expires_at {
                Some(at) => format!("a refresh is due: the access token expires at {at}"),
                None => "a refresh is due: the expiry time is unknown".into(),
            },
        });
    }
    Ok(())
}

pub fn build_report(state: &StoreState, settings: &Settings, store: String) -> StatusReport {
    let (tokens, source) = choose_tokens(state.tokens.as_ref(), settings.seed_tokens.as_ref());
    let now = now();
    let buffer = tokens.as_ref().map(|t| effective_buffer(t, settings.buffer));
    let should_refresh = match (&tokens, buffer) {
        (Some(t), Some(b)) => matches!(decide(t, now, b, true), Decision::Refresh(_)),
        _ => false,
    };
    let expires_at = tokens.as_ref().and_then(|t| t.expires_at);
    StatusReport {
        version: JSON_VERSION,
        token_configured: tokens.is_some(),
        source,
        expires_at: expires_at.map(rfc3339),
        expires_in_hours: expires_at.map(|at| hours_one_decimal(at - now)),
        should_refresh,
        next_refresh_recommended: expires_at.zip(buffer).map(|(at, b)| rfc3339(at - b)),
        last_refreshed: tokens.as_ref().and_then(|t| t.last_refreshed).map(rfc3339),
        refresh_buffer_minutes: buffer.map(|b| b.num_minutes()),
        userid: tokens.as_ref().and_then(|t| t.userid.clone()),
        scope: tokens.as_ref().and_then(|t| t.scope.clone()),
        generation: state.generation,
        previous_rotated_at: state.previous.as_ref().map(|p| rfc3339(p.rotated_at)),
        store,
        tokens,
    }
}

/// Hours with one decimal; never `-0.0`.
fn hours_one_decimal(d: chrono::Duration) -> f64 {
    let tenths = (d.num_seconds() as f64 / 360.0).round();
    if tenths == 0.0 { 0.0 } else { tenths / 10.0 }
}
