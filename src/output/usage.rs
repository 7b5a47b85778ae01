//! `usage`: how each consumer used `serve`'s Withings proxy, as
//! `GET /admin/usage` answers it (one shape for the server, which makes it,
//! and the CLI, which reads it back and prints it: `--json` gives the same
//! object). JSON: `"version": 1` and `usage`, one row per reader and
//! account that made a call in the last 24 h, each with its `last_hour`
//! and `last_day`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Human, Report};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub version: u32,
    /// By reader, then account.
    pub usage: Vec<UsageRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// A named reader, `(admin)` or `(reader)`.
    pub reader: String,
    pub account: String,
    /// The last call's time (the server's clock, whole seconds).
    pub last_call: DateTime<Utc>,
    pub last_hour: UsageWindow,
    pub last_day: UsageWindow,
}

/// The calls of one window (by whole minutes: the last 60, or 1,440).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageWindow {
    pub calls: u64,
    /// Calls whose outcome is not `ok`.
    pub errors: u64,
    /// Calls by outcome (`ok`, `invalid_token`, `rate_limited`, …), only
    /// those that happened.
    pub outcomes: BTreeMap<String, u64>,
    /// Up to 5 actions, the most called first (ties by name).
    pub top_actions: Vec<ActionCount>,
    /// Reads sent again after Withings refused the token.
    pub retried: u64,
    /// Calls that waited for the budget before being sent.
    pub budget_waits: u64,
    pub budget_refusals: BudgetRefusals,
    pub upstream: UpstreamTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCount {
    pub action: String,
    pub calls: u64,
}

/// Calls refused by a budget (nothing sent), by the budget that refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRefusals {
    /// The app's budget (all consumers and refreshes).
    pub app: u64,
    /// The reader's own share.
    pub reader: u64,
}

/// The time spent waiting for Withings, over the calls that were sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTime {
    /// Calls sent to Withings (a retried read counts once).
    pub calls: u64,
    /// Milliseconds, to a tenth; null without a call sent.
    pub mean_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Report for UsageReport {
    fn human(&self) -> Human {
        if self.usage.is_empty() {
            return Human::Text("no call through the Withings proxy in the last 24 h\n".to_owned());
        }
        let rows = self
            .usage
            .iter()
            .map(|row| {
                vec![
                    // A server's words, shown to a person: nothing a
                    // terminal would act on.
                    crate::redact::visible(&row.reader),
                    crate::redact::visible(&row.account),
                    row.last_hour.calls.to_string(),
                    row.last_hour.errors.to_string(),
                    row.last_day.calls.to_string(),
                    row.last_day.errors.to_string(),
                    top_actions(&row.last_day.top_actions),
                ]
            })
            .collect();
        Human::Table {
            header: vec![
                "reader",
                "account",
                "calls 1h",
                "errors 1h",
                "calls 24h",
                "errors 24h",
                "top actions 24h",
            ],
            rows,
        }
    }

    /// The figures are what the command is for.
    fn hidden_by_quiet(&self) -> bool {
        false
    }
}

/// `getmeas 3, getdevice 1`; `-` for none.
fn top_actions(actions: &[ActionCount]) -> String {
    if actions.is_empty() {
        return "-".to_owned();
    }
    let listed: Vec<String> = actions
        .iter()
        .map(|a| format!("{} {}", crate::redact::visible(&a.action), a.calls))
        .collect();
    listed.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_shows_both_windows_and_the_day_s_top_actions() {
        let day = UsageWindow {
            calls: 4,
            errors: 1,
            top_actions: vec![
                ActionCount {
                    action: "getmeas".into(),
                    calls: 3,
                },
                ActionCount {
                    action: "other".into(),
                    calls: 1,
                },
            ],
            ..UsageWindow::default()
        };
        let report = UsageReport {
            version: 1,
            usage: vec![UsageRow {
                reader: "mcp".into(),
                account: "default".into(),
                last_call: DateTime::<Utc>::UNIX_EPOCH,
                last_hour: UsageWindow::default(),
                last_day: day,
            }],
        };
        let Human::Table { rows, .. } = report.human() else {
            panic!("a table")
        };
        assert_eq!(rows, [["mcp", "default", "0", "0", "4", "1", "getmeas 3, other 1"]]);
        let json = serde_json::to_value(&report).unwrap();
        let back: UsageReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
