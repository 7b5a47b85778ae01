//! `RedisStore`: the token set under one Redis key, shared by many hosts.
//!
//! A file lock cannot keep two hosts apart; a lease in one Redis can, if it
//! stays safe when its holder pauses (GC, suspend, a slow network) past its
//! time to live. So (Kleppmann, "How to do distributed locking"):
//! - the set is JSON (the file store's format, plus `fence`) under `<key>`;
//!   the lease is `<key>:lease`, taken with `SET NX PX` by a random owner,
//!   and taking it increments `<key>:fence` (kept above any stored fence),
//!   the holder's fence;
//! - a task renews the lease every third of its life while it is held;
//!   release is a compare-and-delete;
//! - the request is marked in `<key>:journal` (with the owner) by a script
//!   that checks, at that instant, that the lease is ours, no newer fence
//!   saved, and the set is the one assessed: nothing is sent otherwise;
//! - the save that follows a request is a compare-and-set: the generation
//!   must be the one this run started from (or only non-token fields moved
//!   on, and it is rebased), no newer fence saved, and the mark must still
//!   be ours (or gone): a run that found this one's lease expired and sent a
//!   request itself overwrote it. So a holder paused past its lease keeps
//!   its answer when nobody else asked Withings meanwhile, and can never
//!   overwrite a newer set. Other saves (copy records, consent state) need
//!   the lease itself.
//!
//! A connection that drops is replaced on the next call, and the save after
//! a request is retried until the lease would have run out: a Withings
//! answer is not given up for one lost packet. Before the request, any Redis
//! failure stops the run with nothing sent (exit 5, or 3 for credentials).

mod lease;
mod scripts;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use secrecy::{ExposeSecret, SecretString};

use self::lease::{RedisLease, release_now};
use self::scripts::TAKE;
use super::opened::LastOpened;
use super::rescue::RescueFile;
use super::{
    Durability, MAX_STORE_BYTES, ParseFailure, STORE_VERSION, StoreLease, StoreState, TokenStore, parse_store,
};
use crate::error::{Error, Result};

/// A Redis round trip takes a millisecond; one this slow is an outage.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between two tries for a taken lease, or a failed save.
const MAX_POLL: Duration = Duration::from_millis(100);

/// The keys one token set uses.
#[derive(Clone)]
struct Keys {
    data: String,
    lease: String,
    fence: String,
    journal: String,
    /// Set once a token set was saved: a store whose `data` is gone while
    /// this remains lost its set (an eviction, a flush of that key), which
    /// is an error, not "no token yet".
    held: String,
    /// The account's event record (see `events`), apart from the set.
    events: String,
}

/// Where the set is and how to talk to it; shared with the leases.
struct Shared {
    client: Client,
    /// The URL without its user and password, for every message.
    shown: String,
    /// Cut out of any error text that might echo it.
    password: Option<String>,
    keys: Keys,
    /// Dropped after an I/O failure, so the next call reconnects.
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The app whose store this must be (see `store::bind`).
    client_id: Option<String>,
    /// The set listing the deployment's accounts and this store's name in
    /// it (see `accounts`): joined by every save (the `SAVE` script).
    index: Option<(String, String)>,
    /// What the set is sealed to and opened with (see `sealing`).
    keyring: Arc<crate::sealing::Keyring>,
    /// The set last read and its state, before `store::bind` (see `opened`).
    last_set: LastOpened<StoreState>,
    /// The event record last read and its plain bytes.
    last_events: LastOpened<Vec<u8>>,
}

pub struct RedisStore {
    shared: Arc<Shared>,
    lease_ttl: Duration,
    /// On this host: where an answer Redis could not take is kept.
    rescue: Option<RescueFile>,
}

impl RedisStore {
    /// The same store, used by the Withings app `client_id`: a set another
    /// app obtained is refused on load (the default key names the app, a
    /// key given by hand need not).
    /// The same store, keeping a set it could not take (Redis unreachable
    /// after Withings answered) in a file under `dir` on this host, named
    /// after the server and the key.
    pub fn with_rescue_in(self, dir: Option<&std::path::Path>) -> Self {
        let name: String = format!("{}-{}", self.shared.shown, self.shared.keys.data)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let keyring = Arc::clone(&self.shared.keyring);
        let rescue = dir.map(|dir| RescueFile::new(dir.join(format!("{name}.json")), keyring));
        RedisStore { rescue, ..self }
    }

    /// The same store, sealed to and opened with `keyring`; before
    /// [`RedisStore::with_rescue_in`], whose file is sealed alike.
    pub fn sealed_with(mut self, keyring: Arc<crate::sealing::Keyring>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.keyring = keyring;
        }
        self
    }

    pub fn for_client(mut self, client_id: Option<String>) -> Self {
        // Called on a store just made, whose `shared` no lease holds yet.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.client_id = client_id;
        }
        self
    }

    /// The same store, the account `name` of the deployment whose accounts
    /// the set `index_key` lists: every save keeps the name in it.
    pub fn listed_in(mut self, index_key: String, name: String) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.index = Some((index_key, name));
        }
        self
    }

    /// The names the deployment's index lists, and whether this store (the
    /// `default` account's key) holds a set or once did.
    pub async fn listed_accounts(&self, index_key: &str) -> Result<(Vec<String>, bool)> {
        let shared = &self.shared;
        let names: Vec<String> = shared
            .call(
                Invocation::Command(&["SMEMBERS", index_key]),
                "cannot list the accounts in",
            )
            .await
            .map_err(nothing_sent)?;
        let keys = [shared.keys.data.as_str(), shared.keys.held.as_str()];
        let present: i64 = shared
            .call(Invocation::Command(&["EXISTS", keys[0], keys[1]]), "cannot read from")
            .await
            .map_err(nothing_sent)?;
        Ok((names, present > 0))
    }
}

impl RedisStore {
    /// Deletes this account's keys (the set, its lease, fence, journal and
    /// held mark) and its name from the deployment's index `index_key`, in
    /// one transaction: `accounts remove`.
    pub async fn remove_account(&self, index_key: &str, name: &str) -> Result<()> {
        let keys = &self.shared.keys;
        let _: () = self
            .shared
            .call(
                Invocation::Script(
                    &scripts::FORGET,
                    &[
                        &keys.data,
                        &keys.lease,
                        &keys.fence,
                        &keys.journal,
                        &keys.held,
                        index_key,
                        &keys.events,
                    ],
                    &[name],
                ),
                "cannot remove the account from",
            )
            .await?;
        Ok(())
    }
}

impl RedisStore {
    /// A store at `url` under `key`; nothing is connected until first use.
    pub fn new(url: &SecretString, key: String, lease_ttl: Duration) -> Result<Self> {
        let parsed = url::Url::parse(url.expose_secret()).map_err(|e| bad_url(&e.to_string()))?;
        let password = parsed.password().map(percent_decoded);
        let client = Client::open(url.expose_secret())
            .map_err(|e| bad_url(&scrub(&e.to_string(), &[password.as_deref(), Some(parsed.username())])))?;
        let keys = Keys {
            lease: format!("{key}:lease"),
            fence: format!("{key}:fence"),
            journal: format!("{key}:journal"),
            held: format!("{key}:held"),
            events: format!("{key}:events"),
            data: key,
        };
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                shown: shown_url(&parsed),
                password,
                keys,
                connection: tokio::sync::Mutex::new(None),
                client_id: None,
                index: None,
                keyring: crate::sealing::Keyring::none(),
                last_set: LastOpened::new(),
                last_events: LastOpened::new(),
            }),
            lease_ttl,
            rescue: None,
        })
    }
}

fn bad_url(why: &str) -> Error {
    Error::config(
        format!("the Redis store URL is not usable: {why}"),
        "write it as redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) in `--store` or WITHINGS_TOKEN_STORE",
    )
}

/// `%XX` decoded as redis-rs decodes it (a `+` stays a `+`).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `redis://host:port/db`: neither the user (which may be the secret, in
/// `redis://SECRET@host`) nor the password.
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn scrub(text: &str, secrets: &[Option<&str>]) -> String {
    secrets
        .iter()
        .flatten()
        .filter(|s| s.len() >= 3)
        .fold(text.to_owned(), |text, secret| text.replace(secret, "*****"))
}

/// Whether a failure is the connection's (drop it and reconnect).
fn connection_failed(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal()
}

impl Shared {
    fn location(&self) -> String {
        format!("{} key {}", self.shown, self.keys.data)
    }

    /// The shared connection, made when there is none. The lock is not held
    /// while connecting: against a Redis that stopped answering, callers
    /// that queued behind one connect would each wait out its timeout in
    /// turn (`serve`'s requests failed 5 s, 10 s, 15 s ... apart); each
    /// makes its own try instead, and the last one made is kept.
    async fn connection(&self) -> Result<MultiplexedConnection> {
        if let Some(connection) = self.connection.lock().await.as_ref() {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.failed("cannot connect to", &e))?;
        *self.connection.lock().await = Some(connection.clone());
        Ok(connection)
    }

    /// What TAKE's negative answers mean; nothing was sent.
    fn unusable_key(&self, code: i64) -> Error {
        let keys = &self.keys;
        match code {
            -1 => Error::CorruptStore {
                place: self.location(),
                reason: "not a withings-token store (not JSON, or a generation or fence that is not a whole number below 2^53)".into(),
            },
            -2 => Error::config(
                format!(
                    "the lease key {} at {} exists and never expires: it is not a withings-token lease; nothing was sent",
                    keys.lease, self.shown
                ),
                format!("delete it (`redis-cli DEL {}`) once no withings-token run is active", keys.lease),
            ),
            _ => Error::config(
                format!(
                    "the fence counter {} at {} is not a usable number; nothing was sent",
                    keys.fence, self.shown
                ),
                format!(
                    "with no withings-token run active, delete it (`redis-cli DEL {}`): the next run sets it again",
                    keys.fence
                ),
            ),
        }
    }

    async fn forget_connection(&self) {
        *self.connection.lock().await = None;
    }

    /// A failed call, as an error: wrong credentials are a configuration
    /// error, the rest a store that cannot be reached. The caller says what
    /// was (not) sent.
    fn failed(&self, what: &str, e: &RedisError) -> Error {
        let text = scrub(&e.to_string(), &[self.password.as_deref()]);
        if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
            || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
        {
            return Error::config(
                format!("Redis at {} refused the credentials: {text}", self.shown),
                "check the user and password in the redis:// URL (redis://[USER]:PASSWORD@HOST:PORT)",
            );
        }
        if e.code() == Some("WRONGTYPE") {
            return Error::config(
                format!(
                    "a key of the store {} holds another kind of value: {text}",
                    self.location()
                ),
                format!(
                    "check `redis-cli TYPE` of {}, {}, {} and {}, and delete the one that is not withings-token's",
                    self.keys.data, self.keys.lease, self.keys.fence, self.keys.journal
                ),
            );
        }
        if matches!(e.kind(), redis::ErrorKind::InvalidClientConfig) {
            return Error::config(
                format!("the Redis store URL cannot be used: {text}"),
                "fix the redis:// or rediss:// URL in `--store` or WITHINGS_TOKEN_STORE",
            );
        }
        if e.code() == Some("NOPERM") {
            return Error::config(
                format!(
                    "Redis at {} denies this user a command the store needs: {text}",
                    self.shown
                ),
                "allow the user GET, SET, DEL, INCR, PEXPIRE, EVAL and EVALSHA on the store's keys (ACL), or use another user",
            );
        }
        // Redis' own words for a SELECT of a database it does not have: a
        // setting to fix, not an outage to wait out.
        if text.contains("DB index is out of range") {
            return Error::config(
                format!("Redis at {} has no such database: {text}", self.shown),
                "name a database this Redis has (0 to 15 unless its `databases` setting says more) at the end of the redis:// URL",
            );
        }
        Error::StoreUnavailable {
            detail: format!("{what} Redis at {}: {text}", self.shown),
        }
    }

    /// Runs one command or script; a connection that failed is dropped so
    /// the next call reconnects.
    async fn call<T: redis::FromRedisValue>(&self, invocation: Invocation<'_>, what: &str) -> Result<T> {
        let mut connection = self.connection().await?;
        let result = match invocation {
            Invocation::Script(script, keys, args) => {
                let mut call = script.prepare_invoke();
                keys.iter().for_each(|k| {
                    call.key(*k);
                });
                args.iter().for_each(|a| {
                    call.arg(*a);
                });
                call.invoke_async(&mut connection).await
            }
            Invocation::Get(key) => redis::cmd("GET").arg(key).query_async(&mut connection).await,
            Invocation::Command(words) => {
                let mut command = redis::cmd(words[0]);
                words[1..].iter().for_each(|w| {
                    command.arg(*w);
                });
                command.query_async(&mut connection).await
            }
            Invocation::ConfigGet(name) => {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(name)
                    .query_async(&mut connection)
                    .await
            }
        };
        match result {
            Ok(value) => Ok(value),
            Err(e) => {
                if connection_failed(&e) {
                    self.forget_connection().await;
                }
                Err(self.failed(what, &e))
            }
        }
    }

    async fn load(&self) -> Result<StoreState> {
        let bytes: Option<Vec<u8>> = self.call(Invocation::Get(&self.keys.data), "cannot read from").await?;
        let Some(bytes) = bytes else {
            let held: Option<String> = self.call(Invocation::Get(&self.keys.held), "cannot read from").await?;
            let lost = held.is_some().then(|| self.location());
            return self.bound(StoreState {
                lost,
                ..StoreState::default()
            });
        };
        let corrupt = |reason: String| Error::CorruptStore {
            place: self.location(),
            reason,
        };
        if bytes.len() as u64 > MAX_STORE_BYTES {
            return Err(corrupt(format!(
                "it holds {} bytes, more than a store can",
                bytes.len()
            )));
        }
        let parse = |bytes: &[u8]| {
            let state = parse_store(bytes, &self.keyring, &self.location())?;
            if state.sealed {
                tracing::debug!(
                    "decrypted the token store {} (generation {})",
                    self.location(),
                    state.generation
                );
            }
            Ok(state)
        };
        let state = self.last_set.open(&bytes, parse).map_err(|reason| match reason {
            ParseFailure::Newer(v) => Error::config(
                format!(
                    "token store {} has format version {v}, newer than this binary reads ({STORE_VERSION})",
                    self.location()
                ),
                "upgrade withings-token on this host (every host sharing the store needs the newer one)",
            ),
            ParseFailure::Corrupt(reason) => corrupt(reason),
            ParseFailure::Sealed(e) => e,
        })?;
        self.bound(state)
    }

    fn bound(&self, state: StoreState) -> Result<StoreState> {
        super::bind(state, self.client_id.as_deref(), &self.location())
    }
}

/// What [`Shared::call`] sends.
enum Invocation<'a> {
    Script(&'a Script, &'a [&'a str], &'a [&'a str]),
    Get(&'a str),
    /// A plain command, its name first.
    Command(&'a [&'a str]),
    /// `CONFIG GET name`.
    ConfigGet(&'a str),
}

/// Before a request, whatever failed: nothing was sent.
fn nothing_sent(e: Error) -> Error {
    match e {
        Error::StoreUnavailable { detail } => Error::StoreUnavailable {
            detail: format!("{detail}; nothing was sent to Withings and the stored tokens are unchanged"),
        },
        other => other,
    }
}

/// The upstream budget of the app in this Redis: a fixed one-minute window
/// counted under `withings-token:<client_id>:budget:<minute>`, the minute
/// by this host's clock (hosts whose clocks differ by a second share all
/// but that second of a window); and the readers' shares, a bucket each
/// under `withings-token:<client_id>:share:<reader>`.
struct RedisBudget {
    shared: Arc<Shared>,
    prefix: String,
    share_prefix: String,
}

/// How long a window's counter outlives its minute: long enough for a
/// host whose clock lags to still count in it.
const BUDGET_KEY_SLACK_SECS: u64 = 60;

#[async_trait]
impl crate::budget::SharedBudget for RedisBudget {
    async fn take(&self, per_minute: u32) -> Result<Option<Duration>> {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let window = since_epoch.as_secs() / 60;
        let key = format!("{}{window}", self.prefix);
        let (limit, ttl) = (per_minute.to_string(), (60 + BUDGET_KEY_SLACK_SECS).to_string());
        let taken: i64 = self
            .shared
            .call(
                Invocation::Script(&scripts::TAKE_BUDGET, &[&key], &[&limit, &ttl]),
                "cannot count the upstream budget in",
            )
            .await
            .map_err(nothing_sent)?;
        if taken == 1 {
            return Ok(None);
        }
        let window_end = Duration::from_secs((window + 1) * 60);
        Ok(Some(window_end.saturating_sub(since_epoch)))
    }

    async fn take_share(&self, reader: &str, rate: crate::budget::Rate) -> Result<Option<Duration>> {
        let key = format!("{}{reader}", self.share_prefix);
        let micros = |d: Duration| d.as_micros().max(1).to_string();
        let (interval, period) = (micros(rate.interval()), micros(rate.period));
        let wait: i64 = self
            .shared
            .call(
                Invocation::Script(&scripts::TAKE_SHARE, &[&key], &[&interval, &period]),
                "cannot count the reader's share of the budget in",
            )
            .await
            .map_err(nothing_sent)?;
        Ok((wait > 0).then(|| Duration::from_micros(wait.unsigned_abs())))
    }
}

impl RedisStore {
    /// The set's value as stored, unopened (see `store::sealed_part`).
    pub async fn stored_value(&self) -> Result<Option<Vec<u8>>> {
        let key = self.shared.keys.data.as_str();
        self.shared.call(Invocation::Get(key), "cannot read from").await
    }

    fn events_place(&self) -> String {
        self.shared.events_place()
    }

    async fn load_kept_events(&self) -> Result<Option<Vec<u8>>> {
        self.shared.load_kept_events().await
    }
}

/// The event record's key (see `events`), apart from the set's.
impl Shared {
    fn events_place(&self) -> String {
        format!("{} (key {})", self.shown, self.keys.events)
    }

    async fn load_kept_events(&self) -> Result<Option<Vec<u8>>> {
        let key = self.keys.events.as_str();
        self.call(Invocation::Get(key), "cannot read the event record from")
            .await
    }

    /// The comparison is of plain records, the swap of the kept ones: a
    /// sealed record is sealed anew on every write, so the script is given
    /// the one just read, and refuses when another run wrote since.
    async fn swap_events(&self, expected: Option<&[u8]>, next: &[u8]) -> Result<bool> {
        let place = self.events_place();
        let kept = self.load_kept_events().await?;
        let swapped = super::swapped_events(&self.keyring, &place, kept.as_deref(), expected, next)?;
        let Some(next) = swapped else {
            return Ok(false);
        };
        let key = self.keys.events.as_str();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let (present, expected) = match kept {
            Some(bytes) => ("1", text(&bytes)),
            None => ("0", String::new()),
        };
        let next = text(&next);
        let swapped: i64 = self
            .call(
                Invocation::Script(&scripts::SWAP_EVENTS, &[key], &[present, &expected, &next]),
                "cannot write the event record to",
            )
            .await?;
        Ok(swapped == 1)
    }

    /// Once the set was written plain on purpose (`--allow-plaintext`),
    /// the event record goes plain in the same save, as the file store's
    /// does: a sealed record is not written plain by later runs without
    /// the flag, so it would stay sealed (and unreadable once the identity
    /// is gone). The set is saved whatever becomes of it.
    pub(super) async fn unseal_events_after_plain_write(&self) {
        if self.keyring.seals() || !self.keyring.allows_plaintext() {
            return;
        }
        let place = self.events_place();
        let unsealed = match self.load_kept_events().await {
            Ok(Some(kept)) if crate::sealing::is_sealed(&kept) => {
                match super::open_events(&self.keyring, &place, kept) {
                    Ok(plain) => self.swap_events(Some(&plain), &plain).await.map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = unsealed {
            tracing::warn!("the event record {place} stays encrypted: {e}");
        }
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    fn location(&self) -> String {
        self.shared.location()
    }

    fn shared_budget(&self) -> Option<Arc<dyn crate::budget::SharedBudget>> {
        let client_id = self.shared.client_id.as_deref()?;
        Some(Arc::new(RedisBudget {
            shared: Arc::clone(&self.shared),
            prefix: format!("withings-token:{client_id}:budget:"),
            share_prefix: format!("withings-token:{client_id}:share:"),
        }))
    }

    async fn load(&self) -> Result<StoreState> {
        self.shared.load().await.map_err(nothing_sent)
    }

    fn waiting_rescue(&self) -> Option<String> {
        self.rescue.as_ref()?.waiting(&[])
    }

    async fn load_events(&self) -> Result<Option<Vec<u8>>> {
        let place = self.events_place();
        let open = |kept: &[u8]| super::open_events(&self.shared.keyring, &place, kept.to_vec());
        self.load_kept_events()
            .await?
            .map(|kept| self.shared.last_events.open(&kept, open))
            .transpose()
    }

    async fn swap_events(&self, expected: Option<&[u8]>, next: &[u8]) -> Result<bool> {
        self.shared.swap_events(expected, next).await
    }

    async fn durability(&self) -> Option<Durability> {
        let mut values = std::collections::HashMap::new();
        for name in ["maxmemory-policy", "appendonly", "appendfsync", "save"] {
            let answer: Result<std::collections::HashMap<String, String>> = self
                .shared
                .call(Invocation::ConfigGet(name), "cannot read the configuration of")
                .await;
            match answer {
                Ok(answer) => values.extend(answer),
                Err(e) => return Some(Durability::unknown(&e.to_string())),
            }
        }
        let value = |name: &str| values.get(name).map(String::as_str).unwrap_or("");
        Some(Durability::of_redis(
            value("maxmemory-policy"),
            value("appendonly"),
            value("appendfsync"),
            value("save"),
        ))
    }

    async fn lock(&self, timeout: Duration) -> Result<Box<dyn StoreLease>> {
        let shared = &self.shared;
        let owner = new_owner()?;
        let ttl_ms = self.lease_ttl.as_millis().to_string();
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let keys = [
                shared.keys.lease.as_str(),
                shared.keys.fence.as_str(),
                shared.keys.data.as_str(),
            ];
            let taken: Result<i64> = shared
                .call(
                    Invocation::Script(&TAKE, &keys, &[&owner, &ttl_ms]),
                    "cannot take the lease on",
                )
                .await;
            let fence = match taken {
                Ok(fence) => fence,
                Err(e) => {
                    // The script may have run and only its reply been lost.
                    release_now(shared, &owner);
                    return Err(nothing_sent(e));
                }
            };
            if fence > 0 {
                tracing::debug!("took the Redis lease {} with fence {fence}", shared.keys.lease);
                let fence = fence.unsigned_abs();
                let mut lease = RedisLease::start(shared.clone(), owner, fence, self.lease_ttl);
                if let Some(rescue) = &self.rescue {
                    rescue.salvage(&[]);
                    crate::fsutil::remove_stale_temps(&[rescue.path()]);
                }
                lease.rescue = self.rescue.clone();
                return Ok(Box::new(lease));
            }
            if fence < 0 {
                return Err(shared.unusable_key(fence));
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    place: format!("the Redis lease {} at {}", shared.keys.lease, shared.shown),
                    waited: timeout,
                });
            }
            tokio::time::sleep(jittered(pause).min(timeout - waited)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

/// An owner no other run can have: the pid and 128 random bits.
fn new_owner() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(anyhow::anyhow!("no randomness for the lease owner: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{hex}", std::process::id()))
}

/// Half to all of `pause`, so waiting hosts do not poll in step.
fn jittered(pause: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    pause / 2 + pause * u32::from(byte[0]) / 512
}
