//! The Railway service's copy of the set read back, the work `pull`,
//! `railway-sync` and `doctor --online` share: its four variables compared
//! with the stored set (`drift`), and taken into the store when newer
//! (`pull`). The Railway client (`railway`) does the talking; nothing here
//! sends a mutation to Railway or anything to Withings.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::http::HttpClient;
use crate::railway::{RailwayClient, RailwayTarget};
use crate::settings::Settings;

pub(crate) mod drift;
pub(crate) mod pull;

/// The Railway service's variables, as Railway holds them, and the service
/// they were read from. Each caller says its own failure its own way.
pub(crate) async fn read_variables(
    settings: &Settings,
    http: &HttpClient,
) -> Result<(RailwayTarget, BTreeMap<String, String>)> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let target = client.resolve_target(&settings.railway).await?;
    let variables = client.variables(&target).await?;
    Ok((target, crate::tokens::unprefixed(variables, &settings.variable_prefix)))
}

#[cfg(test)]
mod tests;
