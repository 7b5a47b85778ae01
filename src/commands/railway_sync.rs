//! `railway-sync`: push the stored set to Railway without refreshing.

use clap::Args;

use crate::copies::{self, Deliveries, Delivery, Skip};
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::{JSON_VERSION, Output, RailwayDiffReport, ReportOutcome, VariableDiff};
use crate::railway::RailwayClient;
use crate::settings::Settings;
use crate::store::FileStore;
use crate::tokens::{TokenSet, TokenSource, mask, token_variables};

/// Push the stored tokens to the Railway service without refreshing
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  withings-token railway-sync\n  withings-token railway-sync --dry-run          # which variables would change (masked)\n  withings-token railway-sync --trigger-deployment"
)]
pub struct RailwaySyncArgs {
    /// Show which variables would change (values masked); send no mutation
    #[arg(long)]
    pub dry_run: bool,

    /// After updating the variables, redeploy the service once
    #[arg(long)]
    pub trigger_deployment: bool,
}

pub fn run(args: &RailwaySyncArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let railway = &settings.railway;
    if !railway.is_configured() {
        return Err(crate::railway::not_configured(railway));
    }
    let store = super::store_of(settings);
    let state = store.load()?;
    let tokens = state.tokens.clone().ok_or_else(|| nothing_to_push(&store))?;
    let http = HttpClient::new(settings.http)?;
    let _spinner = out.spinner("talking to Railway…");
    if args.dry_run {
        return block_on(show_diff(settings, &http, &tokens, out))?;
    }
    let generation = state.tokens_generation;
    let pushed = block_on(copies::push(
        settings,
        &http,
        &store,
        &tokens,
        generation,
        args.trigger_deployment,
    ))?;
    // Report the set Railway actually holds: a peer's newer one, if it was pushed too.
    let (tokens, generation) = pushed.newer.clone().unwrap_or((tokens, generation));
    let railway = match pushed.delivery {
        Delivery::Failed(e) => Delivery::Failed(keep_config(e)?),
        other => other,
    };
    let deliveries = Deliveries {
        railway,
        deployed: pushed.deployed,
        ..Deliveries::none(Skip::NotConfigured)
    };
    let saved = format!(
        "the stored set is unchanged in {} (generation {generation})",
        store.path().display()
    );
    let facts = super::Facts {
        outcome: ReportOutcome::Pushed,
        via: None,
        tokens: &tokens,
        source: TokenSource::Store,
        generation,
        store: &store,
        message: None,
    };
    let report = super::token_report(out, facts, &deliveries);
    super::finish(out, &report, &deliveries, &saved)
}

/// The store holds no set, so there is nothing for Railway.
fn nothing_to_push(store: &FileStore) -> Error {
    Error::config(
        format!("the token store {} holds no token set to push", store.path().display()),
        "run `withings-token refresh` or `withings-token exchange` first",
    )
}

/// Reads the service's variables and compares them with the stored set;
/// sends no mutation and shows no secret.
async fn show_diff(settings: &Settings, http: &HttpClient, tokens: &TokenSet, out: &Output) -> Result<Status> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let target = client
        .resolve_target(&settings.railway)
        .await
        .or_else(|e| Err(keep_config(e)?))?;
    let current = client.variables(&target).await.or_else(|e| Err(keep_config(e)?))?;
    let shown = |name: &str, value: &str| {
        if name.ends_with("_TOKEN") {
            mask(&secrecy::SecretString::from(value.to_owned()))
        } else {
            value.to_owned()
        }
    };
    let variables = token_variables(tokens)
        .into_iter()
        .map(|(name, new)| {
            let now = current.get(name);
            let status = match now {
                None => "missing",
                Some(v) if *v == new => "unchanged",
                Some(_) => "would change",
            };
            VariableDiff {
                name,
                status,
                current: now.map(|v| shown(name, v)),
                new: shown(name, &new),
            }
        })
        .collect();
    out.railway_diff(&RailwayDiffReport {
        version: JSON_VERSION,
        dry_run: true,
        project_id: target.project_id,
        service_id: target.service_id,
        environment_id: target.environment_id,
        variables,
    })?;
    Ok(Status::Success)
}

/// `railway-sync` rotates nothing, so a wrong setting is what it is (exit
/// 3, returned as the error); anything else leaves Railway stale (exit 6).
fn keep_config(e: Error) -> Result<Error> {
    match e {
        Error::Config { .. } => Err(e),
        other => Ok(copies::as_railway_failure(other)),
    }
}
