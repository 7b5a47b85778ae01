//! `demo`: the whole job against an in-process sandbox, in a throw-away
//! store, reading none of the user's settings or files. Each step is a
//! command line, parsed by the real parser and run by the real command, so
//! the title a person reads is exactly what ran.

use std::collections::HashMap;
use std::path::Path;

use clap::{Args, Parser};

use super::Cli;
use crate::cli::GlobalArgs;
use crate::error::{Error, Result, Status};
use crate::http::HttpClient;
use crate::output::{Output, write_text};
use crate::sandbox::Sandbox;
use crate::settings::{Overrides, Settings};
use crate::store::FileStore;
use crate::tokens::mask;

/// Run the whole flow against an in-process sandbox in a throw-away store
#[derive(Debug, Args)]
#[command(
    after_help = "Needs no account, no settings and no network; reads none of your env files or stores.\n\n\
Examples:\n  withings-token demo"
)]
pub struct DemoArgs {}

/// The steps; `<redirect URL>` is the sandbox's answer to the consent.
/// Every copy is kept up to date (the sandbox plays Railway too), so no
/// step reports a stale one: the demo shows the job going well.
const STEPS: &[&str] = &[
    "withings-token auth-url",
    "withings-token exchange '<redirect URL>'",
    "withings-token status",
    "withings-token refresh",
    "withings-token refresh",
    "withings-token status",
    "withings-token railway-sync",
    "withings-token railway-sync --dry-run",
    // A household: a second person joins as account `partner`.
    "withings-token auth-url --account partner",
    "withings-token exchange '<redirect URL>' --account partner",
    "withings-token accounts",
    "withings-token refresh --all",
    "withings-token status",
];

pub fn run(_args: &DemoArgs, global: &GlobalArgs) -> Result<Status> {
    let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into())
        .map_err(|e| Error::internal(anyhow::anyhow!("cannot start the in-process sandbox: {e}")))?;
    let scratch = crate::fsutil::ScratchDir::new("withings-token-demo")
        .map_err(|e| Error::internal(anyhow::anyhow!("cannot make a temporary directory: {e}")))?;
    let store = FileStore::new(scratch.path().join("tokens.json"));
    write_text(&format!(
        "withings-token demo: the whole job against a built-in sandbox at {}\n(fake Withings and Railway on loopback; throw-away store {})\n",
        sandbox.base_url(),
        store.path().display()
    ))?;
    let mut redirect = String::new();
    for (n, line) in STEPS.iter().enumerate() {
        write_text(&format!("\n== step {}/{}: {line}\n", n + 1, STEPS.len()))?;
        let before = stored_refresh_token(&store)?;
        let argv = shell_words(&line.replace("<redirect URL>", &redirect));
        let status = run_step(&argv, &sandbox, store.path(), global)?;
        if status != Status::Success {
            return Ok(status);
        }
        if argv.get(1).map(String::as_str) == Some("auth-url") {
            redirect = consent(&sandbox, &account_store(&store, &argv))?;
        }
        let after = stored_refresh_token(&store)?;
        if argv.get(1).map(String::as_str) == Some("refresh") && !argv.iter().any(|a| a == "--all") {
            write_text(&format!(
                "rotated: refresh token {before} -> {after}; the sandbox now refuses {before}\n"
            ))?;
        }
    }
    write_text("\ndemo finished: every step exited 0. Try it for real: see README \"Quick start\".\n")?;
    Ok(Status::Success)
}

/// Parses one step like the real command line and runs it with settings
/// taken from the sandbox alone (no env file, no process environment).
fn run_step(argv: &[String], sandbox: &Sandbox, store: &Path, global: &GlobalArgs) -> Result<Status> {
    let mut full = argv.to_vec();
    full.extend(["--no-env-file", "--retry-delay", "0s", "--store"].map(String::from));
    full.push(store.display().to_string());
    if global.quiet {
        full.push("--quiet".into());
    }
    let cli = Cli::try_parse_from(&full)
        .map_err(|e| Error::internal(anyhow::anyhow!("demo step `{}`: {e}", argv.join(" "))))?;
    let vars: HashMap<&str, String> = sandbox.env_vars().into_iter().collect();
    let lookup = |name: &str| vars.get(name).cloned();
    let mut settings = Settings::resolve(&cli.global.overrides(), super::buffer_flag(&cli.command), &lookup)?;
    // The demo plays the browser and runs the exchange itself: no step
    // tells the person to do it.
    settings.next_command = None;
    super::execute(cli.command, &settings, &Output::new(settings.output))
}

/// The store of the account a step names (`--account NAME`), else `store`.
fn account_store(store: &FileStore, argv: &[String]) -> FileStore {
    let named = argv.iter().position(|a| a == "--account").and_then(|i| argv.get(i + 1));
    match named.and_then(|n| crate::accounts::AccountName::parse(n).ok()) {
        Some(name) if !name.is_default() => {
            FileStore::new(crate::accounts::accounts_dir(store.path()).join(format!("{name}.json")))
        }
        _ => FileStore::new(store.path().to_path_buf()),
    }
}

/// The browser's part: the sandbox approves at once and redirects, logged
/// in as its first person, or its second for an account other than
/// `default` (each account is one person).
fn consent(sandbox: &Sandbox, store: &FileStore) -> Result<String> {
    let vars: HashMap<&str, String> = sandbox.env_vars().into_iter().collect();
    let lookup = |name: &str| vars.get(name).cloned();
    let given = Overrides {
        no_env_file: true,
        store: Some(store.path().to_path_buf()),
        ..Overrides::default()
    };
    let settings = Settings::resolve(&given, None, &lookup)?;
    let state = store.load()?.pending_auth.map(|p| p.state).unwrap_or_default();
    let url = crate::consent::authorization_url(
        settings.authorize_url()?,
        settings.client_id("demo")?,
        &settings.scope,
        settings.redirect_uri("demo")?,
        &state,
        false,
    );
    let second = store
        .path()
        .parent()
        .is_some_and(|dir| dir.ends_with("tokens.accounts"));
    let url = match second {
        true => format!("{url}&sandbox_user=2"),
        false => url.to_string(),
    };
    let redirect = crate::sandbox::approve_consent(&HttpClient::new(settings.http)?, &url)?;
    let who = if second {
        "its second person"
    } else {
        "its first person"
    };
    write_text(&format!(
        "(the demo plays the browser: it opened the URL above in the sandbox, which logged in as {who}, approved at once and redirected with a one-time code and state {state}; the next step exchanges it)\n"
    ))?;
    Ok(redirect)
}

/// Splits a step on spaces, keeping a '…' quoted part whole.
fn shell_words(line: &str) -> Vec<String> {
    line.split('\'')
        .enumerate()
        .flat_map(|(i, part)| {
            if i % 2 == 1 {
                vec![part.to_owned()]
            } else {
                part.split_whitespace().map(str::to_owned).collect()
            }
        })
        .collect()
}

fn stored_refresh_token(store: &FileStore) -> Result<String> {
    let state = store.load()?;
    Ok(state
        .tokens
        .map(|t| mask(&t.refresh_token))
        .unwrap_or_else(|| "-".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_parses_as_a_real_command_line() {
        for line in STEPS {
            let argv = shell_words(&line.replace("<redirect URL>", "https://example.com/cb?code=c&state=s"));
            assert!(Cli::try_parse_from(&argv).is_ok(), "{line}");
        }
        assert_eq!(shell_words("a 'b c' d"), ["a", "b c", "d"]);
    }
}
