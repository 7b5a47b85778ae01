//! The output module owns stdout: tables for people, JSON for programs
//! (dedicated structs, `"version": 1`), env lines for pipelines. Every write
//! is checked (xh's printer): a closed pipe or a full disk becomes
//! `OUTPUT_FAILED`, never a panic and never a silent exit 0. One writer
//! applies `--quiet`. Errors go to stderr as a message and an action line;
//! with `--output json` the error object is also written to stdout. Tokens are
//! masked everywhere except the env format and `--reveal`.

use std::io::Write;

use comfy_table::{Table, presets};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::envfile::format_line;
use crate::error::{Error, Result};
use crate::settings::{OutputFormat, OutputOptions};
use crate::tokens::{TokenSet, TokenSource, mask, token_variables};

pub const JSON_VERSION: u32 = 1;

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
    #[serde(skip)]
    pub tokens: Option<TokenSet>,
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

#[derive(Debug, Serialize)]
pub struct VariableDiff {
    pub name: &'static str,
    /// `unchanged`, `would change` or `missing`
    pub status: &'static str,
    pub current: Option<String>,
    pub new: String,
}

#[derive(Debug, Serialize)]
pub struct RailwayDiffReport {
    pub version: u32,
    pub dry_run: bool,
    pub project_id: String,
    pub service_id: String,
    pub environment_id: String,
    pub variables: Vec<VariableDiff>,
}

/// One variable in `railway-sync --check`: `same`, `differs` or `missing`
/// on Railway; tokens masked, times shown.
#[derive(Debug, Serialize)]
pub struct DriftVariable {
    pub name: &'static str,
    pub status: &'static str,
    pub railway: Option<String>,
    pub store: String,
}

/// What `railway-sync --check` reports.
#[derive(Debug, Serialize)]
pub struct DriftReport {
    pub version: u32,
    pub check: bool,
    pub in_sync: bool,
    pub variables: Vec<DriftVariable>,
    /// Railway's `WITHINGS_TOKEN_LAST_REFRESHED` is later than the store's.
    pub railway_newer: bool,
}

/// How one `doctor` check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    Ok,
    /// Works for now, but needs attention.
    Warn,
    /// Something will not work until it is fixed.
    Fail,
}

impl CheckResult {
    fn word(self) -> &'static str {
        match self {
            CheckResult::Ok => "ok",
            CheckResult::Warn => "warn",
            CheckResult::Fail => "fail",
        }
    }
}

/// One line of `doctor`.
#[derive(Debug, Serialize)]
pub struct DoctorCheck {
    pub name: &'static str,
    pub result: CheckResult,
    pub detail: String,
    /// What to do: for `warn` and `fail` only.
    pub action: Option<String>,
}

/// What `doctor` reports.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub version: u32,
    pub checks: Vec<DoctorCheck>,
    /// No check failed (warnings allowed).
    pub ok: bool,
    /// Why not `ok`: the contract's error object, as `validate` carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The width of the name column of `doctor`'s lines: the longest name.
pub const CHECK_NAME_WIDTH: usize = 17;

/// serde's derive takes a field spelled `&'static str` as borrowed from
/// the input and then deserializes only from 'static data; through this
/// alias (read with [`static_code`] / [`static_via`]) it does not.
pub type StaticStr = &'static str;

/// The codes a report from a server (`--server`) may carry: the exit
/// table's and the admin API's own. Another is an upstream error here.
const REMOTE_CODES: [&str; 7] = [
    "USAGE_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "BAD_REQUEST",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "PAYLOAD_TOO_LARGE",
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

pub struct Output {
    options: OutputOptions,
}

impl Output {
    pub fn new(options: OutputOptions) -> Output {
        Output { options }
    }

    /// Shows a secret as the contract allows: masked unless `--reveal`.
    pub fn secret(&self, secret: &SecretString) -> String {
        if self.options.reveal {
            mask_in_ci_logs(&[secret.expose_secret()]);
            secret.expose_secret().to_owned()
        } else {
            mask(secret)
        }
    }

    /// The access token alone, one line, whatever the format: `access-token`.
    pub fn access_token(&self, tokens: &TokenSet) -> Result<()> {
        self.bare_access_token(tokens.access_token.as_ref())
    }

    /// [`Output::access_token`] of a token that came alone (`--server`'s broker).
    pub fn bare_access_token(&self, token: Option<&SecretString>) -> Result<()> {
        let token = token.map(|t| t.expose_secret()).unwrap_or_default();
        if token.is_empty() || token.chars().any(char::is_control) {
            return Err(Error::OutputFailed {
                detail: "the access token is empty or holds a control character; it is not printed".into(),
            });
        }
        mask_in_ci_logs(&[token]);
        write_stdout(&format!("{token}\n"))
    }

    /// The four env lines of `tokens`, whatever the format: `export`.
    pub fn env(&self, tokens: &TokenSet) -> Result<()> {
        env_lines(Some(tokens))
    }

    /// A spinner on stderr while we wait for the network; only for a person
    /// at a terminal (not with `--quiet` or `--output json`; indicatif also
    /// draws nothing when `TERM` is unset or `dumb`). Its frames are the only
    /// cursor codes this program writes, and it has no colour. Log lines
    /// written meanwhile are printed above it, not glued to it; the first
    /// write to stdout ends it.
    pub fn spinner(&self, message: &str) -> Option<Spinner> {
        use std::io::IsTerminal;
        if self.options.quiet || self.options.format == OutputFormat::Json || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        crate::logging::set_spinner(Some(bar.clone()));
        Some(Spinner(bar))
    }

    /// A line for the person at the terminal (stderr; silenced by `-q`).
    pub fn note(&self, message: &str) {
        if !self.options.quiet {
            let level = if message.starts_with("warning: ") {
                tracing::Level::WARN
            } else {
                tracing::Level::INFO
            };
            crate::logging::user_line(level, message);
        }
    }

    /// A line the person must act on (`login`'s URL): without it the run
    /// cannot end well, so `--quiet` does not hide it either.
    pub fn instruction(&self, message: &str) {
        crate::logging::user_line(tracing::Level::INFO, message);
    }

    /// A note that `--quiet` does not hide: it belongs to a stale copy or
    /// an interrupted run.
    pub fn note_always(&self, message: &str) {
        crate::logging::user_line(tracing::Level::WARN, message);
    }

    /// Whether a success report goes to stdout: always, except a table
    /// under `--quiet` (a cron job mails only failures); an output format
    /// asked for explicitly is printed even then.
    fn reports(&self) -> bool {
        !self.options.quiet || self.options.explicit_format
    }

    pub fn status(&self, report: &StatusReport) -> Result<()> {
        if !self.reports() {
            return Ok(());
        }
        match self.options.format {
            OutputFormat::Json => print_json(report),
            OutputFormat::Env => env_lines(report.tokens.as_ref()),
            OutputFormat::Table => print_table(&status_rows(report)),
        }?;
        if report.copies.iter().any(|c| c.behind) {
            self.note("a copy of the set is behind: `withings-token refresh --if-needed` brings it up to date without rotating");
        }
        Ok(())
    }

    pub fn tokens(&self, report: &TokenReport) -> Result<()> {
        if !self.reports() {
            return Ok(());
        }
        match self.options.format {
            OutputFormat::Json => print_json(report),
            OutputFormat::Env => env_lines(report.tokens.as_ref()),
            OutputFormat::Table => print_table(&token_rows(report)),
        }?;
        if let Some(message) = &report.message {
            self.note(message);
        }
        Ok(())
    }

    pub fn dry_run(&self, report: &DryRunReport) -> Result<()> {
        if !self.reports() {
            return Ok(());
        }
        match self.options.format {
            OutputFormat::Json => print_json(report),
            // A pipeline capturing `--output env` must not get a table: a
            // dry run has no tokens to give, so it says so in a comment.
            OutputFormat::Env => write_stdout(&format!(
                "# dry run: would {}refresh ({}); nothing was sent or written\n",
                if report.would_refresh { "" } else { "not " },
                report.reason
            )),
            OutputFormat::Table => print_table(&dry_run_rows(report)),
        }
    }

    /// The verdict is what the command is for, so `--quiet` keeps it; its
    /// error, if any, goes to stderr as every error does.
    pub fn validation(&self, report: &ValidationReport) -> Result<()> {
        let printed = match self.options.format {
            OutputFormat::Json => print_json(report),
            // No tokens to give: a comment keeps an env pipeline valid.
            OutputFormat::Env => write_stdout(&format!("# validation: {}\n", validation_word(report.validation))),
            OutputFormat::Table => print_table(&validation_rows(report)),
        };
        if let Some(error) = &report.error {
            self.status_line(error.code, &error.message, &error.action);
        }
        printed
    }

    /// The URL is what the command is for, so `--quiet` keeps it. `next`
    /// is how the exchange that follows is written (see
    /// `Settings::next_command`); `None`: the caller runs it itself.
    pub fn auth_url(&self, report: &AuthUrlReport, next: Option<&str>) -> Result<()> {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            _ => {
                write_stdout(&format!("{}\n", report.authorization_url))?;
                if let Some(next) = next {
                    self.note(&format!(
                        "Open the URL above in a browser, approve, then run:\n  {next} exchange '<the URL you were redirected to>'\n(the code in it is valid for 30 seconds, once)"
                    ));
                }
                Ok(())
            }
        }
    }

    /// A dry run's answer is the diff, so `--quiet` keeps it.
    pub fn railway_diff(&self, report: &RailwayDiffReport) -> Result<()> {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            _ => {
                let mut table = new_table();
                table.set_header(vec!["variable", "Railway now", "stored", "status"]);
                for v in &report.variables {
                    table.add_row(vec![v.name, v.current.as_deref().unwrap_or("-"), &v.new, v.status]);
                }
                write_stdout(&format!("{table}\n"))?;
                self.note("dry run: no mutation was sent to Railway");
                Ok(())
            }
        }
    }

    /// The check's answer is the comparison, so `--quiet` keeps it; drift
    /// is also said on stderr (exit 8) by the caller.
    pub fn drift(&self, report: &DriftReport) -> Result<()> {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            _ => {
                let mut table = new_table();
                table.set_header(vec!["variable", "Railway", "stored", "status"]);
                for v in &report.variables {
                    table.add_row(vec![v.name, v.railway.as_deref().unwrap_or("-"), &v.store, v.status]);
                }
                write_stdout(&format!("{table}\n"))
            }
        }
    }

    /// `doctor`: one line per check. A clean report is a success report
    /// (silenced by `--quiet`, warnings included); one with a failure is
    /// printed whatever, and its error said on stderr.
    pub fn doctor(&self, report: &DoctorReport) -> Result<()> {
        let printed = match self.options.format {
            _ if report.ok && !self.reports() => Ok(()),
            OutputFormat::Json => print_json(report),
            // No tokens to give: a comment keeps an env pipeline valid.
            OutputFormat::Env => write_stdout(&format!("# doctor: {}\n", if report.ok { "ok" } else { "failed" })),
            OutputFormat::Table => write_stdout(&doctor_lines(report)),
        };
        if let Some(error) = &report.error {
            self.status_line(error.code, &error.message, &error.action);
        }
        printed
    }

    /// Reports a failure: human text on stderr, and with `--output json` the
    /// error object on stdout (best effort: stdout may be what failed).
    pub fn error(&self, error: &Error) {
        if self.options.format == OutputFormat::Json {
            let _ = print_json(&ErrorReport {
                error: ErrorBody::of(error),
            });
        }
        self.error_line(error);
    }

    /// A copy that stayed stale after the report was printed: stderr only
    /// (the JSON report already carries it), and never hidden by `--quiet`.
    pub fn stale_copy(&self, error: &Error) {
        self.error_line(error);
    }

    fn error_line(&self, error: &Error) {
        self.status_line(error.code(), &error.to_string(), &error.action());
    }

    /// `error: MESSAGE [CODE]` and `  next: ACTION` on stderr, for an error
    /// or a non-zero status that comes with a report (REFRESH_DUE).
    pub fn status_line(&self, code: &str, message: &str, action: &str) {
        crate::logging::user_line(
            tracing::Level::ERROR,
            &format!("error: {message} [{code}]\n  next: {action}"),
        );
    }
}

/// Clears itself when the wait is over, whatever the outcome.
pub struct Spinner(indicatif::ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        crate::logging::set_spinner(None);
        self.0.finish_and_clear();
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

/// `RESULT  NAME  DETAIL`, aligned, and under a warning or failure an
/// indented `next: ACTION` line; one check per line, for `grep`.
fn doctor_lines(report: &DoctorReport) -> String {
    const W: usize = CHECK_NAME_WIDTH;
    let mut text = String::new();
    for check in &report.checks {
        text.push_str(&format!(
            "{:<4}  {:<W$}  {}\n",
            check.result.word(),
            check.name,
            check.detail
        ));
        if let Some(action) = &check.action {
            text.push_str(&format!("{:<4}  {:<W$}  next: {action}\n", "", ""));
        }
    }
    text
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

/// Exactly the four contract lines, unmasked, quoted only when needed. A
/// value no reader could take back exactly prints nothing at all.
fn env_lines(tokens: Option<&TokenSet>) -> Result<()> {
    let Some(tokens) = tokens else { return Ok(()) };
    let secrets = [tokens.access_token.as_ref(), Some(&tokens.refresh_token)];
    mask_in_ci_logs(&secrets.iter().flatten().map(|s| s.expose_secret()).collect::<Vec<_>>());
    let mut out = String::new();
    for (key, value) in token_variables(tokens) {
        let line = format_line(key, &value).map_err(|e| Error::OutputFailed { detail: e.to_string() })?;
        out.push_str(&line);
    }
    write_stdout(&out)
}

/// Tables are never styled nor fitted to the terminal's width: the same
/// bytes on a terminal as in a pipe or a file, with no colour for `NO_COLOR`
/// to turn off.
fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).force_no_tty();
    table
}

fn print_table(rows: &[(&str, String)]) -> Result<()> {
    let mut table = new_table();
    for (key, value) in rows {
        table.add_row(vec![*key, value.as_str()]);
    }
    write_stdout(&format!("{table}\n"))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.into()))?;
    write_stdout(&(json + "\n"))
}

/// Under GitHub Actions, asks the runner to mask each value in the log
/// before it is printed (or handed to a command, `exec`): `::add-mask::` on
/// stderr, so that stdout stays exactly the report (`>> "$GITHUB_ENV"`
/// keeps working).
pub(crate) fn mask_in_ci_logs(values: &[&str]) {
    if !crate::settings::in_github_actions() {
        return;
    }
    let lines: String = values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| format!("::add-mask::{}\n", ci_command_data(v)))
        .collect();
    crate::logging::raw_stderr(&lines);
}

/// A workflow command's data as the runner decodes it: `%`, CR and LF are
/// written `%25`, `%0D`, `%0A`, or the mask would be another value (and a
/// newline would end the command early).
fn ci_command_data(value: &str) -> String {
    value.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Plain text for stdout (completion scripts, the sandbox's env lines).
pub fn write_text(text: &str) -> Result<()> {
    write_stdout(text)
}

/// The one place stdout is written: whole text, flushed, every failure kept.
/// A spinner still on stderr is cleared first (it shares the terminal).
fn write_stdout(text: &str) -> Result<()> {
    crate::logging::finish_spinner();
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::OutputFailed {
            detail: format!("stdout: {e}"),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_is_written_as_the_runner_decodes_it() {
        assert_eq!(ci_command_data("at%0Aabc"), "at%250Aabc");
        assert_eq!(ci_command_data("a\r\nb"), "a%0D%0Ab");
        assert_eq!(ci_command_data("plain-token"), "plain-token");
    }
}
