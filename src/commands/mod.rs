//! The command line's face: the top-level [`Cli`], its subcommand list
//! ([`Command`]) and its parser (`parse`); one file per subcommand holding
//! its clap `Args` (whose doc comment is the help text) and the `run` that
//! parses, calls the core and hands the result to `Output`; `via_server`,
//! the `--server` plumbing several subcommands share; and `manpage`, the
//! man pages and completions made from the clap tree. Commands compose the
//! store, the clients and the core operations (`rotation`, `consent`,
//! `broker`, `data_call`, `validation`, `report`, `diagnosis`, `railway_copy`); none of
//! them builds an HTTP request or opens a file itself. Each returns the
//! exit [`Status`] of a run that reached its end; errors travel as
//! [`Error`].

pub mod access_token;
pub mod accounts;
pub mod api;
pub mod auth_url;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod exchange;
pub mod exec;
pub mod export;
pub mod health;
pub mod import;
pub mod keygen;
pub mod login;
pub mod manpage;
pub mod notify;
mod parse;
pub mod pull;
pub mod railway_sync;
pub mod refresh;
pub mod rekey;
pub mod sandbox;
pub mod serve;
pub mod status;
pub mod usage;
pub mod validate;
pub mod via_server;

use clap::{Parser, Subcommand};

use crate::accounts::Purpose;
use crate::broker::Fresh;
use crate::cli::GlobalArgs;
use crate::copies::{Deliveries, Targets};
use crate::error::{Error, Result, Status};
use crate::http::HttpClient;
use crate::output::{Output, Spinner, TokenReport};
use crate::progress::Progress;
use crate::report::{Ending, deliver_and_build_report};
use crate::rotation::Rotation;
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::TokenSet;

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
    Import(import::ImportArgs),
    AccessToken(access_token::AccessTokenArgs),
    Exec(exec::ExecArgs),
    Api(api::ApiArgs),
    Validate(validate::ValidateArgs),
    Doctor(doctor::DoctorArgs),
    Serve(serve::ServeArgs),
    Sandbox(sandbox::SandboxArgs),
    Demo(demo::DemoArgs),
    Completions(completions::CompletionsArgs),
    Accounts(accounts::AccountsArgs),
    Notify(notify::NotifyArgs),
    Keygen(keygen::KeygenArgs),
    Rekey(rekey::RekeyArgs),
    Usage(usage::UsageArgs),
    Health(health::HealthArgs),
}

pub fn dispatch(cli: Cli, out: &Output) -> Result<Status> {
    let Cli { global, command } = cli;
    match command {
        Command::Completions(args) => completions::run(&args),
        Command::Keygen(args) => keygen::run(&args, out),
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Demo(args) => demo::run(&args, &global),
        Command::Doctor(args) => doctor::run_from(&args, &global, out),
        command => {
            let settings = Settings::load(&global.overrides(), buffer_flag(&command))?;
            execute(command, &settings, out)
        }
    }
}

/// Runs a command that works from settings (the demo calls this too).
pub fn execute(command: Command, settings: &Settings, out: &Output) -> Result<Status> {
    let chosen;
    let settings = match account_purpose(&command) {
        Some(purpose) if settings.remote.is_none() => {
            chosen = one_account(settings, purpose)?;
            &chosen
        }
        _ => settings,
    };
    let refreshes = refreshes(&command) && settings.account.is_some();
    let result = run_command(command, settings, out);
    if refreshes && let Err(e @ Error::StoreUnavailable { .. }) = &result {
        // A store that did not answer the first read (the rotation notes
        // what happens under its lock): said once, as any change of state.
        crate::events::note_error(&settings.account_name(), e, 0);
    }
    settle_events(settings);
    result
}

/// The commands that refresh an account's set when it is due, whose
/// failures are the account's events.
fn refreshes(command: &Command) -> bool {
    matches!(
        command,
        Command::Refresh(_) | Command::AccessToken(_) | Command::Exec(_) | Command::Api(_) | Command::Validate(_)
    )
}

/// What this run noted for the accounts' events is recorded and delivered
/// before the process exits, for at most `--notify-timeout`; a delivery
/// that fails is said on stderr and kept for the next run, and never
/// changes the exit code.
fn settle_events(settings: &Settings) {
    let ping = crate::notify::ping_waits();
    if !ping && (!crate::events::has_notes() || crate::notify::settled_without_change(settings)) {
        return;
    }
    let timeout = settings.events.notify_timeout;
    let deadline = std::time::Instant::now() + timeout;
    let settle = async {
        crate::notify::ping_left(settings, deadline).await;
        crate::notify::settle(settings, deadline).await
    };
    // Recording takes a moment beyond the deliveries' deadline at most.
    let bounded = async { tokio::time::timeout(timeout + SETTLE_GRACE, settle).await };
    match crate::http::block_on(bounded) {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => tracing::warn!(
            "the events of this run were not all recorded within --notify-timeout and a moment; what is left is said again by the next run that sees it"
        ),
        Err(e) => tracing::warn!("the events of this run were not recorded: {e}"),
    }
}

/// How long past `--notify-timeout` a run waits for its events to be
/// recorded (a swap of the event record, its lock held by another run).
const SETTLE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn run_command(command: Command, settings: &Settings, out: &Output) -> Result<Status> {
    match command {
        Command::Status(args) => apart(|| status::run(&args, settings, out)),
        Command::Refresh(args) => apart(|| refresh::run(&args, settings, out)),
        Command::AuthUrl(args) => apart(|| auth_url::run(&args, settings, out)),
        Command::Exchange(args) => apart(|| exchange::run(&args, settings, out)),
        Command::Login(args) => apart(|| login::run(&args, settings, out)),
        Command::RailwaySync(args) => apart(|| railway_sync::run(&args, settings, out)),
        Command::Pull(args) => apart(|| pull::run(&args, settings, out)),
        Command::Export(args) => apart(|| export::run(&args, settings, out)),
        Command::Import(args) => apart(|| import::run(&args, settings, out)),
        Command::Rekey(args) => apart(|| rekey::run(&args, settings, out)),
        Command::AccessToken(args) => apart(|| access_token::run(&args, settings, out)),
        Command::Exec(args) => apart(|| exec::run(&args, settings, out)),
        Command::Api(args) => apart(|| api::run(&args, settings, out)),
        Command::Validate(args) => apart(|| validate::run(&args, settings, out)),
        Command::Doctor(args) => apart(|| doctor::run(&args, settings, out)),
        Command::Serve(args) => apart(|| serve::run(&args, settings)),
        Command::Accounts(args) => apart(|| accounts::run(&args, settings, out)),
        Command::Notify(args) => apart(|| notify::run(&args, settings, out)),
        Command::Usage(args) => apart(|| usage::run(&args, settings, out)),
        Command::Health(args) => apart(|| health::run(&args, settings, out)),
        Command::Completions(_) | Command::Sandbox(_) | Command::Demo(_) | Command::Keygen(_) => {
            Err(Error::internal(anyhow::anyhow!("this command needs no settings")))
        }
    }
}

/// Whether a command acts on one account, and how; `None` for those that
/// act on all of them or on none.
fn account_purpose(command: &Command) -> Option<Purpose> {
    match command {
        // `import` may restore an account onto a host that never had it.
        Command::AuthUrl(_) | Command::Exchange(_) | Command::Login(_) | Command::Import(_) => Some(Purpose::Create),
        // `status` shows every account when there are several and none is
        // named; `accounts` and `refresh --all` act on all of them.
        // `notify` tries the sinks of the account named, else the deployment's;
        // `rekey` the account named, else every one; `usage` and `health`
        // ask a server.
        Command::Serve(_)
        | Command::Usage(_)
        | Command::Health(_)
        | Command::Doctor(_)
        | Command::Status(_)
        | Command::Accounts(_)
        | Command::Notify(_)
        | Command::Rekey(_) => None,
        Command::Refresh(args) if args.all => None,
        _ => Some(Purpose::Use),
    }
}

/// The one account a command acts on, or every account when there are
/// several and none is named (`status`): from the files without a runtime,
/// from Redis on a runtime of one thread.
pub(crate) fn one_or_every(settings: &Settings, purpose: Purpose) -> Result<crate::accounts::Choice> {
    match crate::accounts::choose_or_every_local(settings, purpose) {
        Some(chosen) => chosen,
        None => crate::http::block_on(crate::accounts::choose_or_every(settings, purpose))?,
    }
}

/// The settings of the one account a command acts on: from the files
/// without a runtime, from Redis on a runtime of one thread.
pub(crate) fn one_account(settings: &Settings, purpose: Purpose) -> Result<Settings> {
    let chosen = match crate::accounts::choose_local(settings, purpose) {
        Some(chosen) => chosen?,
        None => crate::http::block_on(crate::accounts::choose(settings, purpose))??,
    };
    if chosen.seed_to_vet {
        crate::http::block_on(crate::consent::vet_seed(&chosen))??;
    }
    Ok(chosen)
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

/// The store as it is now: read directly from a file, on a runtime of one
/// thread from Redis (for commands that need nothing else from one).
pub(crate) fn load_now(store: &dyn TokenStore) -> Result<crate::store::StoreState> {
    match store.load_local() {
        Some(state) => state,
        None => crate::http::block_on(store.load())?,
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
    match deliver_and_build_report(settings, http, store, targets, rotation, out.secrets()).await {
        Ending::Interrupted { signal, saved } => Ok(interrupted(out, signal, &saved)),
        Ending::Delivered(done) => finish(out, &done.report, &done.deliveries, &done.saved),
    }
}

/// The set `broker::fresh_tokens` gave (`access-token`, `exec`) and the
/// status of the run so far: a refresh's stale copies said on stderr
/// (exit 6), or the signal that ended it right after the save.
pub(crate) fn fresh_status(out: &Output, fresh: Fresh) -> Result<(TokenSet, Status)> {
    let (tokens, ending) = match fresh {
        Fresh::InUse(tokens) => return Ok((tokens, Status::Success)),
        Fresh::Refreshed(tokens, ending) => (tokens, ending),
    };
    let status = match ending {
        Ending::Interrupted { signal, saved } => interrupted(out, signal, &saved),
        Ending::Delivered(done) => finish_printed(out, Ok(()), &done.deliveries, &done.saved)?,
    };
    Ok((tokens, status))
}

/// Prints the report, then every stale copy's error on stderr (never
/// hidden by `--quiet`); the exit status says whether all copies are fresh.
/// stdout failing is one more stale copy, reported after the others.
pub(crate) fn finish(out: &Output, report: &TokenReport, deliveries: &Deliveries, saved: &str) -> Result<Status> {
    finish_printed(out, out.print(report), deliveries, saved)
}

/// [`finish`] for a command that printed something else than the report
/// (`access-token`): `printed` is how that went.
pub(crate) fn finish_printed(
    out: &Output,
    printed: Result<()>,
    deliveries: &Deliveries,
    saved: &str,
) -> Result<Status> {
    let status = say_stale_copies(out, deliveries);
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

/// Every stale copy's error on stderr (never hidden by `--quiet`); exit 6
/// when there is one.
pub(crate) fn say_stale_copies(out: &Output, deliveries: &Deliveries) -> Status {
    let mut status = Status::Success;
    for error in deliveries.failures() {
        out.stale_copy(error);
        status = Status::StaleCopy;
    }
    status
}

/// A run that a held signal ended right after the save.
pub(crate) fn interrupted(out: &Output, signal: i32, saved: &str) -> Status {
    out.note_always(&format!(
        "note: interrupted (signal {signal}) while the new set was being saved: {saved}; copies catch up on the next `withings-token refresh --if-needed`"
    ));
    Status::Signalled(signal)
}

/// The command line shows a wait as a spinner on a terminal (a line on
/// stderr otherwise) and tells the person on stderr.
impl Progress for Output {
    type Waiting = Option<Spinner>;

    fn waiting(&self, what: &str) -> Option<Spinner> {
        self.spinner(what)
    }

    fn tell(&self, line: &str) {
        self.note(line);
    }
}
