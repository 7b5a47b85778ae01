//! The report of `doctor`: one line per check.

use serde::Serialize;

use super::{Afterword, Env, ErrorBody, Human, Report};
use crate::settings::OutputFormat;

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

/// A setting as `doctor` shows it: its value and where that came from.
#[derive(Debug, Serialize)]
pub struct SettingOrigin {
    /// As people call it: `client id`, `store`.
    pub setting: &'static str,
    pub variable: &'static str,
    /// As shown (no password); `None`: unset.
    pub value: Option<String>,
    /// `flag`, `environment`, `config file`, `env file` or `default`.
    pub from: &'static str,
    /// The flag, when `from` is `flag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<&'static str>,
    /// The file, when `from` is `config file` or `env file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The config file's line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The config file's table: `account.NAME`; none at its top.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl SettingOrigin {
    /// `config file /x/config.toml:7 [account.alice]`, `flag --store`.
    fn source(&self) -> String {
        let mut text = self.from.to_owned();
        for part in [self.flag.map(str::to_owned), self.file.clone()].into_iter().flatten() {
            text.push(' ');
            text.push_str(&part);
        }
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
        }
        if let Some(table) = &self.table {
            text.push_str(&format!(" [{table}]"));
        }
        text
    }
}

/// What `doctor` reports.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub version: u32,
    pub checks: Vec<DoctorCheck>,
    /// The settings' values and where each came from.
    pub sources: Vec<SettingOrigin>,
    /// No check failed (warnings allowed).
    pub ok: bool,
    /// Why not `ok`: the contract's error object, as `validate` carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The width of the name column of `doctor`'s lines: the longest name.
pub const CHECK_NAME_WIDTH: usize = 17;

/// A clean report is a success report (silenced by `--quiet`, warnings
/// included); one with a failure is printed whatever, and its error said on
/// stderr.
impl Report for DoctorReport {
    fn human(&self) -> Human {
        Human::Text(doctor_lines(self))
    }

    /// No tokens to give: a comment keeps an env pipeline valid.
    fn env(&self) -> Option<Env<'_>> {
        Some(Env::Comment(format!(
            "doctor: {}",
            if self.ok { "ok" } else { "failed" }
        )))
    }

    fn hidden_by_quiet(&self) -> bool {
        self.ok
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        self.error.as_ref().map(Afterword::Error)
    }
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
    for origin in &report.sources {
        let value = origin.value.as_deref().unwrap_or("unset");
        text.push_str(&format!(
            "{:<4}  {:<W$}  {} ({})\n",
            "from",
            origin.setting,
            value,
            origin.source()
        ));
    }
    text
}
