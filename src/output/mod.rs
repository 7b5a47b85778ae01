//! The output module owns stdout: tables for people, JSON for programs
//! (dedicated structs, `"version": 1`), env lines for pipelines. Each report
//! is one type implementing [`Report`] (its table rows or text, its JSON
//! shape, its env text) and [`Output::print`] is the one path that matches
//! the format and applies `--quiet`: a new report is a type, not an arm in
//! every method (hyperfine's `export/`). The formats are `table`, `json` and
//! `env`, a file each. Every write is checked (xh's printer): a closed pipe
//! or a full disk becomes `OUTPUT_FAILED`, never a panic and never a silent
//! exit 0. Errors go to stderr as a message and an action line; with
//! `--output json` the error object is also written to stdout. Tokens are
//! masked everywhere except the env format and `--reveal`.

mod accounts;
mod doctor;
mod encryption;
mod env;
mod health;
mod json;
mod notify;
mod railway;
mod reports;
mod table;
mod usage;

use std::borrow::Cow;
use std::io::Write;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

pub use self::accounts::{
    AccountChangeReport, AccountEntry, AccountRefresh, AccountStatus, AccountsReport, RefreshAllReport,
    StatusRowsReport,
};
pub use self::doctor::{CHECK_NAME_WIDTH, CheckResult, DoctorCheck, DoctorReport, SettingOrigin};
pub use self::encryption::{KeygenReport, RekeyReport, RekeyedAccount};
pub use self::health::HealthReport;
pub use self::notify::{Delivery, NotifyReport, SinkResult};
pub use self::railway::{DriftReport, DriftVariable, RailwayDiffReport, VariableDiff};
pub use self::reports::{
    AlertReport, AlertState, AuthUrlReport, CopyReport, CopyStatus, DryRunReport, ErrorBody, ErrorReport,
    ReportOutcome, StatusReport, TokenReport, Validation, ValidationReport, known_code,
};
pub use self::usage::{ActionCount, BudgetRefusals, UpstreamTime, UsageReport, UsageRow, UsageWindow};
use crate::error::{Error, Result};
use crate::settings::OutputFormat;
use crate::settings::OutputOptions;
use crate::tokens::{TokenSet, mask};

pub const JSON_VERSION: u32 = 1;

/// What a command answers, in every output format. The JSON form is the
/// type's serde shape; the rest are these methods. [`Output::print`] prints
/// any of them.
pub trait Report: Serialize {
    /// The table or text a person reads (`--output table`).
    fn human(&self) -> Human;

    /// `--output env`: the token lines or a comment; `None` prints the
    /// human form.
    fn env(&self) -> Option<Env<'_>> {
        None
    }

    /// Whether `--quiet` hides it (unless a format was asked for): a success
    /// report is hidden (a cron job mails only failures), the answer a
    /// command is for (a verdict, a URL, a diff) is not.
    fn hidden_by_quiet(&self) -> bool {
        true
    }

    /// What follows the report on stderr in `format`.
    fn afterword(&self, _format: OutputFormat) -> Option<Afterword<'_>> {
        None
    }
}

/// A report's form for people.
pub enum Human {
    /// A two-column table, one `(name, value)` a row.
    Rows(Vec<(&'static str, String)>),
    /// A table under a header row.
    Table {
        header: Vec<&'static str>,
        rows: Vec<Vec<String>>,
    },
    /// Text as it is, each line ended.
    Text(String),
    /// Nothing on stdout: the report is said on stderr.
    Nothing,
}

/// A report's form for `--output env`.
pub enum Env<'a> {
    /// The contract's four lines of this set; nothing without one.
    Tokens(Option<&'a TokenSet>),
    /// One `# ` comment line: the report has no tokens to give, and a
    /// pipeline capturing the env lines must not get a table.
    Comment(String),
}

/// What a report says on stderr after stdout.
pub enum Afterword<'a> {
    /// A line for the person (hidden by `--quiet`), once the report is out.
    Note(Cow<'a, str>),
    /// The report's error, said whether or not stdout took the report.
    Error(&'a ErrorBody),
}

pub struct Output {
    options: OutputOptions,
}

/// How a report shows a secret: masked, or as it is (`--reveal`). The CLI's
/// follows `--reveal` ([`Output::secrets`]); `serve`'s answers always mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Masked,
    Revealed,
}

impl Secrets {
    /// `secret` as this policy shows it; a revealed one is first masked in
    /// a CI runner's log.
    pub fn show(self, secret: &SecretString) -> String {
        match self {
            Secrets::Revealed => {
                mask_in_ci_logs(&[secret.expose_secret()]);
                secret.expose_secret().to_owned()
            }
            Secrets::Masked => mask(secret),
        }
    }
}

impl Output {
    pub fn new(options: OutputOptions) -> Output {
        Output { options }
    }

    /// How the reports printed here show secrets: masked unless `--reveal`.
    pub fn secrets(&self) -> Secrets {
        if self.options.reveal {
            Secrets::Revealed
        } else {
            Secrets::Masked
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

    /// A Withings answer (`api`): as it came, or pretty-printed for a
    /// person when it is JSON, stdout is a terminal and no format was asked
    /// for.
    pub fn answer_body(&self, body: &[u8]) -> Result<()> {
        use std::io::IsTerminal;
        let for_a_person = !self.options.explicit_format && std::io::stdout().is_terminal();
        let pretty = for_a_person
            .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
            .flatten()
            .and_then(|json| serde_json::to_string_pretty(&json).ok());
        match pretty {
            Some(text) => write_stdout(&format!("{text}\n")),
            // Not JSON: a terminal gets no control character to act on.
            None if for_a_person => {
                write_stdout(&format!("{}\n", crate::redact::visible(&String::from_utf8_lossy(body))))
            }
            None => write_stdout_bytes(body),
        }
    }

    /// The four env lines of `tokens`, whatever the format: `export`.
    pub fn env(&self, tokens: &TokenSet) -> Result<()> {
        write_stdout(&env::render(&Env::Tokens(Some(tokens)))?)
    }

    /// The four env lines of `tokens` sealed to `recipients`, as age's
    /// armour: `export --encrypt-to`. Nothing secret is printed, so nothing
    /// is masked in a CI log.
    pub fn sealed_env(&self, tokens: &TokenSet, recipients: &[crate::sealing::Recipient]) -> Result<()> {
        let lines = zeroize::Zeroizing::new(env::token_lines(tokens)?);
        write_stdout(&crate::sealing::seal_to(recipients, lines.as_bytes())?)
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

    /// Prints `report` in the format asked for, then its afterword.
    pub fn print<R: Report>(&self, report: &R) -> Result<()> {
        let printed = if report.hidden_by_quiet() && !self.reports() {
            Ok(())
        } else {
            // Nothing to print is no write at all: a spinner stays up.
            self.render(report)
                .and_then(|text| if text.is_empty() { Ok(()) } else { write_stdout(&text) })
        };
        match report.afterword(self.options.format) {
            None => printed,
            Some(Afterword::Note(note)) => {
                printed?;
                self.note(&note);
                Ok(())
            }
            Some(Afterword::Error(error)) => {
                self.status_line(error.code, &error.message, &error.action);
                printed
            }
        }
    }

    /// The one place the output format is matched; empty when the report
    /// has nothing for stdout in it.
    fn render<R: Report>(&self, report: &R) -> Result<String> {
        match (self.options.format, report.env()) {
            (OutputFormat::Json, _) => json::render(report),
            (OutputFormat::Env, Some(env)) => env::render(&env),
            _ => Ok(table::render(&report.human())),
        }
    }

    /// Reports a failure: human text on stderr, and with `--output json` the
    /// error object on stdout (best effort: stdout may be what failed).
    pub fn error(&self, error: &Error) {
        let _ = self.print(&ErrorReport {
            error: ErrorBody::of(error),
        });
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
    write_stdout_bytes(text.as_bytes())
}

fn write_stdout_bytes(bytes: &[u8]) -> Result<()> {
    crate::logging::finish_spinner();
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::OutputFailed {
            detail: format!("stdout: {e}"),
        })
}

#[cfg(test)]
mod tests;
