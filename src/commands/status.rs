//! `status`: what the store (or the environment's seed) holds, offline.

use std::time::Duration;

use clap::Args;

use crate::accounts::{Choice, Purpose};
use crate::cli::parse_buffer;
use crate::error::{Result, Status};
use crate::http::block_on;
use crate::output::{Output, StatusReport};
use crate::report::{status_report, status_rows_report};
use crate::server_client::ServerClient;
use crate::settings::Settings;
use crate::tokens::DueReason;

/// Report the stored token set without touching the network
#[derive(Debug, Args)]
#[command(
    after_help = "With several accounts and none named (`--account`, WITHINGS_TOKEN_ACCOUNT), one row per account \
(JSON: `accounts`, each with its `account` and the keys of its own report); `--check` exits 7 when any is due.\n\n\
Examples:\n  withings-token status\n  withings-token status --json\n  withings-token status --check || withings-token refresh   # exit 7 when due\n  withings-token status --buffer 30m\n  withings-token status --account alice"
)]
pub struct StatusArgs {
    /// Exit 7 (REFRESH_DUE) when a refresh is due or the token expired
    #[arg(long)]
    pub check: bool,

    /// How long before expiry a refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]
    #[arg(long, value_parser = parse_buffer, value_name = "DURATION")]
    pub buffer: Option<Duration>,
}

pub fn run(args: &StatusArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if let Some(server) = ServerClient::of(settings, true)? {
        return by_server(&server, args.check, out);
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
    let state = super::load_now(store.as_ref())?;
    let report = status_report(&state, settings, store.location());
    if !report.token_configured && state.lost.is_some() {
        return Err(crate::rotation::no_tokens_error_for(&state));
    }
    if let Some(rescue) = store.waiting_rescue() {
        out.note_always(&format!(
            "note: a set a previous run could not save waits in {rescue}; the next `withings-token refresh --if-needed` saves it into the store"
        ));
    }
    print_report(&report, args.check, out)
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
    out.print(&status_rows_report(rows))?;
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
fn by_server(server: &ServerClient, check: bool, out: &Output) -> Result<Status> {
    let report = block_on(server.status())??;
    print_report(&report, check, out)
}

/// Prints a status report (local or a server's); `check` turns it into
/// the exit code.
fn print_report(report: &StatusReport, check: bool, out: &Output) -> Result<Status> {
    if check && !report.token_configured {
        return Err(crate::rotation::no_tokens_error());
    }
    out.print(report)?;
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
