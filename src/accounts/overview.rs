//! Every account of a deployment at once: what `accounts`, `status` with
//! several accounts and `serve`'s `GET /admin/accounts` show. A file store
//! is read without a runtime (one directory listing, one read per account);
//! Redis on the caller's runtime.

use chrono::{DateTime, Utc};

use super::AccountName;
use crate::error::Result;
use crate::events::EventRecord;
use crate::output::StatusReport;
use crate::settings::Settings;
use crate::store::{StoreState, TokenStore};

/// One account as its store holds it now.
pub struct AccountRow {
    pub name: AccountName,
    /// What `status --account NAME` reports of it, or why its store could
    /// not be read (one unreadable store does not hide the others).
    pub status: Result<StatusReport>,
}

impl AccountRow {
    /// How long ago the refresh token in use was issued, when known: the
    /// age Withings' one-year limit counts.
    pub fn refresh_token_age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        let status = self.status.as_ref().ok()?;
        let last = status.tokens.as_ref()?.last_refreshed?;
        Some(now.signed_duration_since(last))
    }
}

/// Every account of the deployment `settings` name, `default` first, read
/// without a runtime; `None` for a Redis store (see [`overview`]).
pub fn overview_local(settings: &Settings) -> Option<Result<Vec<AccountRow>>> {
    let names = match super::names_local(settings)? {
        Ok(names) => names,
        Err(e) => return Some(Err(e)),
    };
    let rows = names
        .into_iter()
        .map(|name| {
            let status = read_status(settings, &name);
            AccountRow { name, status }
        })
        .collect();
    Some(Ok(rows))
}

/// Every account of the deployment `settings` name, `default` first, from
/// any store (a file is read as [`overview_local`] does).
pub async fn overview(settings: &Settings) -> Result<Vec<AccountRow>> {
    if let Some(rows) = overview_local(settings) {
        return rows;
    }
    let mut rows = Vec::new();
    for name in super::names(settings).await? {
        let status = match open_account(settings, &name) {
            Ok((account, store)) => match store.load().await {
                Ok(state) => {
                    let record = crate::report::event_record(store.as_ref()).await;
                    status_of(&account, store.as_ref(), &state, &record)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        rows.push(AccountRow { name, status });
    }
    Ok(rows)
}

/// `name`'s status, its file store and event record read without a
/// runtime (a store not written yet: an empty state).
fn read_status(settings: &Settings, name: &AccountName) -> Result<StatusReport> {
    let (account, store) = open_account(settings, name)?;
    let state = store.load_local().transpose()?.unwrap_or_default();
    let record = crate::report::event_record_local(store.as_ref()).unwrap_or_default();
    status_of(&account, store.as_ref(), &state, &record)
}

fn open_account(settings: &Settings, name: &AccountName) -> Result<(Settings, std::sync::Arc<dyn TokenStore>)> {
    let account = settings.for_account(name)?;
    let store = crate::store::open(&account)?;
    Ok((account, store))
}

/// `status`'s report of one account, with its alert state; a store that
/// lost its set is the error `status` gives for it.
fn status_of(
    account: &Settings,
    store: &dyn TokenStore,
    state: &StoreState,
    record: &EventRecord,
) -> Result<StatusReport> {
    let report = crate::report::status_report(state, account, store.location());
    let report = crate::report::with_events(report, record);
    if !report.token_configured && state.lost.is_some() {
        return Err(crate::rotation::no_tokens_error_for(state));
    }
    Ok(report)
}
