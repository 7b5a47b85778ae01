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
        Human::Table {
            header: vec!["variable", "Railway now", "stored", "status"],
            rows: self
                .variables
                .iter()
                .map(|v| {
                    vec![
                        v.name.to_owned(),
                        v.current.clone().unwrap_or_else(|| "-".into()),
                        v.new.clone(),
                        v.status.to_owned(),
                    ]
                })
                .collect(),
        }
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
        Human::Table {
            header: vec!["variable", "Railway", "stored", "status"],
            rows: self
                .variables
                .iter()
                .map(|v| {
                    vec![
                        v.name.to_owned(),
                        v.railway.clone().unwrap_or_else(|| "-".into()),
                        v.store.clone(),
                        v.status.to_owned(),
                    ]
                })
                .collect(),
        }
    }

    fn hidden_by_quiet(&self) -> bool {
        false
    }
}
