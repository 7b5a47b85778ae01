//! `refresh`: rotate the token set under the store lock, then bring its
//! copies up to date (also when nothing was due and a copy is behind).
//!
//! With Railway configured, its target is resolved before anything is sent
//! to Withings (see `copies::railway_before_rotating`): a setting Railway
//! refuses is exit 3 with the token untouched, instead of a rotation on
//! every cron tick that Railway never receives. Railway that cannot be
//! reached then stops `--if-needed` while the token still works, and is
//! said and pushed after the save otherwise.

use std::time::Duration;

use clap::Args;

use crate::accounts::AccountName;
use crate::cli::{DeliveryArgs, parse_buffer};
use crate::copies::{self, RailwayFirst, Targets};
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::notify::PingStage;
use crate::output::{AccountRefresh, DryRunReport, ErrorBody, JSON_VERSION, Output, RefreshAllReport};
use crate::report::{Delivered, Ending, deliver_and_build_report};
use crate::rotation::{self, no_tokens_error};
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::{Action, Policy, SeenBefore, now, rfc3339};

/// Refresh the tokens: rotate, save to the store, update the env file and Railway
#[derive(Debug, Args)]
#[command(
    after_help = "The new refresh token is saved to the store before anything else is attempted.\n\
`--output env` prints the tokens unmasked; `--no-railway` is NOT a dry run (the token still rotates): use `--dry-run`.\n\
With Railway configured, its target is resolved before anything is sent: a setting Railway refuses is exit 3 and nothing \
rotates; Railway unreachable then stops `--if-needed` while the token still works (exit 5), never a due refresh of an \
expired one.\n\n\
`--all` refreshes every account in turn (one's failure does not stop the others; each account's lock is its own), \
prints one report per account, and exits with the most serious of their exits: 1, then 4 (a grant refused), 3, 2, \
5, 6, in that order, else 0.\n\n\
Examples:\n  withings-token refresh --if-needed             # cron: only when due\n  withings-token refresh --if-needed --all       # cron: every account of the household\n  withings-token refresh --dry-run               # what would happen; sends and writes nothing\n  withings-token refresh --output-env > new.env  # prints secrets\n  withings-token refresh --no-railway --no-env-file-update"
)]
pub struct RefreshArgs {
    /// Refresh only when `status` would say a refresh is due; otherwise exit 0 and say why
    #[arg(long)]
    pub if_needed: bool,

    /// Decide and report what a refresh would do; send nothing, write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long before expiry a refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]
    #[arg(long, value_parser = parse_buffer, value_name = "DURATION")]
    pub buffer: Option<Duration>,

    /// Every account in turn, each under its own lock; exit: the most serious account's (not with --account, --server)
    #[arg(long, conflicts_with = "dry_run")]
    pub all: bool,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

pub fn run(args: &RefreshArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if args.all {
        refuse_one_with_all(settings)?;
    }
    if let Some(server) = crate::server_client::ServerClient::of(settings, true)? {
        return by_server(&server, args, out);
    }
    if settings.events.ping_urls.is_empty() || args.dry_run {
        return refresh_here(args, settings, out);
    }
    ping_start(settings);
    let result = refresh_here(args, settings, out);
    let (stage, body) = match &result {
        Ok(status) if status.exit_code() == 0 => (PingStage::Success, "withings-token refresh: ok".to_owned()),
        Ok(status) => (
            PingStage::Fail,
            format!("withings-token refresh ended with exit {}", status.exit_code()),
        ),
        Err(e) => (
            PingStage::Fail,
            format!(
                "withings-token refresh failed: {e} [{}]\nnext: {}",
                e.code(),
                e.action()
            ),
        ),
    };
    // Sent with the run's events, within the one notify timeout.
    crate::notify::ping_at_exit(stage, body);
    result
}

/// The longest a refresh waits for its `/start` ping.
const START_PING_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The dead-man check's `/start` (`--ping-url`): best effort, and brief,
/// since the refresh waits for it.
fn ping_start(settings: &Settings) {
    let wait = settings.events.notify_timeout.min(START_PING_WAIT);
    let deadline = std::time::Instant::now() + wait;
    if let Err(e) = block_on(crate::notify::ping(settings, PingStage::Start, "", deadline)) {
        tracing::warn!("the ping was not sent: {e}");
    }
}

fn refresh_here(args: &RefreshArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if args.all {
        return every_account(args, settings, out);
    }
    let targets = copies::targets(settings, args.delivery.choices())?;
    let store = crate::store::open(settings)?;
    block_on(refresh(args, settings, store.as_ref(), &targets, out))?
}

async fn refresh(
    args: &RefreshArgs,
    settings: &Settings,
    store: &dyn TokenStore,
    targets: &Targets,
    out: &Output,
) -> Result<Status> {
    let seen_before = store.load().await?;
    let policy = policy_of(args, settings);
    if args.dry_run {
        return dry_run(settings, &seen_before, store, targets, policy, out);
    }
    let http = HttpClient::new(settings.http)?;
    let (targets, rotation) = rotate(args, settings, (store, &http), targets, &seen_before, out).await?;
    super::deliver_and_report(settings, &http, store, &targets, rotation, out).await
}

/// The rotation `refresh` carries out (or finds not due), and the targets
/// its copies go to once Railway was asked.
async fn rotate(
    args: &RefreshArgs,
    settings: &Settings,
    (store, http): (&dyn TokenStore, &HttpClient),
    targets: &Targets,
    seen_before: &crate::store::StoreState,
    out: &Output,
) -> Result<(Targets, rotation::Rotation)> {
    let policy = policy_of(args, settings);
    let client = crate::withings::client_for(settings, http, "refresh")?.sharing_budget_through(store);
    let _spinner = out.spinner("refreshing the Withings tokens…");
    let first = copies::railway_before_rotating(settings, http, seen_before, policy, targets).await?;
    let targets = say_railway_first(first, args.if_needed, out)?;
    let current = copies::none_behind(settings, &targets, seen_before);
    let rotation = rotation::refresh(settings, store, seen_before, &client, policy, current).await?;
    Ok((targets, rotation))
}

fn policy_of(args: &RefreshArgs, settings: &Settings) -> Policy {
    Policy {
        buffer: settings.buffer,
        force: !args.if_needed,
        cadence: settings.cadence(),
    }
}

/// `--all` names every account: a server (`--server`), which refreshes
/// its accounts on its own schedule, or one account named beside it
/// (global options, checked here rather than by the parser) is refused.
fn refuse_one_with_all(settings: &Settings) -> Result<()> {
    if settings.remote.is_some() {
        return Err(Error::config(
            "--all is not available with --server (WITHINGS_TOKEN_SERVER): the server refreshes its accounts on its own schedule; nothing was sent",
            "run `withings-token refresh --if-needed --all` where the store is, or drop --server",
        ));
    }
    if let Some(named) = &settings.account {
        return Err(Error::config(
            format!(
                "--all refreshes every account, but --account (or WITHINGS_TOKEN_ACCOUNT) names {named}; nothing was sent"
            ),
            format!("drop one: `withings-token refresh --all`, or `withings-token refresh --account {named}`"),
        ));
    }
    if settings.output.format == crate::settings::OutputFormat::Env {
        return Err(Error::config(
            "--all refreshes several accounts, whose sets cannot be one set of env lines; nothing was sent",
            "use `--json` (one row per account), or `withings-token refresh --account NAME --output env`",
        ));
    }
    Ok(())
}

/// `--all`: each account in turn on one runtime and one HTTP client, a
/// failure reported and the next account refreshed; a signal held during a
/// save ends the run there.
fn every_account(args: &RefreshArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let mut names = match crate::accounts::names_local(settings) {
        Some(names) => names?,
        None => block_on(crate::accounts::names(settings))??,
    };
    // None yet: `default`, which the environment's seed may hold.
    if names.is_empty() {
        names.push(AccountName::default_account());
    }
    let http = HttpClient::new(settings.http)?;
    let (accounts, status) = block_on(async {
        let mut accounts = Vec::new();
        let mut status = Status::Success;
        for name in names {
            let (row, exit) = match refresh_account(args, settings, &name, &http, out).await {
                Ok(Ending::Interrupted { signal, saved }) => {
                    status = status.most_serious(super::interrupted(out, signal, &saved));
                    break;
                }
                Ok(Ending::Delivered(done)) => delivered(name, *done, out),
                Err(Error::Config { .. }) if awaiting_consent(settings, &name).await => awaiting(name),
                Err(e) => failed(name, &e, out),
            };
            accounts.push(row);
            status = status.most_serious(exit);
        }
        (accounts, status)
    })?;
    out.print(&RefreshAllReport {
        version: JSON_VERSION,
        accounts,
    })?;
    Ok(status)
}

async fn refresh_account(
    args: &RefreshArgs,
    settings: &Settings,
    name: &AccountName,
    http: &HttpClient,
    out: &Output,
) -> Result<Ending> {
    let settings = &settings.for_account(name)?;
    let targets = copies::targets(settings, args.delivery.choices())?;
    let store = crate::store::open(settings)?;
    let seen_before = store.load().await?;
    let (targets, rotation) = rotate(args, settings, (store.as_ref(), http), &targets, &seen_before, out).await?;
    Ok(deliver_and_build_report(settings, http, store.as_ref(), &targets, rotation, out.secrets()).await)
}

/// Whether `name` holds no set yet, only a consent `auth-url` began (or
/// one that was refused): nothing to refresh, and not a failure of the
/// household's cron line. A set that was lost is not this.
async fn awaiting_consent(settings: &Settings, name: &AccountName) -> bool {
    let Ok(settings) = settings.for_account(name) else {
        return false;
    };
    let Ok(store) = crate::store::open(&settings) else {
        return false;
    };
    match store.load().await {
        Ok(state) => {
            state.tokens.is_none() && state.lost.is_none() && settings.seed_tokens.is_none() && !name.is_default()
        }
        Err(_) => false,
    }
}

fn awaiting(name: AccountName) -> (AccountRefresh, Status) {
    let row = AccountRefresh {
        account: name.to_string(),
        outcome: Some("awaiting_consent"),
        report: None,
        error: None,
        exit: 0,
    };
    (row, Status::Success)
}

/// An account's report once its copies were delivered; a stale copy is
/// said on stderr (exit 6 for it).
fn delivered(name: AccountName, done: Delivered, out: &Output) -> (AccountRefresh, Status) {
    let status = super::say_stale_copies(out, &done.deliveries);
    let row = AccountRefresh {
        account: name.to_string(),
        outcome: None,
        exit: status.exit_code(),
        report: Some(done.report),
        error: None,
    };
    (row, status)
}

/// An account whose refresh failed: said on stderr, and its row.
fn failed(name: AccountName, error: &Error, out: &Output) -> (AccountRefresh, Status) {
    out.status_line(error.code(), &format!("account {name}: {error}"), &error.action());
    let row = AccountRefresh {
        account: name.to_string(),
        outcome: None,
        exit: error.exit_code(),
        report: None,
        error: Some(ErrorBody::of(error)),
    };
    (row, Status::Failed(error.exit_code()))
}

/// The targets to deliver to once Railway was asked before rotating, and
/// what a person is told when it could not be reached: `--if-needed` with
/// a token that still works stops (exit 5), anything else rotates anyway.
fn say_railway_first(first: RailwayFirst, if_needed: bool, out: &Output) -> Result<Targets> {
    match first {
        RailwayFirst::Ready(targets) => Ok(targets),
        RailwayFirst::Wait { error, until } => {
            out.note_always(&format!(
                "note: not refreshed: Railway could not be reached before rotating, and the token works until {}; `refresh --if-needed` does not rotate a set Railway cannot receive until the token expires (a plain `refresh`, or `--no-railway`, rotates now)",
                rfc3339(until)
            ));
            Err(error)
        }
        RailwayFirst::Anyway { targets, error } => {
            out.note(&format!(
                "warning: Railway could not be reached before rotating ({error}); refreshing anyway (the token is due and {}), then pushing to Railway",
                if if_needed { "has expired" } else { "a refresh was asked for" }
            ));
            Ok(targets)
        }
    }
}

/// Decides and reports; sends nothing and writes nothing.
fn dry_run(
    settings: &Settings,
    state: &crate::store::StoreState,
    store: &dyn TokenStore,
    targets: &Targets,
    policy: Policy,
    out: &Output,
) -> Result<Status> {
    let seed = rotation::seed_for(settings, state);
    let assessment = rotation::decide(state, seed, SeenBefore::NotLooked, now(), policy);
    let tokens = assessment.tokens.as_ref().ok_or_else(no_tokens_error)?;
    let (would_refresh, reason) = match assessment.action {
        Action::Refresh(reason) => (true, reason.describe().to_owned()),
        Action::NotDue { refresh_at, .. } => (false, format!("not due until {}", rfc3339(refresh_at))),
        Action::RefreshedByPeer | Action::NoTokens => (false, "nothing to do".to_owned()),
    };
    for (var, value) in [
        ("WITHINGS_CLIENT_ID", settings.client_id.is_some()),
        ("WITHINGS_CLIENT_SECRET", settings.client_secret.is_some()),
    ] {
        if !value {
            out.note(&format!(
                "warning: {var} is not set; a real refresh would stop with CONFIGURATION_ERROR"
            ));
        }
    }
    let railway = targets.railway.then(|| railway_target(settings));
    out.print(&DryRunReport {
        version: JSON_VERSION,
        dry_run: true,
        would_refresh,
        reason,
        source: assessment.source,
        expires_at: tokens.expires_at.map(rfc3339),
        next_refresh_recommended: assessment.refresh_at().map(rfc3339),
        store: store.location(),
        env_file: targets.env_file.as_ref().map(|p| p.display().to_string()),
        deployment_would_trigger: would_refresh && targets.deploy && railway.is_some(),
        railway,
    })?;
    Ok(Status::Success)
}

fn railway_target(settings: &Settings) -> String {
    let railway = &settings.railway;
    let environment = railway
        .environment_id
        .clone()
        .unwrap_or_else(|| format!("named {}", railway.environment_name));
    format!(
        "service {} (project {}, environment {environment})",
        railway.service_id.as_deref().unwrap_or_default(),
        railway.project_id.as_deref().unwrap_or_default()
    )
}

/// `refresh` by the server (it always rotates, or returns a peer's set).
fn by_server(server: &crate::server_client::ServerClient, args: &RefreshArgs, out: &Output) -> Result<Status> {
    if args.if_needed || args.dry_run {
        // Dropping the flags would rotate on every cron tick: say what
        // answers "is one due?" through a server instead.
        return Err(crate::error::Error::config(
            "--if-needed and --dry-run are not available with --server: the server refreshes on its own schedule, and its refresh always rotates",
            "to see whether a refresh is due, run `withings-token status --check` (exit 7 when due); to rotate now, run `withings-token refresh` without them; or run `refresh --if-needed` where the store is",
        ));
    }
    let body = crate::server_client::RefreshBody {
        update_railway: !args.delivery.no_railway,
        trigger_deployment: args.delivery.trigger_deployment,
    };
    let _spinner = out.spinner("asking the server to refresh…");
    let report = block_on(server.refresh(&body))??;
    super::via_server::print_token_report(&report, out)
}
