//! `status`: what the store (or the environment's seed) holds, offline.

use std::time::Duration;

use clap::Args;

use crate::accounts::{AccountName, Choice, Purpose};
use crate::cli::parse_buffer;
use crate::error::{Result, Status};
use crate::events::EventRecord;
use crate::http::block_on;
use crate::output::{AlertState, Output, StatusReport};
use crate::report::{event_record, event_record_local, status_report, status_rows_report, with_events};
use crate::server_client::ServerClient;
use crate::settings::Settings;
use crate::store::{StoreState, TokenStore};
use crate::tokens::DueReason;

/// Report the stored token set without touching the network
#[derive(Debug, Args)]
#[command(
    after_help = "With several accounts and none named (`--account`, WITHINGS_TOKEN_ACCOUNT), one row per account \
(JSON: `accounts`, each with its `account` and the keys of its own report); `--check` exits 7 when any is due.\n\n\
The account's alert state comes from its event record (beside the store; docs/events.md): `alert` shows \
`needs_reauthorization since T` once Withings refused the refresh token, `refresh_failed since T (N attempts)` while \
refreshes fail for a passing reason, and `events` the events waiting for a sink. `--check` exits 4 \
(INVALID_REFRESH_TOKEN) when the account needs new consent (`withings-token login --account NAME`, or the one-time \
link of its reauthorization_required event, served by `serve` at /auth/start), before 7 for a refresh due.\n\n\
Examples:\n  withings-token status\n  withings-token status --json\n  withings-token status --check || withings-token refresh   # exit 7 when due\n  withings-token status --buffer 30m\n  withings-token status --account alice"
)]
pub struct StatusArgs {
    /// Exit 7 (REFRESH_DUE) when a refresh is due or the token expired; 4 (INVALID_REFRESH_TOKEN) when the account needs new consent
    #[arg(long)]
    pub check: bool,

    /// How long before expiry a refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]
    #[arg(long, value_parser = parse_buffer, value_name = "DURATION")]
    pub buffer: Option<Duration>,
}

pub fn run(args: &StatusArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if let Some(server) = ServerClient::of(settings, true)? {
        return by_server(&server, args.check, settings, out);
    }
    match super::one_or_every(settings, Purpose::Use)? {
        Choice::One(account) => one(args, &account, out),
        Choice::Every => every(args, settings, out),
    }
}

/// One account's status: the set in use and its decision.
fn one(args: &StatusArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if settings.seed_to_vet {
        block_on(crate::consent::vet_seed(settings))??;
    }
    let store = crate::store::open(settings)?;
    let (state, record) = load_with_record(store.as_ref())?;
    let report = with_events(status_report(&state, settings, store.location()), &record);
    if !report.token_configured && state.lost.is_some() {
        return Err(crate::rotation::no_tokens_error_for(&state));
    }
    if let Some(rescue) = store.waiting_rescue() {
        out.note_always(&format!(
            "note: a set a previous run could not save waits in {rescue}; the next `withings-token refresh --if-needed` saves it into the store"
        ));
    }
    print_report(&report, args.check, &settings.account_name(), settings, out)
}

/// The store's state and the account's event record: a file without a
/// runtime (one more small read), Redis on one runtime for both.
fn load_with_record(store: &dyn TokenStore) -> Result<(StoreState, EventRecord)> {
    if let Some(state) = store.load_local() {
        return Ok((state?, event_record_local(store).unwrap_or_default()));
    }
    block_on(async {
        let state = store.load().await?;
        Ok((state, event_record(store).await))
    })?
}

/// Several accounts' status, a row each; `--check`: exit 7 when any is
/// due (or holds no set). A store that could not be read is said on stderr
/// and is the exit code, after the rows.
fn every(args: &StatusArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let rows = match crate::accounts::overview_local(settings) {
        Some(rows) => rows?,
        None => block_on(crate::accounts::overview(settings))??,
    };
    let mut status = Status::Success;
    for row in &rows {
        if let Err(e) = &row.status {
            out.status_line(e.code(), &format!("account {}: {e}", row.name), &e.action());
            status = status.most_serious(Status::Failed(e.exit_code()));
        }
    }
    let due: Vec<String> = rows
        .iter()
        .filter(|r| r.status.as_ref().is_ok_and(|s| s.should_refresh || !s.token_configured))
        .map(|r| r.name.to_string())
        .collect();
    let report = status_rows_report(rows);
    out.print(&report)?;
    for account in &report.accounts {
        let (Some(report), Ok(name)) = (&account.status, AccountName::parse(&account.account)) else {
            continue;
        };
        status = status.most_serious(say_alert(report, args.check, &name, settings, out));
    }
    if args.check && !due.is_empty() {
        out.status_line(
            "REFRESH_DUE",
            &format!("a refresh is due for {}", due.join(", ")),
            "run `withings-token refresh --if-needed --all`",
        );
        status = status.most_serious(Status::RefreshDue);
    }
    Ok(status)
}

/// `status` from the server; `--check` as locally.
fn by_server(server: &ServerClient, check: bool, settings: &Settings, out: &Output) -> Result<Status> {
    let report = block_on(server.status())??;
    print_report(&report, check, &settings.account_name(), settings, out)
}

/// Prints a status report (local or a server's) of `account`; `check`
/// turns it into the exit code: 4 when the account needs new consent,
/// else 7 when a refresh is due.
fn print_report(
    report: &StatusReport,
    check: bool,
    account: &AccountName,
    settings: &Settings,
    out: &Output,
) -> Result<Status> {
    if check && !report.token_configured {
        return Err(crate::rotation::no_tokens_error());
    }
    out.print(report)?;
    let alert = say_alert(report, check, account, settings, out);
    if alert != Status::Success {
        return Ok(alert);
    }
    if !(check && report.should_refresh) {
        return Ok(Status::Success);
    }
    // An expiry that cannot be trusted is not the one to name.
    let untrusted = report.refresh_reason.as_deref() == Some(DueReason::TimesAhead.describe());
    let message = match &report.expires_at {
        Some(_) if untrusted => format!("a refresh is due: {}", DueReason::TimesAhead.describe()),
        Some(at) => format!("a refresh is due: the access token expires at {at}"),
        None => "a refresh is due: the expiry time is unknown".into(),
    };
    out.status_line("REFRESH_DUE", &message, "run `withings-token refresh`");
    Ok(Status::RefreshDue)
}

/// Says an account's alert on stderr: with `check`, a refused grant is the
/// error line and exit 4 (INVALID_REFRESH_TOKEN's: someone must consent
/// again); otherwise a warning, and the report's exit is unchanged.
fn say_alert(report: &StatusReport, check: bool, account: &AccountName, settings: &Settings, out: &Output) -> Status {
    let since = report.alert.since.as_deref().unwrap_or("an unknown time");
    match report.alert.state {
        AlertState::Healthy => Status::Success,
        AlertState::NeedsReauthorization => {
            let message =
                format!("account {account} needs new consent: Withings refused its refresh token (since {since})");
            let action = reconsent_action(account, settings);
            if !check {
                out.note(&format!("warning: {message}; {action}"));
                return Status::Success;
            }
            out.status_line("INVALID_REFRESH_TOKEN", &message, &action);
            Status::Failed(4)
        }
        AlertState::RefreshFailing => {
            let code = report.alert.code.as_deref().unwrap_or("an error");
            let attempts = match report.alert.attempts.unwrap_or(1) {
                1 => "1 attempt".to_owned(),
                n => format!("{n} attempts"),
            };
            out.note(&format!(
                "warning: refreshes of account {account} have failed since {since} ({code}, {attempts} so far); each run tries again, nothing to do unless it lasts"
            ));
            Status::Success
        }
    }
}

/// How `account` gets new consent: `login`, or the one-tap link the
/// `reauthorization_required` event carries when `serve` can be reached
/// (`public_url`) and links can be signed (ADMIN_API_TOKEN).
fn reconsent_action(account: &AccountName, settings: &Settings) -> String {
    let login = format!("run `withings-token login --account {account}`");
    let start = crate::events::link::START_PATH;
    if settings.events.public_url.is_some() && settings.server.admin_token.is_some() {
        format!("{login}, or open the one-time link its reauthorization_required event carries (`serve`'s {start})")
    } else {
        format!(
            "{login} (with `public_url` and ADMIN_API_TOKEN set, its reauthorization_required event carries a one-tap link to `serve`'s {start})"
        )
    }
}
