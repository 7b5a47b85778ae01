//! `--online`, Withings: one probe with a made-up refresh token (never the
//! account's: see [`withings::probe`]), and this host's clock against
//! Withings' `Date` header.

use super::{fail, failed, ok, unreachable_or_failed, warn};
use crate::http::HttpClient;
use crate::output::DoctorCheck;
use crate::redact::shown_url;
use crate::settings::Settings;
use crate::withings::{self, Probe, ProbeReply};

/// More difference than this between this host's clock and Withings' draws
/// a warning.
const MAX_SKEW_SECS: i64 = 60;

/// Is Withings there, does it take the app's credentials, and does this
/// host's clock agree with its `Date` header.
pub(super) async fn withings_checks(settings: &Settings, http: &HttpClient) -> Vec<DoctorCheck> {
    const NAME: &str = "withings";
    let Ok(api_url) = settings.api_url() else {
        return vec![fail(
            NAME,
            "not asked: WITHINGS_API_URL is not usable",
            "fix WITHINGS_API_URL (see `api url`)",
        )];
    };
    let credentials = settings.client_id.as_deref().zip(settings.client_secret.as_ref());
    let host = shown_url(api_url);
    // The probe is a token request in the app's name: it spends the app's
    // budget like a refresh (this process's share of it).
    if let Some((client_id, _)) = credentials {
        let budget = crate::budget::for_client(client_id, settings.upstream_budget);
        if let Err(e) = budget.take(None).await {
            return vec![unreachable_or_failed(
                NAME,
                &e,
                "the app's upstream budget (`--upstream-budget`)",
            )];
        }
    }
    match withings::probe(http, api_url, credentials).await {
        Ok(probe) => vec![reply_check(&probe, &host), clock_check(&probe)],
        Err(e) => vec![unreachable_or_failed(
            NAME,
            &e,
            &format!("this host's network (DNS, proxy, firewall) and WITHINGS_API_URL ({host})"),
        )],
    }
}

fn reply_check(probe: &Probe, host: &str) -> DoctorCheck {
    const NAME: &str = "withings";
    match &probe.reply {
        ProbeReply::Answered { status, message } => {
            let message = if message.is_empty() { "no message" } else { message };
            ok(
                NAME,
                format!("{host} answers (a probe with a made-up refresh token got status {status}: {message})"),
            )
        }
        ProbeReply::CredentialsRefused(e) => failed(NAME, e),
        ProbeReply::Unusable(what) => fail(
            NAME,
            format!("{host} answered, but not as Withings does: {what}"),
            "check WITHINGS_API_URL (and any proxy in between), then run `withings-token doctor --online` again",
        ),
    }
}

pub(super) fn clock_check(probe: &Probe) -> DoctorCheck {
    const NAME: &str = "clock";
    let Some(server_time) = probe.server_time else {
        return warn(
            NAME,
            "not checked: Withings' answer had no readable Date header",
            "compare `date -u` with a time source by hand",
        );
    };
    let skew = (server_time - probe.received_at).num_seconds();
    if skew.abs() <= MAX_SKEW_SECS {
        return ok(
            NAME,
            format!("agrees with Withings' Date header (off by {} s)", skew.abs()),
        );
    }
    let side = if skew > 0 { "behind" } else { "ahead of" };
    warn(
        NAME,
        format!(
            "this host's clock is {} s {side} Withings' (its Date header)",
            skew.abs()
        ),
        "sync it (NTP, e.g. `timedatectl set-ntp true`): expiry times come from this clock, and other hosts and Railway compare the refresh times it writes",
    )
}
