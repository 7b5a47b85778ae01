//! `demo`: the whole job against an in-process sandbox, in a throw-away
//! store, reading none of the user's settings or files. Each step is a
//! command line, parsed by the real parser and run by the real command, so
//! the title a person reads is exactly what ran. The last step reads
//! through a real `withings-token serve` (a child on loopback, on the same
//! store) with a reader token only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
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
    // A consumer: the latest weight of the first person, read with the
    // account's own token, then through `serve` with a reader token only.
    "withings-token api getmeas measure meastype=1 startdate=1796277600 --account default --json",
    "withings-token --server <server URL> api getmeas measure meastype=1 startdate=1796277600 --account default --json",
];

/// Said before the step through `serve`.
const THROUGH_THE_PROXY: &str = "(the demo started `withings-token serve` on loopback; this step holds only a reader token \
(WITHINGS_TOKEN_READER_TOKEN), no Withings token: the server adds the account's. With curl: \
`curl -s -H \"Authorization: Bearer $WITHINGS_TOKEN_READER_TOKEN\" -d action=getmeas -d meastype=1 '<server URL>/v1/withings/measure?account=default'`)\n";

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
    let mut server: Option<DemoServer> = None;
    for (n, line) in STEPS.iter().enumerate() {
        let mut line = line.replace("<redirect URL>", &redirect);
        let mut vars: HashMap<&str, String> = sandbox.env_vars().into_iter().collect();
        let through_server = line.contains("<server URL>");
        if through_server && server.is_none() {
            server = Some(DemoServer::start(&sandbox, store.path())?);
        }
        let started = server.as_ref().filter(|_| through_server);
        if let Some(started) = started {
            line = line.replace("<server URL>", &started.url);
            // The consumer holds the reader token and nothing of Withings.
            vars = HashMap::from([("WITHINGS_TOKEN_READER_TOKEN", started.reader_token.clone())]);
        }
        write_text(&format!("\n== step {}/{}: {line}\n", n + 1, STEPS.len()))?;
        if let Some(started) = started {
            write_text(&THROUGH_THE_PROXY.replace("<server URL>", &started.url))?;
        }
        let before = stored_refresh_token(&store)?;
        let argv = shell_words(&line);
        let status = run_step(&argv, &vars, store.path(), global)?;
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
fn run_step(argv: &[String], vars: &HashMap<&str, String>, store: &Path, global: &GlobalArgs) -> Result<Status> {
    let mut full = argv.to_vec();
    full.extend(["--no-env-file", "--retry-delay", "0s", "--store"].map(String::from));
    full.push(store.display().to_string());
    if global.quiet {
        full.push("--quiet".into());
    }
    let cli = Cli::try_parse_from(&full)
        .map_err(|e| Error::internal(anyhow::anyhow!("demo step `{}`: {e}", argv.join(" "))))?;
    let lookup = |name: &str| vars.get(name).cloned();
    let mut settings = Settings::resolve(&cli.global.overrides(), super::buffer_flag(&cli.command), &lookup)?;
    // The demo plays the browser and runs the exchange itself: no step
    // tells the person to do it.
    settings.next_command = None;
    super::execute(cli.command, &settings, &Output::new(settings.output))
}

/// `withings-token serve` on a loopback port, on the demo's store and the
/// sandbox, with credentials made for this run: a child process (a server
/// runs until a signal, which this process must not take), stopped with
/// SIGTERM when dropped.
struct DemoServer {
    child: std::process::Child,
    url: String,
    reader_token: String,
}

impl DemoServer {
    fn start(sandbox: &Sandbox, store: &Path) -> Result<DemoServer> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Error::internal(anyhow::anyhow!("demo: {what}: {e}"));
        let program = std::env::current_exe().map_err(|e| failed("cannot find this program", &e))?;
        let secret = || crate::fsutil::random_hex(32).map_err(|e| failed("cannot make a credential", &e));
        let reader_token = secret()?;
        let mut child = std::process::Command::new(program)
            .args(["serve", "--listen", "127.0.0.1:0", "--check-interval", "1h"])
            .args(["--no-env-file", "--log-format", "text"])
            .env_clear()
            .envs(sandbox.env_vars())
            .env("WITHINGS_TOKEN_STORE", store)
            .env("ADMIN_API_TOKEN", secret()?)
            .env("WITHINGS_TOKEN_READER_TOKEN", &reader_token)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| failed("cannot start `withings-token serve`", &e))?;
        let log = child.stderr.take().map(|stderr| BufReader::new(stderr).lines());
        let mut server = DemoServer {
            child,
            url: String::new(),
            reader_token,
        };
        let mut lines = log.ok_or_else(|| failed("serve", &"no stderr"))?;
        let mut said = Vec::new();
        server.url = loop {
            match lines.next() {
                Some(Ok(line)) => match listening_url(&line) {
                    Some(url) => break url,
                    None => said.push(line),
                },
                _ => {
                    return Err(failed(
                        "`withings-token serve` stopped before it listened",
                        &said.join("\n"),
                    ));
                }
            }
        };
        // The rest of its log is read and dropped, so that it never waits on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(server)
    }
}

/// `http://ADDR` of serve's `listening on http://ADDR` line.
fn listening_url(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on http://")?;
    let addr: String = rest.chars().take_while(|c| *c != '"' && !c.is_whitespace()).collect();
    Some(format!("http://{addr}"))
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
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
            let line = line
                .replace("<redirect URL>", "https://example.com/cb?code=c&state=s")
                .replace("<server URL>", "http://127.0.0.1:8080");
            assert!(Cli::try_parse_from(shell_words(&line)).is_ok(), "{line}");
        }
        assert_eq!(shell_words("a 'b c' d"), ["a", "b c", "d"]);
    }

    #[test]
    fn the_server_s_address_is_read_from_its_listening_line() {
        let line = "2026-12-07T10:00:00Z  INFO listening on http://127.0.0.1:41234";
        assert_eq!(listening_url(line).as_deref(), Some("http://127.0.0.1:41234"));
        let json = r#"{"level":"INFO","message":"listening on http://127.0.0.1:8080"}"#;
        assert_eq!(listening_url(json).as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(listening_url("token store plain"), None);
    }
}
