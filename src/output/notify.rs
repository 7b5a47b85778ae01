//! The report of `notify --test` / `--ping`: one row per sink (and per
//! ping URL), how it took what was sent.

use serde::Serialize;

use super::{Afterword, Env, ErrorBody, Human, Report};
use crate::settings::OutputFormat;

/// How one sink took the test event (or one ping URL its ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Delivered,
    /// The sink said no and is not asked again (a 4xx, a redirect).
    Refused,
    /// No answer, a 5xx or 429 until the timeout, a hook that failed.
    Failed,
}

impl Delivery {
    pub fn word(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Refused => "refused",
            Delivery::Failed => "failed",
        }
    }
}

/// One row of `notify`.
#[derive(Debug, Serialize)]
pub struct SinkResult {
    /// `command`, `webhook` or `ping`.
    pub kind: &'static str,
    /// The command, or the URL as scheme and host only.
    pub shown: String,
    pub result: Delivery,
    /// Why, when not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What `notify` reports.
#[derive(Debug, Serialize)]
pub struct NotifyReport {
    pub version: u32,
    /// The account the test event named.
    pub account: String,
    /// The test event's id (each webhook's `webhook-id`); none with
    /// `--ping` alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub sinks: Vec<SinkResult>,
    /// Every sink took it.
    pub ok: bool,
    /// Why not `ok`, as `doctor` carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A clean run is a success report (silenced by `--quiet`, as `doctor`'s);
/// one with a failure is printed whatever, and its error said on stderr.
impl Report for NotifyReport {
    fn human(&self) -> Human {
        Human::Table {
            header: vec!["sink", "to", "result"],
            rows: self
                .sinks
                .iter()
                .map(|sink| {
                    let result = match &sink.why {
                        Some(why) => format!("{}: {why}", sink.result.word()),
                        None => sink.result.word().to_owned(),
                    };
                    vec![sink.kind.to_owned(), sink.shown.clone(), result]
                })
                .collect(),
        }
    }

    /// No tokens to give: a comment keeps an env pipeline valid.
    fn env(&self) -> Option<Env<'_>> {
        let missed = self.sinks.iter().filter(|s| s.result != Delivery::Delivered).count();
        Some(Env::Comment(match missed {
            0 => "notify: every sink took it".to_owned(),
            n => format!("notify: {n} of {} sinks did not take it", self.sinks.len()),
        }))
    }

    fn hidden_by_quiet(&self) -> bool {
        self.ok
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        self.error.as_ref().map(Afterword::Error)
    }
}
