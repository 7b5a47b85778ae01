//! `api ACTION PATH [KEY=VALUE…]`: one call of Withings' data API, like
//! `gh api`, its answer printed as it came (`data_call`). With `--server`
//! the call goes through the server's Withings proxy with a reader
//! credential, so no Withings token is ever on this side; without it the
//! account's access token is made fresh as `access-token` makes it
//! (refreshed first when due, copies included), and a read whose token
//! Withings refused is sent once more after one refresh (a write never).
//! A non-zero Withings status still prints the body, says the error on
//! stderr and exits with that error's code.

use std::ops::ControlFlow;

use clap::Args;
use reqwest::Method;

use crate::broker::{self, Fresh};
use crate::cli::DeliveryArgs;
use crate::data_call::{self, DataAnswer, DataRequest, parse_param, parse_path};
use crate::error::{Result, Status};
use crate::http::block_on;
use crate::output::Output;
use crate::server_client::ServerClient;
use crate::settings::Settings;
use crate::tokens::AccessDigest;

/// How long the access token must live for one call (as `access-token`'s default).
const MIN_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Call Withings' data API (e.g. getmeas) and print its JSON answer
#[derive(Debug, Args)]
#[command(
    after_help = "Sends Withings' form `action=ACTION&KEY=VALUE…` to $WITHINGS_API_URL/PATH (POST unless --method GET) and \
prints the answer as it came (pretty-printed JSON on a terminal). With --server, the call goes through the server's Withings \
proxy (/v1/withings/PATH, WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN as the bearer, --account as ?account=): no Withings \
token on this side. Without it, the account's access token is refreshed first when it lives less than 5m (as `access-token` \
does), and a read (get*, list*) whose token Withings refuses is sent once more after one refresh; a write never is.\n\
Exit 0 when Withings' status is 0; otherwise the body is still printed and stderr says what the status means: 401 \
(the token was refused) exits 4, 601 (rate limited) 5, any other 5; the server's own refusals keep their code (403 FORBIDDEN \
3, RATE_LIMITED 5, UPSTREAM_TIMEOUT 5).\n\n\
Examples:\n  withings-token api getmeas measure meastypes=1,6 lastupdate=1700000000\n  \
withings-token api getdevice /v2/user\n  \
withings-token --server http://127.0.0.1:8080 --account alice api getactivity v2/measure startdateymd=2026-12-01 enddateymd=2026-12-07\n  \
withings-token api getmeas measure | jq '.body.measuregrps[0].measures'"
)]
pub struct ApiArgs {
    /// Withings' action, e.g. getmeas, getdevice, getactivity
    #[arg(value_name = "ACTION")]
    pub action: String,

    /// Withings' path, with or without its leading `/`, e.g. measure, v2/user, v2/measure
    #[arg(value_name = "PATH", value_parser = parse_path)]
    pub path: String,

    /// The call's parameters (the value may hold `=`), e.g. meastypes=1,6
    #[arg(value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,

    /// The HTTP method: POST (Withings' way) or GET (the form in the query)
    #[arg(long, value_parser = ["GET", "POST"], default_value = "POST", ignore_case = true, value_name = "METHOD")]
    pub method: String,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

pub fn run(args: &ApiArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let request = DataRequest {
        method: if args.method.eq_ignore_ascii_case("GET") {
            Method::GET
        } else {
            Method::POST
        },
        path: args.path.clone(),
        action: args.action.clone(),
        params: args.params.clone(),
    };
    let server = ServerClient::broker(settings)?;
    let through_server = server.is_some();
    let (answer, status) = match server {
        Some(server) => {
            if args.delivery.no_railway || args.delivery.no_env_file_update || args.delivery.trigger_deployment {
                return Err(super::via_server::unsupported(
                    "--no-railway, --no-env-file-update and --trigger-deployment",
                ));
            }
            let _spinner = out.spinner("calling Withings through the server…");
            (block_on(server.withings(&request))??, Status::Success)
        }
        None => match locally(args, &request, settings, out)? {
            ControlFlow::Continue(done) => done,
            ControlFlow::Break(status) => return Ok(status),
        },
    };
    out.answer_body(&answer.body)?;
    let judged = if through_server {
        data_call::judge_proxied(&answer)
    } else {
        data_call::judge(&answer)
    };
    let Some(error) = judged else {
        return Ok(status);
    };
    out.status_line(error.code(), &error.to_string(), &error.action());
    Ok(status.worst(Status::Failed(error.exit_code())))
}

/// The call with the account's own token: fresh first, and a read sent
/// once more after one refresh when Withings refused it. Breaks off with
/// the status of a refresh that a signal ended.
fn locally(
    args: &ApiArgs,
    request: &DataRequest,
    settings: &Settings,
    out: &Output,
) -> Result<ControlFlow<Status, (DataAnswer, Status)>> {
    let fresh = broker::fresh_tokens(
        (MIN_TTL, "api"),
        args.delivery.choices(),
        settings,
        (out, out.secrets()),
    )?;
    let (token, status) = match token_of(fresh, out)? {
        ControlFlow::Continue(got) => got,
        ControlFlow::Break(status) => return Ok(ControlFlow::Break(status)),
    };
    let answer = block_on(data_call::send(settings, request, &token))??;
    if !answer.refused_token() || !request.is_read() {
        return Ok(ControlFlow::Continue((answer, status)));
    }
    out.note("Withings refused the access token: refreshing once, then sending the read again");
    let fresh = broker::replaced_tokens(&token, args.delivery.choices(), settings, (out, out.secrets()))?;
    let (renewed, again) = match token_of(fresh, out)? {
        ControlFlow::Continue(got) => got,
        ControlFlow::Break(status) => return Ok(ControlFlow::Break(status)),
    };
    if AccessDigest::of(&renewed) == AccessDigest::of(&token) {
        // Kept (issued a moment ago): the same token would be refused again.
        return Ok(ControlFlow::Continue((answer, status.worst(again))));
    }
    let answer = block_on(data_call::send(settings, request, &renewed))??;
    Ok(ControlFlow::Continue((answer, status.worst(again))))
}

/// The access token of a fresh set, and the status of its refresh so far
/// (a stale copy said on stderr).
fn token_of(fresh: Fresh, out: &Output) -> Result<ControlFlow<Status, (secrecy::SecretString, Status)>> {
    let (tokens, status) = super::fresh_status(out, fresh)?;
    if let Status::Signalled(_) = status {
        return Ok(ControlFlow::Break(status));
    }
    let token = tokens.access_token.ok_or_else(crate::rotation::no_tokens_error)?;
    Ok(ControlFlow::Continue((token, status)))
}
