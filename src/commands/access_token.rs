//! `access-token`: the access token alone on stdout, like `gh auth token`,
//! refreshed first (the same transaction as `refresh`, copies included)
//! when it has less than `--min-ttl` left. A fresh token costs one read of
//! the store: no HTTP client is built.

use std::time::Duration;

use clap::Args;

use crate::cli::{DeliveryArgs, parse_buffer};
use crate::copies::{self, Targets};
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
use crate::report::{Ending, deliver_and_build_report};
use crate::rotation;
use crate::settings::Settings;
use crate::store::{StoreState, TokenStore};
use crate::tokens::{Action, Policy, TokenSet, assess_for_min_ttl, now};

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
    let (tokens, status) = fresh_tokens(args.min_ttl, &args.delivery, settings, out)?;
    if let Status::Signalled(_) = status {
        return Ok(status);
    }
    out.access_token(&tokens)?;
    Ok(status)
}

/// A set whose access token has at least `min_ttl` left, refreshing first
/// (store, then copies; a stale copy is reported on stderr and makes the
/// status exit 6) when it has less. Shared with `exec`.
pub fn fresh_tokens(
    min_ttl: Duration,
    delivery: &DeliveryArgs,
    settings: &Settings,
    out: &Output,
) -> Result<(TokenSet, Status)> {
    let targets = copies::targets(settings, delivery.choices())?;
    let store = crate::store::open(settings)?;
    let min_ttl =
        chrono::Duration::from_std(min_ttl).map_err(|_| Error::config("--min-ttl is too long", "use at most 366d"))?;
    // A file is read without a runtime: a fresh set in one then needs no
    // runtime, client or lock at all.
    let local = store.load_local().transpose()?;
    let read = match local {
        Some(seen) => match fresh_enough(settings, &seen, min_ttl, out) {
            Fresh::Enough(tokens) => return Ok((tokens, Status::Success)),
            Fresh::Not(min_ttl) => Some((seen, min_ttl)),
        },
        None => None,
    };
    block_on(fresh_from(store.as_ref(), read, &targets, min_ttl, settings, out))?
}

/// Whether the set in use lives long enough.
enum Fresh {
    Enough(TokenSet),
    /// It does not: refresh with this `min_ttl` (capped, see `tokens::MinTtl`).
    Not(chrono::Duration),
}

/// The set in use when its access token lives at least `min_ttl` more,
/// `min_ttl` capped to half the set's lifetime (and that said).
fn fresh_enough(settings: &Settings, seen: &StoreState, min_ttl: chrono::Duration, out: &Output) -> Fresh {
    let seed = rotation::seed_for(settings, seen);
    let (assessment, min_ttl) = assess_for_min_ttl(seen.tokens.as_ref(), seed, now(), min_ttl);
    if let Some(note) = min_ttl.capped_note("--min-ttl") {
        out.note(&format!("warning: {note}"));
    }
    rotation::log_decision(&assessment);
    match (assessment.action, assessment.tokens) {
        (Action::NotDue { .. }, Some(tokens)) if tokens.access_token.is_some() => Fresh::Enough(tokens),
        _ => Fresh::Not(min_ttl.ttl),
    }
}

/// `read`: the store as `fresh_tokens` read it (a file) and the `min_ttl`
/// in force for it, else it is read here, on the runtime (Redis), and may
/// turn out fresh.
async fn fresh_from(
    store: &dyn TokenStore,
    read: Option<(StoreState, chrono::Duration)>,
    targets: &Targets,
    min_ttl: chrono::Duration,
    settings: &Settings,
    out: &Output,
) -> Result<(TokenSet, Status)> {
    let (seen_before, min_ttl) = match read {
        Some(read) => read,
        None => {
            let seen = store.load().await?;
            match fresh_enough(settings, &seen, min_ttl, out) {
                Fresh::Enough(tokens) => return Ok((tokens, Status::Success)),
                Fresh::Not(min_ttl) => (seen, min_ttl),
            }
        }
    };
    let mut policy = Policy {
        buffer: Some(min_ttl),
        force: false,
    };
    let in_use = rotation::assess_in_use(settings, &seen_before, now(), policy);
    // A set without an access token (a bare seed) is rotated to get one.
    policy.force = in_use.tokens.as_ref().is_none_or(|t| t.access_token.is_none());
    let http = HttpClient::new(settings.http)?;
    let client = crate::withings::client_for(settings, &http, "access-token")?;
    let _spinner = out.spinner("refreshing the Withings tokens…");
    let current = copies::none_behind(settings, targets, &seen_before);
    let rotation = rotation::refresh(settings, store, &seen_before, &client, policy, current).await?;
    let tokens = rotation.tokens.clone();
    match deliver_and_build_report(settings, &http, store, targets, rotation, out.secrets()).await {
        Ending::Interrupted { signal, saved } => Ok((tokens, super::interrupted(out, signal, &saved))),
        Ending::Delivered(done) => {
            let status = super::finish_printed(out, Ok(()), &done.deliveries, &done.saved)?;
            Ok((tokens, status))
        }
    }
}
