//! Where each of the settings `doctor` shows came from: the flag, the
//! process environment, the config file (an account's table or its top),
//! the env file, or the default.

use std::time::Duration;

use super::{LoadedEnvFile, Lookup, Overrides};
use crate::config::Place;
use crate::envfile::EnvFileOrigin;

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The command-line flag named.
    Flag(&'static str),
    Environment,
    ConfigFile(Place),
    EnvFile,
    Default,
}

/// A setting `doctor` shows, and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// As people call it: `client id`, `store`.
    pub setting: &'static str,
    pub variable: &'static str,
    pub source: Source,
}

/// The settings shown, each with its flag (if any) and whether that flag was
/// given.
pub(super) fn origins(
    given: &Overrides,
    buffer_flag: Option<Duration>,
    vars: &Lookup,
    env_file: Option<&LoadedEnvFile>,
) -> Vec<Origin> {
    let shown: [(&'static str, &'static str, Option<&'static str>); 8] = [
        ("client id", "WITHINGS_CLIENT_ID", None),
        ("redirect uri", "WITHINGS_REDIRECT_URI", None),
        ("store", "WITHINGS_TOKEN_STORE", given.store.as_ref().map(|_| "--store")),
        (
            "account",
            "WITHINGS_TOKEN_ACCOUNT",
            given.account.as_ref().map(|_| "--account"),
        ),
        ("buffer", "WITHINGS_REFRESH_BUFFER", buffer_flag.map(|_| "--buffer")),
        ("refresh at least", "WITHINGS_TOKEN_REFRESH_AT_LEAST", None),
        ("jitter", "WITHINGS_TOKEN_JITTER", None),
        (
            "upstream budget",
            "WITHINGS_TOKEN_UPSTREAM_BUDGET",
            given.upstream_budget.map(|_| "--upstream-budget"),
        ),
    ];
    let mut origins = vec![Origin {
        setting: "env file",
        variable: "WITHINGS_ENV_FILE",
        source: env_file_source(given, vars, env_file),
    }];
    origins.extend(shown.into_iter().map(|(setting, variable, flag)| Origin {
        setting,
        variable,
        source: flag.map_or_else(|| vars.source(variable), Source::Flag),
    }));
    origins
}

/// The env file is looked up apart: it is where the others are looked up.
fn env_file_source(given: &Overrides, vars: &Lookup, env_file: Option<&LoadedEnvFile>) -> Source {
    if given.no_env_file {
        return Source::Flag("--no-env-file");
    }
    match env_file.map(|f| f.origin) {
        Some(EnvFileOrigin::Flag) => Source::Flag("--env-file"),
        Some(EnvFileOrigin::Variable) => Source::Environment,
        Some(EnvFileOrigin::ConfigFile) => vars
            .config
            .and_then(|(config, account)| config.value("WITHINGS_ENV_FILE", account))
            .map_or(Source::Default, |(_, place)| Source::ConfigFile(place)),
        Some(EnvFileOrigin::WorkingDirectory) | None => Source::Default,
    }
}
