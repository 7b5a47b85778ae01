//! `RedisStore`: the token set under one Redis key, shared by many hosts.
//!
//! A file lock cannot keep two hosts apart; a lease in one Redis can, if it
//! stays safe when its holder pauses (GC, suspend, a slow network) past its
//! time to live. So (Kleppmann, "How to do distributed locking"):
//! - the set is JSON (the file store's format, plus `fence`) under
//!   `<key>`; the lease is `<key>:lease`, taken with `SET NX PX` by a random
//!   owner, and taking it increments `<key>:fence`, the holder's fence;
//! - a task renews the lease every third of its life while it is held,
//!   through the whole Withings call; release is a compare-and-delete;
//! - the request is marked in `<key>:journal` by a script that checks, at
//!   that instant, that the lease is still ours and the set still the one
//!   assessed: nothing is sent otherwise;
//! - the save is a compare-and-set script: the generation must be the one
//!   this run started from, the stored fence no newer than ours, and the
//!   lease ours or untaken since. A holder whose lease ran out and was
//!   taken over can never overwrite the newer set.
//!
//! Redis errors never reach Withings: a store that cannot be reached, or a
//! lease not had within `--lock-timeout`, stops the run before anything is
//! sent (exit 5).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::{
    InFlight, MAX_STORE_BYTES, ParseFailure, STORE_VERSION, StoreLease, StoreState, TokenStore, parse_store,
    serialize_store, tokens_generation_after,
};
use crate::error::{Error, Result};

/// A Redis round trip takes a millisecond; one this slow is an outage.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Lua reads the stored generation as a double, exact up to 2^53.
const MAX_GENERATION: u64 = (1 << 53) - 1;
/// How long a dropped lease's release may block.
const DROP_RELEASE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest pause between two tries for a taken lease.
const MAX_POLL: Duration = Duration::from_millis(100);

/// Takes the lease when free; returns the new fence, or 0 when taken.
const TAKE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0";

/// Extends the lease only while it is ours.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Deletes the lease only while it is ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// The stored generation and fence (`-1` for a value that is not a store).
const READ_STORED: &str = r"
local function stored(key)
  local current = redis.call('GET', key)
  if not current then return 0, 0 end
  local ok, decoded = pcall(cjson.decode, current)
  if not ok or type(decoded) ~= 'table' then return -1, 0 end
  return tonumber(decoded.generation) or -1, tonumber(decoded.fence) or 0
end";

/// Marks the request in flight, and renews the lease for the call, only
/// while the lease is ours and the set is the one assessed.
const BEGIN: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'lease' end
local generation = stored(KEYS[1])
if generation ~= tonumber(ARGV[2]) then return 'generation' end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 'ok'";

/// The fenced compare-and-set.
const SAVE: &str = r"
local generation, fence = stored(KEYS[1])
if generation == -1 then return 'corrupt' end
local mine = tonumber(ARGV[2])
if fence > mine then return 'fence' end
local holder = redis.call('GET', KEYS[2])
local latest = tonumber(redis.call('GET', KEYS[3]) or '0')
if holder ~= ARGV[1] and latest ~= mine then return 'fence' end
if generation ~= tonumber(ARGV[3]) then return 'generation' end
redis.call('SET', KEYS[1], ARGV[4])
return 'ok'";

/// Clears the in-flight mark: any mark while the lease is ours (a dead
/// run's included), else only our own.
const END: &str = r"
local mark = redis.call('GET', KEYS[2])
if not mark then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] or string.find(mark, ARGV[1], 1, true) then
  return redis.call('DEL', KEYS[2])
end
return 0";

/// The keys one token set uses.
#[derive(Clone)]
struct Keys {
    data: String,
    lease: String,
    fence: String,
    journal: String,
}

/// Where the set is and how to talk to it; shared with the leases.
struct Shared {
    client: Client,
    /// The URL without its password, for every message.
    shown: String,
    /// Cut out of any error text that might echo it.
    password: Option<String>,
    keys: Keys,
    connection: OnceCell<MultiplexedConnection>,
}

pub struct RedisStore {
    shared: Arc<Shared>,
    lease_ttl: Duration,
}

impl RedisStore {
    /// A store at `url` under `key`; nothing is connected until first use.
    pub fn new(url: &SecretString, key: String, lease_ttl: Duration) -> Result<Self> {
        let parsed = url::Url::parse(url.expose_secret()).map_err(|e| bad_url(&e.to_string()))?;
        let password = parsed.password().map(percent_decoded);
        let client =
            Client::open(url.expose_secret()).map_err(|e| bad_url(&scrub(&e.to_string(), password.as_deref())))?;
        let keys = Keys {
            lease: format!("{key}:lease"),
            fence: format!("{key}:fence"),
            journal: format!("{key}:journal"),
            data: key,
        };
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                shown: shown_url(&parsed),
                password,
                keys,
                connection: OnceCell::new(),
            }),
            lease_ttl,
        })
    }
}

fn bad_url(why: &str) -> Error {
    Error::config(
        format!("the Redis store URL is not usable: {why}"),
        "write it as redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) in `--store` or WITHINGS_TOKEN_STORE",
    )
}

fn percent_decoded(text: &str) -> String {
    url::form_urlencoded::parse(format!("p={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// `redis://user@host:port/db`, never the password.
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn scrub(text: &str, password: Option<&str>) -> String {
    match password.filter(|p| !p.is_empty()) {
        Some(p) => text.replace(p, "*****"),
        None => text.to_owned(),
    }
}

impl Shared {
    fn location(&self) -> String {
        format!("{} key {}", self.shown, self.keys.data)
    }

    async fn connection(&self) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        self.connection
            .get_or_try_init(|| self.client.get_multiplexed_async_connection_with_config(&config))
            .await
            .cloned()
            .map_err(|e| self.unavailable("cannot connect to", &e))
    }

    /// A failed call: wrong credentials are a configuration error, the
    /// rest a store that cannot be reached. Either way nothing was sent.
    fn unavailable(&self, what: &str, e: &RedisError) -> Error {
        let text = scrub(&e.to_string(), self.password.as_deref());
        let refused = matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
            || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
        if refused {
            return Error::config(
                format!("Redis at {} refused the credentials: {text}", self.shown),
                "check the user and password in the redis:// URL (redis://[USER]:PASSWORD@HOST:PORT)",
            );
        }
        Error::StoreUnavailable {
            detail: format!(
                "{what} Redis at {}: {text}; nothing was sent to Withings and the stored tokens are unchanged",
                self.shown
            ),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut con = self.connection().await?;
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable("cannot read from", &e))
    }

    async fn load(&self) -> Result<StoreState> {
        let Some(bytes) = self.get(&self.keys.data).await? else {
            return Ok(StoreState::default());
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
        parse_store(&bytes).map_err(|reason| match reason {
            ParseFailure::Newer(v) => Error::config(
                format!(
                    "token store {} has format version {v}, newer than this binary reads ({STORE_VERSION})",
                    self.location()
                ),
                "upgrade withings-token on this host (every host sharing the store needs the newer one)",
            ),
            ParseFailure::Corrupt(reason) => corrupt(reason),
        })
    }

    async fn run<T: redis::FromRedisValue>(&self, script: &str, keys: &[&str], args: &[&str], what: &str) -> Result<T> {
        let mut con = self.connection().await?;
        run_script(&mut con, script, keys, args)
            .await
            .map_err(|e| self.unavailable(what, &e))
    }
}

async fn run_script<T: redis::FromRedisValue>(
    con: &mut MultiplexedConnection,
    script: &str,
    keys: &[&str],
    args: &[&str],
) -> redis::RedisResult<T> {
    let source = if script.contains("stored(") {
        format!("{READ_STORED}\n{script}")
    } else {
        script.to_owned()
    };
    let script = Script::new(&source);
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(*key);
    }
    for arg in args {
        invocation.arg(*arg);
    }
    invocation.invoke_async(con).await
}

#[async_trait]
impl TokenStore for RedisStore {
    fn location(&self) -> String {
        self.shared.location()
    }

    async fn load(&self) -> Result<StoreState> {
        self.shared.load().await
    }

    async fn lock(&self, timeout: Duration) -> Result<Box<dyn StoreLease>> {
        let shared = &self.shared;
        let owner = new_owner()?;
        let ttl_ms = self.lease_ttl.as_millis().to_string();
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let keys = [shared.keys.lease.as_str(), shared.keys.fence.as_str()];
            let fence: u64 = shared
                .run(TAKE, &keys, &[&owner, &ttl_ms], "cannot take the lease on")
                .await?;
            if fence > 0 {
                tracing::debug!("took the Redis lease {} with fence {fence}", shared.keys.lease);
                return Ok(Box::new(
                    RedisLease::start(shared.clone(), owner, fence, self.lease_ttl).await?,
                ));
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    place: format!("the Redis lease {} at {}", shared.keys.lease, shared.shown),
                    waited_secs: waited.as_secs(),
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

/// A held lease; a task renews it until it is released or dropped.
pub struct RedisLease {
    shared: Arc<Shared>,
    owner: String,
    fence: u64,
    ttl: Duration,
    renewer: JoinHandle<()>,
    released: AtomicBool,
}

impl RedisLease {
    async fn start(shared: Arc<Shared>, owner: String, fence: u64, ttl: Duration) -> Result<Self> {
        let con = shared.connection().await?;
        let renewer = tokio::spawn(renew(con, shared.keys.lease.clone(), owner.clone(), ttl));
        Ok(RedisLease {
            shared,
            owner,
            fence,
            ttl,
            renewer,
            released: AtomicBool::new(false),
        })
    }

    fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// Why a script refused: nothing of this run's was written.
    fn refused(&self, verdict: &str, then: &str) -> Error {
        let why = match verdict {
            "lease" | "fence" => format!(
                "the lease on {} ran out while this run held it (a pause longer than its {} s?) and another run took it",
                self.shared.location(),
                self.ttl.as_secs()
            ),
            "generation" => format!("another run saved {} meanwhile", self.shared.location()),
            other => format!("Redis answered `{other}`"),
        };
        Error::StoreUnavailable {
            detail: format!("{why}; {then}"),
        }
    }
}

/// Renews every third of the lease's life; stops when it is not ours.
async fn renew(mut con: MultiplexedConnection, lease: String, owner: String, ttl: Duration) {
    let ttl_ms = ttl.as_millis().to_string();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match run_script::<i64>(&mut con, RENEW, &[&lease], &[&owner, &ttl_ms]).await {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(
                    "the Redis lease {lease} ran out before it could be renewed; this run's save will be refused if another run took it"
                );
                return;
            }
            // The next try may get through; the save's checks stay.
            Err(e) => tracing::debug!("renewing the Redis lease failed: {:?}", e.kind()),
        }
    }
}

#[async_trait]
impl StoreLease for RedisLease {
    async fn load(&self) -> Result<StoreState> {
        self.shared.load().await
    }

    async fn save(&self, base_generation: u64, next: &StoreState) -> Result<u64> {
        const UNCHANGED: &str = "the stored tokens are unchanged";
        if base_generation >= MAX_GENERATION {
            return Err(Error::config(
                format!(
                    "token store {} is at generation {base_generation}, the largest a Redis store counts to; {UNCHANGED}",
                    self.shared.location()
                ),
                "with no other withings-token run active, `export` the set, delete the key and seed it again",
            ));
        }
        let on_store = self.shared.load().await?;
        let generation = base_generation + 1;
        let tokens_generation = tokens_generation_after(&on_store, next, generation);
        let bytes = serialize_store(next, generation, tokens_generation, Some(self.fence))?;
        let json = String::from_utf8(bytes).map_err(anyhow::Error::from)?;
        let keys = self.keys();
        let (fence, base) = (self.fence.to_string(), base_generation.to_string());
        let verdict: String = self
            .shared
            .run(
                SAVE,
                &[&keys.data, &keys.lease, &keys.fence],
                &[&self.owner, &fence, &base, &json],
                "cannot save to",
            )
            .await?;
        match verdict.as_str() {
            "ok" => Ok(generation),
            "corrupt" => Err(Error::CorruptStore {
                place: self.shared.location(),
                reason: "not a withings-token store (not JSON)".into(),
            }),
            other => Err(self.refused(other, "this run's save was refused, so the newer set stays")),
        }
    }

    async fn begin_request(&self, generation: u64, grant: &str) -> Result<()> {
        const NOTHING_SENT: &str = "nothing was sent to Withings";
        if generation >= MAX_GENERATION {
            return Err(self.refused("generation", NOTHING_SENT));
        }
        let mark = InFlight {
            pid: std::process::id(),
            started_at: crate::tokens::now(),
            generation,
            grant: grant.to_owned(),
            owner: Some(self.owner.clone()),
        };
        let mark = serde_json::to_string(&mark).map_err(anyhow::Error::from)?;
        let keys = self.keys();
        let (generation, ttl_ms) = (generation.to_string(), self.ttl.as_millis().to_string());
        let verdict: String = self
            .shared
            .run(
                BEGIN,
                &[&keys.data, &keys.lease, &keys.journal],
                &[&self.owner, &generation, &mark, &ttl_ms],
                "cannot mark the request in",
            )
            .await?;
        match verdict.as_str() {
            "ok" => Ok(()),
            other => Err(self.refused(other, NOTHING_SENT)),
        }
    }

    async fn end_request(&self) {
        let keys = self.keys();
        let result: Result<i64> = self
            .shared
            .run(
                END,
                &[&keys.lease, &keys.journal],
                &[&self.owner],
                "cannot clear the mark in",
            )
            .await;
        if let Err(e) = result {
            tracing::debug!("the in-flight mark stays: {e}");
        }
    }

    async fn interrupted_request(&self) -> Option<InFlight> {
        let bytes = self.shared.get(&self.keys().journal).await.ok()??;
        Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| InFlight {
            pid: 0,
            started_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            generation: 0,
            grant: "unknown".into(),
            owner: None,
        }))
    }

    async fn release(self: Box<Self>) {
        self.renewer.abort();
        self.released.store(true, Ordering::SeqCst);
        let result: Result<i64> = self
            .shared
            .run(
                RELEASE,
                &[&self.keys().lease],
                &[&self.owner],
                "cannot release the lease on",
            )
            .await;
        if let Err(e) = result {
            tracing::debug!("the lease will expire by itself: {e}");
        }
    }
}

impl Drop for RedisLease {
    /// A lease dropped on an error path is released here, on a connection
    /// of its own: a task could die with the runtime, and the next run
    /// would wait for the lease to expire. Blocks for a round trip at most
    /// [`DROP_RELEASE_TIMEOUT`]; after that the lease expires by itself.
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let released = self
            .shared
            .client
            .get_connection_with_timeout(DROP_RELEASE_TIMEOUT)
            .and_then(|mut con| {
                con.set_read_timeout(Some(DROP_RELEASE_TIMEOUT))?;
                con.set_write_timeout(Some(DROP_RELEASE_TIMEOUT))?;
                Script::new(RELEASE)
                    .key(&self.shared.keys.lease)
                    .arg(&self.owner)
                    .invoke::<i64>(&mut con)
            });
        if let Err(e) = released {
            tracing::debug!("the lease will expire by itself: {:?}", e.kind());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_never_holds_the_password() {
        let url = url::Url::parse("redis://user:s3cr%40t@db.example:6380/2").unwrap();
        assert_eq!(shown_url(&url), "redis://user@db.example:6380/2");
        assert_eq!(percent_decoded("s3cr%40t"), "s3cr@t");
        assert_eq!(scrub("auth failed for s3cr@t", Some("s3cr@t")), "auth failed for *****");
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
