//! `pull --from railway`: import the set held in the Railway service's
//! variables into the store, when it is newer than the stored one. This is
//! how a fresh host or a lost disk recovers without re-authorising. The
//! reading, the decision and the import are `railway_copy::pull`'s; this
//! reports what they did.

use clap::{Args, ValueEnum};

use crate::copies::{Deliveries, Skip};
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
use crate::railway_copy::pull::{PullDecision, describe, import, railway_set, read_variables};
use crate::report::{Facts, token_report};
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::TokenSource;

/// Import the token set from the Railway service when it is newer than the store's
#[derive(Debug, Args)]
#[command(
    after_help = "The store's refresh token, when it differs, is kept as the previous one. Nothing is sent to Withings.\n\n\
Examples:\n  withings-token pull --from railway            # a fresh host, or a lost disk\n  withings-token pull --from railway --force    # even when the store's set is newer (warns)"
)]
pub struct PullArgs {
    /// Where the set comes from
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub from: PullSource,

    /// Import even when the store's set is as new or newer (a warning says what was replaced)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullSource {
    /// The four `WITHINGS_*` token variables of the Railway service
    Railway,
}

pub fn run(args: &PullArgs, settings: &Settings, out: &Output) -> Result<Status> {
    super::via_server::refuse(
        settings,
        "pull",
        "run `withings-token pull` on the server's host, where its store is",
    )?;
    let PullSource::Railway = args.from;
    if !settings.railway.is_configured() {
        return Err(crate::railway::not_configured(&settings.railway));
    }
    let store = crate::store::open(settings)?;
    block_on(pull(args, settings, store.as_ref(), out))?
}

async fn pull(args: &PullArgs, settings: &Settings, store: &dyn TokenStore, out: &Output) -> Result<Status> {
    // A corrupt store is exit 3 before Railway is asked anything.
    store.load().await?;
    let http = HttpClient::new(settings.http)?;
    let variables = {
        let _spinner = out.spinner("reading Railway's variables…");
        read_variables(settings, &http).await?
    };
    let railway = railway_set(&variables)?;
    let (decision, state, replaced) = import(settings, store, railway, args.force).await?;
    let tokens = state
        .tokens
        .clone()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("the store holds no set after a pull")))?;
    let (outcome, message) = describe(decision, &tokens, replaced.as_ref());
    if decision == PullDecision::ImportForced {
        out.note("warning: --force: the store's set was as new or newer than Railway's and was replaced by it; the store's refresh token is kept as the previous one");
    }
    let facts = Facts {
        outcome,
        via: None,
        tokens: &tokens,
        source: TokenSource::Store,
        generation: state.tokens_generation,
        store,
        message: Some(message),
    };
    let deliveries = Deliveries::none(Skip::PulledFrom);
    let report = token_report(out.secrets(), facts, &deliveries);
    out.print(&report)?;
    Ok(Status::Success)
}
