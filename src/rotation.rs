//! The refresh rotation and the one save path of a new set. A refresh takes
//! the store lock, reloads, assesses, reserves the save, marks the request in
//! the journal, holds signals, asks Withings, saves, releases. Every new set
//! (a refresh's, or consent's first one: `consent::transaction`) is saved by
//! [`keep`], which falls back to the rescue file or memory, and a set a run
//! could not save is adopted under the next lock ([`adopt_unsaved`]). The
//! lock is handed back with the result so the copies (env file, Railway) are
//! delivered from the set that was saved; see `copies.rs`. Nothing here
//! prints: it returns what happened.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::signals::HeldSignals;
use crate::store::{PreviousToken, StoreLease, StoreState, TokenStore};
use crate::tokens::{
    AccessDigest, Action, Assessment, Policy, SeenBefore, TokenSet, TokenSource, assess, now, rfc3339,
};
use crate::withings::{Grant, WithingsClient};

/// Withings keeps a rotated refresh token alive for about this long.
const PREVIOUS_TOKEN_GRACE: Duration = Duration::hours(8);

/// Which refresh token obtained the new set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The token in use.
    Current,
    /// The previous generation's token, still within Withings' grace.
    Previous,
    /// The store's own token, after the environment's newer one was refused.
    StoreFallback,
}

/// How a transaction ended for the token set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Refreshed {
        via: Via,
    },
    Exchanged,
    NotDue {
        expires_at: chrono::DateTime<chrono::Utc>,
        refresh_at: chrono::DateTime<chrono::Utc>,
    },
    RefreshedByPeer,
}

impl Outcome {
    pub fn rotated(&self) -> bool {
        matches!(self, Outcome::Refreshed { .. } | Outcome::Exchanged)
    }
}

/// The set in use after a transaction, what happened to it, and the lock
/// still held, so the copies start from exactly this state.
pub struct Rotation {
    pub outcome: Outcome,
    pub tokens: TokenSet,
    pub source: TokenSource,
    /// The store as it is now (after the save, when there was one).
    pub state: StoreState,
    /// `None` when the set was found not due without taking the lock.
    pub lock: Option<Box<dyn StoreLease>>,
    /// A SIGINT/SIGTERM held while the answer was being saved.
    pub signal: Option<i32>,
}

pub fn no_tokens_error() -> Error {
    Error::config(
        "no token to work with: the store holds no token set and WITHINGS_REFRESH_TOKEN is not set",
        "authorise once: run `withings-token auth-url`, open it, then `withings-token exchange '<redirect URL>'` (or set WITHINGS_REFRESH_TOKEN)",
    )
}

/// Why there is no set to work with in `state`: nothing was ever saved, or
/// (an error of its own) the store lost the set it held.
pub fn no_tokens_error_for(state: &StoreState) -> Error {
    let Some(place) = &state.lost else {
        return no_tokens_error();
    };
    Error::config(
        format!(
            "the token store {place} lost its set: its key is gone although it held one (evicted under memory pressure, flushed, or Redis restarted without persistence); nothing was sent"
        ),
        "restore it: `withings-token pull --from railway` when Railway holds the set, or set WITHINGS_REFRESH_TOKEN from a copy (an env file) and run `withings-token refresh`, else re-authorise (`withings-token login`); then make Redis keep it (maxmemory-policy noeviction, appendonly yes), which `withings-token doctor` checks",
    )
}

/// Refreshes under the lock when `policy` says so. `seen_before` is what
/// this run read from the store before it waited for the lock.
/// `copies_current`: no copy lacks the set `seen_before` holds; then a set
/// that is not due needs no lock at all (see [`not_due_without_lock`]).
/// What happened is noted for the account's events (`events`): a set in
/// use, or what the failure says about the account.
pub async fn refresh(
    settings: &Settings,
    store: &dyn TokenStore,
    seen_before: &StoreState,
    client: &WithingsClient,
    policy: Policy,
    copies_current: bool,
) -> Result<Rotation> {
    let mut attempt = Attempt {
        generation: seen_before.tokens_generation,
        asked: false,
    };
    let result = refresh_unnoted(
        settings,
        store,
        seen_before,
        client,
        (policy, copies_current),
        &mut attempt,
    )
    .await;
    let account = settings.account_name();
    match &result {
        Ok(rotation) => crate::events::note_in_use(&account, &rotation.state, rotation.outcome.rotated()),
        Err(e) if attempt.asked => crate::events::note_failed_request(&account, e, attempt.generation),
        Err(e) => crate::events::note_error(&account, e, attempt.generation),
    }
    result
}

/// How far a refresh got, for what its failure says about the account.
struct Attempt {
    /// The set a failure is of: as read under the lock, once it is taken.
    generation: u64,
    /// Withings was asked: any failure from then on (the app's credentials
    /// refused, a full disk) is the account's, not only the passing ones.
    asked: bool,
}

async fn refresh_unnoted(
    settings: &Settings,
    store: &dyn TokenStore,
    seen_before: &StoreState,
    client: &WithingsClient,
    (policy, copies_current): (Policy, bool),
    attempt: &mut Attempt,
) -> Result<Rotation> {
    // A rescued set waiting is adopted under the lock, due or not.
    if copies_current
        && store.waiting_rescue().is_none()
        && !unsaved_waiting(&store.location())
        && let Some(rotation) = not_due_without_lock(settings, seen_before, policy)
    {
        return Ok(rotation);
    }
    let lock = store.lock(settings.lock_timeout).await?;
    let state = lock.load().await?;
    report_interrupted(lock.as_ref(), &state).await;
    let state = adopt_unsaved(settings, lock.as_ref(), &store.location(), state).await?;
    attempt.generation = state.tokens_generation;
    let seen = SeenBefore::found(seen_before.tokens.as_ref());
    let assessment = decide(&state, seed_for(settings, &state), seen, now(), policy);
    let Assessment {
        tokens, source, action, ..
    } = assessment;
    let tokens = tokens.ok_or_else(|| no_tokens_error_for(&state))?;
    if source == TokenSource::Env {
        crate::consent::refuse_another_accounts_seed(settings, &tokens).await?;
    }
    let outcome = match action {
        Action::NoTokens => return Err(no_tokens_error_for(&state)),
        Action::NotDue { expires_at, refresh_at } => Outcome::NotDue { expires_at, refresh_at },
        Action::RefreshedByPeer => Outcome::RefreshedByPeer,
        Action::Refresh(_) => {
            attempt.asked = true;
            return rotate(lock, &store.location(), state, &tokens, source, client).await;
        }
    };
    Ok(Rotation {
        outcome,
        tokens,
        source,
        state,
        lock: Some(lock),
        signal: None,
    })
}

/// A set that is not due, read without the lock, is not due: a peer that
/// rotated meanwhile only made it fresher, and every save replaces the
/// whole store. So cron's many `--if-needed` runs (and many hosts on one
/// Redis) do not queue for the lock just to find nothing to do.
fn not_due_without_lock(settings: &Settings, seen_before: &StoreState, policy: Policy) -> Option<Rotation> {
    if policy.force {
        return None;
    }
    let assessment = assess_in_use(settings, seen_before, now(), policy);
    let Action::NotDue { expires_at, refresh_at } = assessment.action else {
        return None;
    };
    if assessment.source == TokenSource::Env {
        // A seed is checked against the other accounts, under the lock.
        return None;
    }
    // Logged only when it is the decision this run acts on; otherwise the
    // one under the lock is.
    log_decision(&assessment);
    Some(Rotation {
        outcome: Outcome::NotDue { expires_at, refresh_at },
        tokens: assessment.tokens?,
        source: assessment.source,
        state: seen_before.clone(),
        lock: None,
        signal: None,
    })
}

/// The environment's seed, unless it holds the refresh token this store
/// already rotated away (sending that one again would fork the chain).
pub fn seed_for<'a>(settings: &'a Settings, state: &StoreState) -> Option<&'a TokenSet> {
    let seed = settings.seed_tokens.as_ref()?;
    if rotated_away(state, seed) {
        // Said once: `serve` asks on every check and every status read.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            tracing::info!("WITHINGS_REFRESH_TOKEN is the store's previous, already rotated token; it is ignored");
        });
        return None;
    }
    Some(seed)
}

/// Whether `set` holds the refresh token `state` already rotated away (its
/// previous one): a set from outside the store (the environment's seed, an
/// import) that must not be used.
pub fn rotated_away(state: &StoreState, set: &TokenSet) -> bool {
    let retired = state.previous.as_ref().map(|p| p.refresh_token.expose_secret());
    retired == Some(set.refresh_token.expose_secret())
}

/// `state` holding `set`, a set adopted from outside the store (Railway's
/// copy, an export), which carries no user id nor scope: the account is
/// the same, so the stored set's carry over; the refresh token it
/// replaces, when another, becomes the previous one (Withings honours it
/// a while).
pub(crate) fn with_outside_set(state: &StoreState, mut set: TokenSet) -> StoreState {
    let replaced = state.tokens.as_ref();
    if let Some(old) = replaced {
        set.userid = old.userid.clone();
        set.scope = old.scope.clone();
    }
    let previous = match replaced {
        Some(old) if !old.refresh_token_equals(&set) => Some(PreviousToken {
            refresh_token: SecretString::from(old.refresh_token.expose_secret().to_owned()),
            rotated_at: now(),
        }),
        _ => state.previous.clone(),
    };
    StoreState {
        tokens: Some(set),
        previous,
        ..state.clone()
    }
}

/// The decision about the set in use in `state` (the store's, else `seed`,
/// the environment's set as [`seed_for`] gives it) at `now`, for a run that
/// saw `seen_before` before it took the lock, logged (`-vv`): the one a run
/// acts on or reports.
pub fn decide(
    state: &StoreState,
    seed: Option<&TokenSet>,
    seen_before: SeenBefore<'_>,
    now: DateTime<Utc>,
    policy: Policy,
) -> Assessment {
    let assessment = assess(state.tokens.as_ref(), seed, seen_before, now, policy);
    log_decision(&assessment);
    assessment
}

/// [`decide`] without the log line, for a run that did not look before: a
/// look at the set in use ahead of the decision (which set, whether one
/// would be sent), or a report of it other than `status`'s.
pub fn assess_in_use(settings: &Settings, state: &StoreState, now: DateTime<Utc>, policy: Policy) -> Assessment {
    let seed = seed_for(settings, state);
    assess(state.tokens.as_ref(), seed, SeenBefore::NotLooked, now, policy)
}

/// The policy that replaces the access token `refused` (Withings refused
/// it), judged on the set in use in `seen_before` (the store's, else the
/// seed): see `tokens::replacing`.
pub fn replacing_policy(settings: &Settings, seen_before: &StoreState, refused: AccessDigest) -> Policy {
    let usual = Policy {
        buffer: settings.buffer,
        force: false,
        cadence: settings.cadence(),
    };
    let in_use = assess_in_use(settings, seen_before, now(), usual).tokens;
    crate::tokens::replacing(refused, in_use.as_ref(), usual.buffer, usual.cadence, now())
}

/// `-vv` shows the decision and where the tokens came from.
pub fn log_decision(assessment: &Assessment) {
    let decision = match assessment.action {
        Action::NoTokens => "no token set to work with".to_owned(),
        Action::Refresh(reason) => format!("refresh: {}", reason.describe()),
        Action::NotDue { refresh_at, .. } => format!("not due until {}", rfc3339(refresh_at)),
        Action::RefreshedByPeer => "a peer refreshed the set while this run waited".to_owned(),
    };
    let buffer = assessment.buffer.map(|b| b.num_minutes());
    tracing::debug!(
        "decision: {decision}; token source: {:?}; buffer: {buffer:?} min",
        assessment.source
    );
}

/// Sends the refresh and saves the answer. The save's space is reserved and
/// the journal written before anything is sent, and signals are held from
/// the send until the save, so that an answer, once received, is kept.
async fn rotate(
    lock: Box<dyn StoreLease>,
    location: &str,
    state: StoreState,
    tokens: &TokenSet,
    source: TokenSource,
    client: &WithingsClient,
) -> Result<Rotation> {
    // Writes the journal and reserves the save's space, before the send.
    lock.check_write(&state)?;
    lock.begin_request(state.generation, "refresh_token").await?;
    let held = HeldSignals::hold();
    let result = request_with_fallback(client, tokens, source, &state, lock.as_ref()).await;
    let saved = match result {
        Ok((new, sent, via)) => {
            let new = carry_over(new, tokens);
            // `sent` is the token that obtained the answer: Withings honours it
            // for a while, so it is the one worth keeping as the previous one.
            let previous = Some(PreviousToken {
                refresh_token: sent,
                rotated_at: now(),
            });
            let mut next = StoreState {
                tokens: Some(new.clone()),
                previous,
                ..state.clone()
            };
            crate::clock::record_into(&mut next.clock_offsets);
            keep(lock.as_ref(), location, &state, next)
                .await
                .map(|saved| (new, saved, via))
        }
        Err(e) => Err(e),
    };
    lock.end_request().await;
    let signal = held.release();
    let (new, state, via) = match saved {
        Ok(saved) => saved,
        Err(refused @ Error::InvalidRefreshToken { .. }) => {
            return peer_saved_meanwhile(lock, &state, signal).await.ok_or(refused);
        }
        Err(e) => return Err(e),
    };
    Ok(Rotation {
        outcome: Outcome::Refreshed { via },
        tokens: new,
        source,
        state,
        lock: Some(lock),
        signal,
    })
}

/// A token refused because another run rotated it meanwhile (this run's
/// lease ran out, or its lock file was deleted) is no reason to
/// re-authorise: the store holds that run's newer set, which is the answer.
async fn peer_saved_meanwhile(lock: Box<dyn StoreLease>, before: &StoreState, signal: Option<i32>) -> Option<Rotation> {
    let now = lock.load().await.ok()?;
    let moved_on =
        now.generation > before.generation && !crate::store::same_set(now.tokens.as_ref(), before.tokens.as_ref());
    let tokens = now.tokens.clone().filter(|_| moved_on)?;
    tracing::warn!(
        "Withings refused the refresh token this run sent, but another run saved a newer set meanwhile (generation {}): that one is in use",
        now.generation
    );
    Some(Rotation {
        outcome: Outcome::RefreshedByPeer,
        tokens,
        source: TokenSource::Store,
        state: now,
        lock: Some(lock),
        signal,
    })
}

/// Saves the new set Withings just issued. When the store cannot take it,
/// the set is kept in the rescue file (its space and descriptors were taken
/// before the request), or, should even that fail, in this process's
/// memory (`serve` saves it at its next transaction): never dropped while
/// it may be the only live pair. A store that moved on to another run's
/// set (that run's answer is kept) needs no rescue.
pub(crate) async fn keep(
    lock: &dyn StoreLease,
    location: &str,
    state: &StoreState,
    next: StoreState,
) -> Result<StoreState> {
    let cause = match commit_new_set(lock, state, next.clone()).await {
        Ok(saved) => return Ok(saved),
        Err(e @ Error::AnswerDropped { .. }) => return Err(e),
        Err(e) => e,
    };
    let kept = match lock.rescue(state.generation, &next).await {
        Ok(place) => Some(place),
        Err(e) if KEEP_IN_MEMORY.load(std::sync::atomic::Ordering::SeqCst) => {
            tracing::error!(
                "the new set could not be kept in the rescue file either ({e}); this server keeps it in memory"
            );
            let set = StoreState {
                generation: state.generation.saturating_add(1),
                ..next
            };
            remember_unsaved(location, set);
            Some("this server's memory".to_owned())
        }
        Err(e) => {
            tracing::error!("the new set could not be kept in the rescue file either: {e}");
            None
        }
    };
    Err(Error::NotSaved {
        cause: Box::new(cause),
        kept,
    })
}

/// Whether a set that could be kept nowhere else is kept in memory: in a
/// process that lives on to save it (`serve`), not in a CLI run.
static KEEP_IN_MEMORY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For a long-running process: a set no file could take is kept in memory
/// and saved at the next transaction.
pub fn keep_unsaved_in_memory() {
    KEEP_IN_MEMORY.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A set this process could not save anywhere, for the store at
/// `location`, as the generation it should have been.
struct Unsaved {
    location: String,
    set: StoreState,
}

/// One set at most per store: `serve` keeps every account's store, and one
/// account's unsaved set must never push out another's.
static UNSAVED: std::sync::Mutex<Vec<Unsaved>> = std::sync::Mutex::new(Vec::new());

/// Whether this process holds a set it could not save for the store at
/// `location` (see [`keep`]).
pub fn unsaved_waiting(location: &str) -> bool {
    crate::locked(&UNSAVED).iter().any(|u| u.location == location)
}

/// Keeps `set` (as the generation it should have been) for the next
/// transaction on the store at `location`, in place of an older one for it.
fn remember_unsaved(location: &str, set: StoreState) {
    let mut unsaved = crate::locked(&UNSAVED);
    unsaved.retain(|u| u.location != location);
    unsaved.push(Unsaved {
        location: location.to_owned(),
        set,
    });
}

/// Drops a set this process could not save for the store at `location`:
/// its account was removed, and the set goes with it.
pub fn forget_unsaved(location: &str) {
    crate::locked(&UNSAVED).retain(|u| u.location != location);
}

/// A set a previous run (or this process) could not save, adopted under
/// the lock: saved into the store while the store's token set is still
/// the one it came from (other fields may have moved on), or when the
/// store is empty (nothing newer to protect); dropped when the store holds
/// a newer set of its own, which is the one kept. Returns the state to go
/// on from.
/// The set waiting to be adopted for `location`: this process's own
/// unsaved one (`true`), else the rescue file's (`false`); an unreadable
/// rescue file is said and left in place.
async fn waiting_set(lock: &dyn StoreLease, location: &str) -> Option<(StoreState, bool)> {
    let in_memory = {
        let mut unsaved = crate::locked(&UNSAVED);
        let at = unsaved.iter().position(|u| u.location == location);
        at.map(|at| unsaved.swap_remove(at).set)
    };
    if let Some(set) = in_memory {
        return Some((set, true));
    }
    match lock.rescued().await? {
        Ok(set) => Some((set, false)),
        Err(e) => {
            tracing::error!("{e}; it is left in place, and the stored set stays in use");
            None
        }
    }
}

/// Whether the person of a rescued set, adopted into an empty store, is
/// another account's: one person per account, as consent says. The rescue
/// is kept, not used, for a person to look at.
async fn held_by_another_account(settings: &Settings, rescued: &StoreState) -> bool {
    let Some(user) = rescued.tokens.as_ref().and_then(|t| t.userid.as_deref()) else {
        return false;
    };
    match crate::consent::holder_of(settings, user, &settings.account_name()).await {
        Ok(Some(holder)) => {
            tracing::error!(
                "a set a previous run could not save for account {} is Withings user {user}'s, whom account {holder} holds; it is not used (it stays where it waits), and the store stays empty",
                settings.account_name()
            );
            true
        }
        _ => false,
    }
}

pub(crate) async fn adopt_unsaved(
    settings: &Settings,
    lock: &dyn StoreLease,
    location: &str,
    state: StoreState,
) -> Result<StoreState> {
    let Some((rescued, from_memory)) = waiting_set(lock, location).await else {
        return Ok(state);
    };
    // The rescued set came from the set the store held at the generation
    // before it: it fits while the store's set is still that one (other
    // fields, such as a consent state, may have moved on).
    let fits = rescued.tokens.is_some() && (state.tokens.is_none() || state.tokens_generation < rescued.generation);
    if let Some((theirs, ours)) = other_persons(&rescued, &state) {
        tracing::warn!(
            "a set a previous run could not save for {location} is Withings user {theirs}'s, and the store holds user {ours}'s (the account was removed and its name given to another person); it is dropped, and the stored set stays in use"
        );
        lock.drop_rescue().await;
        return Ok(state);
    }
    if fits && state.tokens.is_none() && held_by_another_account(settings, &rescued).await {
        if from_memory {
            remember_unsaved(location, rescued);
        }
        return Ok(state);
    }
    if !fits {
        let already = crate::store::same_set(rescued.tokens.as_ref(), state.tokens.as_ref());
        if !already {
            tracing::warn!(
                "a set a previous run could not save (as generation {}) is dropped: the store moved on to generation {} with a set of its own",
                rescued.generation,
                state.generation
            );
        }
        lock.drop_rescue().await;
        return Ok(state);
    }
    let next = state.with_set_of(&rescued);
    match lock.save(state.generation, &next).await {
        Ok(generation) => {
            lock.drop_rescue().await;
            tracing::warn!(
                "saved the set a previous run could not save into {location} (generation {generation}); it is the one in use now"
            );
            Ok(StoreState {
                generation,
                tokens_generation: generation,
                ..next
            })
        }
        Err(e) => {
            if from_memory {
                remember_unsaved(location, rescued);
            }
            Err(e)
        }
    }
}

/// The Withings users of a rescued set and of the stored one, when both
/// are known and differ: a rescue is never another person's set to adopt.
fn other_persons<'a>(rescued: &'a StoreState, state: &'a StoreState) -> Option<(&'a str, &'a str)> {
    let user = |s: &'a StoreState| s.tokens.as_ref().and_then(|t| t.userid.as_deref());
    let (theirs, ours) = (user(rescued)?, user(state)?);
    (theirs != ours).then_some((theirs, ours))
}

/// Saves the new set into the space reserved before the request. A failure
/// here is rare (the space was reserved), and must say the old token still
/// works: nobody has used the new access token yet.
async fn commit_new_set(lock: &dyn StoreLease, state: &StoreState, next: StoreState) -> Result<StoreState> {
    match lock.save(state.generation, &next).await {
        Ok(generation) => Ok(StoreState {
            generation,
            tokens_generation: generation,
            ..next
        }),
        Err(Error::Config { message, .. }) => Err(Error::config(
            format!("{message}; the new tokens could not be saved"),
            "fix the disk or permissions and run `withings-token refresh` again: the stored refresh token stays valid for about 8 hours because the new one was never used",
        )),
        Err(other) => Err(other),
    }
}

/// The one token worth trying after a refusal: the store's own set when the
/// refused one came from the environment, else the previous generation's
/// while Withings still honours it.
fn fallback_token<'a>(
    tokens: &TokenSet,
    source: TokenSource,
    state: &'a StoreState,
) -> Option<(&'a SecretString, Via)> {
    let differs = |t: &SecretString| t.expose_secret() != tokens.refresh_token.expose_secret();
    if source == TokenSource::Env {
        let stored = state.tokens.as_ref().filter(|t| differs(&t.refresh_token))?;
        return Some((&stored.refresh_token, Via::StoreFallback));
    }
    let previous = state
        .previous
        .as_ref()
        .filter(|p| now() - p.rotated_at < PREVIOUS_TOKEN_GRACE && differs(&p.refresh_token))?;
    Some((&previous.refresh_token, Via::Previous))
}

/// Returns the new set, the refresh token that obtained it, and which one
/// that was.
async fn request_with_fallback(
    client: &WithingsClient,
    tokens: &TokenSet,
    source: TokenSource,
    state: &StoreState,
    lease: &dyn StoreLease,
) -> Result<(TokenSet, SecretString, Via)> {
    // No retry once the lease is known lost: another run may be sending now.
    let may_send = || {
        if !lease.lost() {
            return Ok(());
        }
        Err(Error::StoreUnavailable {
            detail: "this run's lease on the store ran out while it retried; nothing more was sent, and another run may be refreshing now".into(),
        })
    };
    let mut detail = match client
        .request_token_while(&Grant::Refresh(&tokens.refresh_token), may_send)
        .await
    {
        Err(Error::InvalidRefreshToken { detail }) => detail,
        other => return other.map(|set| (set, tokens.refresh_token.clone(), Via::Current)),
    };
    if source == TokenSource::Env {
        detail.push_str(if state.tokens.is_some() {
            " (the refused token came from WITHINGS_REFRESH_TOKEN, newer than the store's by its WITHINGS_TOKEN_LAST_REFRESHED)"
        } else {
            " (the refused token came from WITHINGS_REFRESH_TOKEN; the store holds no set to fall back on)"
        });
    }
    let Some((fallback, via)) = fallback_token(tokens, source, state) else {
        return Err(Error::InvalidRefreshToken { detail });
    };
    if lease.lost() {
        // Another run may hold the lease now and be sending the same token.
        detail.push_str(" (the fallback was not tried: this run's lease on the store ran out)");
        return Err(Error::InvalidRefreshToken { detail });
    }
    tracing::warn!(
        "Withings refused the refresh token in use; trying {}",
        describe_via(via)
    );
    match client.request_token_while(&Grant::Refresh(fallback), may_send).await {
        Ok(set) => Ok((set, fallback.clone(), via)),
        Err(Error::InvalidRefreshToken { .. }) => Err(Error::InvalidRefreshToken { detail }),
        // A transient failure of the second try is not a refusal: retry later.
        Err(other) => Err(other),
    }
}

/// How a report names the token that obtained the set.
pub fn describe_via(via: Via) -> &'static str {
    match via {
        Via::Current => "the current refresh token",
        Via::Previous => "the previous generation's refresh token (still within Withings' grace)",
        Via::StoreFallback => "the store's refresh token (the environment's newer one was refused)",
    }
}

/// Withings omits `userid`/`scope` at times; keep what we knew.
fn carry_over(mut new: TokenSet, old: &TokenSet) -> TokenSet {
    if new.userid.is_none() {
        new.userid = old.userid.clone();
    }
    if new.scope.is_none() {
        new.scope = old.scope.clone();
    }
    new
}

/// A mark left by a run that did not finish asking Withings (it died, or
/// its lease ran out) is said, with what became of its answer, and cleared.
pub(crate) async fn report_interrupted(lock: &dyn StoreLease, state: &StoreState) {
    let Some(mark) = lock.interrupted_request().await else {
        return;
    };
    if mark.is_unreadable() {
        tracing::warn!(
            "an in-flight mark that cannot be read was found (a run may have died while asking Withings); it is cleared, and the stored set (generation {}) is the last one saved",
            state.generation
        );
        lock.end_request().await;
        return;
    }
    let kept = if state.tokens.is_none() {
        "nothing was ever saved in this store; the token that was sent stays valid for a while, because the lost answer was never used".to_owned()
    } else if mark.generation < state.generation {
        format!(
            "its answer was saved before it died (the store is at generation {}), so nothing was lost",
            state.generation
        )
    } else {
        format!(
            "the stored set (generation {}) is the last one saved, and its refresh token stays valid because the lost answer was never used",
            state.generation
        )
    };
    // A shared store's mark may be a live run's on another host, paused
    // past its lease: it is not known to be dead.
    let what = if mark.owner.is_some() {
        "did not finish under its lease (it died, or paused past the lease)"
    } else {
        "died"
    };
    tracing::warn!(
        "a previous run (pid {}) {what} while asking Withings for a {} grant at {}; {kept}",
        mark.pid,
        mark.grant,
        rfc3339(mark.started_at),
    );
    lock.end_request().await;
}
