//! `usage`: how each consumer used a running `serve`'s Withings proxy, as
//! its `GET /admin/usage` says (the server keeps it, in memory: there is
//! nothing to read without `--server`).

use clap::Args;

use crate::error::{Error, Result, Status};
use crate::http::block_on;
use crate::output::Output;
use crate::server_client::ServerClient;
use crate::settings::Settings;

/// Show each consumer's calls through a running `serve`'s Withings proxy (last hour, last day; needs --server)
#[derive(Debug, Args)]
#[command(
    after_help = "One row per reader (a [reader.NAME] of the config file, `(reader)` for WITHINGS_TOKEN_READER_TOKEN, \
`(admin)`) and account that called Withings through the proxy in the last 24 h: its calls and errors (any outcome \
but `ok`) in the last hour and day, and its most called actions. `--json` prints the server's GET /admin/usage \
answer: by outcome, retried calls, budget waits and refusals, upstream time (mean and max), last call. \
`--account NAME` shows that account's rows only. The server counts since it started.\n\n\
Examples:\n  withings-token --server http://127.0.0.1:8080 usage\n  WITHINGS_TOKEN_SERVER=https://tokens.example.com withings-token usage --json\n  withings-token --server http://127.0.0.1:8080 usage --account alice"
)]
pub struct UsageArgs {}

pub fn run(_args: &UsageArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let Some(server) = ServerClient::of(settings, false)? else {
        return Err(Error::config(
            "usage is kept by a running `withings-token serve` (in its memory, for the calls through its Withings proxy), and no server is named",
            "name the server: `withings-token --server URL usage` (or set WITHINGS_TOKEN_SERVER), with ADMIN_API_TOKEN set to its admin token",
        ));
    };
    let report = block_on(server.usage())??;
    out.print(&report)?;
    Ok(Status::Success)
}
