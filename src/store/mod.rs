//! The token store: where the one token set lives, behind one trait.
//!
//! [`TokenStore`] has two homes: [`FileStore`] (a JSON file under a file
//! lock, for one host) and [`RedisStore`] (the same JSON under one Redis key,
//! with a fenced lease, for many hosts). Commands and `serve` see only the
//! trait: the refresh transaction (lock, reload, assess, call, save) is
//! written once, in `rotation.rs`, over [`StoreLease`]; the copies of the
//! saved set are delivered after it by `report.rs` through `copies.rs`.
//!
//! Both keep the same state: a `generation` that grows by one on every save
//! (a save that does not start from the current generation is refused), the
//! token set, the previous refresh token, the pending consent state, the
//! generation each copy (env file, Railway) last received, and the Railway
//! environment ids found by name.

mod file;
mod opened;
mod redis;
mod rescue;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use zeroize::Zeroizing;

use crate::account_name::AccountName;
use crate::error::Result;
use crate::sealing::Keyring;
use crate::settings::{Settings, StoreLocation};
use crate::tokens::TokenSet;

pub use file::FileStore;
pub use redis::RedisStore;

/// The newest store format this binary reads (and writes, sealed); it
/// reads every older one.
pub const STORE_VERSION: u32 = 2;
/// The format of a plain store: still 1, so that older binaries read it.
const PLAIN_STORE_VERSION: u32 = 1;
/// A sealed store (see `sealing`) is 2, so that a binary that cannot open
/// it says it is too old instead of finding no set.
const SEALED_STORE_VERSION: u32 = 2;
/// A store is a few hundred bytes; anything this large is not one.
pub(crate) const MAX_STORE_BYTES: u64 = 1024 * 1024;

/// Where the token set lives. Reads need no lease: every save replaces
/// the whole set at once, so a reader sees one whole generation.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Where it is, for messages and reports (a path, or a Redis URL
    /// without its password, and the key).
    fn location(&self) -> String;

    /// The state as it is now. An empty store is generation 0.
    async fn load(&self) -> Result<StoreState>;

    /// The same, read without an async runtime, when the store is local
    /// (a file): offline commands then start none. `None` for Redis.
    fn load_local(&self) -> Option<Result<StoreState>> {
        None
    }

    /// What the store says of its state without reading it, far cheaper
    /// than [`TokenStore::load`] (a file: one `stat`). When two calls, or a
    /// [`TokenStore::load_stamped`] and a later call, give equal stamps, the
    /// state did not change in between, so a copy read with the first is
    /// still the state. `None` when the store cannot tell, and must be
    /// loaded: always for Redis; for a file that cannot be looked at, or
    /// that changed too recently for its times to tell a second change from
    /// the first (see `FileStore`).
    fn stamp(&self) -> Option<StoreStamp> {
        None
    }

    /// [`TokenStore::load`], and the stamp of the state it read (`None` as
    /// for [`TokenStore::stamp`]).
    async fn load_stamped(&self) -> Result<(StoreState, Option<StoreStamp>)> {
        Ok((self.load().await?, None))
    }

    /// Takes the exclusive lock (file) or lease (Redis), waiting at most
    /// `timeout`; nothing may be sent to Withings without one.
    async fn lock(&self, timeout: Duration) -> Result<Box<dyn StoreLease>>;

    /// Where a set a run could not save waits to be adopted (see
    /// `rescue`), if one does: one `stat`, so that a run finding its set
    /// not due still takes the lock and adopts it, and `status` says so.
    fn waiting_rescue(&self) -> Option<String> {
        None
    }

    /// The upstream budget every host of this store shares (see `budget`);
    /// `None` for a store no other host shares (a file), where the
    /// process's own bucket is the budget.
    fn shared_budget(&self) -> Option<Arc<dyn crate::budget::SharedBudget>> {
        None
    }

    /// What the store's own configuration says of keeping what it is given
    /// (`doctor` checks it, `serve` warns at start); `None` when there is
    /// nothing to ask (a file).
    async fn durability(&self) -> Option<Durability> {
        None
    }

    /// The account's event record (`events`: its alert state and outbox),
    /// as stored beside the set; `None` when there is none yet.
    async fn load_events(&self) -> Result<Option<Vec<u8>>>;

    /// [`TokenStore::load_events`] without a runtime (a file); `None` for
    /// Redis.
    fn load_events_local(&self) -> Option<Result<Option<Vec<u8>>>> {
        None
    }

    /// Replaces the event record with `next` if it still is `expected`
    /// (compare-and-set, so two runs never lose each other's events);
    /// `false` when another run changed it first. Never touches the set.
    async fn swap_events(&self, expected: Option<&[u8]>, next: &[u8]) -> Result<bool>;
}

/// The largest event record read (an outbox of 100 events is ~100 kB).
pub(crate) const MAX_EVENTS_BYTES: u64 = 4 * 1024 * 1024;

/// Whether a store keeps a set once saved: its settings in a few words,
/// and what in them can lose the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    pub summary: String,
    pub problems: Vec<DurabilityProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityProblem {
    /// The set can be lost outright (an eviction, a restart), not merely
    /// its last rotations.
    pub fatal: bool,
    pub detail: String,
    pub action: String,
}

impl Durability {
    /// Redis' `maxmemory-policy`, `appendonly`, `appendfsync` and `save`.
    pub fn of_redis(policy: &str, appendonly: &str, appendfsync: &str, save: &str) -> Durability {
        let mut problems = Vec::new();
        let mut problem = |fatal, detail: String, action: &str| {
            problems.push(DurabilityProblem {
                fatal,
                detail,
                action: action.to_owned(),
            })
        };
        // volatile-* evict only keys with a time to live: the set has none.
        if policy.starts_with("allkeys-") {
            problem(
                true,
                format!(
                    "maxmemory-policy is {policy}: under memory pressure Redis may evict the store's key, and the set with it"
                ),
                "`redis-cli CONFIG SET maxmemory-policy noeviction` (and the same in redis.conf), or a volatile-* policy: the store's key never expires",
            );
        }
        match (appendonly, save.trim()) {
            ("no", "") => problem(
                true,
                "Redis persists nothing (appendonly no, no save points): a restart loses the set".to_owned(),
                "`redis-cli CONFIG SET appendonly yes` (and the same in redis.conf)",
            ),
            ("no", points) => problem(
                false,
                format!("only snapshots (save {points}): a restart loses every rotation since the last one, and a rotated-away token cannot be brought back"),
                "`redis-cli CONFIG SET appendonly yes` (and the same in redis.conf)",
            ),
            _ if appendfsync == "no" => problem(
                false,
                "appendfsync no: the system decides when the log reaches the disk, and a power cut may lose the last rotations".to_owned(),
                "`redis-cli CONFIG SET appendfsync everysec` (or always), and the same in redis.conf",
            ),
            _ => {}
        }
        Durability {
            summary: format!("maxmemory-policy {policy}, appendonly {appendonly}, appendfsync {appendfsync}"),
            problems,
        }
    }

    /// Redis would not say (CONFIG refused: a managed service, an ACL).
    pub fn unknown(why: &str) -> Durability {
        Durability {
            summary: "unknown".to_owned(),
            problems: vec![DurabilityProblem {
                fatal: false,
                detail: format!("Redis' eviction and persistence settings could not be read ({why})"),
                action: "check them by hand: maxmemory-policy noeviction (or volatile-*), appendonly yes".to_owned(),
            }],
        }
    }
}

/// A store's word that its state has not changed (see [`TokenStore::stamp`]):
/// only its equality means anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStamp(Stamped);

#[cfg(test)]
impl StoreStamp {
    /// A test store's stamp: equal numbers, equal stamps.
    pub(crate) fn numbered(n: u64) -> StoreStamp {
        StoreStamp(Stamped::File {
            dev: 0,
            ino: n,
            size: 0,
            modified: (0, 0),
            changed: (0, 0),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamped {
    /// No store file: the empty state.
    Absent,
    /// A store file: which file (a replacement by rename is another inode),
    /// its size, and its modification and change times to the nanosecond
    /// (any write, `touch` or `chmod` moves the change time).
    File {
        dev: u64,
        ino: u64,
        size: u64,
        modified: (i64, i64),
        changed: (i64, i64),
    },
}

/// The right to change the store, held from the reload to the last save.
/// Dropping it releases it; [`StoreLease::release`] does so at once.
#[async_trait]
pub trait StoreLease: Send + Sync {
    async fn load(&self) -> Result<StoreState>;

    /// Saves `next` as generation `base_generation + 1`; refused unless the
    /// store is still at `base_generation` (and, for Redis, unless this
    /// lease is still the newest: fencing). Returns the new generation.
    async fn save(&self, base_generation: u64, next: &StoreState) -> Result<u64>;

    /// Whether a save of a set onto `loaded` (the state read under this
    /// lease) is allowed by the store's keyring (see `sealing`): checked
    /// before a request, so that nothing is sent whose answer could not be
    /// written.
    fn check_write(&self, loaded: &StoreState) -> Result<()>;

    /// Marks a Withings request as in flight, before it is sent; fails
    /// (with nothing sent) when the save could not follow.
    async fn begin_request(&self, generation: u64, grant: &str) -> Result<()>;

    /// Ends the in-flight mark, after the answer was handled either way.
    async fn end_request(&self);

    /// A mark left by a process that died mid-request, if any.
    async fn interrupted_request(&self) -> Option<InFlight>;

    /// Keeps `next`, a set Withings issued that `save` could not write, in
    /// the rescue file whose space and descriptors `begin_request` took,
    /// for the next run to adopt (see `rescue`); returns where it is.
    async fn rescue(&self, base_generation: u64, next: &StoreState) -> Result<String>;

    /// A set a previous run could not save, waiting to be adopted: the
    /// store generation it should have been, with its set.
    async fn rescued(&self) -> Option<Result<StoreState>>;

    /// Removes the rescued set, once adopted or superseded.
    async fn drop_rescue(&self);

    /// Whether the lease is known to be lost (its renewal found another
    /// owner): nothing more may be sent. A file lock is never lost.
    fn lost(&self) -> bool {
        false
    }

    /// Releases the lock or lease now.
    async fn release(self: Box<Self>);
}

/// The store the settings name: a file path or a `redis://` URL.
pub fn open(settings: &Settings) -> Result<Arc<dyn TokenStore>> {
    Ok(match &settings.store {
        StoreLocation::File(path) => Arc::new(
            FileStore::new(path.clone())
                .for_client(settings.client_id.clone())
                .sealed_with(settings.keyring()),
        ),
        StoreLocation::Redis { url, key, rescue_dir } => {
            let mut store = RedisStore::new(url, key.clone(), settings.lease_ttl)?
                .for_client(settings.client_id.clone())
                .sealed_with(settings.keyring())
                .with_rescue_in(rescue_dir.as_deref());
            if let (StoreLocation::Redis { key: base, .. }, Some(account)) =
                (&settings.deployment_store, &settings.account)
            {
                store = store.listed_in(crate::account_name::redis_index_key(base), account.to_string());
            }
            Arc::new(store)
        }
    })
}

/// Moves the store of the account `from` names to the place of the one
/// `to` names (a file store: `accounts rename`), under both locks, refused
/// when `to`'s exists. A Redis store is refused: a lease, a fence and a
/// journal move with a key, and that is not done by halves.
pub fn move_account(from: &Settings, to: &Settings) -> Result<String> {
    match (&from.store, &to.store) {
        (StoreLocation::File(old), StoreLocation::File(new)) => {
            FileStore::refuse_links(old, !from.account_name().is_default())?;
            FileStore::refuse_links(new, !to.account_name().is_default())?;
            let target = FileStore::new(new.clone()).sealed_with(to.keyring());
            FileStore::new(old.clone())
                .sealed_with(from.keyring())
                .move_to(&target, from.lock_timeout)?;
            Ok(target.path().display().to_string())
        }
        _ => Err(crate::error::Error::config(
            "`accounts rename` is not available with a Redis store; nothing was changed",
            format!(
                "authorise the new name instead (`withings-token login --account {}`), then `withings-token accounts remove {} --yes`",
                to.account_name(),
                from.account_name()
            ),
        )),
    }
}

/// Removes the store of the account `settings` names (`accounts remove`),
/// under its lock (file) or lease (Redis); a Redis account also leaves the
/// deployment's index. Returns where it was.
pub async fn remove_account(settings: &Settings) -> Result<String> {
    // A set this process could not save for the account is its too: a
    // later account of the name (another person, perhaps) must not adopt it.
    crate::rotation::forget_unsaved(&open(settings)?.location());
    match &settings.store {
        StoreLocation::File(path) => {
            FileStore::refuse_links(path, !settings.account_name().is_default())?;
            let store = FileStore::new(path.clone()).sealed_with(settings.keyring());
            store.remove_whole(settings.lock_timeout)?;
            Ok(store.path().display().to_string())
        }
        StoreLocation::Redis { url, key, rescue_dir } => {
            // With its rescue file on this host, named as `open` names it,
            // which goes with the keys.
            let store = RedisStore::new(url, key.clone(), settings.lease_ttl)?
                .sealed_with(settings.keyring())
                .with_rescue_in(rescue_dir.as_deref());
            let lease = store.lock(settings.lock_timeout).await?;
            let index = match &settings.deployment_store {
                StoreLocation::Redis { key: base, .. } => crate::account_name::redis_index_key(base),
                StoreLocation::File(_) => crate::account_name::redis_index_key(key),
            };
            let removed = store.remove_account(&index, settings.account_name().as_str()).await;
            if removed.is_ok() {
                lease.drop_rescue().await;
            }
            lease.release().await;
            removed?;
            Ok(store.location())
        }
    }
}

/// The accounts a Redis deployment keeps: those its index lists, and
/// `default` when its key holds a set (or once did), sorted, `default` first.
pub async fn redis_account_names(settings: &Settings) -> Result<Vec<AccountName>> {
    let StoreLocation::Redis { url, key, .. } = &settings.deployment_store else {
        return Ok(Vec::new());
    };
    let base = RedisStore::new(url, key.clone(), settings.lease_ttl)?;
    let (listed, default_present) = base.listed_accounts(&crate::account_name::redis_index_key(key)).await?;
    let mut named: Vec<AccountName> = listed
        .iter()
        .filter_map(|n| AccountName::parse(n).ok())
        .filter(|n| !n.is_default())
        .collect();
    named.sort();
    named.dedup();
    let default = (default_present || listed.iter().any(|n| n == crate::account_name::DEFAULT_ACCOUNT))
        .then(AccountName::default_account);
    Ok(default.into_iter().chain(named).collect())
}

/// What the store holds, with secrets wrapped.
#[derive(Debug, Clone, Default)]
pub struct StoreState {
    pub generation: u64,
    pub tokens: Option<TokenSet>,
    pub previous: Option<PreviousToken>,
    pub pending_auth: Option<PendingAuth>,
    /// The token-set generation (`tokens_generation`) each copy of the set
    /// last received, keyed by a name the caller chooses
    /// (`env_file:/abs/path/.env`, `railway:<service id>`).
    pub copies: BTreeMap<String, u64>,
    /// The store generation at which the current token set was saved (0
    /// when there is none). A save sets it: to the new generation when the
    /// set changed, else it is carried over; the value passed in is ignored.
    pub tokens_generation: u64,
    /// The Withings app (client id) whose set this is: recorded on the
    /// first save under a client id, and checked on every load (see
    /// [`bind`]).
    pub client_id: Option<String>,
    /// Hosts whose clock was found off Withings' at their last save, by how
    /// much and when (see `clock`).
    pub clock_offsets: BTreeMap<String, crate::clock::Offset>,
    /// Never saved: set on load, naming the store, when the store held a
    /// set once and has lost it (a Redis key evicted or flushed). Such a
    /// store has no set, and that is an error, not "not authorised yet".
    pub lost: Option<String>,
    /// Railway environment ids found by name, keyed as the Railway copy
    /// record is (`railway:<project>/<service>@<name>`), so that a lookup is
    /// made once per change of settings (see `copies::railway_target`).
    pub railway_environments: BTreeMap<String, String>,
    /// Never saved: set on load when the set was stored sealed (see
    /// `sealing`), so that it is never written plain again by mistake.
    pub sealed: bool,
}

impl StoreState {
    /// This state with `from`'s token set and what belongs to it (the
    /// previous refresh token, the clock lags): a set saved onto a store
    /// whose other fields (copy records, consent state) moved on meanwhile.
    pub fn with_set_of(&self, from: &StoreState) -> StoreState {
        StoreState {
            tokens: from.tokens.clone(),
            previous: from.previous.clone(),
            clock_offsets: from.clock_offsets.clone(),
            ..self.clone()
        }
    }
}

/// Whether two states hold the same token set (by its refresh token), or
/// both none.
pub(crate) fn same_set(a: Option<&TokenSet>, b: Option<&TokenSet>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.refresh_token_equals(b),
        (None, None) => true,
        _ => false,
    }
}

/// The refresh token of the generation before this one, kept because
/// Withings honours it for a few hours after rotating it.
#[derive(Debug, Clone)]
pub struct PreviousToken {
    pub refresh_token: SecretString,
    pub rotated_at: DateTime<Utc>,
}

/// The state `auth-url` issued, for `exchange` to check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingAuth {
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// A request that was sent but whose transaction did not end (process died).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InFlight {
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    /// The store generation the request started from. 0 with a store that
    /// holds no set means no set had ever been saved. For a mark that
    /// cannot be read, the store's current generation.
    pub generation: u64,
    pub grant: String,
    /// `RedisStore`: the lease owner that wrote the mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// What a mark that cannot be read says (nothing itself): both stores
/// report one this way, and `rotation` recognises it by [`InFlight::is_unreadable`].
const UNREADABLE_GRANT: &str = "unknown";

impl InFlight {
    /// A mark found but unreadable, at the store's current `generation`.
    pub fn unreadable(generation: u64) -> InFlight {
        InFlight {
            pid: 0,
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            generation,
            grant: UNREADABLE_GRANT.into(),
            owner: None,
        }
    }

    pub fn is_unreadable(&self) -> bool {
        self.pid == 0 && self.grant == UNREADABLE_GRANT
    }
}

// No `deny_unknown_fields`: a binary that predates a field reads the file
// and ignores it, which is why additive fields keep `version: 1`.
#[derive(Serialize, Deserialize)]
struct StoreFileV1 {
    version: u32,
    generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens_generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<StoredTokens>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<StoredPrevious>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_auth: Option<PendingAuth>,
    /// A sealed store: the three fields above, as JSON sealed with age
    /// (its ASCII armour), which are then absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    copies: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    clock_offsets: BTreeMap<String, crate::clock::Offset>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    railway_environments: BTreeMap<String, String>,
    /// `RedisStore` only: the fence of the lease holder that saved this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fence: Option<u64>,
}

/// What a sealed store keeps under its seal.
#[derive(Serialize, Deserialize)]
struct SealedPart {
    #[serde(default)]
    tokens: Option<StoredTokens>,
    #[serde(default)]
    previous: Option<StoredPrevious>,
    #[serde(default)]
    pending_auth: Option<PendingAuth>,
}

#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: Option<String>,
    refresh_token: String,
    expires_at: Option<DateTime<Utc>>,
    last_refreshed: Option<DateTime<Utc>>,
    userid: Option<String>,
    scope: Option<String>,
}

// The tokens' only copies outside their wrappers: wiped when dropped.
impl Drop for StoredTokens {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.refresh_token.zeroize();
        if let Some(access) = self.access_token.as_mut() {
            access.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredPrevious {
    refresh_token: String,
    rotated_at: DateTime<Utc>,
}

impl Drop for StoredPrevious {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.refresh_token.zeroize();
    }
}

/// The generation that holds the token set after a save as `generation`:
/// the new one when the set changed (or appeared), the old one when only
/// other fields changed, 0 when there is no set.
pub(crate) fn tokens_generation_after(on_disk: &StoreState, next: &StoreState, generation: u64) -> u64 {
    match (&on_disk.tokens, &next.tokens) {
        (_, None) => 0,
        (Some(old), Some(new)) if same_pair(old, new) => on_disk.tokens_generation,
        _ => generation,
    }
}

fn same_pair(a: &TokenSet, b: &TokenSet) -> bool {
    let same_access = match (&a.access_token, &b.access_token) {
        (Some(x), Some(y)) => x.expose_secret() == y.expose_secret(),
        (None, None) => true,
        _ => false,
    };
    same_access && a.refresh_token_equals(b)
}

pub(crate) enum ParseFailure {
    Newer(u32),
    Corrupt(String),
    /// Sealed, and not opened: the error says why (no identity, another
    /// key, a damaged seal).
    Sealed(crate::error::Error),
}

/// The store in `bytes`; a sealed one is opened with `keyring`, `place`
/// naming it in errors.
pub(crate) fn parse_store(bytes: &[u8], keyring: &Keyring, place: &str) -> Result<StoreState, ParseFailure> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let version = serde_json::from_slice::<VersionOnly>(bytes)
        .map_err(not_a_store)?
        .version;
    if version > STORE_VERSION {
        return Err(ParseFailure::Newer(version));
    }
    let mut file: StoreFileV1 = serde_json::from_slice(bytes).map_err(not_a_store)?;
    let sealed = file.sealed.take();
    check_sealing_shape(&file, sealed.is_some())?;
    if let Some(sealed) = &sealed {
        let plain = keyring
            .open(sealed.as_bytes(), "token store", place)
            .map_err(ParseFailure::Sealed)?;
        let part: SealedPart = serde_json::from_slice(&plain).map_err(|e| {
            ParseFailure::Corrupt(format!(
                "its encrypted part is not a token set ({})",
                without_quoted_strings(&e.to_string())
            ))
        })?;
        file.tokens = part.tokens;
        file.previous = part.previous;
        file.pending_auth = part.pending_auth;
    }
    refresh_tokens_must_not_be_empty(&file)?;
    // A server may echo a stored token it was never sent (Railway holds the
    // set). The previous refresh token first, so that the slot keeps it and
    // the current one: all a server can still hold of this chain.
    let refresh_slot = format!("{place} refresh token");
    if let Some(previous) = &file.previous {
        crate::redact::remember_secret(&refresh_slot, &previous.refresh_token);
    }
    if let Some(tokens) = &file.tokens {
        crate::redact::remember_secret(&refresh_slot, &tokens.refresh_token);
        if let Some(access) = &tokens.access_token {
            crate::redact::remember_secret(&format!("{place} access token"), access);
        }
    }
    // A store written before `tokens_generation` existed: its set is as
    // new as the store itself.
    let tokens_generation = match (&file.tokens, file.tokens_generation) {
        (None, _) => 0,
        (Some(_), recorded) => recorded.unwrap_or(file.generation),
    };
    Ok(StoreState {
        generation: file.generation,
        tokens_generation,
        copies: std::mem::take(&mut file.copies),
        railway_environments: std::mem::take(&mut file.railway_environments),
        tokens: file.tokens.as_mut().map(|t| TokenSet {
            access_token: t.access_token.take().map(SecretString::from),
            refresh_token: SecretString::from(std::mem::take(&mut t.refresh_token)),
            expires_at: t.expires_at,
            last_refreshed: t.last_refreshed,
            userid: t.userid.take(),
            scope: t.scope.take(),
        }),
        previous: file.previous.as_mut().map(|p| PreviousToken {
            refresh_token: SecretString::from(std::mem::take(&mut p.refresh_token)),
            rotated_at: p.rotated_at,
        }),
        pending_auth: file.pending_auth.take(),
        client_id: file.client_id.take(),
        clock_offsets: std::mem::take(&mut file.clock_offsets),
        lost: None,
        sealed: sealed.is_some(),
    })
}

/// The sealed part (age armour) of the store `settings` names, read
/// without opening it: how `doctor` tells that a store it cannot read is
/// encrypted, and opens it on its own to say why not. `None` for a store
/// that is plain, absent, not a store at all, or that cannot be read.
pub async fn sealed_part(settings: &Settings) -> Option<String> {
    let bytes = match &settings.store {
        StoreLocation::File(path) => {
            crate::fsutil::read_regular_file(FileStore::new(path.clone()).path(), MAX_STORE_BYTES).ok()
        }
        StoreLocation::Redis { url, key, .. } => RedisStore::new(url, key.clone(), settings.lease_ttl)
            .ok()?
            .stored_value()
            .await
            .ok()?,
    };
    sealed_part_of(&bytes?)
}

/// The `sealed` field of a store's bytes, if they are a sealed store.
fn sealed_part_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct SealedOnly {
        sealed: Option<String>,
    }
    serde_json::from_slice::<SealedOnly>(bytes).ok()?.sealed
}

/// The generation of the set `bytes` hold, read from the clear fields
/// alone (a sealed set is not opened): `None` when they are not a store, or
/// one without a set. For the leftovers a run must keep or pass over
/// without the key (see `rescue`): what it cannot open may still be the one
/// copy of a set Withings issued.
pub(crate) fn held_generation(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Outer {
        version: u32,
        generation: u64,
        #[serde(default)]
        tokens: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        sealed: Option<serde::de::IgnoredAny>,
    }
    let outer: Outer = serde_json::from_slice(bytes).ok()?;
    let holds = outer.tokens.is_some() || outer.sealed.is_some();
    (outer.version <= STORE_VERSION && holds).then_some(outer.generation)
}

/// What every load makes of the state it read, on this host, for the app
/// `expected`: the clock takes this host's recorded lag (see `clock`), and
/// the app is checked. A store belongs to one Withings app: a set another
/// app's client id obtained (the sandbox's, a second app's) is refused
/// before anything is sent with it, naming both, and a store that records
/// none yet takes `expected`, which its next save writes. `location` names
/// the store.
pub(crate) fn bind(mut state: StoreState, expected: Option<&str>, location: &str) -> Result<StoreState> {
    crate::clock::recall_from(&state.clock_offsets);
    let Some(expected) = expected else {
        return Ok(state);
    };
    match state.client_id.as_deref() {
        Some(recorded) if recorded != expected => Err(crate::error::Error::config(
            format!(
                "token store {location} holds the set of Withings app (client id) {recorded}, but WITHINGS_CLIENT_ID is {expected}; nothing was sent"
            ),
            format!(
                "point `--store` (or WITHINGS_TOKEN_STORE) at the store of app {expected}, or set WITHINGS_CLIENT_ID back to {recorded}; to start over with app {expected} here, move {location} aside and authorise again (`withings-token login`, or `auth-url` then `exchange`)"
            ),
        )),
        Some(_) => Ok(state),
        None => {
            state.client_id = Some(expected.to_owned());
            Ok(state)
        }
    }
}

/// A sealed store holds its secrets under the seal only, and a store of
/// the sealed format has one: anything else was edited by hand, and is
/// reported rather than read as empty (which a seed would overwrite) or
/// used with secrets in clear beside the seal.
fn check_sealing_shape(file: &StoreFileV1, sealed: bool) -> Result<(), ParseFailure> {
    let clear = file.tokens.is_some() || file.previous.is_some() || file.pending_auth.is_some();
    if sealed && clear {
        return Err(ParseFailure::Corrupt(
            "it holds tokens or a consent state in clear beside its encrypted part".to_owned(),
        ));
    }
    if !sealed && file.version == SEALED_STORE_VERSION {
        return Err(ParseFailure::Corrupt(format!(
            "it is of the encrypted format (version {SEALED_STORE_VERSION}) and has no encrypted part"
        )));
    }
    Ok(())
}

/// An empty refresh token would be sent to Withings as it is. This tool never
/// saves one (an answer without a token keeps the old one), so a store
/// holding one was edited by hand and is reported, not used.
fn refresh_tokens_must_not_be_empty(file: &StoreFileV1) -> Result<(), ParseFailure> {
    let field = if file.tokens.as_ref().is_some_and(|t| t.refresh_token.is_empty()) {
        "tokens.refresh_token"
    } else if file.previous.as_ref().is_some_and(|p| p.refresh_token.is_empty()) {
        "previous.refresh_token"
    } else {
        return Ok(());
    };
    Err(ParseFailure::Corrupt(format!("its field {field} is empty")))
}

/// serde quotes the offending value ("invalid type: string \"...\""), which
/// in a hand-edited store can be a token: quoted strings are cut out.
fn not_a_store(e: serde_json::Error) -> ParseFailure {
    ParseFailure::Corrupt(format!(
        "not a withings-token store ({})",
        without_quoted_strings(&e.to_string())
    ))
}

fn without_quoted_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"…\"");
        let mut escaped = false;
        for c in chars.by_ref() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => break,
                _ => escaped = false,
            }
        }
    }
    out
}

/// The one place tokens leave their wrappers to reach the disk: sealed
/// when `keyring` has recipients (see `sealing`). The writers check
/// [`Keyring::check_write`] first; a rescue does not (a set Withings
/// issued is kept, plain if it must be, rather than lost).
pub(crate) fn serialize_store(
    state: &StoreState,
    generation: u64,
    tokens_generation: u64,
    fence: Option<u64>,
    keyring: &Keyring,
) -> Result<Zeroizing<Vec<u8>>> {
    let tokens = state.tokens.as_ref().map(|t| StoredTokens {
        access_token: t.access_token.as_ref().map(|s| s.expose_secret().to_owned()),
        refresh_token: t.refresh_token.expose_secret().to_owned(),
        expires_at: t.expires_at,
        last_refreshed: t.last_refreshed,
        userid: t.userid.clone(),
        scope: t.scope.clone(),
    });
    let previous = state.previous.as_ref().map(|p| StoredPrevious {
        refresh_token: p.refresh_token.expose_secret().to_owned(),
        rotated_at: p.rotated_at,
    });
    let mut file = StoreFileV1 {
        version: PLAIN_STORE_VERSION,
        generation,
        fence,
        tokens_generation: Some(tokens_generation),
        copies: state.copies.clone(),
        client_id: state.client_id.clone(),
        clock_offsets: state.clock_offsets.clone(),
        railway_environments: state.railway_environments.clone(),
        tokens,
        previous,
        pending_auth: state.pending_auth.clone(),
        sealed: None,
    };
    if keyring.seals() {
        let part = SealedPart {
            tokens: file.tokens.take(),
            previous: file.previous.take(),
            pending_auth: file.pending_auth.take(),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&part).map_err(anyhow::Error::from)?);
        file.sealed = Some(keyring.seal(&plain)?);
        file.version = SEALED_STORE_VERSION;
    }
    let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(anyhow::Error::from)?);
    bytes.push(b'\n');
    Ok(bytes)
}

/// The event record as it is kept: sealed when `keyring` seals. A record
/// that `was_sealed` is not written plain unless plaintext is allowed.
pub(crate) fn seal_events(keyring: &Keyring, was_sealed: bool, place: &str, next: &[u8]) -> Result<Vec<u8>> {
    keyring.check_record_write(was_sealed, &format!("the event record {place}"))?;
    if keyring.seals() {
        return Ok(keyring.seal(next)?.into_bytes());
    }
    Ok(next.to_vec())
}

/// What a compare-and-set of the event record writes, given the record as
/// `kept`: `None` when its plain text is not `expected` (another run
/// changed it first), else `next` as it is to be kept (sealed as
/// [`seal_events`] says). Both stores' swaps decide with it.
pub(crate) fn swapped_events(
    keyring: &Keyring,
    place: &str,
    kept: Option<&[u8]>,
    expected: Option<&[u8]>,
    next: &[u8],
) -> Result<Option<Vec<u8>>> {
    let was_sealed = kept.is_some_and(crate::sealing::is_sealed);
    let current = kept
        .map(|kept| open_events(keyring, place, kept.to_vec()))
        .transpose()?;
    if current.as_deref() != expected {
        return Ok(None);
    }
    seal_events(keyring, was_sealed, place, next).map(Some)
}

/// The event record's plain bytes, from what is kept (sealed or not).
pub(crate) fn open_events(keyring: &Keyring, place: &str, kept: Vec<u8>) -> Result<Vec<u8>> {
    if !crate::sealing::is_sealed(&kept) {
        return Ok(kept);
    }
    Ok(keyring.open(&kept, "the event record", place)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fatal_and_warned(d: &Durability) -> (usize, usize) {
        let fatal = d.problems.iter().filter(|p| p.fatal).count();
        (fatal, d.problems.len() - fatal)
    }

    #[test]
    fn a_redis_that_can_lose_the_set_is_told_apart_from_one_that_keeps_it() {
        let keeps = Durability::of_redis("noeviction", "yes", "everysec", "3600 1");
        assert_eq!(keeps.problems, vec![]);
        assert_eq!(
            keeps.summary,
            "maxmemory-policy noeviction, appendonly yes, appendfsync everysec"
        );
        // Keys with a time to live only: the set has none.
        assert_eq!(
            fatal_and_warned(&Durability::of_redis("volatile-lru", "yes", "always", "")),
            (0, 0)
        );
        assert_eq!(
            fatal_and_warned(&Durability::of_redis("allkeys-lru", "yes", "everysec", "")),
            (1, 0)
        );
        assert_eq!(
            fatal_and_warned(&Durability::of_redis("noeviction", "no", "everysec", "")),
            (1, 0)
        );
        assert_eq!(
            fatal_and_warned(&Durability::of_redis("noeviction", "no", "everysec", "3600 1")),
            (0, 1)
        );
        assert_eq!(
            fatal_and_warned(&Durability::of_redis("noeviction", "yes", "no", "")),
            (0, 1)
        );
        assert_eq!(
            fatal_and_warned(&Durability::of_redis("allkeys-random", "no", "no", "")),
            (2, 0)
        );
    }
}
