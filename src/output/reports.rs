//! The reports of the token set: `status`, the token report of `refresh`,
//! `exchange`, `pull` and `railway-sync`, a dry run, `validate`, an
//! authorization URL and an error. Each is its JSON shape (a dedicated
//! struct, `"version": 1`) and, through [`Report`], its table and env forms.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Afterword, Env, Human, Report};
use crate::error::Error;
use crate::settings::OutputFormat;
use crate::tokens::{TokenSet, TokenSource};

/// One copy of the set named in a status report, and how far behind it is.
#[derive(Debug, Serialize, Deserialize)]
pub struct CopyReport {
    pub copy: String,
    /// The set generation (`set_generation`) this copy last received.
    pub received_generation: u64,
    pub behind: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: u32,
    pub token_configured: bool,
    pub source: TokenSource,
    pub expires_at: Option<String>,
    pub expires_in_hours: Option<f64>,
    pub should_refresh: bool,
    /// Why a refresh is due, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_reason: Option<String>,
    pub next_refresh_recommended: Option<String>,
    pub last_refreshed: Option<String>,
    pub refresh_buffer_minutes: Option<i64>,
    pub userid: Option<String>,
    pub scope: Option<String>,
    /// The store generation: grows by one on every save (a new set, a copy
    /// record, a consent state). Kept under this name for older scripts; the
    /// same as `store_generation`.
    pub generation: u64,
    /// The same as `generation`, by its full name.
    #[serde(default)]
    pub store_generation: u64,
    /// The store generation at which the set in the store was saved: the
    /// number a token report calls `set_generation` (0 without a set).
    #[serde(default)]
    pub set_generation: u64,
    pub previous_rotated_at: Option<String>,
    pub store: String,
    pub copies: Vec<CopyReport>,
    /// Withings refused the refresh token: only new consent helps (from
    /// the account's event record).
    #[serde(default)]
    pub needs_reauthorization: bool,
    /// Since when (RFC 3339), or null.
    #[serde(default)]
    pub needs_reauthorization_since: Option<String>,
    /// Whether the account's refreshes work, as its event record says
    /// (healthy when it has none, or from a server that does not say).
    #[serde(default)]
    pub alert: AlertReport,
    /// Events in the account's outbox that a sink has not taken yet.
    #[serde(default)]
    pub events_waiting: usize,
    /// Events a full outbox dropped, never delivered.
    #[serde(default)]
    pub events_dropped: u64,
    #[serde(skip)]
    pub tokens: Option<TokenSet>,
}

/// An account's alert state, as `status` and `accounts` report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    #[default]
    Healthy,
    /// Refreshes fail for a reason that passes (network, 5xx, 429).
    RefreshFailing,
    /// Withings refused the refresh token: only new consent helps.
    NeedsReauthorization,
}

/// `"alert"`: the state, since when, its code and (failing) how many
/// tries have failed; all null while healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertReport {
    pub state: AlertState,
    pub since: Option<String>,
    pub code: Option<String>,
    pub attempts: Option<u32>,
}

impl AlertReport {
    /// The table's words: `needs_reauthorization since T [CODE]`,
    /// `refresh_failed since T (3 attempts) [CODE]`; `None` while healthy.
    pub fn words(&self) -> Option<String> {
        let since = self.since.as_deref().unwrap_or("an unknown time");
        let code = self.code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
        match self.state {
            AlertState::Healthy => None,
            AlertState::NeedsReauthorization => Some(format!("needs_reauthorization since {since}{code}")),
            AlertState::RefreshFailing => {
                let tries = match self.attempts {
                    Some(1) => " (1 attempt)".to_owned(),
                    Some(n) => format!(" ({n} attempts)"),
                    None => String::new(),
                };
                Some(format!("refresh_failed since {since}{tries}{code}"))
            }
        }
    }

    /// `accounts`' `state` column.
    pub fn state_words(&self) -> &'static str {
        match self.state {
            AlertState::Healthy => "ok",
            AlertState::RefreshFailing => "refresh failing",
            AlertState::NeedsReauthorization => "needs reauthorization",
        }
    }
}

/// `2 events waiting`, `1 event waiting, 3 dropped from a full outbox`: an account's outbox
/// as a table says it; `None` when nothing waits and nothing was dropped.
pub fn outbox_words(waiting: usize, dropped: u64) -> Option<String> {
    let waiting_words = match waiting {
        1 => "1 event waiting".to_owned(),
        n => format!("{n} events waiting"),
    };
    match (waiting, dropped) {
        (0, 0) => None,
        (_, 0) => Some(waiting_words),
        (0, 1) => Some("1 event dropped from a full outbox".to_owned()),
        (0, dropped) => Some(format!("{dropped} events dropped from a full outbox")),
        (_, dropped) => Some(format!("{waiting_words}, {dropped} dropped from a full outbox")),
    }
}

/// A copy's part in a token report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyStatus {
    Updated,
    Skipped,
    Failed,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A code of the exit table (or of the admin API); read back from a
    /// server as the same static code (see [`static_code`]).
    #[serde(deserialize_with = "static_code")]
    pub code: StaticStr,
    pub message: String,
    pub action: String,
}

impl ErrorBody {
    pub fn of(error: &Error) -> ErrorBody {
        ErrorBody {
            code: error.code(),
            message: error.to_string(),
            action: error.action(),
        }
    }
}

/// `{"error": {...}}`: what `--output json` prints when a command fails.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorReport {
    pub error: ErrorBody,
}

/// How a token report's run ended, as its `outcome` key says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOutcome {
    Refreshed,
    Exchanged,
    NotDue,
    AlreadyRefreshedByPeer,
    Pushed,
    /// `pull`: Railway's newer set was imported into the store.
    Pulled,
    /// `pull`: the store's set is as new or newer, and was kept.
    NotPulled,
}

impl TokenReport {
    /// The outcome as the table says it.
    pub fn outcome_words(&self) -> &'static str {
        self.outcome.words()
    }
}

impl ReportOutcome {
    fn words(self) -> &'static str {
        match self {
            ReportOutcome::Refreshed => "refreshed",
            ReportOutcome::Exchanged => "exchanged",
            ReportOutcome::NotDue => "not due",
            ReportOutcome::AlreadyRefreshedByPeer => "already refreshed by peer",
            ReportOutcome::Pushed => "pushed",
            ReportOutcome::Pulled => "pulled from Railway",
            ReportOutcome::NotPulled => "not pulled (the store's set is as new or newer)",
        }
    }
}

/// What `refresh`, `exchange` and `railway-sync` report.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenReport {
    pub version: u32,
    pub outcome: ReportOutcome,
    /// Which refresh token obtained the set: `current`, `previous`, `store_fallback`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "static_via")]
    pub via: Option<StaticStr>,
    pub access_token: Option<String>,
    pub refresh_token: String,
    pub expires_at: Option<String>,
    pub last_refreshed: Option<String>,
    pub userid: Option<String>,
    pub scope: Option<String>,
    pub source: TokenSource,
    /// The set's generation (see `set_generation`); kept under this name for
    /// older scripts.
    pub generation: u64,
    /// The store generation at which this set was saved: `status` shows
    /// the same number as `set_generation` while the set is current.
    #[serde(default)]
    pub set_generation: u64,
    pub store: String,
    /// The env file's path when it was rewritten, else null (see `env_file`).
    pub env_file_updated: Option<String>,
    pub env_file: CopyStatus,
    /// Why the env file was not rewritten (a skip's reason, a failure's detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file_reason: Option<String>,
    pub railway: CopyStatus,
    /// Why Railway was not updated, as `env_file_reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub railway_reason: Option<String>,
    pub deployment_triggered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The first stale copy's error (exit 6), for scripts that read one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_file_error: Option<ErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub railway_error: Option<ErrorBody>,
    #[serde(skip)]
    pub tokens: Option<TokenSet>,
}

/// `validate`'s answer: what Withings said of the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// Withings answered `status: 0`.
    Valid,
    /// Withings refused the access token (the 401 family).
    Invalid,
    /// No answer could tell (network, upstream, rate limit).
    Unknown,
}

/// What `validate` (and `GET /admin/token/validate`) report.
#[derive(Debug, Serialize)]
pub struct ValidationReport {
    pub version: u32,
    pub validation: Validation,
    pub expires_at: Option<String>,
    pub userid: Option<String>,
    /// The set's generation (see `set_generation`); kept for older scripts.
    pub generation: u64,
    /// The store generation at which the set checked was saved.
    pub set_generation: u64,
    /// Whether `--refresh-if-invalid` refreshed before this answer.
    pub refreshed: bool,
    /// That refresh's own report, tokens masked unless `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<TokenReport>,
    /// Why the token is not `valid`: the contract's error object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Serialize)]
pub struct DryRunReport {
    pub version: u32,
    pub dry_run: bool,
    pub would_refresh: bool,
    pub reason: String,
    pub source: TokenSource,
    pub expires_at: Option<String>,
    pub next_refresh_recommended: Option<String>,
    pub store: String,
    pub env_file: Option<String>,
    pub railway: Option<String>,
    pub deployment_would_trigger: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuthUrlReport {
    pub version: u32,
    pub authorization_url: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
}

/// serde's derive takes a field spelled `&'static str` as borrowed from
/// the input and then deserializes only from 'static data; through this
/// alias (read with [`static_code`] / [`static_via`]) it does not.
pub type StaticStr = &'static str;

/// The codes a report from a server (`--server`) may carry: the exit
/// table's and the admin API's own. Another is an upstream error here.
const REMOTE_CODES: [&str; 10] = [
    "USAGE_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "BAD_REQUEST",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "PAYLOAD_TOO_LARGE",
    // The Withings proxy's (`api` through `--server`).
    "UPSTREAM_TIMEOUT",
    "ANSWER_TOO_LARGE",
    "WRITE_NOT_RETRIED",
];

/// A code as the static string this binary knows it by.
pub fn known_code(code: &str) -> &'static str {
    crate::error::EXIT_STATUS_TABLE
        .iter()
        .flat_map(|row| row.codes.split(", "))
        .chain(REMOTE_CODES)
        .find(|known| *known == code)
        .unwrap_or("UPSTREAM_ERROR")
}

fn static_code<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<&'static str, D::Error> {
    String::deserialize(deserializer).map(|code| known_code(&code))
}

fn static_via<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<&'static str>, D::Error> {
    let via = Option::<String>::deserialize(deserializer)?;
    Ok(via.map(|v| match v.as_str() {
        "previous" => "previous",
        "store_fallback" => "store_fallback",
        _ => "current",
    }))
}

impl Report for StatusReport {
    fn human(&self) -> Human {
        Human::Rows(status_rows(self))
    }

    fn env(&self) -> Option<Env<'_>> {
        Some(Env::Tokens(self.tokens.as_ref()))
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        self.copies.iter().any(|c| c.behind).then_some(Afterword::Note(
            "a copy of the set is behind: `withings-token refresh --if-needed` brings it up to date without rotating"
                .into(),
        ))
    }
}

impl Report for TokenReport {
    fn human(&self) -> Human {
        Human::Rows(token_rows(self))
    }

    fn env(&self) -> Option<Env<'_>> {
        Some(Env::Tokens(self.tokens.as_ref()))
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        self.message.as_deref().map(|message| Afterword::Note(message.into()))
    }
}

impl Report for DryRunReport {
    fn human(&self) -> Human {
        Human::Rows(dry_run_rows(self))
    }

    /// A pipeline capturing `--output env` must not get a table: a dry run
    /// has no tokens to give, so it says so in a comment.
    fn env(&self) -> Option<Env<'_>> {
        Some(Env::Comment(format!(
            "dry run: would {}refresh ({}); nothing was sent or written",
            if self.would_refresh { "" } else { "not " },
            self.reason
        )))
    }
}

/// The verdict is what `validate` is for, so `--quiet` keeps it; its error,
/// if any, goes to stderr as every error does.
impl Report for ValidationReport {
    fn human(&self) -> Human {
        Human::Rows(validation_rows(self))
    }

    fn env(&self) -> Option<Env<'_>> {
        Some(Env::Comment(format!(
            "validation: {}",
            validation_word(self.validation)
        )))
    }

    fn hidden_by_quiet(&self) -> bool {
        false
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        self.error.as_ref().map(Afterword::Error)
    }
}

impl AuthUrlReport {
    /// This report with how the exchange that follows is written (see
    /// `Settings::next_command`); `None`: the caller runs it itself.
    pub fn with_next<'a>(&'a self, next: Option<&'a str>) -> AuthUrlPrompt<'a> {
        AuthUrlPrompt { report: self, next }
    }
}

/// An authorization URL as printed: the report, and for a person the
/// exchange to run once the browser is done.
#[derive(Serialize)]
#[serde(transparent)]
pub struct AuthUrlPrompt<'a> {
    report: &'a AuthUrlReport,
    #[serde(skip)]
    next: Option<&'a str>,
}

/// The URL is what the command is for, so `--quiet` keeps it.
impl Report for AuthUrlPrompt<'_> {
    fn human(&self) -> Human {
        Human::Text(format!("{}\n", self.report.authorization_url))
    }

    fn hidden_by_quiet(&self) -> bool {
        false
    }

    fn afterword(&self, format: OutputFormat) -> Option<Afterword<'_>> {
        let next = self.next.filter(|_| format != OutputFormat::Json)?;
        Some(Afterword::Note(Cow::Owned(format!(
            "Open the URL above in a browser, approve, then run:\n  {next} exchange '<the URL you were redirected to>'\n(the code in it is valid for 30 seconds, once)"
        ))))
    }
}

/// A failure: the error object on stdout for JSON (best effort: stdout may
/// be what failed), the message and its action on stderr in every format.
impl Report for ErrorReport {
    fn human(&self) -> Human {
        Human::Nothing
    }

    fn hidden_by_quiet(&self) -> bool {
        false
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        Some(Afterword::Error(&self.error))
    }
}

fn status_rows(report: &StatusReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("token configured", yes_no(report.token_configured)),
        ("source", source_name(report.source).into()),
        ("expires at", or_dash(&report.expires_at)),
        (
            "expires in",
            report
                .expires_in_hours
                .map(|h| format!("{h:.1} h"))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "refresh due",
            match &report.refresh_reason {
                Some(reason) if report.should_refresh => format!("yes: {reason}"),
                _ => yes_no(report.should_refresh),
            },
        ),
        ("refresh recommended at", or_dash(&report.next_refresh_recommended)),
        ("last refreshed", or_dash(&report.last_refreshed)),
        ("user id", or_dash(&report.userid)),
        ("scope", or_dash(&report.scope)),
        ("set generation", report.set_generation.to_string()),
        ("store", report.store.clone()),
    ];
    for copy in report.copies.iter().filter(|c| c.behind) {
        let has = match copy.received_generation {
            0 => "never received the set".to_owned(),
            n => format!("has set generation {n}"),
        };
        rows.push(("stale copy", format!("{} ({has})", copy.copy)));
    }
    if let Some(alert) = report.alert.words() {
        rows.push(("alert", alert));
    }
    if let Some(outbox) = outbox_words(report.events_waiting, report.events_dropped) {
        rows.push(("events", outbox));
    }
    rows
}

fn token_rows(report: &TokenReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("outcome", report.outcome.words().to_owned()),
        (
            "access token",
            report.access_token.clone().unwrap_or_else(|| "-".into()),
        ),
        ("refresh token", report.refresh_token.clone()),
        ("expires at", or_dash(&report.expires_at)),
        ("last refreshed", or_dash(&report.last_refreshed)),
        ("user id", or_dash(&report.userid)),
        (
            "store",
            format!("{} (set generation {})", report.store, report.set_generation),
        ),
    ];
    let copies_only_railway = matches!(
        report.outcome,
        ReportOutcome::Pushed | ReportOutcome::Pulled | ReportOutcome::NotPulled
    );
    if !copies_only_railway {
        let env_file = match (&report.env_file_updated, report.env_file) {
            (Some(path), _) => path.clone(),
            (None, CopyStatus::Failed) => with_reason("failed", &report.env_file_reason),
            (None, _) => with_reason("not updated", &report.env_file_reason),
        };
        rows.push(("env file", env_file));
    }
    let railway = match report.railway {
        CopyStatus::Updated => copy_word(report.railway).to_owned(),
        other => with_reason(copy_word(other), &report.railway_reason),
    };
    rows.push(("railway", railway));
    if report.deployment_triggered {
        rows.push(("deployment", "triggered".into()));
    }
    rows
}

fn validation_rows(report: &ValidationReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("access token", validation_word(report.validation).to_owned()),
        ("expires at", or_dash(&report.expires_at)),
        ("user id", or_dash(&report.userid)),
        ("set generation", report.set_generation.to_string()),
    ];
    if report.refreshed {
        rows.push(("refreshed", "yes (the first token was refused)".into()));
    }
    rows
}

fn validation_word(validation: Validation) -> &'static str {
    match validation {
        Validation::Valid => "valid",
        Validation::Invalid => "invalid",
        Validation::Unknown => "unknown",
    }
}

fn dry_run_rows(report: &DryRunReport) -> Vec<(&'static str, String)> {
    vec![
        ("dry run", "nothing was sent or written".to_owned()),
        ("would refresh", yes_no(report.would_refresh)),
        ("because", report.reason.clone()),
        ("token source", source_name(report.source).into()),
        ("expires at", or_dash(&report.expires_at)),
        ("new set would go to", format!("store {}", report.store)),
        (
            "env file",
            report.env_file.clone().unwrap_or_else(|| "not updated".into()),
        ),
        (
            "railway",
            report.railway.clone().unwrap_or_else(|| "not configured".into()),
        ),
    ]
}

/// `WORD: REASON`, or the word alone (a server that sends no reason).
fn with_reason(word: &str, reason: &Option<String>) -> String {
    match reason {
        Some(reason) => format!("{word}: {reason}"),
        None => word.to_owned(),
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes".into() } else { "no".into() }
}

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

fn copy_word(status: CopyStatus) -> &'static str {
    match status {
        CopyStatus::Updated => "updated",
        CopyStatus::Skipped => "skipped",
        CopyStatus::Failed => "failed",
    }
}

fn source_name(source: TokenSource) -> &'static str {
    match source {
        TokenSource::Store => "store",
        TokenSource::Env => "environment",
        TokenSource::None => "none",
    }
}
