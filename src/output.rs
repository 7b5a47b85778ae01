//! The output module owns stdout: tables for people, JSON for programs
//! (dedicated structs, `"version": 1`), env lines for pipelines. Errors go
//! to stderr as a message and an action line; with `--output json` the error
//! object is also written to stdout. Tokens are masked everywhere except the
//! env format and `--reveal`.

use std::io::Write;

use comfy_table::{Table, presets};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::envfile::format_line;
use crate::error::Error;
use crate::settings::OutputOptions;
use crate::tokens::{TokenSet, TokenSource, mask, rfc3339};

pub const JSON_VERSION: u32 = 1;

/// The four env keys, in the contract's order.
pub const TOKEN_KEYS: [&str; 4] = [
    "WITHINGS_ACCESS_TOKEN",
    "WITHINGS_REFRESH_TOKEN",
    "WITHINGS_TOKEN_EXPIRES_AT",
    "WITHINGS_TOKEN_LAST_REFRESHED",
];

/// The four variables of a token set, unmasked: for the env file, Railway
/// and `--output env` alike.
pub fn token_variables(tokens: &TokenSet) -> [(&'static str, String); 4] {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(rfc3339).unwrap_or_default();
    [
        (
            TOKEN_KEYS[0],
            tokens
                .access_token
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .unwrap_or_default(),
        ),
        (TOKEN_KEYS[1], tokens.refresh_token.expose_secret().to_owned()),
        (TOKEN_KEYS[2], time(tokens.expires_at)),
        (TOKEN_KEYS[3], time(tokens.last_refreshed)),
    ]
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub version: u32,
    pub token_configured: bool,
    pub source: TokenSource,
    pub expires_at: Option<String>,
    pub expires_in_hours: Option<f64>,
    pub should_refresh: bool,
    pub next_refresh_recommended: Option<String>,
    pub last_refreshed: Option<String>,
    pub refresh_buffer_minutes: Option<i64>,
    pub userid: Option<String>,
    pub scope: Option<String>,
    pub generation: u64,
    pub previous_rotated_at: Option<String>,
    pub store: String,
    #[serde(skip)]
    pub tokens: Option<TokenSet>,
}

/// Railway's part in a token report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RailwayStatus {
    Updated,
    Skipped,
    Failed,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
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
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    pub error: ErrorBody,
}

/// What `refresh`, `exchange` and `railway-sync` report.
#[derive(Debug, Serialize)]
pub struct TokenReport {
    pub version: u32,
    /// `refreshed`, `exchanged`, `not_due`, `already_refreshed_by_peer`, `pushed`
    pub outcome: &'static str,
    pub access_token: Option<String>,
    pub refresh_token: String,
    pub expires_at: Option<String>,
    pub last_refreshed: Option<String>,
    pub userid: Option<String>,
    pub scope: Option<String>,
    pub source: TokenSource,
    pub generation: u64,
    pub store: String,
    pub env_file_updated: Option<String>,
    pub railway: RailwayStatus,
    pub deployment_triggered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(skip)]
    pub tokens: Option<TokenSet>,
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

#[derive(Debug, Serialize)]
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
            secret.expose_secret().to_owned()
        } else {
            mask(secret)
        }
    }

    /// A spinner on stderr while we wait for the network; only for a person
    /// at a terminal (not with `--quiet` or `--output json`).
    pub fn spinner(&self, message: &str) -> Option<Spinner> {
        use std::io::IsTerminal;
        if self.options.quiet || self.options.format == OutputFormat::Json || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
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

    pub fn status(&self, report: &StatusReport) {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            OutputFormat::Env => self.env_lines(report.tokens.as_ref()),
            OutputFormat::Table => {
                let rows = vec![
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
                    ("refresh due", yes_no(report.should_refresh)),
                    ("refresh recommended at", or_dash(&report.next_refresh_recommended)),
                    ("last refreshed", or_dash(&report.last_refreshed)),
                    ("user id", or_dash(&report.userid)),
                    ("scope", or_dash(&report.scope)),
                    ("store generation", report.generation.to_string()),
                    ("store", report.store.clone()),
                ];
                print_table(&rows);
            }
        }
    }

    pub fn tokens(&self, report: &TokenReport) {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            OutputFormat::Env => self.env_lines(report.tokens.as_ref()),
            OutputFormat::Table => {
                let mut rows = vec![
                    ("outcome", report.outcome.replace('_', " ")),
                    (
                        "access token",
                        report.access_token.clone().unwrap_or_else(|| "-".into()),
                    ),
                    ("refresh token", report.refresh_token.clone()),
                    ("expires at", or_dash(&report.expires_at)),
                    ("last refreshed", or_dash(&report.last_refreshed)),
                    ("user id", or_dash(&report.userid)),
                    ("store", format!("{} (generation {})", report.store, report.generation)),
                ];
                if report.outcome != "pushed" {
                    let env_file = report.env_file_updated.clone().unwrap_or_else(|| "not updated".into());
                    rows.push(("env file", env_file));
                }
                rows.push(("railway", format!("{:?}", report.railway).to_lowercase()));
                if report.deployment_triggered {
                    rows.push(("deployment", "triggered".into()));
                }
                print_table(&rows);
                if let Some(message) = &report.message {
                    self.note(message);
                }
            }
        }
    }

    pub fn dry_run(&self, report: &DryRunReport) {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            // A pipeline capturing `--output env` must not get a table: a
            // dry run has no tokens to give, so it says so in a comment.
            OutputFormat::Env => write_stdout(&format!(
                "# dry run: would {}refresh ({}); nothing was sent or written\n",
                if report.would_refresh { "" } else { "not " },
                report.reason
            )),
            OutputFormat::Table => {
                let rows = vec![
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
                ];
                print_table(&rows);
            }
        }
    }

    pub fn auth_url(&self, report: &AuthUrlReport) {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            _ => {
                println!("{}", report.authorization_url);
                self.note(
                    "Open the URL above, approve, then run:\n  withings-token exchange '<the URL you were redirected to>'\n(the code in it is valid for 30 seconds, once)",
                );
            }
        }
    }

    pub fn railway_diff(&self, report: &RailwayDiffReport) {
        match self.options.format {
            OutputFormat::Json => print_json(report),
            _ => {
                let mut table = new_table();
                table.set_header(vec!["variable", "Railway now", "stored", "status"]);
                for v in &report.variables {
                    table.add_row(vec![v.name, v.current.as_deref().unwrap_or("-"), &v.new, v.status]);
                }
                println!("{table}");
                self.note("dry run: no mutation was sent to Railway");
            }
        }
    }

    /// Exactly the four contract lines, unmasked, quoted only when needed.
    fn env_lines(&self, tokens: Option<&TokenSet>) {
        let Some(tokens) = tokens else { return };
        let mut out = String::new();
        for (key, value) in token_variables(tokens) {
            match format_line(key, &value) {
                Ok(line) => out.push_str(&line),
                // Stopgap until this reports OUTPUT_FAILED (exit 6): print no
                // line rather than one that would corrupt the output.
                Err(e) => {
                    let text = format!("error: {e}; the set is safe in the store, no env lines were printed");
                    crate::logging::user_line(tracing::Level::ERROR, &text);
                    return;
                }
            }
        }
        write_stdout(&out);
    }

    /// Reports a failure: human text on stderr, and with `--output json` the
    /// error object on stdout unless a report carrying it was already printed.
    pub fn error(&self, error: &Error) {
        if self.options.format == OutputFormat::Json && !error.comes_with_report() {
            print_json(&ErrorReport {
                error: ErrorBody::of(error),
            });
        }
        crate::logging::user_line(
            tracing::Level::ERROR,
            &format!("error: {error} [{}]\n  next: {}", error.code(), error.action()),
        );
    }
}

/// Clears itself when the wait is over, whatever the outcome.
pub struct Spinner(indicatif::ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table
}

fn print_table(rows: &[(&str, String)]) {
    let mut table = new_table();
    for (key, value) in rows {
        table.add_row(vec![*key, value.as_str()]);
    }
    println!("{table}");
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(json) => write_stdout(&(json + "\n")),
        Err(e) => eprintln!("error: cannot encode the JSON output: {e}"),
    }
}

/// A closed pipe (`| head`) is not worth a panic.
fn write_stdout(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn yes_no(value: bool) -> String {
    if value { "yes".into() } else { "no".into() }
}

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

fn source_name(source: TokenSource) -> &'static str {
    match source {
        TokenSource::Store => "store",
        TokenSource::Env => "environment",
        TokenSource::None => "none",
    }
}
