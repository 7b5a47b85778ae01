//! The reports of several accounts: `accounts` (the list, a rename, a
//! removal), `status` with several accounts, and `refresh --all`. JSON:
//! one object, `"version": 1`, with the accounts in `accounts`, each named
//! by `account`; an account whose store could not be read (or whose
//! refresh failed) carries its `error` object instead.

use serde::Serialize;

use super::reports::{AlertReport, ErrorBody, StatusReport, TokenReport, outbox_words};
use super::{Afterword, Human, Report};
use crate::settings::OutputFormat;

/// `accounts`: every account in a line.
#[derive(Debug, Serialize)]
pub struct AccountsReport {
    pub version: u32,
    pub accounts: Vec<AccountEntry>,
}

#[derive(Debug, Serialize)]
pub struct AccountEntry {
    pub account: String,
    pub userid: Option<String>,
    pub expires_at: Option<String>,
    /// Now less the set's `last_refreshed`, in hours with one decimal;
    /// null when unknown.
    pub refresh_token_age_hours: Option<f64>,
    /// The copies (as `status` names them) that lack the stored set.
    pub copies_behind: Vec<String>,
    pub should_refresh: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_reason: Option<String>,
    /// Its alert state, as `status` reports it; null when its store could
    /// not be read.
    pub alert: Option<AlertReport>,
    pub events_waiting: usize,
    pub events_dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Report for AccountsReport {
    fn human(&self) -> Human {
        let rows = self
            .accounts
            .iter()
            .map(|a| match &a.error {
                Some(error) => vec![a.account.clone(), format!("error: {} [{}]", error.message, error.code)],
                None => vec![
                    a.account.clone(),
                    dash(&a.userid),
                    dash(&a.expires_at),
                    a.refresh_token_age_hours.map_or_else(|| "unknown".to_owned(), age),
                    match a.copies_behind.as_slice() {
                        [] => "none".to_owned(),
                        behind => behind.join(", "),
                    },
                    due(a.should_refresh, &a.refresh_reason),
                    a.alert.as_ref().map_or("-", AlertReport::state_words).to_owned(),
                ],
            })
            .collect();
        Human::Table {
            header: vec![
                "account",
                "user id",
                "access token expires",
                "refresh token age",
                "copies behind",
                "refresh due",
                "state",
            ],
            rows,
        }
    }

    /// The list is what the command is for.
    fn hidden_by_quiet(&self) -> bool {
        false
    }
}

/// `status` with several accounts and none named: one row each.
#[derive(Debug, Serialize)]
pub struct StatusRowsReport {
    pub version: u32,
    pub accounts: Vec<AccountStatus>,
}

/// One account's `status` report (its keys as `status --account NAME`
/// gives them), or its error.
#[derive(Debug, Serialize)]
pub struct AccountStatus {
    pub account: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Report for StatusRowsReport {
    fn human(&self) -> Human {
        // An `alert` column only when some account has something in it.
        let alerting = self
            .accounts
            .iter()
            .any(|a| a.status.as_ref().and_then(alert_cell).is_some());
        let rows = self
            .accounts
            .iter()
            .map(|a| match (&a.status, &a.error) {
                (Some(s), _) => {
                    let mut row = vec![
                        a.account.clone(),
                        if s.token_configured { "yes" } else { "no" }.to_owned(),
                        dash(&s.expires_at),
                        due(s.should_refresh, &s.refresh_reason),
                        dash(&s.last_refreshed),
                        dash(&s.userid),
                        stale_copies(s),
                    ];
                    if alerting {
                        row.push(alert_cell(s).unwrap_or_else(|| "-".to_owned()));
                    }
                    row
                }
                (None, Some(error)) => vec![a.account.clone(), format!("error: {} [{}]", error.message, error.code)],
                (None, None) => vec![a.account.clone()],
            })
            .collect();
        let mut header = vec![
            "account",
            "token configured",
            "expires at",
            "refresh due",
            "last refreshed",
            "user id",
            "stale copies",
        ];
        if alerting {
            header.push("alert");
        }
        Human::Table { header, rows }
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        let behind = self
            .accounts
            .iter()
            .filter_map(|a| {
                a.status
                    .as_ref()
                    .filter(|s| s.copies.iter().any(|c| c.behind))
                    .map(|_| a.account.as_str())
            })
            .collect::<Vec<_>>();
        (!behind.is_empty()).then(|| {
            Afterword::Note(
                format!(
                    "a copy of the set is behind for {}: `withings-token refresh --if-needed --all` brings each up to date without rotating",
                    behind.join(", ")
                )
                .into(),
            )
        })
    }
}

/// `refresh --all`: each account's token report, or its error.
#[derive(Debug, Serialize)]
pub struct RefreshAllReport {
    pub version: u32,
    pub accounts: Vec<AccountRefresh>,
}

#[derive(Debug, Serialize)]
pub struct AccountRefresh {
    pub account: String,
    /// `awaiting_consent`: the account holds no set yet (only a consent
    /// begun with `auth-url`), so there is nothing to refresh; otherwise
    /// the report's own `outcome`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<TokenReport>,
    /// The refresh's error, or (with a report) its first stale copy's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// This account's exit code alone (0, 3, 4, 5, 6, ...).
    pub exit: u8,
}

impl Report for RefreshAllReport {
    fn human(&self) -> Human {
        let rows = self
            .accounts
            .iter()
            .map(|a| {
                let (outcome, expires) = match (&a.report, a.outcome) {
                    (Some(r), _) => (r.outcome_words().to_owned(), dash(&r.expires_at)),
                    (None, Some(_)) => ("awaiting consent".to_owned(), "-".to_owned()),
                    (None, None) => ("failed".to_owned(), "-".to_owned()),
                };
                let error = a
                    .error
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |e| format!("{} [{}]", e.message, e.code));
                vec![a.account.clone(), outcome, expires, error]
            })
            .collect();
        Human::Table {
            header: vec!["account", "outcome", "expires at", "error"],
            rows,
        }
    }
}

/// `accounts rename` and `accounts remove`: what was done.
#[derive(Debug, Serialize)]
pub struct AccountChangeReport {
    pub version: u32,
    /// `renamed` or `removed`.
    pub change: &'static str,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// The store (and its siblings) moved or removed.
    pub store: String,
    pub message: String,
}

impl Report for AccountChangeReport {
    fn human(&self) -> Human {
        let mut rows = vec![(self.change, self.account.clone())];
        if let Some(new_name) = &self.new_name {
            rows.push(("new name", new_name.clone()));
        }
        rows.push(("store", self.store.clone()));
        Human::Rows(rows)
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        Some(Afterword::Note(self.message.as_str().into()))
    }
}

/// An account's alert and outbox, in one cell; `None` when healthy with
/// nothing waiting.
fn alert_cell(s: &StatusReport) -> Option<String> {
    let parts: Vec<String> = [s.alert.words(), outbox_words(s.events_waiting, s.events_dropped)]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn stale_copies(s: &StatusReport) -> String {
    let behind: Vec<&str> = s.copies.iter().filter(|c| c.behind).map(|c| c.copy.as_str()).collect();
    if behind.is_empty() {
        "none".to_owned()
    } else {
        behind.join(", ")
    }
}

fn due(should: bool, reason: &Option<String>) -> String {
    match reason {
        Some(reason) if should => format!("yes: {reason}"),
        _ if should => "yes".to_owned(),
        _ => "no".to_owned(),
    }
}

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

/// `3d 4h`, `5h`, `0h`: an age as a person reads it.
fn age(hours: f64) -> String {
    let whole = hours.max(0.0).floor() as u64;
    match (whole / 24, whole % 24) {
        (0, h) => format!("{h}h"),
        (d, h) => format!("{d}d {h}h"),
    }
}
