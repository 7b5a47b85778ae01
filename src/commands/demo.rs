//! `demo`: the whole job against an in-process sandbox, in a throw-away
//! store, reading none of the user's settings or files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::cli::{AuthUrlArgs, Cli, DeliveryArgs, ExchangeArgs, GlobalArgs, RailwaySyncArgs, RefreshArgs, StatusArgs};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::output::Output;
use crate::sandbox::Sandbox;
use crate::settings::Settings;
use crate::tokens::mask;

const STEPS: usize = 9;

pub fn run(_args: &crate::cli::DemoArgs, global: &GlobalArgs) -> Result<()> {
    let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into())
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot start the in-process sandbox: {e}")))?;
    let scratch = crate::fsutil::ScratchDir::new("withings-token-demo")
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot make a temporary directory: {e}")))?;
    run_steps(&sandbox, scratch.path(), global)
}

fn run_steps(sandbox: &Sandbox, dir: &Path, global: &GlobalArgs) -> Result<()> {
    let store_path = dir.join("tokens.json");
    let settings = demo_settings(sandbox, &store_path, global)?;
    let out = Output::new(settings.output);
    println!(
        "withings-token demo: the whole job against a built-in sandbox at {}",
        sandbox.base_url()
    );
    println!(
        "(fake Withings and Railway on loopback; throw-away store {})",
        store_path.display()
    );

    step(1, "withings-token auth-url");
    let auth = super::auth_url::issue(
        &AuthUrlArgs {
            state: None,
            demo_account: false,
        },
        &settings,
    )?;
    println!("{}", auth.authorization_url);

    step(2, "consent in the browser (the sandbox approves at once)");
    let redirect = crate::sandbox::approve_consent(&HttpClient::new(settings.http)?, &auth.authorization_url)?;
    println!(
        "redirected to the callback with a one-time code and state {}",
        auth.state
    );

    step(3, "withings-token exchange '<redirect URL>' --no-railway");
    let no_railway = || DeliveryArgs {
        no_env_file_update: true,
        no_railway: true,
        trigger_deployment: false,
    };
    super::exchange::run(
        &ExchangeArgs {
            code_or_url: redirect,
            delivery: no_railway(),
        },
        &settings,
        &out,
    )?;

    step(4, "withings-token status");
    super::status::run(
        &StatusArgs {
            check: false,
            buffer: None,
        },
        &settings,
        &out,
    )?;

    let refresh = || RefreshArgs {
        if_needed: false,
        dry_run: false,
        buffer: None,
        delivery: no_railway(),
    };
    let before = stored_refresh_token(&store_path)?;
    step(5, "withings-token refresh --no-railway");
    super::refresh::run(&refresh(), &settings, &out)?;
    let after = stored_refresh_token(&store_path)?;
    println!("rotated: refresh token {before} -> {after}; the sandbox now refuses {before}");

    step(
        6,
        "withings-token refresh --no-railway (again: only the rotated token from the store can work)",
    );
    super::refresh::run(&refresh(), &settings, &out)?;
    println!("the sandbox accepted {after}, the token the store saved in step 5");

    step(7, "withings-token status");
    super::status::run(
        &StatusArgs {
            check: false,
            buffer: None,
        },
        &settings,
        &out,
    )?;

    step(8, "withings-token railway-sync");
    super::railway_sync::run(
        &RailwaySyncArgs {
            dry_run: false,
            trigger_deployment: false,
        },
        &settings,
        &out,
    )?;

    step(
        9,
        "withings-token railway-sync --dry-run (what Railway holds now, masked)",
    );
    super::railway_sync::run(
        &RailwaySyncArgs {
            dry_run: true,
            trigger_deployment: false,
        },
        &settings,
        &out,
    )?;
    println!("\ndemo finished: every step exited 0. Try it for real: see README \"Quick start\".");
    Ok(())
}

fn step(n: usize, title: &str) {
    println!("\n== step {n}/{STEPS}: {title}");
}

/// Settings from the sandbox alone: no env file, no process environment.
fn demo_settings(sandbox: &Sandbox, store: &Path, global: &GlobalArgs) -> Result<Settings> {
    let argv = ["withings-token", "--no-env-file", "--retry-delay", "0s", "status"];
    let mut demo_global = Cli::try_parse_from(argv).map_err(|e| Error::Internal(e.into()))?.global;
    demo_global.store = Some(PathBuf::from(store));
    demo_global.quiet = global.quiet;
    let vars: HashMap<&str, String> = sandbox.env_vars().into_iter().collect();
    let lookup = |name: &str| vars.get(name).cloned();
    Settings::resolve(&demo_global, None, &lookup)
}

fn stored_refresh_token(store: &Path) -> Result<String> {
    let state = crate::store::FileStore::new(store.to_path_buf()).load()?;
    Ok(state
        .tokens
        .map(|t| mask(&t.refresh_token))
        .unwrap_or_else(|| "-".into()))
}
