//! The accounts `serve` serves: every account of the deployment, each with
//! its own settings, store, view, single flight and memory of failures, so
//! that a refresh of one never waits for another's and one account's
//! failure is never another's answer. What all share (the HTTP and Withings
//! clients, the upstream budget, the metrics) stays in `AppState`, once.
//!
//! The accounts are listed from the store (`accounts::names`) at start, at
//! each tick of the background refresh, and when a request names one the
//! map does not hold (at most once a second); each listing replaces the
//! map, keeping the `Account` of every name still listed. A request finds
//! its account with one lookup in the map, never a listing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;

use crate::accounts::AccountName;
use crate::copies::Choices;
use crate::error::Result;
use crate::locked;
use crate::output::ErrorBody;
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::tokens::rfc3339;

use super::errors::ApiError;
use super::failures::Failures;
use super::view::StoreView;

/// A request naming an account the map lacks lists the store again at most
/// this often: a stranger's guesses cost one listing a second, not one each.
const LIST_FOR_A_MISS_EVERY: Duration = Duration::from_secs(1);

/// One account as `serve` keeps it.
pub struct Account {
    pub name: AccountName,
    /// The deployment's settings narrowed to this account.
    pub settings: Settings,
    pub store: Arc<dyn TokenStore>,
    /// `store.location()`, said in every status report.
    pub location: String,
    /// The store as the read-only endpoints see it (see `view`).
    pub view: StoreView,
    /// Refresh failures, shared with every caller they concern.
    pub failures: Failures,
    /// One store transaction at a time for this account in this process.
    pub flight: Arc<tokio::sync::Mutex<()>>,
}

impl Account {
    fn open(base: &Settings, name: &AccountName, check_interval: Duration) -> Result<Account> {
        let settings = base.for_account(name)?;
        // A half-configured Railway would fail every refresh: say so now.
        crate::copies::targets(&settings, Choices::default())?;
        let store = crate::store::open(&settings)?;
        Ok(Account {
            name: name.clone(),
            location: store.location(),
            view: StoreView::new(Arc::clone(&store)),
            failures: Failures::new(check_interval, said_of(name)),
            flight: Arc::new(tokio::sync::Mutex::new(())),
            store,
            settings,
        })
    }

    /// What log lines about this account start with: nothing for
    /// `default`, whose lines read as before accounts existed.
    pub fn said(&self) -> String {
        said_of(&self.name)
    }
}

/// The account, without its seed when that is another account's token
/// (`consent::vet_seed`): the broker would hand out another person's
/// access token under this name. Said once, as the account is listed.
async fn without_anothers_seed(mut account: Account) -> Account {
    if account.settings.seed_tokens.is_none() {
        return account;
    }
    if let Err(e) = crate::consent::vet_seed(&account.settings).await {
        tracing::error!(
            "{}the seed tokens are not used: {e} [{}]; {}",
            account.said(),
            e.code(),
            e.action()
        );
        account.settings.seed_tokens = None;
    }
    account
}

/// What log lines about the account `name` start with (see [`Account::said`]).
pub fn said_of(name: &AccountName) -> String {
    if name.is_default() {
        String::new()
    } else {
        format!("account {name}: ")
    }
}

pub type Map = BTreeMap<AccountName, Arc<Account>>;

pub struct Accounts {
    /// The deployment's settings (`store` is the `default` account's).
    base: Settings,
    check_interval: Duration,
    map: RwLock<Arc<Map>>,
    /// One listing at a time.
    listing: tokio::sync::Mutex<()>,
    /// When a request that missed last listed the store.
    listed_for_a_miss: Mutex<Option<Instant>>,
    /// Accounts whose settings failed, said once each.
    said_broken: Mutex<BTreeSet<AccountName>>,
}

impl Accounts {
    pub fn new(base: Settings, check_interval: Duration) -> Accounts {
        Accounts {
            base,
            check_interval,
            map: RwLock::new(Arc::new(Map::new())),
            listing: tokio::sync::Mutex::new(()),
            listed_for_a_miss: Mutex::new(None),
            said_broken: Mutex::new(BTreeSet::new()),
        }
    }

    /// The accounts as last listed.
    pub fn all(&self) -> Arc<Map> {
        Arc::clone(&self.map.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Lists the store's accounts (`default` alone while there is none)
    /// and makes them the map. `strict` (at start): an account whose
    /// settings fail fails the whole; later it is left out and said once.
    pub async fn list(&self, strict: bool) -> Result<Arc<Map>> {
        let _one = self.listing.lock().await;
        let mut names = crate::accounts::names(&self.base).await?;
        if names.is_empty() {
            names.push(AccountName::default_account());
        }
        let current = self.all();
        let mut next = Map::new();
        for name in names {
            let account = match current.get(&name) {
                Some(kept) => Arc::clone(kept),
                None => match Account::open(&self.base, &name, self.check_interval) {
                    Ok(opened) => Arc::new(without_anothers_seed(opened).await),
                    Err(e) if strict => return Err(e),
                    Err(e) => {
                        if locked(&self.said_broken).insert(name.clone()) {
                            tracing::error!("account {name} is not served: {e} [{}]; {}", e.code(), e.action());
                        }
                        continue;
                    }
                },
            };
            next.insert(name, account);
        }
        let next = Arc::new(next);
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&next);
        Ok(next)
    }

    /// The account `requested` names; none named: the only one `visible`
    /// lets the caller see. Several and none named is a 400 listing them
    /// (those visible only); a name the store does not hold, a 404.
    pub async fn find(
        &self,
        requested: Option<&str>,
        visible: &(dyn Fn(&AccountName) -> bool + Sync),
    ) -> std::result::Result<Arc<Account>, ApiError> {
        let Some(text) = requested else {
            return self.only(visible);
        };
        let name = AccountName::parse(text).map_err(|e| ApiError::bad_request(format!("account: {e}")))?;
        if let Some(account) = self.all().get(&name) {
            return Ok(Arc::clone(account));
        }
        let map = self.list_for_a_miss().await;
        map.get(&name)
            .cloned()
            .ok_or_else(|| no_such_account(&name, &listed(&map, visible)))
    }

    /// [`Accounts::find`], or the account `requested` names created when
    /// the store does not hold it yet (consent gives it its first set).
    pub async fn find_or_create(&self, requested: Option<&str>) -> std::result::Result<Arc<Account>, ApiError> {
        let Some(text) = requested else {
            return self.only(&|_| true);
        };
        match self.find(Some(text), &|_| true).await {
            Err(ApiError::Refused {
                status: StatusCode::NOT_FOUND,
                ..
            }) => {}
            found => return found,
        }
        let name = AccountName::parse(text).map_err(|e| ApiError::bad_request(format!("account: {e}")))?;
        let _one = self.listing.lock().await;
        let mut map = (*self.all()).clone();
        if let Some(account) = map.get(&name) {
            return Ok(Arc::clone(account));
        }
        let account = Arc::new(Account::open(&self.base, &name, self.check_interval)?);
        map.insert(name, Arc::clone(&account));
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
        Ok(account)
    }

    fn only(&self, visible: &dyn Fn(&AccountName) -> bool) -> std::result::Result<Arc<Account>, ApiError> {
        let map = self.all();
        // The only account there is, or the only one this caller may see
        // (a reader scoped to one person's account needs no `?account=`).
        let mut seen = map.iter().filter(|(name, _)| map.len() == 1 || visible(name));
        if let (Some((_, only)), None) = (seen.next(), seen.next()) {
            return Ok(Arc::clone(only));
        }
        Err(several_accounts(&listed(&map, visible)))
    }

    async fn list_for_a_miss(&self) -> Arc<Map> {
        {
            let mut last = locked(&self.listed_for_a_miss);
            if last.is_some_and(|at| at.elapsed() < LIST_FOR_A_MISS_EVERY) {
                return self.all();
            }
            *last = Some(Instant::now());
        }
        match self.list(false).await {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!("cannot list the accounts [{}]: {e}", e.code());
                self.all()
            }
        }
    }
}

fn listed(map: &Map, visible: &dyn Fn(&AccountName) -> bool) -> Vec<String> {
    in_order(map)
        .filter(|a| visible(&a.name))
        .map(|a| a.name.to_string())
        .collect()
}

/// The accounts as the CLI lists them: `default` first, then by name.
pub fn in_order(map: &Map) -> impl Iterator<Item = &Arc<Account>> {
    let default = map.values().filter(|a| a.name.is_default());
    default.chain(map.values().filter(|a| !a.name.is_default()))
}

fn no_such_account(name: &AccountName, listed: &[String]) -> ApiError {
    ApiError::Refused {
        status: StatusCode::NOT_FOUND,
        code: "NOT_FOUND",
        message: format!("there is no account {name} on this server (accounts: {})", or_none(listed)),
        action: "name one of the accounts (GET /admin/accounts lists them), or create it: POST /admin/token/exchange?account=NAME".into(),
    }
}

fn several_accounts(listed: &[String]) -> ApiError {
    ApiError::Refused {
        status: StatusCode::BAD_REQUEST,
        code: "BAD_REQUEST",
        message: format!(
            "this server keeps several accounts ({}) and none was named; nothing was sent",
            or_none(listed)
        ),
        action: "name one with `?account=NAME` (`--account NAME` with --server)".into(),
    }
}

/// The most names an error lists: a fleet's would fill pages.
const MAX_LISTED: usize = 20;

fn or_none(listed: &[String]) -> String {
    match listed.len() {
        0 => "none you may read".to_owned(),
        n if n > MAX_LISTED => format!("{}, and {} more", listed[..MAX_LISTED].join(", "), n - MAX_LISTED),
        _ => listed.join(", "),
    }
}

/// `GET /admin/accounts`: every account and the state of its set.
#[derive(Serialize)]
pub struct AccountsReport {
    pub version: u32,
    pub accounts: Vec<AccountRow>,
}

#[derive(Serialize)]
pub struct AccountRow {
    pub name: String,
    pub store: String,
    pub authorised: bool,
    pub userid: Option<String>,
    pub expires_at: Option<String>,
    pub last_refreshed: Option<String>,
    pub generation: Option<u64>,
    /// Withings refused the refresh token: only new consent helps (from
    /// the account's event record).
    pub needs_reauthorization: bool,
    /// Since when (RFC 3339), or null.
    pub needs_reauthorization_since: Option<String>,
    /// Set when its store (or its event record) cannot be read.
    pub error: Option<ErrorBody>,
}

impl AccountRow {
    pub async fn of(account: &Account) -> AccountRow {
        let mut row = AccountRow {
            name: account.name.to_string(),
            store: account.location.clone(),
            authorised: false,
            userid: None,
            expires_at: None,
            last_refreshed: None,
            generation: None,
            needs_reauthorization: false,
            needs_reauthorization_since: None,
            error: None,
        };
        let mut generation = 0;
        match account.view.snapshot(&account.settings).await {
            Ok(snapshot) => {
                generation = snapshot.state.tokens_generation;
                let tokens = snapshot.state.tokens.as_ref();
                row.authorised = tokens.is_some();
                row.userid = tokens.and_then(|t| t.userid.clone());
                row.expires_at = tokens.and_then(|t| t.expires_at).map(rfc3339);
                row.last_refreshed = tokens.and_then(|t| t.last_refreshed).map(rfc3339);
                row.generation = Some(snapshot.state.generation);
            }
            Err(e) => row.error = Some(ErrorBody::of(&e)),
        }
        match account.view.event_record().await {
            Ok(events) => {
                let alert = crate::report::alert_of(&events.health, generation);
                row.needs_reauthorization = alert.state == crate::output::AlertState::NeedsReauthorization;
                row.needs_reauthorization_since = alert.since.filter(|_| row.needs_reauthorization);
            }
            Err(e) => row.error = row.error.take().or_else(|| Some(ErrorBody::of(&e))),
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_in(dir: &std::path::Path) -> Settings {
        let store = dir.join("tokens.json").display().to_string();
        let global = crate::cli::overrides(&["--no-env-file", "--store", &store]);
        Settings::resolve(&global, None, &|_: &str| None).unwrap()
    }

    #[tokio::test]
    async fn an_account_is_found_by_name_or_as_the_only_one() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(settings_in(dir.path()), Duration::from_secs(60));
        let map = accounts.list(true).await.unwrap();
        assert_eq!(map.keys().map(|n| n.as_str()).collect::<Vec<_>>(), ["default"]);
        let only = accounts.find(None, &|_| true).await.unwrap();
        assert_eq!(only.name.as_str(), "default");
        let named_dir = dir.path().join("tokens.accounts");
        std::fs::create_dir_all(&named_dir).unwrap();
        std::fs::write(named_dir.join("bob.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("tokens.json"), b"{}").unwrap();
        accounts.list(true).await.unwrap();
        let several = accounts.find(None, &|_| true).await.err().unwrap();
        let ApiError::Refused { status, message, .. } = several else {
            panic!()
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("(default, bob)"), "{message}");
        // A caller who sees one of them gets that one.
        let seen = accounts.find(None, &|n| n.as_str() == "bob").await.ok().unwrap();
        assert_eq!(seen.name.as_str(), "bob");
        // One who sees none of them is told of none.
        let Err(ApiError::Refused { message, .. }) = accounts.find(None, &|_| false).await else {
            panic!()
        };
        assert!(!message.contains("bob") && !message.contains("default"), "{message}");
        assert_eq!(
            accounts.find(Some("bob"), &|_| true).await.unwrap().name.as_str(),
            "bob"
        );
        let missing = accounts.find(Some("carol"), &|_| true).await.err().unwrap();
        assert!(matches!(
            missing,
            ApiError::Refused {
                status: StatusCode::NOT_FOUND,
                ..
            }
        ));
        let bad = accounts.find(Some("../x"), &|_| true).await.err().unwrap();
        assert!(matches!(
            bad,
            ApiError::Rejected {
                status: StatusCode::BAD_REQUEST,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn an_account_named_for_consent_is_created_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(settings_in(dir.path()), Duration::from_secs(60));
        accounts.list(true).await.unwrap();
        let carol = accounts.find_or_create(Some("carol")).await.unwrap();
        assert_eq!(carol.name.as_str(), "carol");
        let again = accounts.find(Some("carol"), &|_| true).await.unwrap();
        assert!(Arc::ptr_eq(&carol, &again));
    }
}
