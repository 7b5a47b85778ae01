//! `doctor`'s checks of the setup, one [`DoctorCheck`] each: `ok`, `warn`
//! or `fail`, each warning and failure with its next step.
//!
//! Offline they read the settings, the env file and the store (whether it
//! is encrypted, to which recipients, with this host's identities:
//! `encryption`), and send nothing to Withings or Railway. A Redis store
//! is connected to: reading the store is the check, whatever the store
//! is. Online adds one probe
//! of Withings' token endpoint with a made-up refresh token (never the
//! account's: see [`crate::withings::probe`]), the clock against Withings'
//! `Date` header, a read of the Railway service's variables (no mutation),
//! and the "one owner of the refresh" question: does Railway hold the
//! store's set, an older one, or a newer one (then something else is
//! refreshing), and a test event to each event sink. Each request is sent
//! once: a check reports what it finds, it does not insist.

mod encryption;
mod events;
mod origins;
mod railway;
mod remote;
mod setup;
mod store;
mod tokens;
mod withings;

use crate::error::{Error, Result};
use crate::http::{HttpClient, block_on};
use crate::output::{CheckResult, DoctorCheck};
use crate::settings::{HttpPolicy, Settings};
use crate::tokens::{TokenSet, rfc3339};

pub(crate) use origins::origins;

/// The checks `doctor` reports: with `--server`, this host's side only;
/// else everything that can be checked on this host.
pub(crate) fn diagnose(settings: &Settings, online: bool) -> Result<Vec<DoctorCheck>> {
    match &settings.remote {
        Some(remote) => Ok(remote::remote_checks(settings, remote, online)),
        None => block_on(local_checks(settings, online))?,
    }
}

/// Everything that can be checked on this host.
async fn local_checks(settings: &Settings, online: bool) -> Result<Vec<DoctorCheck>> {
    let mut checks = vec![setup::env_file(settings)];
    checks.extend(setup::credentials(settings));
    checks.extend(setup::urls(settings));
    let (store, state) = store::store_checks(settings).await;
    checks.extend(store);
    checks.extend(encryption::encryption_checks(settings, state.as_ref()).await);
    if let Some(state) = &state {
        checks.extend(tokens::token_checks(settings, state));
    }
    checks.push(setup::railway_settings(settings));
    checks.extend(events::event_checks(settings));
    if online {
        let stored = state.as_ref().and_then(|s| s.tokens.as_ref());
        checks.extend(online_checks(settings, stored).await?);
    }
    Ok(checks)
}

async fn online_checks(settings: &Settings, stored: Option<&TokenSet>) -> Result<Vec<DoctorCheck>> {
    let http = HttpClient::new(HttpPolicy {
        retries: 0,
        ..settings.http
    })?;
    let mut checks = withings::withings_checks(settings, &http).await;
    checks.extend(railway::railway_checks(settings, &http, stored).await);
    checks.extend(events::test_events(settings, &http).await);
    Ok(checks)
}

// ---------------------------------------------------------------------------
// Small things

fn ok(name: &'static str, detail: impl Into<String>) -> DoctorCheck {
    check(name, CheckResult::Ok, detail.into(), None)
}

fn warn(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> DoctorCheck {
    check(name, CheckResult::Warn, detail.into(), Some(action.into()))
}

fn fail(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> DoctorCheck {
    check(name, CheckResult::Fail, detail.into(), Some(action.into()))
}

/// A failed check from an error: its message and its action.
pub(crate) fn failed(name: &'static str, e: &Error) -> DoctorCheck {
    fail(name, e.to_string(), e.action())
}

/// A failed check; a peer that gave no answer at all is for the person to
/// look into (`what`), not a run to retry as the error's own action says.
fn unreachable_or_failed(name: &'static str, e: &Error, what: &str) -> DoctorCheck {
    match e {
        Error::Network { .. } => fail(
            name,
            e.to_string(),
            format!("check {what}, then run `withings-token doctor --online` again"),
        ),
        _ => failed(name, e),
    }
}

fn check(name: &'static str, result: CheckResult, detail: String, action: Option<String>) -> DoctorCheck {
    debug_assert!(name.len() <= crate::output::CHECK_NAME_WIDTH, "{name} is too long");
    DoctorCheck {
        name,
        result,
        detail,
        action,
    }
}

/// `line 3`, `lines 1, 3`.
fn lines(numbers: &[usize]) -> String {
    let listed: Vec<String> = numbers.iter().map(usize::to_string).collect();
    let word = if numbers.len() == 1 { "line" } else { "lines" };
    format!("{word} {}", listed.join(", "))
}

/// `1 day`, `310 days`.
fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn when(tokens: &TokenSet) -> String {
    tokens
        .last_refreshed
        .map(rfc3339)
        .unwrap_or_else(|| "an unknown time".into())
}

#[cfg(test)]
mod tests;
