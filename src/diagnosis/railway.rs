//! `--online`, Railway: can the token read the service's variables (no
//! mutation), and the "one owner of the refresh" question: does Railway
//! hold the store's set, an older one, or a newer one (then something else
//! is refreshing).

use std::collections::BTreeMap;

use super::{fail, ok, unreachable_or_failed, warn, when};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::output::DoctorCheck;
use crate::railway::RailwayTarget;
use crate::railway_copy::drift::{Comparison, compare};
use crate::railway_copy::pull::{PullDecision, decide, railway_set};
use crate::redact::visible;
use crate::settings::Settings;
use crate::tokens::{TOKEN_KEYS, TokenSet};

/// What to do when Railway holds a newer set than the store.
pub(super) const PULL_ACTION: &str = "run `withings-token pull --from railway`, then let one actor own the refresh (docs/railway.md, \"One owner of the refresh\")";

/// With Railway configured: can the token read the service's variables,
/// and who holds the newer set.
pub(super) async fn railway_checks(
    settings: &Settings,
    http: &HttpClient,
    stored: Option<&TokenSet>,
) -> Vec<DoctorCheck> {
    if !settings.railway.is_configured() {
        return Vec::new();
    }
    match read_railway(settings, http).await {
        Ok((target, variables)) => vec![
            ok(
                "railway api",
                format!(
                    "the token reads the variables of service {} in environment {}",
                    visible(&target.service_id),
                    visible(&target.environment_id)
                ),
            ),
            owner_check(stored, &variables),
        ],
        Err(Error::RailwayUpdateFailed { detail }) => vec![fail(
            "railway api",
            format!("Railway refused the read: {detail}"),
            "check RAILWAY_TOKEN (or RAILWAY_API_TOKEN), RAILWAY_PROJECT_ID and RAILWAY_SERVICE_ID",
        )],
        Err(e) => vec![unreachable_or_failed(
            "railway api",
            &e,
            "RAILWAY_API_URL and this host's network",
        )],
    }
}

/// The service and its variables; a read, no mutation.
async fn read_railway(settings: &Settings, http: &HttpClient) -> Result<(RailwayTarget, BTreeMap<String, String>)> {
    let (target, variables) = crate::railway_copy::read_variables(settings, http).await?;
    Ok((target, crate::railway::shown_variables(variables)))
}

/// "One owner": does Railway hold the store's set, an older one
/// or a newer one? Newer means something else refreshes the same chain.
pub(super) fn owner_check(stored: Option<&TokenSet>, variables: &BTreeMap<String, String>) -> DoctorCheck {
    const NAME: &str = "one owner";
    let holds_one = variables.get(TOKEN_KEYS[1]).is_some_and(|v| !v.trim().is_empty());
    let Ok(railway) = holds_one.then(|| railway_set(variables)).transpose() else {
        return warn(
            NAME,
            "Railway's token times are not RFC 3339 times: which set is newer cannot be told",
            "push the store's set with `withings-token railway-sync`, or take Railway's with `withings-token pull --from railway --force` if it is the live one",
        );
    };
    match (stored, railway) {
        (None, None) => ok(NAME, "neither the store nor Railway holds a set yet"),
        (None, Some(railway)) => warn(
            NAME,
            format!(
                "Railway holds a set (last refreshed {}) and the store none",
                when(&railway)
            ),
            PULL_ACTION,
        ),
        (Some(_), None) => warn(
            NAME,
            "the Railway service holds no WITHINGS_REFRESH_TOKEN: it never received the store's set",
            "push it: `withings-token railway-sync`",
        ),
        (Some(stored), Some(railway)) => compare_sets(stored, &railway, variables),
    }
}

fn compare_sets(stored: &TokenSet, railway: &TokenSet, variables: &BTreeMap<String, String>) -> DoctorCheck {
    const NAME: &str = "one owner";
    let differing: Vec<&str> = compare(stored, variables)
        .iter()
        .filter(|c| c.comparison != Comparison::Same)
        .map(|c| c.name)
        .collect();
    let (ours, theirs) = (when(stored), when(railway));
    if differing.is_empty() {
        return ok(NAME, format!("Railway holds the store's set (last refreshed {ours})"));
    }
    if decide(Some(stored), railway, false) == PullDecision::Import {
        return warn(
            NAME,
            format!(
                "Railway holds a newer set (last refreshed {theirs}) than the store ({ours}): someone else is refreshing"
            ),
            PULL_ACTION,
        );
    }
    if decide(Some(railway), stored, false) == PullDecision::Import {
        return warn(
            NAME,
            format!(
                "Railway holds an older set (last refreshed {theirs}) than the store ({ours}): a service there still uses the old pair"
            ),
            "push the store's set: `withings-token railway-sync` (with `--trigger-deployment` if the service reads its variables only when it starts)",
        );
    }
    warn(
        NAME,
        format!(
            "Railway's {} differ from the store's, with the same refresh time",
            differing.join(", ")
        ),
        "`withings-token railway-sync --check` shows both sides (masked); then `withings-token railway-sync`, or `withings-token pull --from railway --force` if Railway's set is the live one",
    )
}
