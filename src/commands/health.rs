//! `health`: whether a running `serve` is healthy, as its `GET /health`
//! says; the container's health check (the image has no curl).

use clap::Args;

use crate::error::{Error, Result, Status};
use crate::http::block_on;
use crate::output::Output;
use crate::server_client::ServerClient;
use crate::settings::Settings;

/// Ask a running `serve` whether it is healthy (GET /health; needs --server)
#[derive(Debug, Args)]
#[command(
    after_help = "Sends GET /health, without a credential, to the server --server (or WITHINGS_TOKEN_SERVER) names and \
prints its answer: its status, version and whether some account holds a token set. Exit 0 when the server answers \
200; when it answers 503 (no account's store can be read) its error's code and action line, e.g. exit 3 for \
CONFIGURATION_ERROR; exit 5 when nothing answers within --timeout (after --retries). The Dockerfile's HEALTHCHECK \
runs it.\n\n\
Examples:\n  WITHINGS_TOKEN_SERVER=http://127.0.0.1:8080 withings-token health\n  \
withings-token --server \"http://127.0.0.1:${PORT:-8080}\" --retries 0 --timeout 5s -q health\n  \
withings-token --server https://tokens.example.com health --json"
)]
pub struct HealthArgs {}

pub fn run(_args: &HealthArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let Some(server) = ServerClient::prober(settings)? else {
        return Err(Error::config(
            "health asks a running `withings-token serve`, and no server is named",
            "name the server: `withings-token --server http://127.0.0.1:8080 health` (or set WITHINGS_TOKEN_SERVER)",
        ));
    };
    let report = block_on(server.health())??;
    out.print(&report)?;
    Ok(Status::Success)
}
