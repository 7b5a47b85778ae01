//! `railway-sync`'s reading side, which `doctor --online` shares: Railway's
//! variables read (no mutation) and compared with the stored set, one
//! comparison ([`compare`]) for the dry run's diff and `--check`'s drift.

use crate::copies;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::output::{DriftReport, DriftVariable, JSON_VERSION, RailwayDiffReport, VariableDiff};
use crate::railway::RailwayTarget;
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::{TOKEN_KEYS, TokenSet, mask, token_variables};

/// The store holds no set, so there is nothing for Railway.
pub(crate) fn nothing_to_push(store: &dyn TokenStore) -> Error {
    Error::config(
        format!("the token store {} holds no token set to push", store.location()),
        "run `withings-token refresh` or `withings-token exchange` first",
    )
}

/// How one of the four variables on Railway compares with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Same,
    Differs,
    Missing,
}

/// One variable: Railway's value and the stored one, both as shown
/// (tokens masked, times as they are).
pub(crate) struct Compared {
    pub name: &'static str,
    pub comparison: Comparison,
    pub railway: Option<String>,
    pub store: String,
}

/// Reads the service's variables; sends no mutation. Railway's raw
/// variables are returned too, for what needs the values (the times).
pub(crate) async fn read_railway(
    settings: &Settings,
    http: &HttpClient,
) -> Result<(RailwayTarget, std::collections::BTreeMap<String, String>)> {
    let (target, current) = super::read_variables(settings, http)
        .await
        .or_else(|e| Err(keep_config(e)?))?;
    Ok((target, crate::railway::shown_variables(current)))
}

/// Compares the stored set's four variables with Railway's, showing no
/// secret (`doctor --online` asks the same question).
pub(crate) fn compare(tokens: &TokenSet, current: &std::collections::BTreeMap<String, String>) -> Vec<Compared> {
    let shown = |name: &str, value: &str| {
        if name.ends_with("_TOKEN") {
            mask(&secrecy::SecretString::from(value.to_owned()))
        } else {
            value.to_owned()
        }
    };
    token_variables(tokens)
        .into_iter()
        .map(|(name, stored)| {
            let now = current.get(name);
            let comparison = match now {
                None => Comparison::Missing,
                Some(v) if *v == stored => Comparison::Same,
                Some(_) => Comparison::Differs,
            };
            Compared {
                name,
                comparison,
                railway: now.map(|v| shown(name, v)),
                store: shown(name, &stored),
            }
        })
        .collect()
}

/// `--dry-run`'s answer: which variables a push would change.
pub(crate) fn diff_report(
    target: RailwayTarget,
    tokens: &TokenSet,
    current: &std::collections::BTreeMap<String, String>,
) -> RailwayDiffReport {
    let variables = compare(tokens, current)
        .into_iter()
        .map(|c| VariableDiff {
            name: c.name,
            status: match c.comparison {
                Comparison::Same => "unchanged",
                Comparison::Differs => "would change",
                Comparison::Missing => "missing",
            },
            current: c.railway,
            new: c.store,
        })
        .collect();
    RailwayDiffReport {
        version: JSON_VERSION,
        dry_run: true,
        project_id: target.project_id,
        service_id: target.service_id,
        environment_id: target.environment_id,
        variables,
    }
}

/// `--check`'s answer: the variables that differ from the store or are
/// missing (none when Railway holds the stored set), and the report.
pub(crate) struct Drift {
    pub drifted: Vec<&'static str>,
    pub report: DriftReport,
}

/// Compares Railway's variables with the stored set for `--check`.
pub(crate) fn drift(tokens: &TokenSet, current: &std::collections::BTreeMap<String, String>) -> Drift {
    let compared = compare(tokens, current);
    let drifted: Vec<&'static str> = compared
        .iter()
        .filter(|c| c.comparison != Comparison::Same)
        .map(|c| c.name)
        .collect();
    let railway_newer = railway_is_newer(tokens, current);
    let variables = compared
        .into_iter()
        .map(|c| DriftVariable {
            name: c.name,
            status: match c.comparison {
                Comparison::Same => "same",
                Comparison::Differs => "differs",
                Comparison::Missing => "missing",
            },
            railway: c.railway,
            store: c.store,
        })
        .collect();
    let report = DriftReport {
        version: JSON_VERSION,
        check: true,
        in_sync: drifted.is_empty(),
        variables,
        railway_newer,
    };
    Drift { drifted, report }
}

/// Whether Railway's `WITHINGS_TOKEN_LAST_REFRESHED` is later than the
/// store's (an unreadable or missing time is not newer).
fn railway_is_newer(tokens: &TokenSet, current: &std::collections::BTreeMap<String, String>) -> bool {
    let railway = current
        .get(TOKEN_KEYS[3])
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    match (railway, tokens.last_refreshed) {
        (Some(railway), Some(stored)) => railway > stored,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// `railway-sync` rotates nothing, so a wrong setting is what it is (exit
/// 3, returned as the error); anything else leaves Railway stale (exit 6).
pub(crate) fn keep_config(e: Error) -> Result<Error> {
    match e {
        Error::Config { .. } => Err(e),
        other => Ok(copies::as_railway_failure(other)),
    }
}
