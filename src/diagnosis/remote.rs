//! With `--server`: this host's side of driving the server.

use super::setup::env_file;
use super::{fail, failed, ok, unreachable_or_failed, warn};
use crate::error::{Error, Result};
use crate::http::block_on;
use crate::output::{CheckResult, DoctorCheck};
use crate::redact::shown_url;
use crate::server_client::ServerClient;
use crate::settings::{Settings, UrlSetting};

/// With `--server`, the store and the tokens are the server's: only what
/// this host needs to drive it is checked here.
pub(super) fn remote_checks(settings: &Settings, remote: &UrlSetting, online: bool) -> Vec<DoctorCheck> {
    let server = match remote.get() {
        Ok(url) => ok(
            "server",
            format!(
                "{} (--server: this host's side only; run `withings-token doctor` on the server's host for its store)",
                shown_url(url)
            ),
        ),
        Err(e) => failed("server", &e),
    };
    let admin = match settings.server.admin_token {
        Some(_) => ok("admin token", "ADMIN_API_TOKEN is set"),
        None => fail(
            "admin token",
            "ADMIN_API_TOKEN is not set: --server needs it",
            "set ADMIN_API_TOKEN to the value the server was started with",
        ),
    };
    let ready = server.result == CheckResult::Ok && admin.result == CheckResult::Ok;
    let mut checks = vec![env_file(settings), server, admin];
    if online && ready {
        checks.push(server_answers(settings));
    }
    checks
}

fn server_answers(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "server answers";
    let mut once = settings.clone();
    once.http.retries = 0;
    let asked = || -> Result<crate::output::StatusReport> {
        let client =
            ServerClient::of(&once, false)?.ok_or_else(|| Error::internal(anyhow::anyhow!("no --server to ask")))?;
        block_on(client.status())?
    };
    match asked() {
        Ok(report) if report.token_configured => ok(
            NAME,
            format!(
                "its status: a token set, expiring at {}",
                report.expires_at.as_deref().unwrap_or("an unknown time")
            ),
        ),
        Ok(_) => warn(
            NAME,
            "its status: no token set yet",
            "authorise it: `withings-token auth-url`, then `withings-token exchange '<redirect URL>'` (with --server they go through it)",
        ),
        Err(e) => unreachable_or_failed(
            NAME,
            &e,
            "that the server runs and --server (WITHINGS_TOKEN_SERVER) names it",
        ),
    }
}
