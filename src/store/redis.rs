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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use secrecy::{ExposeSecret, SecretString};
use tokio::task::JoinHandle;

use super::rescue::{PreparedRescue, RescueFile};
use super::{
    Durability, InFlight, MAX_STORE_BYTES, ParseFailure, STORE_VERSION, StoreLease, StoreState, TokenStore,
    parse_store, same_set, serialize_store, tokens_generation_after,
};
use crate::error::{Error, Result};

/// A Redis round trip takes a millisecond; one this slow is an outage.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Lua reads the stored generation as a double, exact up to 2^53.
const MAX_GENERATION: u64 = (1 << 53) - 1;
/// How long a dropped lease's release may block.
const DROP_RELEASE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest pause between two tries for a taken lease, or a failed save.
const MAX_POLL: Duration = Duration::from_millis(100);
/// A peer saving copy records without pause could keep a save rebasing.
const MAX_REBASES: usize = 3;

/// The stored generation and fence (`-1` for a value that is not a store,
/// or whose numbers Lua cannot hold exactly: whole, from 0 to 2^53).
const READ_STORED: &str = r"
local function whole(v)
  return type(v) == 'number' and v >= 0 and v < 9007199254740992 and v == math.floor(v)
end
local function stored(key)
  local current = redis.call('GET', key)
  if not current then return 0, 0 end
  local ok, decoded = pcall(cjson.decode, current)
  if not ok or type(decoded) ~= 'table' then return -1, 0 end
  local generation, fence = decoded.generation, decoded.fence or 0
  if not whole(generation) or not whole(fence) then return -1, 0 end
  return generation, fence
end
";

/// Takes the lease when free and returns the new fence; 0 when taken, -1
/// when the set is not a store, -2 when the lease key never expires (not
/// one of ours), -3 when the counter is not a usable number. The counter is
/// kept above the stored fence (a key copied without its counter), or
/// every save would be refused as stale.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    with_stored(
        r"
local generation, stored_fence = stored(KEYS[3])
if generation == -1 then return -1 end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if not counter or counter < 0 or counter >= 9007199254740991 then return -3 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('PTTL', KEYS[1]) == -1 then return -2 end
  return 0
end
local fence = redis.call('INCR', KEYS[2])
if fence <= stored_fence then
  fence = stored_fence + 1
  redis.call('SET', KEYS[2], fence)
end
return fence",
    )
});

/// Extends the lease only while it is ours.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0",
    )
});

/// Deletes the lease only while it is ours.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0",
    )
});

/// Marks the request in flight, and renews the lease for the call, only
/// while the lease is ours, no newer fence saved, and the set is the one
/// assessed.
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    with_stored(
        r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'lease' end
local generation, fence = stored(KEYS[1])
if fence > tonumber(ARGV[5]) then return 'fence' end
if generation ~= tonumber(ARGV[2]) then return 'generation' end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 'ok'",
    )
});

/// The fenced compare-and-set (see the module doc). Saving the very value
/// already stored is this save repeated after a lost reply: done.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    with_stored(
        r"
if redis.call('GET', KEYS[1]) == ARGV[4] then return 'ok' end
local generation, fence = stored(KEYS[1])
if generation == -1 then return 'corrupt' end
if fence > tonumber(ARGV[2]) then return 'fence' end
if ARGV[5] == '1' then
  local mark = redis.call('GET', KEYS[3])
  if mark and not string.find(mark, ARGV[1], 1, true) then return 'overtaken' end
elseif redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 'lease'
end
if generation ~= tonumber(ARGV[3]) then return 'generation' end
redis.call('SET', KEYS[1], ARGV[4])
if ARGV[6] == '1' then redis.call('SET', KEYS[4], '1') end
return 'ok'",
    )
});

/// Clears the in-flight mark: any mark while the lease is ours (a dead
/// run's included), else only our own.
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local mark = redis.call('GET', KEYS[2])
if not mark then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] or string.find(mark, ARGV[1], 1, true) then
  return redis.call('DEL', KEYS[2])
end
return 0",
    )
});

fn with_stored(body: &str) -> Script {
    Script::new(&format!("{READ_STORED}{body}"))
}

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
        let rescue = dir.map(|dir| RescueFile::new(dir.join(format!("{name}.json"))));
        RedisStore { rescue, ..self }
    }

    pub fn for_client(mut self, client_id: Option<String>) -> Self {
        // Called on a store just made, whose `shared` no lease holds yet.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.client_id = client_id;
        }
        self
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
        let state = parse_store(&bytes).map_err(|reason| match reason {
            ParseFailure::Newer(v) => Error::config(
                format!(
                    "token store {} has format version {v}, newer than this binary reads ({STORE_VERSION})",
                    self.location()
                ),
                "upgrade withings-token on this host (every host sharing the store needs the newer one)",
            ),
            ParseFailure::Corrupt(reason) => corrupt(reason),
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

#[async_trait]
impl TokenStore for RedisStore {
    fn location(&self) -> String {
        self.shared.location()
    }

    async fn load(&self) -> Result<StoreState> {
        self.shared.load().await.map_err(nothing_sent)
    }

    fn waiting_rescue(&self) -> Option<String> {
        self.rescue.as_ref()?.waiting(&[])
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
        .map_err(|e| Error::Internal(anyhow::anyhow!("no randomness for the lease owner: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{hex}", std::process::id()))
}

/// Half to all of `pause`, so waiting hosts do not poll in step.
fn jittered(pause: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    pause / 2 + pause * u32::from(byte[0]) / 512
}

/// Releases `owner`'s lease on a connection of its own, blocking at most
/// [`DROP_RELEASE_TIMEOUT`] per step: for drops and error paths, where a
/// task could die with the runtime and the next run would wait out the
/// lease. After a failure the lease expires by itself.
fn release_now(shared: &Shared, owner: &str) {
    let released = shared
        .client
        .get_connection_with_timeout(DROP_RELEASE_TIMEOUT)
        .and_then(|mut con| {
            con.set_read_timeout(Some(DROP_RELEASE_TIMEOUT))?;
            con.set_write_timeout(Some(DROP_RELEASE_TIMEOUT))?;
            RELEASE.key(&shared.keys.lease).arg(owner).invoke::<i64>(&mut con)
        });
    if let Err(e) = released {
        tracing::debug!("the lease will expire by itself: {:?}", e.kind());
    }
}

/// A held lease; a task renews it until it is released or dropped.
pub struct RedisLease {
    shared: Arc<Shared>,
    owner: String,
    fence: u64,
    ttl: Duration,
    renewer: JoinHandle<()>,
    /// Set by the renewer when the lease turned out not to be ours.
    lost: Arc<AtomicBool>,
    /// Between `begin_request` and `end_request`: the save needs the mark.
    requested: AtomicBool,
    /// The state this lease last loaded, to rebase a save on.
    loaded: Mutex<Option<StoreState>>,
    released: AtomicBool,
    /// Where an answer Redis could not take goes, and the space taken for
    /// it before the request.
    rescue: Option<RescueFile>,
    prepared: Mutex<Option<PreparedRescue>>,
}

impl RedisLease {
    fn start(shared: Arc<Shared>, owner: String, fence: u64, ttl: Duration) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(shared.clone(), owner.clone(), ttl, lost.clone()));
        RedisLease {
            shared,
            owner,
            fence,
            ttl,
            renewer,
            lost,
            requested: AtomicBool::new(false),
            loaded: Mutex::new(None),
            released: AtomicBool::new(false),
            rescue: None,
            prepared: Mutex::new(None),
        }
    }

    /// Takes the space and descriptors for a rescue on this host before a
    /// request, as a file store does beside itself: a host that could not
    /// keep an answer Redis will not take sends nothing (issue 18).
    fn prepare_rescue(&self) -> Result<()> {
        const NOTHING: &str = "; nothing was sent to Withings and the stored tokens are unchanged";
        let Some(rescue) = &self.rescue else {
            return Err(Error::config(
                format!("no rescue file can be kept on this host (neither XDG_STATE_HOME nor HOME is set){NOTHING}"),
                "set XDG_STATE_HOME (or HOME) to a writable directory: a Redis store keeps there, on this host, an answer Redis cannot take",
            ));
        };
        let prepared = rescue.prepare(0).map_err(|e| {
            Error::config(
                format!("cannot prepare the rescue file {}: {e}{NOTHING}", rescue.path().display()),
                "make XDG_STATE_HOME (or HOME) a writable directory: a Redis store keeps there, on this host, an answer Redis cannot take",
            )
        })?;
        *crate::locked(&self.prepared) = Some(prepared);
        Ok(())
    }

    fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// When the lease would have run out, had it not been renewed.
    fn deadline(&self) -> Instant {
        Instant::now() + self.ttl
    }

    /// Why a script refused a save.
    fn refused(&self, verdict: &str) -> Error {
        let lapsed = format!(
            "the lease on {} ran out while this run waited for Withings (paused for more than its {} s?)",
            self.shared.location(),
            self.ttl.as_secs()
        );
        match verdict {
            "overtaken" => Error::AnswerDropped {
                detail: format!(
                    "{lapsed}, and another run sent its own request for the same set; its answer is the one kept"
                ),
            },
            "fence" | "generation" => Error::AnswerDropped {
                detail: format!("{lapsed}, and another run saved a newer set meanwhile, which stays"),
            },
            "lease" => Error::StoreUnavailable {
                detail: format!(
                    "the lease on {} ran out before this save; nothing of this run's was written",
                    self.shared.location()
                ),
            },
            other => Error::Internal(anyhow::anyhow!("Redis answered `{other}` to a save")),
        }
    }
}

/// Renews every third of the lease's life, each try bounded by that third,
/// so one slow answer does not outlive the lease; stops when it is not ours.
async fn renew(shared: Arc<Shared>, owner: String, ttl: Duration, lost: Arc<AtomicBool>) {
    let ttl_ms = ttl.as_millis().to_string();
    let keys = [shared.keys.lease.as_str()];
    let args = [owner.as_str(), ttl_ms.as_str()];
    loop {
        tokio::time::sleep(ttl / 3).await;
        let call = shared.call::<i64>(Invocation::Script(&RENEW, &keys, &args), "cannot renew the lease on");
        match tokio::time::timeout(ttl / 3, call).await {
            Ok(Ok(1)) => {}
            Ok(Ok(_)) => {
                lost.store(true, Ordering::SeqCst);
                tracing::warn!(
                    "the Redis lease {} ran out before it could be renewed; this run sends nothing more, and its save is refused if another run took over",
                    shared.keys.lease
                );
                return;
            }
            // The next try may get through; the save's checks stay.
            Ok(Err(e)) => tracing::warn!("renewing the Redis lease failed: {e}"),
            Err(_) => tracing::warn!("renewing the Redis lease took longer than {} ms", (ttl / 3).as_millis()),
        }
    }
}

impl RedisLease {
    /// One try of the compare-and-set; the script's verdict.
    async fn try_save(&self, base_generation: u64, next: &StoreState, after_request: bool) -> Result<(String, u64)> {
        let on_store = self.shared.load().await?;
        let generation = base_generation + 1;
        let tokens_generation = tokens_generation_after(&on_store, next, generation);
        let bytes = serialize_store(next, generation, tokens_generation, Some(self.fence))?;
        let json = String::from_utf8(bytes).map_err(anyhow::Error::from)?;
        let keys = self.keys();
        let (fence, base) = (self.fence.to_string(), base_generation.to_string());
        let flag = if after_request { "1" } else { "0" };
        let holds_a_set = if next.tokens.is_some() { "1" } else { "0" };
        let verdict: String = self
            .shared
            .call(
                Invocation::Script(
                    &SAVE,
                    &[&keys.data, &keys.lease, &keys.journal, &keys.held],
                    &[&self.owner, &fence, &base, &json, flag, holds_a_set],
                ),
                "cannot save to",
            )
            .await?;
        Ok((verdict, generation))
    }

    /// `next` moved onto the stored state, when only fields other than the
    /// token set (copy records, consent state) changed since this run loaded
    /// it: then nothing of the other run's is lost by saving over it.
    async fn rebased(&self, next: &StoreState) -> Result<Option<(u64, StoreState)>> {
        let current = self.shared.load().await?;
        if current.generation == 0 && current.tokens.is_none() {
            // Nothing newer to protect, and this answer is the only live pair.
            tracing::warn!(
                "the store {} was emptied while Withings answered (FLUSHALL, an eviction, a restart without persistence?); the new set is saved into it",
                self.shared.location()
            );
            let fresh = StoreState {
                client_id: next.client_id.clone(),
                ..StoreState::default()
            }
            .with_set_of(next);
            return Ok(Some((0, fresh)));
        }
        let loaded = crate::locked(&self.loaded).clone();
        let unchanged = loaded.is_some_and(|l| same_set(l.tokens.as_ref(), current.tokens.as_ref()));
        if !unchanged {
            return Ok(None);
        }
        Ok(Some((current.generation, current.with_set_of(next))))
    }
}

/// After Withings answered: the save could not be made.
fn unsaved(e: Error) -> Error {
    match e {
        Error::StoreUnavailable { detail } => Error::StoreUnavailable {
            detail: format!(
                "{detail}; Withings answered, but the new set could not be saved: the stored refresh token stays valid for a few hours because the new one was never used"
            ),
        },
        other => other,
    }
}

#[async_trait]
impl StoreLease for RedisLease {
    async fn load(&self) -> Result<StoreState> {
        let state = self.shared.load().await.map_err(nothing_sent)?;
        *crate::locked(&self.loaded) = Some(state.clone());
        Ok(state)
    }

    async fn save(&self, base_generation: u64, next: &StoreState) -> Result<u64> {
        if base_generation >= MAX_GENERATION {
            return Err(Error::config(
                format!(
                    "token store {} is at generation {base_generation}, the largest a Redis store counts to; the stored tokens are unchanged",
                    self.shared.location()
                ),
                "with no other withings-token run active, `export` the set, delete the key and seed it again",
            ));
        }
        let after_request = self.requested.load(Ordering::SeqCst);
        // A Withings answer is worth waiting for as long as the lease lives.
        let deadline = self.deadline();
        let (mut base, mut next) = (base_generation, next.clone());
        let (mut rebases, mut pause) = (0, Duration::from_millis(10));
        loop {
            match self.try_save(base, &next, after_request).await {
                Ok((verdict, generation)) if verdict == "ok" => return Ok(generation),
                Ok((verdict, _)) if verdict == "generation" && after_request && rebases < MAX_REBASES => {
                    let Some((rebased_base, rebased)) = self.rebased(&next).await.map_err(unsaved)? else {
                        return Err(self.refused("generation"));
                    };
                    tracing::debug!("rebasing the save onto generation {rebased_base}: only other fields changed");
                    (base, next, rebases) = (rebased_base, rebased, rebases + 1);
                }
                Ok((verdict, _)) if verdict == "corrupt" => {
                    return Err(Error::CorruptStore {
                        place: self.shared.location(),
                        reason: "not a withings-token store (not JSON)".into(),
                    });
                }
                Ok((verdict, _)) => return Err(self.refused(&verdict)),
                Err(Error::StoreUnavailable { detail }) if after_request && Instant::now() < deadline => {
                    tracing::warn!("saving the new set failed ({detail}); trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_POLL * 5);
                }
                Err(e) if after_request => return Err(unsaved(e)),
                Err(e) => return Err(e),
            }
        }
    }

    async fn begin_request(&self, generation: u64, grant: &str) -> Result<()> {
        let refused = |why: &str| Error::StoreUnavailable {
            detail: format!("{why}; nothing was sent to Withings and the stored tokens are unchanged"),
        };
        if self.lost.load(Ordering::SeqCst) {
            return Err(refused(&format!("the lease on {} ran out", self.shared.location())));
        }
        if generation >= MAX_GENERATION {
            return Err(refused(&format!(
                "token store {} is at generation {generation}, the largest a Redis store counts to",
                self.shared.location()
            )));
        }
        let mark = InFlight {
            pid: std::process::id(),
            started_at: crate::tokens::now(),
            generation,
            grant: grant.to_owned(),
            owner: Some(self.owner.clone()),
        };
        let mark = serde_json::to_string(&mark).map_err(anyhow::Error::from)?;
        self.prepare_rescue()?;
        let keys = self.keys();
        let (generation, ttl_ms, fence) = (
            generation.to_string(),
            self.ttl.as_millis().to_string(),
            self.fence.to_string(),
        );
        let verdict: String = self
            .shared
            .call(
                Invocation::Script(
                    &BEGIN,
                    &[&keys.data, &keys.lease, &keys.journal],
                    &[&self.owner, &generation, &mark, &ttl_ms, &fence],
                ),
                "cannot mark the request in",
            )
            .await
            .map_err(nothing_sent)?;
        match verdict.as_str() {
            "ok" => {
                self.requested.store(true, Ordering::SeqCst);
                Ok(())
            }
            "lease" => Err(refused(&format!(
                "the lease on {} ran out before the request",
                self.shared.location()
            ))),
            _ => Err(refused(&format!(
                "another run saved {} after this run read it; run the command again",
                self.shared.location()
            ))),
        }
    }

    async fn end_request(&self) {
        self.requested.store(false, Ordering::SeqCst);
        crate::locked(&self.prepared).take();
        let keys = self.keys();
        let result: Result<i64> = self
            .shared
            .call(
                Invocation::Script(&END, &[&keys.lease, &keys.journal], &[&self.owner]),
                "cannot clear the mark in",
            )
            .await;
        if let Err(e) = result {
            tracing::warn!("the in-flight mark stays (the next run reports it): {e}");
        }
    }

    async fn interrupted_request(&self) -> Option<InFlight> {
        let bytes: Option<Vec<u8>> = self
            .shared
            .call(Invocation::Get(&self.keys().journal), "cannot read from")
            .await
            .ok()?;
        Some(serde_json::from_slice(&bytes?).unwrap_or_else(|_| InFlight::unreadable(0)))
    }

    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    async fn rescue(&self, base_generation: u64, next: &StoreState) -> Result<String> {
        let prepared = crate::locked(&self.prepared).take();
        let (Some(rescue), Some(prepared)) = (&self.rescue, prepared) else {
            return Err(Error::config(
                "no rescue file could be prepared on this host",
                "set XDG_STATE_HOME or HOME to a writable directory",
            ));
        };
        prepared.write(rescue, base_generation, next)?;
        Ok(rescue.path().display().to_string())
    }

    async fn rescued(&self) -> Option<Result<StoreState>> {
        let rescued = self.rescue.as_ref()?.read()?;
        Some(rescued.and_then(|state| self.shared.bound(state)))
    }

    async fn drop_rescue(&self) {
        if let Some(rescue) = &self.rescue {
            rescue.remove();
        }
    }

    async fn release(self: Box<Self>) {
        self.renewer.abort();
        self.released.store(true, Ordering::SeqCst);
        let result: Result<i64> = self
            .shared
            .call(
                Invocation::Script(&RELEASE, &[&self.keys().lease], &[&self.owner]),
                "cannot release the lease on",
            )
            .await;
        if result.is_err() {
            release_now(&self.shared, &self.owner);
        }
    }
}

impl Drop for RedisLease {
    /// A lease dropped on an error path is released here (see [`release_now`]).
    fn drop(&mut self) {
        self.renewer.abort();
        if !self.released.load(Ordering::SeqCst) {
            release_now(&self.shared, &self.owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_never_holds_the_password() {
        let url = url::Url::parse("redis://user:s3cr%40t@db.example:6380/2").unwrap();
        assert_eq!(shown_url(&url), "redis://db.example:6380/2");
        assert_eq!(percent_decoded("s3cr%40t+x%2"), "s3cr@t+x%2");
        assert_eq!(
            scrub("auth failed for s3cr@t", &[Some("s3cr@t")]),
            "auth failed for *****"
        );
        let url = url::Url::parse("redis://only-a-secret@db.example").unwrap();
        assert_eq!(shown_url(&url), "redis://db.example");
    }

    #[test]
    fn a_url_redis_cannot_use_is_a_configuration_error_without_the_password() {
        let url = SecretString::from("redis://:pw@[::1".to_owned());
        let err = RedisStore::new(&url, "k".into(), Duration::from_secs(1)).err().unwrap();
        assert_eq!(err.code(), "CONFIGURATION_ERROR");
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn owners_differ_and_jitter_stays_within_the_pause() {
        assert_ne!(new_owner().unwrap(), new_owner().unwrap());
        let pause = Duration::from_millis(100);
        for _ in 0..50 {
            let j = jittered(pause);
            assert!(j >= pause / 2 && j <= pause, "{j:?}");
        }
    }
}
