//! `RedisLease`: the lease a run holds on the set while it decides, asks
//! Withings and saves (see the store's module doc for its rules).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::task::JoinHandle;

use super::scripts::{BEGIN, END, RELEASE, RENEW, SAVE};
use super::{Invocation, Keys, MAX_POLL, Shared, nothing_sent};
use crate::error::{Error, Result};
use crate::store::rescue::{PreparedRescue, RescueFile};
use crate::store::{InFlight, StoreLease, StoreState, same_set, serialize_store, tokens_generation_after};

/// Lua reads the stored generation as a double, exact up to 2^53.
const MAX_GENERATION: u64 = (1 << 53) - 1;
/// How long a dropped lease's release may block.
const DROP_RELEASE_TIMEOUT: Duration = Duration::from_millis(500);
/// A peer saving copy records without pause could keep a save rebasing.
const MAX_REBASES: usize = 3;

/// Releases `owner`'s lease on a connection of its own, blocking at most
/// [`DROP_RELEASE_TIMEOUT`] per step: for drops and error paths, where a
/// task could die with the runtime and the next run would wait out the
/// lease. After a failure the lease expires by itself.
pub(super) fn release_now(shared: &Shared, owner: &str) {
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
    pub(super) rescue: Option<RescueFile>,
    prepared: Mutex<Option<PreparedRescue>>,
}

impl RedisLease {
    pub(super) fn start(shared: Arc<Shared>, owner: String, fence: u64, ttl: Duration) -> Self {
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
    /// keep an answer Redis will not take sends nothing.
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
            other => Error::internal(anyhow::anyhow!("Redis answered `{other}` to a save")),
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
        let keyring = &self.shared.keyring;
        keyring.check_write(
            on_store.sealed || next.sealed,
            &format!("token store {}", self.shared.location()),
        )?;
        let bytes = serialize_store(next, generation, tokens_generation, Some(self.fence), keyring)?;
        let json = std::str::from_utf8(&bytes).map_err(anyhow::Error::from)?;
        let keys = self.keys();
        let (fence, base) = (self.fence.to_string(), base_generation.to_string());
        let flag = if after_request { "1" } else { "0" };
        let holds_a_set = if next.tokens.is_some() { "1" } else { "0" };
        // The account joins the deployment's index in the save itself, so a
        // saved account is never one that no listing finds.
        let (index, name) = match &self.shared.index {
            Some((index, name)) => (index.as_str(), name.as_str()),
            None => (keys.data.as_str(), ""),
        };
        let verdict: String = self
            .shared
            .call(
                Invocation::Script(
                    &SAVE,
                    &[&keys.data, &keys.lease, &keys.journal, &keys.held, index],
                    &[&self.owner, &fence, &base, json, flag, holds_a_set, name],
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
    fn check_write(&self, loaded: &StoreState) -> Result<()> {
        let place = format!("token store {}", self.shared.location());
        self.shared.keyring.check_write(loaded.sealed, &place)
    }

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
                Ok((verdict, generation)) if verdict == "ok" => {
                    self.shared.unseal_events_after_plain_write().await;
                    return Ok(generation);
                }
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
