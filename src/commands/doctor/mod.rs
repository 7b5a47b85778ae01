//! `doctor [--online]`: checks the setup and says, one line per check, what
//! is `ok`, what to `warn` about and what will `fail`, each warning and
//! failure with its next step. Exit 0 when nothing fails (warnings allowed),
//! 3 (CONFIGURATION_ERROR) when something does.
//!
//! Offline it reads the settings, the env file and the store, and sends
//! nothing to Withings or Railway. A Redis store is connected to: reading
//! the store is the check, whatever the store is. `--online` adds one probe
//! of Withings' token endpoint with a made-up refresh token (never the
//! account's: see [`withings::probe`]), the clock against Withings' `Date`
//! header, a read of the Railway service's variables (no mutation), and the
//! "one owner of the refresh" question: does Railway hold the store's set,
//! an older one, or a newer one (then something else is refreshing).
//! Each request is sent once: doctor reports what it finds, it does not
//! insist.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::{DateTime, Utc};
use clap::Args;
use reqwest::Url;

use super::pull::{PullDecision, decide, railway_set};
use super::railway_sync::{Comparison, compare};
use crate::cli::GlobalArgs;
use crate::envfile::RepeatedKey;
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on, shown_url, visible};
use crate::output::{CheckResult, DoctorCheck, DoctorReport, ErrorBody, JSON_VERSION, Output};
use crate::railway::{RailwayClient, RailwayTarget};
use crate::server_client::ServerClient;
use crate::settings::{HttpPolicy, RailwayAuth, RailwayConfig, Settings, StoreLocation, UrlSetting};
use crate::store::{Durability, FileStore, StoreState};
use crate::tokens::{Action, DueReason, Policy, TOKEN_KEYS, TokenSet, TokenSource, now, rfc3339};
use crate::withings::{self, Probe, ProbeReply};

/// A refresh token unused this long draws a warning ...
const AGE_WARN_DAYS: i64 = 300;
/// ... and this long a failure: Withings drops one unused for a year.
const AGE_FAIL_DAYS: i64 = 365;
/// More difference than this between this host's clock and Withings' draws
/// a warning.
const MAX_SKEW_SECS: i64 = 60;

/// What to do when Railway holds a newer set than the store.
const PULL_ACTION: &str = "run `withings-token pull --from railway`, then let one actor own the refresh (docs/railway.md, \"One owner of the refresh\")";

/// Check the setup: settings, URLs, the store, the tokens, Railway (offline; --online also asks Withings and Railway)
#[derive(Debug, Args)]
#[command(
    after_help = "Each check prints one line: ok, warn or fail, what was found, and under a warning or failure a `next:` line. Exit 0 when nothing fails (warnings allowed), 3 (CONFIGURATION_ERROR) when a check fails.\n\nOffline, doctor reads the settings, the env file and the store (a Redis store is connected to) and sends nothing to Withings or Railway. --online adds: one request to Withings' token endpoint with a made-up refresh token (never the account's; it rotates nothing), this host's clock against Withings' Date header, a read of the Railway service's variables (no mutation), and whether Railway holds the store's set, an older one or a newer one (someone else is refreshing). Each request is sent once, without retries.\n\nWith --server, only this host's side is checked (the server URL, ADMIN_API_TOKEN, the env file; --online: that the server answers); run doctor on the server's host for its store and tokens.\n\nExamples:\n  withings-token doctor\n  withings-token doctor --online\n  withings-token doctor --online --json | jq '.checks[] | select(.result != \"ok\")'"
)]
pub struct DoctorArgs {
    /// Also ask Withings (reachable, clock) and Railway (token, ids, which set it holds); sends no token of the account
    #[arg(long)]
    pub online: bool,
}

/// `doctor` from the command line: settings that do not load are its
/// first failed check rather than a bare error.
pub fn run_from(args: &DoctorArgs, global: &GlobalArgs, out: &Output) -> Result<Status> {
    match Settings::load(global, None) {
        Ok(settings) => run(args, &settings, out),
        Err(e) => finish(vec![failed("settings", &e)], out),
    }
}

pub fn run(args: &DoctorArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let checks = match &settings.remote {
        Some(remote) => remote_checks(settings, remote, args.online),
        None => block_on(local_checks(settings, args.online))??,
    };
    finish(checks, out)
}

/// Prints the report; any failure is exit 3 with the contract's error
/// line, whose action is the first failure's.
fn finish(checks: Vec<DoctorCheck>, out: &Output) -> Result<Status> {
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
        error: error.as_ref().map(ErrorBody::of),
    };
    out.print(&report)?;
    Ok(status)
}

/// Everything that can be checked on this host.
async fn local_checks(settings: &Settings, online: bool) -> Result<Vec<DoctorCheck>> {
    let mut checks = vec![env_file(settings)];
    checks.extend(credentials(settings));
    checks.extend(urls(settings));
    let (store, state) = store_checks(settings).await;
    checks.extend(store);
    if let Some(state) = &state {
        checks.extend(token_checks(settings, state));
    }
    checks.push(railway_settings(settings));
    if online {
        let stored = state.as_ref().and_then(|s| s.tokens.as_ref());
        checks.extend(online_checks(settings, stored).await?);
    }
    Ok(checks)
}

// ---------------------------------------------------------------------------
// Settings

fn env_file(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "env file";
    let Some(loaded) = &settings.env_file else {
        return ok(NAME, "none read: settings come from the process environment");
    };
    let mut problems = Vec::new();
    let skipped = loaded.file.skipped_lines();
    if !skipped.is_empty() {
        problems.push(format!(
            "{} skipped: not KEY=value lines withings-token can read, and they set none of its settings",
            lines(skipped)
        ));
    }
    for RepeatedKey { key, lines: set_on } in loaded.file.repeated_keys() {
        problems.push(format!("{key} is set on {}: the last one is used", lines(set_on)));
    }
    let path = loaded.path.display();
    if problems.is_empty() {
        return ok(NAME, path.to_string());
    }
    warn(
        NAME,
        format!("{path}: {}", problems.join("; ")),
        "fix or delete those lines if they were meant for withings-token (other apps' lines can stay), and set each key once so that every reader of the file agrees",
    )
}

fn credentials(settings: &Settings) -> Vec<DoctorCheck> {
    let missing: Vec<&str> = [
        ("WITHINGS_CLIENT_ID", settings.client_id.is_none()),
        ("WITHINGS_CLIENT_SECRET", settings.client_secret.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    let app = match &settings.client_id {
        Some(id) if missing.is_empty() => ok(
            "credentials",
            format!("WITHINGS_CLIENT_ID {}, WITHINGS_CLIENT_SECRET set", visible(id)),
        ),
        _ => fail(
            "credentials",
            format!(
                "{} {} not set: refresh and exchange cannot work",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" }
            ),
            format!(
                "set {} (your app's, on developer.withings.com) in the environment or in the env file (`--env-file`, default ./.env)",
                missing.join(" and ")
            ),
        ),
    };
    let redirect = match &settings.redirect_uri {
        Some(uri) => ok("redirect uri", visible(uri)),
        None => warn(
            "redirect uri",
            "WITHINGS_REDIRECT_URI is not set: `auth-url` and `exchange` need it (`refresh` does not)",
            "set WITHINGS_REDIRECT_URI to the callback registered with your Withings app",
        ),
    };
    vec![app, redirect]
}

fn urls(settings: &Settings) -> Vec<DoctorCheck> {
    let railway_used = settings.railway.configuration() != RailwayConfig::Absent;
    vec![
        url_check("api url", settings.api_url(), true),
        url_check("authorize url", settings.authorize_url(), true),
        url_check("railway url", settings.railway_api_url(), railway_used),
    ]
}

/// A URL setting: usable, or what is wrong with it (only a warning for
/// Railway's when Railway is not set up at all).
fn url_check(name: &'static str, url: Result<&Url>, used: bool) -> DoctorCheck {
    match url {
        Ok(url) => ok(name, shown_url(url)),
        Err(e) if used => failed(name, &e),
        Err(e) => warn(
            name,
            format!("{e} (unused while Railway is not configured)"),
            e.action(),
        ),
    }
}

fn railway_settings(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "railway";
    let railway = &settings.railway;
    match railway.configuration() {
        RailwayConfig::Absent => ok(NAME, "not configured (no copy goes to Railway)"),
        RailwayConfig::Partial { missing } => fail(
            NAME,
            format!(
                "only partly configured: missing {}; `refresh` and `exchange` stop (exit 3) until it is complete",
                missing.join(", ")
            ),
            "set the missing variables (check for typos such as RAILWAY_SERVICE for RAILWAY_SERVICE_ID), or unset the others",
        ),
        RailwayConfig::Complete => {
            let environment = match &railway.environment_id {
                Some(id) => format!("environment {}", visible(id)),
                None => format!("the environment named `{}`", visible(&railway.environment_name)),
            };
            let token = match railway.auth {
                Some(RailwayAuth::Account(_)) => "an account token (RAILWAY_API_TOKEN)",
                _ => "a project token (RAILWAY_TOKEN)",
            };
            let id = |value: &Option<String>| visible(value.as_deref().unwrap_or_default());
            ok(
                NAME,
                format!(
                    "service {} of project {}, {environment}, with {token}",
                    id(&railway.service_id),
                    id(&railway.project_id)
                ),
            )
        }
    }
}

// ---------------------------------------------------------------------------
// The store and the tokens

/// The store's checks, and its state when it could be read.
async fn store_checks(settings: &Settings) -> (Vec<DoctorCheck>, Option<StoreState>) {
    match &settings.store {
        StoreLocation::File(path) => {
            file_store_checks(&FileStore::new(path.clone()).for_client(settings.client_id.clone()))
        }
        StoreLocation::Redis { .. } => {
            let loaded = async {
                let store = crate::store::open(settings)?;
                let state = store.load().await?;
                Ok::<_, Error>((store.location(), state, store.durability().await))
            };
            match loaded.await {
                Ok((location, state, durability)) => {
                    let detail = format!("{location}, a Redis store (store generation {})", state.generation);
                    let mut checks = vec![ok("store", detail)];
                    checks.extend(durability.map(|d| durability_check(&d)));
                    (checks, Some(state))
                }
                Err(e) => (vec![failed("store", &e)], None),
            }
        }
    }
}

/// Whether the store keeps the set: Redis' eviction and persistence.
fn durability_check(durability: &Durability) -> DoctorCheck {
    const NAME: &str = "store durability";
    let Some(worst) = durability.problems.iter().max_by_key(|p| p.fatal) else {
        return ok(NAME, durability.summary.clone());
    };
    let detail = durability
        .problems
        .iter()
        .map(|p| p.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let actions = durability
        .problems
        .iter()
        .map(|p| p.action.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if worst.fatal {
        fail(NAME, detail, actions)
    } else {
        warn(NAME, detail, actions)
    }
}

fn file_store_checks(store: &FileStore) -> (Vec<DoctorCheck>, Option<StoreState>) {
    let path = store.path();
    if let Ok(false) = path.try_exists() {
        let detail = format!(
            "{} does not exist yet (the first `exchange`, or a `refresh` seeded from WITHINGS_REFRESH_TOKEN, creates it)",
            path.display()
        );
        return (vec![ok("store", detail)], Some(StoreState::default()));
    }
    let loaded = store.load();
    let first = match &loaded {
        Ok(state) => ok(
            "store",
            format!("{} (store generation {})", path.display(), state.generation),
        ),
        Err(e) => failed("store", e),
    };
    (vec![first, permissions(path)], loaded.ok())
}

/// The store file and its directory should be this user's alone (0600 in
/// 0700): the file holds the tokens, the directory their names.
fn permissions(path: &Path) -> DoctorCheck {
    const NAME: &str = "store permissions";
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    let dir = crate::fsutil::parent_dir(path);
    let (file_mode, dir_mode) = match (mode(path), mode(dir)) {
        (Ok(file), Ok(dir)) => (file, dir),
        (Err(e), _) | (_, Err(e)) => {
            return warn(
                NAME,
                format!("cannot read the modes of {} and its directory: {e}", path.display()),
                "check that this user may read the store and its directory",
            );
        }
    };
    let mut problems = Vec::new();
    let mut actions = Vec::new();
    if file_mode & 0o077 != 0 {
        problems.push(format!(
            "{} is mode {file_mode:04o}: group or others can read the tokens",
            path.display()
        ));
        actions.push(format!(
            "run `chmod 600 {}` (the next save also rewrites it 0600)",
            path.display()
        ));
    }
    if dir_mode & 0o077 != 0 {
        problems.push(format!(
            "its directory {} is mode {dir_mode:04o}: group or others can look inside",
            dir.display()
        ));
        actions.push(format!("run `chmod 700 {}`", dir.display()));
    }
    if problems.is_empty() {
        return ok(NAME, format!("file {file_mode:04o}, directory {dir_mode:04o}"));
    }
    warn(NAME, problems.join("; "), actions.join("; "))
}

/// The set in use (the store's, or the environment's seed as `status`
/// picks it): its expiry, and how old its refresh token is.
fn token_checks(settings: &Settings, state: &StoreState) -> Vec<DoctorCheck> {
    let now = now();
    let policy = Policy {
        buffer: settings.buffer,
        force: false,
    };
    let assessment = crate::rotation::assess_in_use(settings, state, now, policy);
    let Some(tokens) = &assessment.tokens else {
        return vec![failed("access token", &crate::rotation::no_tokens_error())];
    };
    let due = match assessment.action {
        Action::Refresh(reason) => Some(reason),
        _ => None,
    };
    let mut checks = vec![
        expiry_check(tokens, assessment.source, due, now),
        age_check(tokens, now),
    ];
    checks.extend(recorded_lag_check(state));
    checks
}

/// The offset this host's clock showed from Withings' at its last
/// refresh, which its judgements of expiry make up for (see `clock`).
fn recorded_lag_check(state: &StoreState) -> Option<DoctorCheck> {
    let offset = state.clock_offsets.get(crate::clock::host_name())?;
    let span = crate::clock::span(chrono::Duration::seconds(offset.secs.abs()));
    let detail = if offset.secs > 0 {
        format!(
            "this host's clock was {span} behind Withings' at its last refresh; expiry times are judged that much later"
        )
    } else {
        format!(
            "this host's clock was {span} ahead of Withings' at its last refresh; for {} minutes after a refresh expiry is judged by Withings' clock, then this host refreshes early",
            crate::clock::AHEAD_TRUSTED_FOR.num_minutes()
        )
    };
    Some(warn(
        "clock",
        detail,
        "sync it (NTP, e.g. `timedatectl set-ntp true`); `withings-token doctor --online` compares it with Withings' now",
    ))
}

fn expiry_check(tokens: &TokenSet, source: TokenSource, due: Option<DueReason>, now: DateTime<Utc>) -> DoctorCheck {
    const NAME: &str = "access token";
    let from = match source {
        TokenSource::Env => " (the environment's set, newer than the store's)",
        _ => "",
    };
    if due == Some(DueReason::TimesAhead) {
        let at = tokens.expires_at.map(rfc3339).unwrap_or_default();
        return warn(
            NAME,
            format!("expires at {at}{from}, but {}", DueReason::TimesAhead.describe()),
            "run `withings-token refresh`: the new set's times come from Withings' clock; and check this host's clock (`withings-token doctor --online`)",
        );
    }
    let due = due.is_some();
    match tokens.expires_at {
        None => warn(
            NAME,
            format!("the set has no expiry time{from}"),
            "run `withings-token refresh`: the new set records one",
        ),
        Some(at) if at <= now => warn(
            NAME,
            format!("expired at {}{from}: the next refresh replaces it", rfc3339(at)),
            "run `withings-token refresh` (from cron: `withings-token refresh --if-needed`)",
        ),
        Some(at) => {
            let hours = (at - now).num_seconds() as f64 / 3600.0;
            let due = if due { "; a refresh is due" } else { "" };
            ok(NAME, format!("expires at {} (in {hours:.1} h){from}{due}", rfc3339(at)))
        }
    }
}

/// Withings issues a new refresh token at every refresh and drops one that
/// goes unused for a year, so `last_refreshed` dates the refresh token.
fn age_check(tokens: &TokenSet, now: DateTime<Utc>) -> DoctorCheck {
    const NAME: &str = "refresh token age";
    let Some(issued) = tokens.last_refreshed else {
        return warn(
            NAME,
            "unknown: the set has no last_refreshed time",
            "run `withings-token refresh`: the new set records it",
        );
    };
    let days = (now - issued).num_days();
    if issued > now {
        return warn(
            NAME,
            format!("issued {}, which is in the future", rfc3339(issued)),
            "check this host's clock (`withings-token doctor --online` compares it with Withings')",
        );
    }
    let detail = format!("issued {}, {} ago", rfc3339(issued), plural(days, "day"));
    if days >= AGE_FAIL_DAYS {
        return fail(
            NAME,
            format!("{detail}: unused for a year, Withings has most likely dropped it"),
            "try `withings-token refresh`; if Withings refuses it, re-authorise: `withings-token auth-url`, then `withings-token exchange '<redirect URL>'`",
        );
    }
    if days >= AGE_WARN_DAYS {
        return warn(
            NAME,
            format!("{detail}: Withings drops a refresh token unused for a year"),
            "run `withings-token refresh` now (it gets a new one), and `withings-token refresh --if-needed` from cron",
        );
    }
    ok(NAME, format!("{detail} (Withings drops one unused for a year)"))
}

// ---------------------------------------------------------------------------
// Online

async fn online_checks(settings: &Settings, stored: Option<&TokenSet>) -> Result<Vec<DoctorCheck>> {
    let http = HttpClient::new(HttpPolicy {
        retries: 0,
        ..settings.http
    })?;
    let mut checks = withings_checks(settings, &http).await;
    checks.extend(railway_checks(settings, &http, stored).await);
    Ok(checks)
}

/// Is Withings there, does it take the app's credentials, and does this
/// host's clock agree with its `Date` header.
async fn withings_checks(settings: &Settings, http: &HttpClient) -> Vec<DoctorCheck> {
    const NAME: &str = "withings";
    let Ok(api_url) = settings.api_url() else {
        return vec![fail(
            NAME,
            "not asked: WITHINGS_API_URL is not usable",
            "fix WITHINGS_API_URL (see `api url`)",
        )];
    };
    let credentials = settings.client_id.as_deref().zip(settings.client_secret.as_ref());
    let host = shown_url(api_url);
    match withings::probe(http, api_url, credentials).await {
        Ok(probe) => vec![reply_check(&probe, &host), clock_check(&probe)],
        Err(e) => vec![unreachable_or_failed(
            NAME,
            &e,
            &format!("this host's network (DNS, proxy, firewall) and WITHINGS_API_URL ({host})"),
        )],
    }
}

fn reply_check(probe: &Probe, host: &str) -> DoctorCheck {
    const NAME: &str = "withings";
    match &probe.reply {
        ProbeReply::Answered { status, message } => {
            let message = if message.is_empty() { "no message" } else { message };
            ok(
                NAME,
                format!("{host} answers (a probe with a made-up refresh token got status {status}: {message})"),
            )
        }
        ProbeReply::CredentialsRefused(e) => failed(NAME, e),
        ProbeReply::Unusable(what) => fail(
            NAME,
            format!("{host} answered, but not as Withings does: {what}"),
            "check WITHINGS_API_URL (and any proxy in between), then run `withings-token doctor --online` again",
        ),
    }
}

fn clock_check(probe: &Probe) -> DoctorCheck {
    const NAME: &str = "clock";
    let Some(server_time) = probe.server_time else {
        return warn(
            NAME,
            "not checked: Withings' answer had no readable Date header",
            "compare `date -u` with a time source by hand",
        );
    };
    let skew = (server_time - probe.received_at).num_seconds();
    if skew.abs() <= MAX_SKEW_SECS {
        return ok(
            NAME,
            format!("agrees with Withings' Date header (off by {} s)", skew.abs()),
        );
    }
    let side = if skew > 0 { "behind" } else { "ahead of" };
    warn(
        NAME,
        format!(
            "this host's clock is {} s {side} Withings' (its Date header)",
            skew.abs()
        ),
        "sync it (NTP, e.g. `timedatectl set-ntp true`): expiry times come from this clock, and other hosts and Railway compare the refresh times it writes",
    )
}

/// With Railway configured: can the token read the service's variables,
/// and who holds the newer set.
async fn railway_checks(settings: &Settings, http: &HttpClient, stored: Option<&TokenSet>) -> Vec<DoctorCheck> {
    if !settings.railway.is_configured() {
        return Vec::new();
    }
    match read_railway(settings, http).await {
        Ok((target, variables)) => vec![
            ok(
                "railway api",
                format!(
                    "the token reads the variables of service {} in environment {}",
                    visible(&target.service_id),
                    visible(&target.environment_id)
                ),
            ),
            owner_check(stored, &variables),
        ],
        Err(Error::RailwayUpdateFailed { detail }) => vec![fail(
            "railway api",
            format!("Railway refused the read: {detail}"),
            "check RAILWAY_TOKEN (or RAILWAY_API_TOKEN), RAILWAY_PROJECT_ID and RAILWAY_SERVICE_ID",
        )],
        Err(e) => vec![unreachable_or_failed(
            "railway api",
            &e,
            "RAILWAY_API_URL and this host's network",
        )],
    }
}

/// The service and its variables; a read, no mutation.
async fn read_railway(settings: &Settings, http: &HttpClient) -> Result<(RailwayTarget, BTreeMap<String, String>)> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let target = client.resolve_target(&settings.railway).await?;
    let variables = crate::railway::shown_variables(client.variables(&target).await?);
    Ok((target, variables))
}

/// Item 10, "one owner": does Railway hold the store's set, an older one
/// or a newer one? Newer means something else refreshes the same chain.
fn owner_check(stored: Option<&TokenSet>, variables: &BTreeMap<String, String>) -> DoctorCheck {
    const NAME: &str = "one owner";
    let holds_one = variables.get(TOKEN_KEYS[1]).is_some_and(|v| !v.trim().is_empty());
    let Ok(railway) = holds_one.then(|| railway_set(variables)).transpose() else {
        return warn(
            NAME,
            "Railway's token times are not RFC 3339 times: which set is newer cannot be told",
            "push the store's set with `withings-token railway-sync`, or take Railway's with `withings-token pull --from railway --force` if it is the live one",
        );
    };
    match (stored, railway) {
        (None, None) => ok(NAME, "neither the store nor Railway holds a set yet"),
        (None, Some(railway)) => warn(
            NAME,
            format!(
                "Railway holds a set (last refreshed {}) and the store none",
                when(&railway)
            ),
            PULL_ACTION,
        ),
        (Some(_), None) => warn(
            NAME,
            "the Railway service holds no WITHINGS_REFRESH_TOKEN: it never received the store's set",
            "push it: `withings-token railway-sync`",
        ),
        (Some(stored), Some(railway)) => compare_sets(stored, &railway, variables),
    }
}

fn compare_sets(stored: &TokenSet, railway: &TokenSet, variables: &BTreeMap<String, String>) -> DoctorCheck {
    const NAME: &str = "one owner";
    let differing: Vec<&str> = compare(stored, variables)
        .iter()
        .filter(|c| c.comparison != Comparison::Same)
        .map(|c| c.name)
        .collect();
    let (ours, theirs) = (when(stored), when(railway));
    if differing.is_empty() {
        return ok(NAME, format!("Railway holds the store's set (last refreshed {ours})"));
    }
    if decide(Some(stored), railway, false) == PullDecision::Import {
        return warn(
            NAME,
            format!(
                "Railway holds a newer set (last refreshed {theirs}) than the store ({ours}): someone else is refreshing"
            ),
            PULL_ACTION,
        );
    }
    if decide(Some(railway), stored, false) == PullDecision::Import {
        return warn(
            NAME,
            format!(
                "Railway holds an older set (last refreshed {theirs}) than the store ({ours}): a service there still uses the old pair"
            ),
            "push the store's set: `withings-token railway-sync` (with `--trigger-deployment` if the service reads its variables only when it starts)",
        );
    }
    warn(
        NAME,
        format!(
            "Railway's {} differ from the store's, with the same refresh time",
            differing.join(", ")
        ),
        "`withings-token railway-sync --check` shows both sides (masked); then `withings-token railway-sync`, or `withings-token pull --from railway --force` if Railway's set is the live one",
    )
}

// ---------------------------------------------------------------------------
// --server

/// With `--server`, the store and the tokens are the server's: only what
/// this host needs to drive it is checked here.
fn remote_checks(settings: &Settings, remote: &UrlSetting, online: bool) -> Vec<DoctorCheck> {
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
            ServerClient::of(&once, false)?.ok_or_else(|| Error::Internal(anyhow::anyhow!("no --server to ask")))?;
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

// ---------------------------------------------------------------------------
// Small things

fn ok(name: &'static str, detail: impl Into<String>) -> DoctorCheck {
    check(name, CheckResult::Ok, detail.into(), None)
}

fn warn(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> DoctorCheck {
    check(name, CheckResult::Warn, detail.into(), Some(action.into()))
}

fn fail(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> DoctorCheck {
    check(name, CheckResult::Fail, detail.into(), Some(action.into()))
}

/// A failed check from an error: its message and its action.
fn failed(name: &'static str, e: &Error) -> DoctorCheck {
    fail(name, e.to_string(), e.action())
}

/// A failed check; a peer that gave no answer at all is for the person to
/// look into (`what`), not a run to retry as the error's own action says.
fn unreachable_or_failed(name: &'static str, e: &Error, what: &str) -> DoctorCheck {
    match e {
        Error::Network { .. } => fail(
            name,
            e.to_string(),
            format!("check {what}, then run `withings-token doctor --online` again"),
        ),
        _ => failed(name, e),
    }
}

fn check(name: &'static str, result: CheckResult, detail: String, action: Option<String>) -> DoctorCheck {
    debug_assert!(name.len() <= crate::output::CHECK_NAME_WIDTH, "{name} is too long");
    DoctorCheck {
        name,
        result,
        detail,
        action,
    }
}

/// `line 3`, `lines 1, 3`.
fn lines(numbers: &[usize]) -> String {
    let listed: Vec<String> = numbers.iter().map(usize::to_string).collect();
    let word = if numbers.len() == 1 { "line" } else { "lines" };
    format!("{word} {}", listed.join(", "))
}

/// `1 day`, `310 days`.
fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn when(tokens: &TokenSet) -> String {
    tokens
        .last_refreshed
        .map(rfc3339)
        .unwrap_or_else(|| "an unknown time".into())
}

#[cfg(test)]
mod tests;
