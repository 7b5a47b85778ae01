//! `access-token`: the access token alone on stdout, like `gh auth token`,
//! refreshed first (the same transaction as `refresh`, copies included)
//! when it has less than `--min-ttl` left (`broker::fresh_tokens`). A
//! fresh token costs one read of the store: no HTTP client is built.

use std::time::Duration;

use clap::Args;

use crate::broker;
use crate::cli::{DeliveryArgs, parse_buffer};
use crate::error::{Result, Status};
use crate::output::Output;
use crate::settings::Settings;

/// Print the access token, refreshing first when it expires soon (prints a secret)
#[derive(Debug, Args)]
#[command(
    after_help = "Prints a SECRET: the access token alone, on one line. When it has less than --min-ttl left, \
it refreshes first exactly as `refresh` does (store, env file, Railway unless --no-railway). With --server, the \
server's broker (GET /v1/access-token, WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN) gives it, refreshing there. \
Under GitHub Actions the token is masked in the log first.\n\n\
Examples:\n  curl -H \"Authorization: Bearer $(withings-token access-token)\" https://wbsapi.withings.net/v2/user\n  \
withings-token access-token --min-ttl 30m --no-railway"
)]
pub struct AccessTokenArgs {
    /// Refresh first when the access token has less than this left, at most 366d (and at most half the token's lifetime: a longer one is capped, with a warning)
    #[arg(long, value_parser = parse_buffer, default_value = "5m", value_name = "DURATION")]
    pub min_ttl: Duration,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

pub fn run(args: &AccessTokenArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if let Some(server) = crate::server_client::ServerClient::broker(settings)? {
        let brokered = super::via_server::brokered(&server, args.min_ttl, &args.delivery, out)?;
        out.bare_access_token(Some(&brokered.access_token))?;
        return Ok(Status::Success);
    }
    let fresh = broker::fresh_tokens(
        (args.min_ttl, "access-token"),
        args.delivery.choices(),
        settings,
        (out, out.secrets()),
    )?;
    let (tokens, status) = super::fresh_status(out, fresh)?;
    if let Status::Signalled(_) = status {
        return Ok(status);
    }
    out.access_token(&tokens)?;
    Ok(status)
}
