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
    text
}
