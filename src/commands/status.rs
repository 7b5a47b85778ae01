//! `status`: what the store (or the environment's seed) holds, offline.

use std::time::Duration;

use clap::Args;

use crate::cli::parse_buffer;
use crate::error::{Result, Status};
use crate::http::block_on;
use crate::output::{Output, StatusReport};
use crate::report::status_report;
use crate::server_client::ServerClient;
use crate::settings::Settings;
use crate::tokens::DueReason;

/// Report the stored token set without touching the network
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  withings-token status\n  withings-token status --json\n  withings-token status --check || withings-token refresh   # exit 7 when due\n  withings-token status --buffer 30m"
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
