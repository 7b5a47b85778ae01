//! The dead-man ping (healthchecks.io's convention): `URL/start` when a run
//! starts, `URL` when it succeeds, `URL/fail` with the report when it
//! fails. Best effort, never queued: a late ping means nothing.
//! TO BE WRITTEN (helper A).

use std::time::Instant;

use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingStage {
    Start,
    Success,
    Fail,
}

/// Pings every `ping_url` for `stage` with `body`, until `deadline`.
pub async fn ping(_settings: &Settings, _stage: PingStage, _body: &str, _deadline: Instant) {}
