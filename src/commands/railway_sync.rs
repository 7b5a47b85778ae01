//! `railway-sync`: push the stored set to Railway without refreshing;
//! `--dry-run` and `--check` read Railway's variables and compare them with
//! the store (`railway_copy::drift`), sending no mutation.

use clap::Args;

use crate::copies::{self, Deliveries, Delivery, Skip};
use crate::error::{Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::{Output, ReportOutcome};
use crate::railway_copy::drift::{self, keep_config, nothing_to_push, read_railway};
use crate::report::{Facts, token_report};
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::{TokenSet, TokenSource};

/// Push the stored tokens to the Railway service without refreshing
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  withings-token railway-sync\n  withings-token railway-sync --dry-run          # which variables would change (masked)\n  withings-token railway-sync --check            # exit 8 (DRIFT) when Railway differs from the store\n  withings-token railway-sync --trigger-deployment"
)]
pub struct RailwaySyncArgs {
    /// Show which variables would change (values masked); send no mutation
    #[arg(long)]
    pub dry_run: bool,

    /// Compare Railway's variables with the store and send nothing: exit 0
    /// when they agree, 8 (DRIFT) when one differs or is missing
    #[arg(long, conflicts_with_all = ["dry_run", "trigger_deployment"])]
    pub check: bool,

    /// After updating the variables, redeploy the service once
    #[arg(long)]
    pub trigger_deployment: bool,
}

pub fn run(args: &RailwaySyncArgs, settings: &Settings, out: &Output) -> Result<Status> {
    super::via_server::refuse(
        settings,
        "railway-sync",
        "run `withings-token railway-sync` on the server's host, where its store is (the server pushes to Railway after each of its refreshes: `withings-token --server URL refresh`)",
    )?;
    let railway = &settings.railway;
    if !railway.is_configured() {
        return Err(crate::railway::not_configured(railway));
    }
    let store = crate::store::open(settings)?;
    block_on(sync(args, settings, store.as_ref(), out))?
}

async fn sync(args: &RailwaySyncArgs, settings: &Settings, store: &dyn TokenStore, out: &Output) -> Result<Status> {
    let state = store.load().await?;
    let tokens = state.tokens.clone().ok_or_else(|| nothing_to_push(store))?;
    let http = HttpClient::new(settings.http)?;
    let _spinner = out.spinner("talking to Railway…");
    if args.dry_run {
        return show_diff(settings, &http, &tokens, out).await;
    }
    if args.check {
        return check_drift(settings, &http, &tokens, out).await;
    }
    let generation = state.tokens_generation;
    let pushed = copies::push(
        settings,
        &http,
        store,
        copies::TargetFrom::Store(&state),
        &tokens,
        generation,
        args.trigger_deployment,
    )
    .await;
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
        "the stored set is unchanged in {} (set generation {generation})",
        store.location()
    );
    let facts = Facts {
        outcome: ReportOutcome::Pushed,
        via: None,
        tokens: &tokens,
        source: TokenSource::Store,
        generation,
        store,
        message: None,
    };
    let report = token_report(out.secrets(), facts, &deliveries);
    super::finish(out, &report, &deliveries, &saved)
}

/// `--dry-run`: which variables a push would change.
async fn show_diff(settings: &Settings, http: &HttpClient, tokens: &TokenSet, out: &Output) -> Result<Status> {
    let (target, current) = read_railway(settings, http).await?;
    out.print(&drift::diff_report(target, tokens, &current))?;
    Ok(Status::Success)
}

/// `--check`: exit 0 when Railway holds the stored set, else 8 (DRIFT)
/// naming the variables that differ or are missing.
async fn check_drift(settings: &Settings, http: &HttpClient, tokens: &TokenSet, out: &Output) -> Result<Status> {
    let (_, current) = read_railway(settings, http).await?;
    let drift = drift::drift(tokens, &current);
    out.print(&drift.report)?;
    if drift.drifted.is_empty() {
        return Ok(Status::Success);
    }
    let newer = if drift.report.railway_newer {
        " (Railway's set is newer)"
    } else {
        ""
    };
    out.status_line(
        "DRIFT",
        &format!(
            "Railway's variables differ from the store: {}{newer}",
            drift.drifted.join(", ")
        ),
        "run `withings-token railway-sync` (or `withings-token pull --from railway` when Railway is newer)",
    );
    Ok(Status::Drift)
}
