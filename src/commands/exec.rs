//! `exec -- CMD ARGS...`: like `aws-vault exec`, runs a command with a
//! fresh access token in its environment. The token is made fresh exactly
//! as `access-token` does; then this process BECOMES the command (exec(2)),
//! so the command gets every signal sent to it and its exit code is the
//! exit code, with nothing in between to forward or lose.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::{DeliveryArgs, parse_buffer};
use crate::error::{Error, Result, Status};
use crate::output::Output;
use crate::settings::Settings;
use crate::tokens::rfc3339;

/// Run a command with a fresh access token in its environment (passes a secret)
#[derive(Debug, Args)]
#[command(
    after_help = "The command gets WITHINGS_ACCESS_TOKEN (a SECRET), WITHINGS_TOKEN_EXPIRES_AT and WITHINGS_USERID, \
with at least --min-ttl left (refreshing first as `refresh` does; with --server, from the server's broker as \
`access-token` gets it). Its exit code is the exit code; \
127 when it is not found, 126 when it cannot be run.\n\n\
Examples:\n  withings-token exec -- ./sync-weights.py\n  \
withings-token exec --min-ttl 1h -- sh -c 'curl -H \"Authorization: Bearer $WITHINGS_ACCESS_TOKEN\" ...'"
)]
pub struct ExecArgs {
    /// Refresh first when the access token has less than this left, at most 366d
    #[arg(long, value_parser = parse_buffer, default_value = "5m", value_name = "DURATION")]
    pub min_ttl: Duration,

    #[command(flatten)]
    pub delivery: DeliveryArgs,

    /// The command and its arguments (after `--`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

pub fn run(args: &ExecArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::config("no command given", "pass it after `--`"))?;
    // Before any refresh: a typo must not rotate the token for nothing.
    crate::fsutil::find_program(program).map_err(|e| not_started(program, &e))?;
    let (access, expires_at, userid) = match crate::server_client::ServerClient::broker(settings)? {
        Some(server) => {
            let brokered = super::via_server::brokered(&server, args.min_ttl, &args.delivery, out)?;
            (brokered.access_token, brokered.expires_at, brokered.userid)
        }
        None => {
            let fresh = crate::broker::fresh_tokens(
                (args.min_ttl, "exec"),
                args.delivery.choices(),
                settings,
                (out, out.secrets()),
            )?;
            let (tokens, status) = super::fresh_status(out, fresh)?;
            if let Status::Signalled(_) = status {
                return Ok(status);
            }
            let access = tokens.access_token.unwrap_or_else(|| SecretString::from(""));
            (access, tokens.expires_at, tokens.userid)
        }
    };
    let mut command = std::process::Command::new(program);
    command.args(rest);
    let access = access.expose_secret();
    // Whatever the command logs (`set -x`, a debug print) stays masked.
    crate::output::mask_in_ci_logs(&[access]);
    command.env("WITHINGS_ACCESS_TOKEN", access);
    // The key that opens the store is the tool's, not the command's: with
    // it a consumer could read the refresh token itself.
    command.env_remove("WITHINGS_TOKEN_IDENTITY");
    command.env("WITHINGS_TOKEN_EXPIRES_AT", expires_at.map(rfc3339).unwrap_or_default());
    command.env("WITHINGS_USERID", userid.unwrap_or_default());
    // Only returns when the command could not be started.
    let e = command.exec();
    Err(not_started(program, &e))
}

fn not_started(program: &std::ffi::OsStr, e: &std::io::Error) -> Error {
    Error::CommandNotStarted {
        program: program.to_string_lossy().into_owned(),
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        detail: e.to_string(),
    }
}
