//! The settings: the env file, the app's credentials, the URLs and
//! Railway's settings, as loaded (nothing is asked of anyone).

use reqwest::Url;

use super::{fail, failed, lines, ok, warn};
use crate::envfile::RepeatedKey;
use crate::error::Result;
use crate::output::DoctorCheck;
use crate::redact::{shown_url, visible};
use crate::settings::{RailwayAuth, RailwayConfig, Settings};

pub(super) fn env_file(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "env file";
    let Some(loaded) = &settings.env_file else {
        return ok(NAME, "none read: settings come from the process environment");
    };
    let mut problems = Vec::new();
    let skipped = loaded.file.skipped_lines();
    if !skipped.is_empty() {
        problems.push(format!(
            "{} skipped: not KEY=value lines withings-token can read, and they set none of its settings",
            lines(skipped)
        ));
    }
    for RepeatedKey { key, lines: set_on } in loaded.file.repeated_keys() {
        problems.push(format!("{key} is set on {}: the last one is used", lines(set_on)));
    }
    let path = loaded.path.display();
    if problems.is_empty() {
        return ok(NAME, path.to_string());
    }
    warn(
        NAME,
        format!("{path}: {}", problems.join("; ")),
        "fix or delete those lines if they were meant for withings-token (other apps' lines can stay), and set each key once so that every reader of the file agrees",
    )
}

pub(super) fn credentials(settings: &Settings) -> Vec<DoctorCheck> {
    let missing: Vec<&str> = [
        ("WITHINGS_CLIENT_ID", settings.client_id.is_none()),
        ("WITHINGS_CLIENT_SECRET", settings.client_secret.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    let app = match &settings.client_id {
        Some(id) if missing.is_empty() => ok(
            "credentials",
            format!("WITHINGS_CLIENT_ID {}, WITHINGS_CLIENT_SECRET set", visible(id)),
        ),
        _ => fail(
            "credentials",
            format!(
                "{} {} not set: refresh and exchange cannot work",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" }
            ),
            format!(
                "set {} (your app's, on developer.withings.com) in the environment or in the env file (`--env-file`, default ./.env)",
                missing.join(" and ")
            ),
        ),
    };
    let redirect = match &settings.redirect_uri {
        Some(uri) => ok("redirect uri", visible(uri)),
        None => warn(
            "redirect uri",
            "WITHINGS_REDIRECT_URI is not set: `auth-url` and `exchange` need it (`refresh` does not)",
            "set WITHINGS_REDIRECT_URI to the callback registered with your Withings app",
        ),
    };
    vec![app, redirect]
}

pub(super) fn urls(settings: &Settings) -> Vec<DoctorCheck> {
    let railway_used = settings.railway.configuration() != RailwayConfig::Absent;
    vec![
        url_check("api url", settings.api_url(), true),
        url_check("authorize url", settings.authorize_url(), true),
        url_check("railway url", settings.railway_api_url(), railway_used),
    ]
}

/// A URL setting: usable, or what is wrong with it (only a warning for
/// Railway's when Railway is not set up at all).
fn url_check(name: &'static str, url: Result<&Url>, used: bool) -> DoctorCheck {
    match url {
        Ok(url) => ok(name, shown_url(url)),
        Err(e) if used => failed(name, &e),
        Err(e) => warn(
            name,
            format!("{e} (unused while Railway is not configured)"),
            e.action(),
        ),
    }
}

pub(super) fn railway_settings(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "railway";
    let railway = &settings.railway;
    match railway.configuration() {
        RailwayConfig::Absent => ok(NAME, "not configured (no copy goes to Railway)"),
        RailwayConfig::Partial { missing } => fail(
            NAME,
            format!(
                "only partly configured: missing {}; `refresh` and `exchange` stop (exit 3) until it is complete",
                missing.join(", ")
            ),
            "set the missing variables (check for typos such as RAILWAY_SERVICE for RAILWAY_SERVICE_ID), or unset the others",
        ),
        RailwayConfig::Complete => {
            let environment = match &railway.environment_id {
                Some(id) => format!("environment {}", visible(id)),
                None => format!("the environment named `{}`", visible(&railway.environment_name)),
            };
            let token = match railway.auth {
                Some(RailwayAuth::Account(_)) => "an account token (RAILWAY_API_TOKEN)",
                _ => "a project token (RAILWAY_TOKEN)",
            };
            let id = |value: &Option<String>| visible(value.as_deref().unwrap_or_default());
            ok(
                NAME,
                format!(
                    "service {} of project {}, {environment}, with {token}",
                    id(&railway.service_id),
                    id(&railway.project_id)
                ),
            )
        }
    }
}
