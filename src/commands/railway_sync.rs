//! `railway-sync`: push the stored set to Railway without refreshing.

use crate::cli::RailwaySyncArgs;
use crate::error::{Error, Result};
use crate::http::{HttpClient, block_on};
use crate::output::{ErrorBody, JSON_VERSION, Output, RailwayDiffReport, RailwayStatus, VariableDiff, token_variables};
use crate::railway::RailwayClient;
use crate::settings::Settings;
use crate::tokens::{TokenSet, TokenSource, mask};

pub fn run(args: &RailwaySyncArgs, settings: &Settings, out: &Output) -> Result<()> {
    let railway = &settings.railway;
    if !railway.is_configured() {
        return Err(Error::config(
            format!("Railway is not configured: missing {}", railway.missing().join(", ")),
            "set RAILWAY_TOKEN (project token) or RAILWAY_API_TOKEN, RAILWAY_PROJECT_ID and RAILWAY_SERVICE_ID",
        ));
    }
    let store = super::store_of(settings);
    let state = store.load()?;
    let tokens = state
        .tokens
        .clone()
        .ok_or_else(|| crate::rotation::nothing_to_push(&store))?;
    let http = HttpClient::new(settings.http)?;
    let _spinner = out.spinner("talking to Railway…");
    if args.dry_run {
        return block_on(show_diff(settings, &http, &tokens, out))?;
    }
    let mut report = super::token_report(out, "pushed", &tokens, TokenSource::Store, state.generation, &store);
    let result = block_on(crate::rotation::push_to_railway(
        settings,
        &http,
        &store,
        args.trigger_deployment,
    ))?;
    let failure = match result {
        Ok(deployed) => {
            report.railway = RailwayStatus::Updated;
            report.deployment_triggered = deployed;
            None
        }
        Err(e @ Error::Config { .. }) => return Err(e),
        Err(e) => Some(super::railway_failure(e)),
    };
    report.error = failure.as_ref().map(ErrorBody::of);
    if failure.is_some() {
        report.railway = RailwayStatus::Failed;
    }
    out.tokens(&report);
    failure.map_or(Ok(()), Err)
}

/// Reads the service's variables and compares them with the stored set;
/// sends no mutation and shows no secret.
async fn show_diff(settings: &Settings, http: &HttpClient, tokens: &TokenSet, out: &Output) -> Result<()> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let target = client
        .resolve_target(&settings.railway)
        .await
        .map_err(super::railway_failure_keep_config)?;
    let current = client
        .variables(&target)
        .await
        .map_err(super::railway_failure_keep_config)?;
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
    });
    Ok(())
}
