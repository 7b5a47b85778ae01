//! `refresh`: rotate the token set under the store lock, then deliver it.

use crate::cli::RefreshArgs;
use crate::error::Result;
use crate::http::{HttpClient, block_on};
use crate::output::{DryRunReport, JSON_VERSION, Output, TOKEN_KEYS};
use crate::rotation::{self, no_tokens_error};
use crate::settings::Settings;
use crate::tokens::{Decision, choose_tokens, decide, effective_buffer, now, rfc3339};

pub fn run(args: &RefreshArgs, settings: &Settings, out: &Output) -> Result<()> {
    if args.dry_run {
        return dry_run(args, settings, out);
    }
    let http = HttpClient::new(settings.http)?;
    let client = super::withings_client(settings, &http, "refresh")?;
    let store = super::store_of(settings);
    let _spinner = out.spinner("refreshing the Withings tokens…");
    block_on(async {
        let rotation = rotation::refresh(
            settings,
            &store,
            &client,
            args.if_needed,
            !args.delivery.no_env_file_update,
        )
        .await?;
        super::finish_rotation(settings, &http, rotation, &args.delivery, out).await
    })?
}

/// Decides and reports; sends nothing and writes nothing.
fn dry_run(args: &RefreshArgs, settings: &Settings, out: &Output) -> Result<()> {
    let store = super::store_of(settings);
    let state = store.load()?;
    let (tokens, source) = choose_tokens(state.tokens.as_ref(), settings.seed_tokens.as_ref());
    let tokens = tokens.ok_or_else(no_tokens_error)?;
    let buffer = effective_buffer(&tokens, settings.buffer);
    let (would_refresh, reason, refresh_at) = match decide(&tokens, now(), buffer, args.if_needed) {
        Decision::Refresh(reason) => (
            true,
            reason.describe().to_owned(),
            tokens.expires_at.map(|at| at - buffer),
        ),
        Decision::NotDue { refresh_at, .. } => (
            false,
            format!("not due until {}", rfc3339(refresh_at)),
            Some(refresh_at),
        ),
    };
    for (var, value) in [
        ("WITHINGS_CLIENT_ID", settings.client_id.is_some()),
        ("WITHINGS_CLIENT_SECRET", settings.client_secret.is_some()),
    ] {
        if !value {
            out.note(&format!(
                "warning: {var} is not set; a real refresh would stop with CONFIGURATION_ERROR"
            ));
        }
    }
    let env_file = settings
        .env_file
        .as_ref()
        .filter(|f| !args.delivery.no_env_file_update && f.file.holds_any(&TOKEN_KEYS))
        .map(|f| f.path.display().to_string());
    out.dry_run(&DryRunReport {
        version: JSON_VERSION,
        dry_run: true,
        would_refresh,
        reason,
        source,
        expires_at: tokens.expires_at.map(rfc3339),
        next_refresh_recommended: refresh_at.map(rfc3339),
        store: store.path().display().to_string(),
        env_file,
        railway: railway_target(args, settings),
        deployment_would_trigger: would_refresh
            && args.delivery.trigger_deployment
            && railway_target(args, settings).is_some(),
    });
    Ok(())
}

fn railway_target(args: &RefreshArgs, settings: &Settings) -> Option<String> {
    let railway = &settings.railway;
    if args.delivery.no_railway || !railway.is_configured() {
        return None;
    }
    let environment = railway
        .environment_id
        .clone()
        .unwrap_or_else(|| format!("named {}", railway.environment_name));
    Some(format!(
        "service {} (project {}, environment {environment})",
        railway.service_id.as_deref().unwrap_or_default(),
        railway.project_id.as_deref().unwrap_or_default()
    ))
}
