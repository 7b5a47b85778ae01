//! The set in use: its access token's expiry, its refresh token's age, and
//! the clock offset recorded at this host's last refresh.

use chrono::{DateTime, Utc};

use super::{fail, failed, ok, plural, warn};
use crate::output::DoctorCheck;
use crate::settings::Settings;
use crate::store::StoreState;
use crate::tokens::{Action, DueReason, Policy, TokenSet, TokenSource, now, rfc3339};

/// A refresh token unused this long draws a warning ...
const AGE_WARN_DAYS: i64 = 300;
/// ... and this long a failure: Withings drops one unused for a year.
const AGE_FAIL_DAYS: i64 = 365;

/// The set in use (the store's, or the environment's seed as `status`
/// picks it): its expiry, and how old its refresh token is.
pub(super) fn token_checks(settings: &Settings, state: &StoreState) -> Vec<DoctorCheck> {
    let now = now();
    let policy = Policy {
        buffer: settings.buffer,
        force: false,
        cadence: settings.cadence(),
    };
    let assessment = crate::rotation::assess_in_use(settings, state, now, policy);
    let Some(tokens) = &assessment.tokens else {
        return vec![failed("access token", &crate::rotation::no_tokens_error())];
    };
    let due = match assessment.action {
        Action::Refresh(reason) => Some(reason),
        _ => None,
    };
    let mut checks = vec![
        expiry_check(tokens, assessment.source, due, now),
        age_check(tokens, now),
    ];
    checks.extend(recorded_lag_check(state));
    checks
}

/// The offset this host's clock showed from Withings' at its last
/// refresh, which its judgements of expiry make up for (see `clock`).
fn recorded_lag_check(state: &StoreState) -> Option<DoctorCheck> {
    let offset = state.clock_offsets.get(crate::clock::host_name())?;
    let span = crate::clock::span(chrono::Duration::seconds(offset.secs.abs()));
    let detail = if offset.secs > 0 {
        format!(
            "this host's clock was {span} behind Withings' at its last refresh; expiry times are judged that much later"
        )
    } else {
        format!(
            "this host's clock was {span} ahead of Withings' at its last refresh; for {} minutes after a refresh expiry is judged by Withings' clock, then this host refreshes early",
            crate::clock::AHEAD_TRUSTED_FOR.num_minutes()
        )
    };
    Some(warn(
        "clock",
        detail,
        "sync it (NTP, e.g. `timedatectl set-ntp true`); `withings-token doctor --online` compares it with Withings' now",
    ))
}

fn expiry_check(tokens: &TokenSet, source: TokenSource, due: Option<DueReason>, now: DateTime<Utc>) -> DoctorCheck {
    const NAME: &str = "access token";
    let from = match source {
        TokenSource::Env => " (the environment's set, newer than the store's)",
        _ => "",
    };
    if due == Some(DueReason::TimesAhead) {
        let at = tokens.expires_at.map(rfc3339).unwrap_or_default();
        return warn(
            NAME,
            format!("expires at {at}{from}, but {}", DueReason::TimesAhead.describe()),
            "run `withings-token refresh`: the new set's times come from Withings' clock; and check this host's clock (`withings-token doctor --online`)",
        );
    }
    let due = due.is_some();
    match tokens.expires_at {
        None => warn(
            NAME,
            format!("the set has no expiry time{from}"),
            "run `withings-token refresh`: the new set records one",
        ),
        Some(at) if at <= now => warn(
            NAME,
            format!("expired at {}{from}: the next refresh replaces it", rfc3339(at)),
            "run `withings-token refresh` (from cron: `withings-token refresh --if-needed`)",
        ),
        Some(at) => {
            let hours = (at - now).num_seconds() as f64 / 3600.0;
            let due = if due { "; a refresh is due" } else { "" };
            ok(NAME, format!("expires at {} (in {hours:.1} h){from}{due}", rfc3339(at)))
        }
    }
}

/// Withings issues a new refresh token at every refresh and drops one that
/// goes unused for a year, so `last_refreshed` dates the refresh token.
pub(super) fn age_check(tokens: &TokenSet, now: DateTime<Utc>) -> DoctorCheck {
    const NAME: &str = "refresh token age";
    let Some(issued) = tokens.last_refreshed else {
        return warn(
            NAME,
            "unknown: the set has no last_refreshed time",
            "run `withings-token refresh`: the new set records it",
        );
    };
    let days = (now - issued).num_days();
    if issued > now {
        return warn(
            NAME,
            format!("issued {}, which is in the future", rfc3339(issued)),
            "check this host's clock (`withings-token doctor --online` compares it with Withings')",
        );
    }
    let detail = format!("issued {}, {} ago", rfc3339(issued), plural(days, "day"));
    if days >= AGE_FAIL_DAYS {
        return fail(
            NAME,
            format!("{detail}: unused for a year, Withings has most likely dropped it"),
            "try `withings-token refresh`; if Withings refuses it, re-authorise: `withings-token auth-url`, then `withings-token exchange '<redirect URL>'`",
        );
    }
    if days >= AGE_WARN_DAYS {
        return warn(
            NAME,
            format!("{detail}: Withings drops a refresh token unused for a year"),
            "run `withings-token refresh` now (it gets a new one), and `withings-token refresh --if-needed` from cron",
        );
    }
    ok(NAME, format!("{detail} (Withings drops one unused for a year)"))
}
