//! Where the settings came from: the config file in use, then each setting
//! `doctor` shows, with its value (no password) and its source.

use crate::config::ConfigOrigin;
use crate::output::SettingOrigin;
use crate::redact::visible;
use crate::settings::{Settings, Source, StoreLocation};

/// None with `--server`: the values that matter are the server's, and
/// `doctor` on its host shows them.
pub(crate) fn origins(settings: &Settings) -> Vec<SettingOrigin> {
    if settings.remote.is_some() {
        return Vec::new();
    }
    let mut shown = vec![config_file(settings)];
    shown.extend(settings.origins.iter().map(|origin| {
        let mut row = row(origin.setting, origin.variable, value_of(settings, origin.variable));
        match &origin.source {
            Source::Flag(flag) => {
                row.from = "flag";
                row.flag = Some(flag);
            }
            Source::Environment => row.from = "environment",
            Source::ConfigFile(place) => {
                row.from = "config file";
                row.file = settings.config().map(|c| c.path.display().to_string());
                row.line = Some(place.line);
                row.table = place.account.as_ref().map(|name| format!("account.{name}"));
            }
            Source::EnvFile => {
                row.from = "env file";
                row.file = settings.env_file.as_ref().map(|f| f.path.display().to_string());
            }
            Source::Default => {}
        }
        row
    }));
    shown
}

fn row(setting: &'static str, variable: &'static str, value: Option<String>) -> SettingOrigin {
    SettingOrigin {
        setting,
        variable,
        value,
        from: "default",
        flag: None,
        file: None,
        line: None,
        table: None,
    }
}

/// The config file in use, and what named it.
fn config_file(settings: &Settings) -> SettingOrigin {
    let Some(config) = settings.config() else {
        return row("config file", crate::config::CONFIG_VARIABLE, None);
    };
    let mut shown = row(
        "config file",
        crate::config::CONFIG_VARIABLE,
        Some(config.path.display().to_string()),
    );
    match config.origin {
        ConfigOrigin::Flag => {
            shown.from = "flag";
            shown.flag = Some("--config");
        }
        ConfigOrigin::Variable => shown.from = "environment",
        ConfigOrigin::Default => {}
    }
    shown
}

/// The value of the setting `variable` as the settings hold it.
fn value_of(settings: &Settings, variable: &str) -> Option<String> {
    let spelled = crate::duration::spelled;
    match variable {
        "WITHINGS_ENV_FILE" => settings.env_file.as_ref().map(|f| f.path.display().to_string()),
        "WITHINGS_CLIENT_ID" => settings.client_id.as_deref().map(visible),
        "WITHINGS_REDIRECT_URI" => settings.redirect_uri.as_deref().map(visible),
        "WITHINGS_TOKEN_STORE" => Some(store_shown(&settings.deployment_store)),
        "WITHINGS_TOKEN_ACCOUNT" => Some(
            settings
                .account
                .as_ref()
                .map_or_else(|| "the only one in the store".to_owned(), ToString::to_string),
        ),
        "WITHINGS_REFRESH_BUFFER" => Some(
            settings
                .buffer
                .and_then(|d| d.to_std().ok())
                .map_or_else(|| "min(24h, lifetime / 3)".to_owned(), spelled),
        ),
        "WITHINGS_TOKEN_REFRESH_AT_LEAST" => Some(
            settings
                .policy
                .refresh_at_least
                .map_or_else(|| "never".to_owned(), spelled),
        ),
        "WITHINGS_TOKEN_JITTER" => Some(spelled(settings.policy.jitter)),
        "WITHINGS_TOKEN_UPSTREAM_BUDGET" => Some(format!("{}/min", settings.upstream_budget)),
        _ => None,
    }
}

/// A file store's path; a Redis store's URL without its password.
fn store_shown(store: &StoreLocation) -> String {
    use secrecy::ExposeSecret;
    match store {
        StoreLocation::File(path) => path.display().to_string(),
        StoreLocation::Redis { url, .. } => reqwest::Url::parse(url.expose_secret())
            .map(|u| crate::redact::shown_url(&u))
            .unwrap_or_else(|_| "a Redis URL".to_owned()),
    }
}
