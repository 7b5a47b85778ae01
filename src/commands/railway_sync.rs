//! `railway-sync`: push the stored set to Railway without refreshing;
//! `--dry-run` and `--check` read Railway's variables and compare them with
//! the store (one comparison, [`compare`]), sending no mutation.

use clap::Args;

use crate::copies::{self, Deliveries, Delivery, Skip};
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::{DriftReport, DriftVariable, JSON_VERSION, Output, RailwayDiffReport, ReportOutcome, VariableDiff};
use crate::railway::{RailwayClient, RailwayTarget};
use crate::report::{Facts, token_report};
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::{TOKEN_KEYS, TokenSet, TokenSource, mask, token_variables};

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
    super::remote::refuse(
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
    let report = token_report(out, facts, &deliveries);
    super::finish(out, &report, &deliveries, &saved)
}

/// The store holds no set, so there is nothing for Railway.
fn nothing_to_push(store: &dyn TokenStore) -> Error {
    Error::config(
        format!("the token store {} holds no token set to push", store.location()),
        "run `withings-token refresh` or `withings-token exchange` first",
    )
}

/// How one of the four variables on Railway compares with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Same,
    Differs,
    Missing,
}

/// One variable: Railway's value and the stored one, both as shown
/// (tokens masked, times as they are).
pub(crate) struct Compared {
    pub name: &'static str,
    pub comparison: Comparison,
    pub railway: Option<String>,
    pub store: String,
}

/// Reads the service's variables; sends no mutation. Railway's raw
/// variables are returned too, for what needs the values (the times).
async fn read_railway(
    settings: &Settings,
    http: &HttpClient,
) -> Result<(RailwayTarget, std::collections::BTreeMap<String, String>)> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let target = client
        .resolve_target(&settings.railway)
        .await
        .or_else(|e| Err(keep_config(e)?))?;
    let current = client.variables(&target).await.or_else(|e| Err(keep_config(e)?))?;
    let current = crate::railway::shown_variables(current);
    Ok((target, current))
}

/// Compares the stored set's four variables with Railway's, showing no
/// secret (`doctor --online` asks the same question).
pub(crate) fn compare(tokens: &TokenSet, current: &std::collections::BTreeMap<String, String>) -> Vec<Compared> {
    let shown = |name: &str, value: &str| {
        if name.ends_with("_TOKEN") {
            mask(&secrecy::SecretString::from(value.to_owned()))
        } else {
            value.to_owned()
        }
    };
    token_variables(tokens)
        .into_iter()
        .map(|(name, stored)| {
            let now = current.get(name);
            let comparison = match now {
                None => Comparison::Missing,
                Some(v) if *v == stored => Comparison::Same,
                Some(_) => Comparison::Differs,
            };
            Compared {
                name,
                comparison,
                railway: now.map(|v| shown(name, v)),
                store: shown(name, &stored),
            }
        })
        .collect()
}

/// `--dry-run`: which variables a push would change.
async fn show_diff(settings: &Settings, http: &HttpClient, tokens: &TokenSet, out: &Output) -> Result<Status> {
    let (target, current) = read_railway(settings, http).await?;
    let variables = compare(tokens, &current)
        .into_iter()
        .map(|c| VariableDiff {
            name: c.name,
            status: match c.comparison {
                Comparison::Same => "unchanged",
                Comparison::Differs => "would change",
                Comparison::Missing => "missing",
            },
            current: c.railway,
            new: c.store,
        })
        .collect();
    out.print(&RailwayDiffReport {
        version: JSON_VERSION,
        dry_run: true,
        project_id: target.project_id,
        service_id: target.service_id,
        environment_id: target.environment_id,
        variables,
    })?;
    Ok(Status::Success)
}

/// `--check`: exit 0 when Railway holds the stored set, else 8 (DRIFT)
/// naming the variables that differ or are missing.
async fn check_drift(settings: &Settings, http: &HttpClient, tokens: &TokenSet, out: &Output) -> Result<Status> {
    let (_, current) = read_railway(settings, http).await?;
    let compared = compare(tokens, &current);
    let drifted: Vec<&str> = compared
        .iter()
        .filter(|c| c.comparison != Comparison::Same)
        .map(|c| c.name)
        .collect();
    let railway_newer = railway_is_newer(tokens, &current);
    let variables = compared
        .into_iter()
        .map(|c| DriftVariable {
            name: c.name,
            status: match c.comparison {
                Comparison::Same => "same",
                Comparison::Differs => "differs",
                Comparison::Missing => "missing",
            },
            railway: c.railway,
            store: c.store,
        })
        .collect();
    out.print(&DriftReport {
        version: JSON_VERSION,
        check: true,
        in_sync: drifted.is_empty(),
        variables,
        railway_newer,
    })?;
    if drifted.is_empty() {
        return Ok(Status::Success);
    }
    let newer = if railway_newer { " (Railway's set is newer)" } else { "" };
    out.status_line(
        "DRIFT",
        &format!(
            "Railway's variables differ from the store: {}{newer}",
            drifted.join(", ")
        ),
        "run `withings-token railway-sync` (or `withings-token pull --from railway` when Railway is newer)",
    );
    Ok(Status::Drift)
}

/// Whether Railway's `WITHINGS_TOKEN_LAST_REFRESHED` is later than the
/// store's (an unreadable or missing time is not newer).
fn railway_is_newer(tokens: &TokenSet, current: &std::collections::BTreeMap<String, String>) -> bool {
    let railway = current
        .get(TOKEN_KEYS[3])
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    match (railway, tokens.last_refreshed) {
        (Some(railway), Some(stored)) => railway > stored,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// `railway-sync` rotates nothing, so a wrong setting is what it is (exit
/// 3, returned as the error); anything else leaves Railway stale (exit 6).
fn keep_config(e: Error) -> Result<Error> {
    match e {
        Error::Config { .. } => Err(e),
        other => Ok(copies::as_railway_failure(other)),
    }
}
