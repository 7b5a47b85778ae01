//! One file per subcommand; this module wires them to the parsed command
//! line. Commands compose the store, the clients and the output module; none
//! of them builds an HTTP request or opens a file itself.

pub mod auth_url;
pub mod completions;
pub mod demo;
pub mod exchange;
pub mod railway_sync;
pub mod refresh;
pub mod sandbox;
pub mod status;

use crate::cli::{Cli, Command, DeliveryArgs};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::output::{ErrorBody, JSON_VERSION, Output, RailwayStatus, TokenReport};
use crate::rotation::{self, Outcome, Rotation};
use crate::settings::Settings;
use crate::store::FileStore;
use crate::tokens::{TokenSet, TokenSource, rfc3339};
use crate::withings::WithingsClient;

pub fn dispatch(cli: Cli, out: &Output) -> Result<()> {
    let Cli { global, command } = cli;
    match command {
        Command::Completions(args) => completions::run(&args),
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Demo(args) => demo::run(&args, &global),
        Command::Status(args) => status::run(&args, &Settings::load(&global, args.buffer)?, out),
        Command::Refresh(args) => refresh::run(&args, &Settings::load(&global, args.buffer)?, out),
        Command::AuthUrl(args) => auth_url::run(&args, &Settings::load(&global, None)?, out),
        Command::Exchange(args) => exchange::run(&args, &Settings::load(&global, None)?, out),
        Command::RailwaySync(args) => railway_sync::run(&args, &Settings::load(&global, None)?, out),
    }
}

pub(crate) fn store_of(settings: &Settings) -> FileStore {
    FileStore::new(settings.store_path.clone())
}

/// The Withings client for a network command; fails on missing credentials
/// before anything is locked or sent.
pub(crate) fn withings_client(settings: &Settings, http: &HttpClient, needed_for: &str) -> Result<WithingsClient> {
    let id = settings.client_id(needed_for)?;
    let secret = settings.client_secret(needed_for)?;
    WithingsClient::new(http.clone(), settings.api_url()?, id, secret)
}

/// Railway after a new set was saved: skipped, updated, or failed (exit 6,
/// with the saved set still reported so nothing is lost).
pub(crate) async fn deliver_to_railway(
    settings: &Settings,
    http: &HttpClient,
    store: &FileStore,
    delivery: &DeliveryArgs,
    out: &Output,
) -> (RailwayStatus, bool, Option<Error>) {
    if delivery.no_railway {
        return (RailwayStatus::Skipped, false, None);
    }
    if !settings.railway.is_configured() {
        if delivery.trigger_deployment || settings.railway.auth.is_some() || settings.railway.service_id.is_some() {
            out.note(&format!(
                "warning: Railway was not updated: it is not fully configured (missing {})",
                settings.railway.missing().join(", ")
            ));
        }
        return (RailwayStatus::Skipped, false, None);
    }
    match rotation::push_to_railway(settings, http, store, delivery.trigger_deployment).await {
        Ok(deployed) => (RailwayStatus::Updated, deployed, None),
        Err(e) => (RailwayStatus::Failed, false, Some(railway_failure(e))),
    }
}

pub(crate) fn railway_failure(error: Error) -> Error {
    match error {
        Error::RailwayUpdateFailed { .. } => error,
        other => Error::RailwayUpdateFailed {
            detail: other.to_string(),
        },
    }
}

/// Builds the report of a token set for `refresh`, `exchange` and `railway-sync`.
pub(crate) fn token_report(
    out: &Output,
    outcome: &'static str,
    tokens: &TokenSet,
    source: TokenSource,
    generation: u64,
    store: &FileStore,
) -> TokenReport {
    TokenReport {
        version: JSON_VERSION,
        outcome,
        access_token: tokens.access_token.as_ref().map(|t| out.secret(t)),
        refresh_token: out.secret(&tokens.refresh_token),
        expires_at: tokens.expires_at.map(rfc3339),
        last_refreshed: tokens.last_refreshed.map(rfc3339),
        userid: tokens.userid.clone(),
        scope: tokens.scope.clone(),
        source,
        generation,
        store: store.path().display().to_string(),
        env_file_updated: None,
        railway: RailwayStatus::Skipped,
        deployment_triggered: false,
        message: None,
        error: None,
        tokens: Some(tokens.clone()),
    }
}

/// Shared ending of `refresh` and `exchange`: Railway, then one report.
pub(crate) async fn finish_rotation(
    settings: &Settings,
    http: &HttpClient,
    rotation: Rotation,
    delivery: &DeliveryArgs,
    out: &Output,
) -> Result<()> {
    let store = store_of(settings);
    let (outcome, message) = describe(&rotation.outcome);
    let mut report = token_report(
        out,
        outcome,
        &rotation.tokens,
        rotation.source,
        rotation.generation,
        &store,
    );
    report.message = message;
    report.env_file_updated = rotation.env_file_updated.as_ref().map(|p| p.display().to_string());
    let rotated = matches!(rotation.outcome, Outcome::Refreshed { .. } | Outcome::Exchanged);
    let mut failure = None;
    if rotated {
        let (railway, deployed, error) = deliver_to_railway(settings, http, &store, delivery, out).await;
        report.railway = railway;
        report.deployment_triggered = deployed;
        report.error = error.as_ref().map(ErrorBody::of);
        failure = error;
    }
    out.tokens(&report);
    if failure.is_some() {
        out.note(&format!(
            "the new tokens are saved in {} (generation {})",
            store.path().display(),
            rotation.generation
        ));
    }
    failure.map_or(Ok(()), Err)
}

fn describe(outcome: &Outcome) -> (&'static str, Option<String>) {
    match outcome {
        Outcome::Refreshed { used_previous: false } => ("refreshed", None),
        Outcome::Refreshed { used_previous: true } => (
            "refreshed",
            Some("the current refresh token was refused; the previous generation's token was used".into()),
        ),
        Outcome::Exchanged => ("exchanged", None),
        Outcome::NotDue { expires_at, refresh_at } => (
            "not_due",
            Some(format!(
                "not refreshed: the token expires at {} and is due from {}",
                rfc3339(*expires_at),
                rfc3339(*refresh_at)
            )),
        ),
        Outcome::AlreadyRefreshedByPeer => (
            "already_refreshed_by_peer",
            Some("not refreshed: another withings-token process refreshed it while this one waited".into()),
        ),
    }
}

/// Like [`railway_failure`], but a configuration problem stays exit 3.
pub(crate) fn railway_failure_keep_config(error: Error) -> Error {
    match error {
        Error::Config { .. } => error,
        other => railway_failure(other),
    }
}
