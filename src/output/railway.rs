//! The reports of `railway-sync`'s dry run (the diff it would send) and
//! of `--check` (the drift between Railway and the store).

use serde::Serialize;

use super::{Afterword, Human, Report};
use crate::settings::OutputFormat;

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

/// A dry run's answer is the diff, so `--quiet` keeps it.
impl Report for RailwayDiffReport {
    fn human(&self) -> Human {
        let rows = self
            .variables
            .iter()
            .map(|v| (v.name, v.current.as_deref(), v.new.as_str(), v.status));
        variable_table("Railway now", rows)
    }

    fn hidden_by_quiet(&self) -> bool {
        false
    }

    fn afterword(&self, format: OutputFormat) -> Option<Afterword<'_>> {
        (format != OutputFormat::Json).then_some(Afterword::Note("dry run: no mutation was sent to Railway".into()))
    }
}

/// The check's answer is the comparison, so `--quiet` keeps it; drift is
/// also said on stderr (exit 8) by the caller.
impl Report for DriftReport {
    fn human(&self) -> Human {
        let rows = self
            .variables
            .iter()
            .map(|v| (v.name, v.railway.as_deref(), v.store.as_str(), v.status));
        variable_table("Railway", rows)
    }

    fn hidden_by_quiet(&self) -> bool {
        false
    }
}

/// One row per variable: its name, Railway's value (`-` when it has none),
/// the store's and their status.
fn variable_table<'a>(
    railway: &'static str,
    rows: impl Iterator<Item = (&'a str, Option<&'a str>, &'a str, &'a str)>,
) -> Human {
    Human::Table {
        header: vec!["variable", railway, "stored", "status"],
        rows: rows
            .map(|(name, on_railway, stored, status)| {
                vec![
                    name.to_owned(),
                    on_railway.unwrap_or("-").to_owned(),
                    stored.to_owned(),
                    status.to_owned(),
                ]
            })
            .collect(),
    }
}
