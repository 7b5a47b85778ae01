//! `doctor [--online]`: checks the setup and says, one line per check, what
//! is `ok`, what to `warn` about and what will `fail`, each warning and
//! failure with its next step. Exit 0 when nothing fails (warnings allowed),
//! 3 (CONFIGURATION_ERROR) when something does. The checks are
//! `diagnosis`'s; what each sends is said there.

use clap::Args;

use crate::cli::GlobalArgs;
use crate::diagnosis::{self, diagnose};
use crate::error::{Error, Result, Status};
use crate::output::{CheckResult, DoctorCheck, DoctorReport, ErrorBody, JSON_VERSION, Output, SettingOrigin};
use crate::settings::Settings;

/// Check the setup: settings, URLs, the store, the tokens, Railway (offline; --online also asks Withings and Railway)
#[derive(Debug, Args)]
#[command(
    after_help = "Each check prints one line: ok, warn or fail, what was found, and under a warning or failure a `next:` line. Exit 0 when nothing fails (warnings allowed), 3 (CONFIGURATION_ERROR) when a check fails.\n\nOffline, doctor reads the settings, the env file and the store (a Redis store is connected to) and sends nothing to Withings or Railway. --online adds: one request to Withings' token endpoint with a made-up refresh token (never the account's; it rotates nothing), this host's clock against Withings' Date header, a read of the Railway service's variables (no mutation), whether Railway holds the store's set, an older one or a newer one (someone else is refreshing), and a test event to each event sink (on_event, webhook_url; not the ping URLs). Each request to Withings and Railway is sent once, without retries; a webhook's test event is retried as every event is (network errors, 5xx, 429), within --notify-timeout.\n\nThe `encryption`, `recipients` and `identity` lines say whether the store is encrypted at rest (age) or plain, the recipients its writes are encrypted to (by fingerprint), each source of this host's identities (whether it loads, a file's mode) and whether this host reads back what it writes; plain tokens in a Redis store are a warning, a plain file store only a note.\n\nThe `events` lines name where events go: each command, each webhook and ping URL by scheme and host only (the path of a Slack or Discord hook is its credential), the webhook format, whether they are signed (WITHINGS_TOKEN_WEBHOOK_SECRET, never shown), the notify timeout and public_url.\n\nWith --server, only this host's side is checked (the server URL, ADMIN_API_TOKEN, the env file; --online: that the server answers); run doctor on the server's host for its store and tokens.\n\nExamples:\n  withings-token doctor\n  withings-token doctor --online\n  withings-token doctor --online --json | jq '.checks[] | select(.result != \"ok\")'"
)]
pub struct DoctorArgs {
    /// Also ask Withings (reachable, clock) and Railway (token, ids, which set it holds); sends no token of the account
    #[arg(long)]
    pub online: bool,
}

/// `doctor` from the command line: settings that do not load are its
/// first failed check rather than a bare error.
pub fn run_from(args: &DoctorArgs, global: &GlobalArgs, out: &Output) -> Result<Status> {
    match Settings::load(&global.overrides(), None) {
        Ok(settings) => run(args, &settings, out),
        Err(e) => finish(vec![diagnosis::failed("settings", &e)], Vec::new(), out),
    }
}

/// With an account named (`--account`), its store, tokens and sources are
/// checked; else the deployment's (`default`'s store).
pub fn run(args: &DoctorArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let named;
    let settings = match &settings.account {
        Some(name) if settings.remote.is_none() => match settings.for_account(name) {
            Ok(account) => {
                named = account;
                &named
            }
            Err(e) => return finish(vec![diagnosis::failed("settings", &e)], Vec::new(), out),
        },
        _ => settings,
    };
    let checks = diagnose(settings, args.online)?;
    finish(checks, diagnosis::origins(settings), out)
}

/// Prints the report; any failure is exit 3 with the contract's error
/// line, whose action is the first failure's.
fn finish(checks: Vec<DoctorCheck>, sources: Vec<SettingOrigin>, out: &Output) -> Result<Status> {
    let failures: Vec<&DoctorCheck> = checks.iter().filter(|c| c.result == CheckResult::Fail).collect();
    let error = failures.first().map(|first| {
        let names: Vec<&str> = failures.iter().map(|c| c.name).collect();
        let action = first.action.clone().unwrap_or_default();
        let action = match failures.len() {
            1 => action,
            _ => format!("each failed check says what to do (`next:`); the first: {action}"),
        };
        let found = if names.len() == 1 { "a problem" } else { "problems" };
        Error::config(format!("doctor found {found}: {}", names.join(", ")), action)
    });
    let status = error
        .as_ref()
        .map_or(Status::Success, |e| Status::Failed(e.exit_code()));
    let report = DoctorReport {
        version: JSON_VERSION,
        ok: error.is_none(),
        checks,
        sources,
        error: error.as_ref().map(ErrorBody::of),
    };
    out.print(&report)?;
    Ok(status)
}
