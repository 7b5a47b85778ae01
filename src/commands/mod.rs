//! The command line's face: the top-level [`Cli`], its subcommand list
//! ([`Command`]) and its parser (`parse`), and one file per subcommand
//! holding its clap `Args` (whose doc comment is the help text) and the
//! `run` that parses, calls the core and hands the result to `Output`.
//! Commands compose the store, the clients, the copies and the core
//! operations (`consent`, `report`, `validation`); none of them builds an
//! HTTP request or opens a file itself. Each returns the exit [`Status`] of
//! a run that reached its end; errors travel as [`Error`].

pub mod access_token;
pub mod auth_url;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod exchange;
pub mod exec;
pub mod export;
pub mod login;
mod parse;
pub mod pull;
pub mod railway_sync;
pub mod refresh;
pub mod remote;
pub mod sandbox;
pub mod serve;
pub mod status;
pub mod validate;

use clap::{Parser, Subcommand};

use crate::cli::GlobalArgs;
use crate::copies::{self, CopyKind, Deliveries, Delivery, Targets};
use crate::error::{Error, Result, Status};
use crate::http::HttpClient;
use crate::output::{CopyStatus, ErrorBody, JSON_VERSION, Output, ReportOutcome, TokenReport};
use crate::rotation::{Outcome, Rotation, Via, describe_via};
use crate::settings::Settings;
use crate::store::{self, TokenStore};
use crate::tokens::{TokenSet, TokenSource, rfc3339};
use crate::withings::WithingsClient;

pub use parse::{command, parse};

#[derive(Debug, Parser)]
#[command(
    name = "withings-token",
    version,
    about = "Keep one Withings account's OAuth2 tokens alive: refresh, check, authorise, push to Railway",
    long_about = "Keep one Withings account's OAuth2 tokens alive.\n\n\
Withings rotates the refresh token on every refresh and the old one dies within hours, so \
withings-token saves every new pair durably (and atomically, under a lock) before doing \
anything else with it. Tokens live in a local store; they can also be written back to your \
.env file and pushed to a Railway service's variables.",
    after_help = "Examples:\n  withings-token demo                      # the whole flow against a built-in sandbox\n  withings-token status\n  withings-token refresh --if-needed\n  withings-token refresh --output-env > tokens.env\n\nExit codes: 0 ok, 1 bug, 2 usage, 3 configuration, 4 grant refused, 5 network/upstream/lock/login timeout, 6 new set saved but a copy (Railway, env file, stdout) stale, 7 refresh due (status --check), 8 Railway drifted from the store (railway-sync --check), 128+n signal."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Status(status::StatusArgs),
    Refresh(refresh::RefreshArgs),
    AuthUrl(auth_url::AuthUrlArgs),
    Exchange(exchange::ExchangeArgs),
    Login(login::LoginArgs),
    RailwaySync(railway_sync::RailwaySyncArgs),
    Pull(pull::PullArgs),
    Export(export::ExportArgs),
    AccessToken(access_token::AccessTokenArgs),
    Exec(exec::ExecArgs),
    Validate(validate::ValidateArgs),
    Doctor(doctor::DoctorArgs),
    Serve(serve::ServeArgs),
    Sandbox(sandbox::SandboxArgs),
    Demo(demo::DemoArgs),
    Completions(completions::CompletionsArgs),
}

pub fn dispatch(cli: Cli, out: &Output) -> Result<Status> {
    let Cli { global, command } = cli;
    match command {
        Command::Completions(args) => completions::run(&args),
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Demo(args) => demo::run(&args, &global),
        Command::Doctor(args) => doctor::run_from(&args, &global, out),
        command => {
            let settings = Settings::load(&global, buffer_flag(&command))?;
            execute(command, &settings, out)
        }
    }
}

/// Runs a command that works from settings (the demo calls this too).
pub fn execute(command: Command, settings: &Settings, out: &Output) -> Result<Status> {
    match command {
        Command::Status(args) => apart(|| status::run(&args, settings, out)),
        Command::Refresh(args) => apart(|| refresh::run(&args, settings, out)),
        Command::AuthUrl(args) => apart(|| auth_url::run(&args, settings, out)),
        Command::Exchange(args) => apart(|| exchange::run(&args, settings, out)),
        Command::Login(args) => apart(|| login::run(&args, settings, out)),
        Command::RailwaySync(args) => apart(|| railway_sync::run(&args, settings, out)),
        Command::Pull(args) => apart(|| pull::run(&args, settings, out)),
        Command::Export(args) => apart(|| export::run(&args, settings, out)),
        Command::AccessToken(args) => apart(|| access_token::run(&args, settings, out)),
        Command::Exec(args) => apart(|| exec::run(&args, settings, out)),
        Command::Validate(args) => apart(|| validate::run(&args, settings, out)),
        Command::Doctor(args) => apart(|| doctor::run(&args, settings, out)),
        Command::Serve(args) => apart(|| serve::run(&args, settings)),
        Command::Completions(_) | Command::Sandbox(_) | Command::Demo(_) => {
            Err(Error::Internal(anyhow::anyhow!("this command needs no settings")))
        }
    }
}

/// Runs one command out of line. Inlined into `execute`, every command's
/// locals (the refresh and serve futures among them) made one 25 KiB stack
/// frame, 6 fresh stack pages that every start touched.
#[inline(never)]
fn apart<T>(run: impl FnOnce() -> T) -> T {
    run()
}

/// `--buffer`, for the commands that take it.
pub fn buffer_flag(command: &Command) -> Option<std::time::Duration> {
    match command {
        Command::Status(args) => args.buffer,
        Command::Refresh(args) => args.buffer,
        Command::Serve(args) => args.buffer,
        _ => None,
    }
}

/// The store the settings name (a file, or Redis); connects on first use.
pub(crate) fn store_of(settings: &Settings) -> Result<std::sync::Arc<dyn TokenStore>> {
    store::open(settings)
}

/// The store as it is now: read directly from a file, on a runtime of one
/// thread from Redis (for commands that need nothing else from one).
pub(crate) fn load_now(store: &dyn TokenStore) -> Result<crate::store::StoreState> {
    match store.load_local() {
        Some(state) => state,
        None => crate::http::block_on(store.load())?,
    }
}

/// The Withings client for a network command; fails on missing credentials
/// before anything is locked or sent.
pub(crate) fn withings_client(settings: &Settings, http: &HttpClient, needed_for: &str) -> Result<WithingsClient> {
    let id = settings.client_id(needed_for)?;
    let secret = settings.client_secret(needed_for)?;
    WithingsClient::new(http.clone(), settings.api_url()?, id, secret)
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

/// Builds the report of `refresh`, `exchange` and `railway-sync`.
pub(crate) fn token_report(out: &Output, facts: Facts<'_>, deliveries: &Deliveries) -> TokenReport {
    let tokens = facts.tokens;
    let env_file_updated = match &deliveries.env_file {
        Delivery::Delivered { .. } => deliveries.env_file_path.as_ref().map(|p| p.display().to_string()),
        _ => None,
    };
    TokenReport {
        version: JSON_VERSION,
        outcome: facts.outcome,
        via: facts.via.map(via_key),
        access_token: tokens.access_token.as_ref().map(|t| out.secret(t)),
        refresh_token: out.secret(&tokens.refresh_token),
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
        Delivery::Delivered { .. } => CopyStatus::Updated,
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

/// The shared ending of `refresh` and `exchange`: a signal held during the
/// save ends the run there; otherwise the copies are brought up to date and
/// one report is printed.
pub(crate) async fn deliver_and_report(
    settings: &Settings,
    http: &HttpClient,
    store: &dyn TokenStore,
    targets: &Targets,
    rotation: Rotation,
    out: &Output,
) -> Result<Status> {
    match deliver_and_build_report(settings, http, store, targets, rotation, out).await {
        Ending::Interrupted { signal, saved } => Ok(interrupted(out, signal, &saved)),
        Ending::Delivered(done) => finish(out, &done.report, &done.deliveries, &done.saved),
    }
}

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

/// The part of [`deliver_and_report`] that prints nothing, shared with
/// `serve`, which answers with the report instead of printing it.
pub(crate) async fn deliver_and_build_report(
    settings: &Settings,
    http: &HttpClient,
    store: &dyn TokenStore,
    targets: &Targets,
    rotation: Rotation,
    out: &Output,
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
    let report = token_report(out, facts, &deliveries);
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
        .filter(|(d, _)| matches!(d, Delivery::Delivered { .. }))
        .map(|(_, name)| name)
        .collect();
    (!names.is_empty()).then(|| names.join(" and "))
}

/// Prints the report, then every stale copy's error on stderr (never
/// hidden by `--quiet`); the exit status says whether all copies are fresh.
/// stdout failing is one more stale copy, reported after the others.
pub(crate) fn finish(out: &Output, report: &TokenReport, deliveries: &Deliveries, saved: &str) -> Result<Status> {
    finish_printed(out, out.tokens(report), deliveries, saved)
}

/// [`finish`] for a command that printed something else than the report
/// (`access-token`): `printed` is how that went.
pub(crate) fn finish_printed(
    out: &Output,
    printed: Result<()>,
    deliveries: &Deliveries,
    saved: &str,
) -> Result<Status> {
    let mut status = Status::Success;
    for error in deliveries.failures() {
        out.stale_copy(error);
        status = Status::StaleCopy;
    }
    printed.map_err(|e| match e {
        Error::OutputFailed { detail } => Error::OutputFailed {
            detail: format!("{detail}; {saved}"),
        },
        other => other,
    })?;
    if status == Status::StaleCopy {
        out.note_always(&format!("note: {saved}"));
    }
    Ok(status)
}

/// A run that a held signal ended right after the save.
pub(crate) fn interrupted(out: &Output, signal: i32, saved: &str) -> Status {
    out.note_always(&format!(
        "note: interrupted (signal {signal}) while the new set was being saved: {saved}; copies catch up on the next `withings-token refresh --if-needed`"
    ));
    Status::Signalled(signal)
}
