//! The `--server` plumbing the commands share: with `--server` (or
//! WITHINGS_TOKEN_SERVER) a command asks a running `serve` (through
//! `server_client`) instead of the local store, and prints the same report
//! through the same output module, so outputs and exit codes are the local
//! ones. `status`, `refresh` and `auth-url` keep their own few lines for it;
//! here are what several share: the exchange (`exchange`, `login` refuses),
//! the broker (`access-token`, `exec`), the printing of a token report with
//! its stale copies, the refusal of flags the server has no switch for
//! ([`unsupported`]), and of commands that work on the local store only
//! ([`refuse`]).

use crate::cli::DeliveryArgs;
use crate::error::{Error, Result, Status};
use crate::http::block_on;
use crate::output::{Output, TokenReport};
use crate::server_client::{BrokeredToken, ExchangeBody, ServerClient};
use crate::settings::Settings;

/// `exchange` by the server, the code (or redirect URL) as given.
pub fn exchange(
    server: &ServerClient,
    code_or_url: &str,
    (delivery, replace): (&DeliveryArgs, bool),
    out: &Output,
) -> Result<Status> {
    let body = ExchangeBody {
        code: code_or_url.trim(),
        update_railway: !delivery.no_railway,
        trigger_deployment: delivery.trigger_deployment,
        replace,
    };
    let report = block_on(server.exchange(&body))??;
    print_token_report(&report, out)
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
pub fn print_token_report(report: &TokenReport, out: &Output) -> Result<Status> {
    out.print(report)?;
    let mut status = Status::Success;
    for error in [&report.env_file_error, &report.railway_error].into_iter().flatten() {
        out.status_line(error.code, &error.message, &error.action);
        status = Status::StaleCopy;
    }
    Ok(status)
}

/// `flags` given with `--server`, which has no such switch.
pub fn unsupported(flags: &str) -> Error {
    Error::config(
        format!("{flags} are not available with --server (the server has no such switch)"),
        "run without them, or run the command where the store is",
    )
}
