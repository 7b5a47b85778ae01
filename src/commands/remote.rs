//! The `--server` branch of `status`, `refresh`, `auth-url` and `exchange`:
//! the same reports, printed by the same output module, from a running
//! `serve` (see `server_client`); `access-token` and `exec` ask its broker.
//! Each command calls in here first; a command that cannot work through a
//! server says so ([`refuse`]) rather than use the local store.

use crate::cli::DeliveryArgs;
use crate::error::{Error, Result, Status};
use crate::http::block_on;
use crate::output::{Output, TokenReport};
use crate::server_client::{BrokeredToken, ExchangeBody, RefreshBody, ServerClient};
use crate::settings::Settings;

/// `status` from the server; `--check` as locally.
pub fn status(server: &ServerClient, check: bool, out: &Output) -> Result<Status> {
    let report = block_on(server.status())??;
    super::status::print_report(&report, check, out)
}

/// `refresh` by the server (it always rotates, or returns a peer's set).
pub fn refresh(server: &ServerClient, args: &super::refresh::RefreshArgs, out: &Output) -> Result<Status> {
    if args.if_needed || args.dry_run {
        return Err(unsupported("--if-needed and --dry-run"));
    }
    let body = RefreshBody {
        update_railway: !args.delivery.no_railway,
        trigger_deployment: args.delivery.trigger_deployment,
    };
    let _spinner = out.spinner("asking the server to refresh…");
    let report = block_on(server.refresh(&body))??;
    tokens(&report, out)
}

/// `exchange` by the server, the code (or redirect URL) as given.
pub fn exchange(server: &ServerClient, code_or_url: &str, delivery: &DeliveryArgs, out: &Output) -> Result<Status> {
    let body = ExchangeBody {
        code: code_or_url.trim(),
        update_railway: !delivery.no_railway,
        trigger_deployment: delivery.trigger_deployment,
    };
    let report = block_on(server.exchange(&body))??;
    tokens(&report, out)
}

/// `auth-url` by the server, which keeps the state in its store.
pub fn auth_url(
    server: &ServerClient,
    args: &super::auth_url::AuthUrlArgs,
    next: Option<&str>,
    out: &Output,
) -> Result<Status> {
    if args.state.is_some() || args.demo_account {
        return Err(unsupported("--state and --demo-account"));
    }
    out.print(&block_on(server.authorization_url())??.with_next(next))?;
    Ok(Status::Success)
}

/// `access-token` and `exec`: a token from the server's broker that lives
/// at least `min_ttl` more (the server refreshes first when needed, and
/// delivers its own copies).
pub fn brokered(
    server: &ServerClient,
    min_ttl: std::time::Duration,
    delivery: &DeliveryArgs,
    out: &Output,
) -> Result<BrokeredToken> {
    if delivery.no_railway || delivery.no_env_file_update || delivery.trigger_deployment {
        return Err(unsupported(
            "--no-railway, --no-env-file-update and --trigger-deployment",
        ));
    }
    let _spinner = out.spinner("asking the server for an access token…");
    block_on(server.access_token(min_ttl))?
}

/// A command that works on the local store only: with `--server` (or
/// WITHINGS_TOKEN_SERVER) it stops, rather than read a store the server
/// does not use. `instead` says what to run.
pub fn refuse(settings: &Settings, command: &str, instead: &str) -> Result<()> {
    if settings.remote.is_none() {
        return Ok(());
    }
    Err(Error::config(
        format!(
            "`{command}` is not available with --server (WITHINGS_TOKEN_SERVER is set or --server was given): it works on a local store, and the server keeps its own"
        ),
        format!("{instead}; or unset WITHINGS_TOKEN_SERVER to use the local store"),
    ))
}

/// Prints a token report; a copy the server could not update is a stale
/// copy here too (exit 6), its error on stderr as locally.
fn tokens(report: &TokenReport, out: &Output) -> Result<Status> {
    out.print(report)?;
    let mut status = Status::Success;
    for error in [&report.env_file_error, &report.railway_error].into_iter().flatten() {
        out.status_line(error.code, &error.message, &error.action);
        status = Status::StaleCopy;
    }
    Ok(status)
}

fn unsupported(flags: &str) -> Error {
    Error::config(
        format!("{flags} are not available with --server (the server has no such switch)"),
        "run without them, or run the command where the store is",
    )
}
