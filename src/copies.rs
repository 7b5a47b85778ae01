//! The copies of the stored set: the env file the settings came from, and
//! the Railway service's variables. Each is delivered by one path, and the
//! store records which token generation each copy last received, so a copy
//! left stale by a failure (exit 6) is brought up to date by the next
//! `refresh --if-needed` or `railway-sync`, without rotating.
//!
//! The env file is rewritten under the store lock (a quick local write).
//! Railway is told after the lock is released, pizauth-style: push, then
//! re-check under the lock; if a peer saved a newer set meanwhile, push that
//! one too, so the last pusher always leaves Railway with the newest set.

use std::path::PathBuf;

use crate::clock::host_name;
use crate::envfile;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::railway::{RailwayClient, RailwayTarget};
use crate::rotation::Rotation;
use crate::settings::{RailwayConfig, Settings, StoreLocation};
use crate::store::{StoreLease, StoreState, TokenStore};
use crate::tokens::{Action, Policy, TOKEN_KEYS, TokenSet, TokenSource, now, prefixed_keys, prefixed_variables};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

const REFRESH_KEY: &str = TOKEN_KEYS[1];
const ENV_FILE_PREFIX: &str = "env_file:";

/// A peer saving newer sets without pause could keep us pushing forever.
const MAX_PUSH_ROUNDS: usize = 3;

/// Where the set goes after the store, decided before anything is sent.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The env file the settings came from, when it holds token keys.
    pub env_file: Option<PathBuf>,
    /// Why there is no `env_file` to write, when there is none.
    pub env_file_skip: Skip,
    /// Railway is configured and not declined.
    pub railway: bool,
    /// Railway's target when this run resolved it already (`refresh`, before
    /// rotating); else the push resolves it.
    pub railway_target: Option<Resolved>,
    pub deploy: bool,
    /// The prefix of the account's variables in its copies.
    pub variable_prefix: String,
}

/// Why a copy was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not set up (no env file read, Railway not configured).
    NotConfigured,
    /// The env file read holds none of the token keys, so it is not a copy.
    NoTokenKeys,
    /// `--no-env-file-update` / `--no-railway`.
    Declined,
    /// It already holds the stored set.
    UpToDate,
    /// The set in use came from the environment and is not in the store.
    NotStored,
    /// A held signal ended the run right after the save.
    Interrupted,
    /// `pull`: the set was read from Railway, and only the store takes it.
    PulledFrom,
}

/// What happened to one copy.
#[derive(Debug)]
pub enum Delivery {
    Delivered,
    Skipped(Skip),
    Failed(Error),
}

impl Delivery {
    pub fn error(&self) -> Option<&Error> {
        match self {
            Delivery::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Why this copy was not written (a skip's reason, a failure's
    /// detail), for the report; `None` when it was.
    pub fn reason(&self, copy: CopyKind) -> Option<String> {
        let why = match self {
            Delivery::Delivered => return None,
            Delivery::Failed(Error::EnvFileUpdateFailed { detail, .. } | Error::RailwayUpdateFailed { detail }) => {
                return Some(detail.clone());
            }
            Delivery::Failed(e) => return Some(e.to_string()),
            Delivery::Skipped(why) => why,
        };
        Some(
            match (why, copy) {
                (Skip::NotConfigured, CopyKind::EnvFile) => {
                    "no env file was read (none given, no ./.env, or --no-env-file)"
                }
                (Skip::NotConfigured, CopyKind::Railway) => "Railway is not configured",
                (Skip::NoTokenKeys, _) => "the env file read holds no WITHINGS_* token keys",
                (Skip::Declined, CopyKind::EnvFile) => "skipped by --no-env-file-update",
                (Skip::Declined, CopyKind::Railway) => "skipped by --no-railway",
                (Skip::UpToDate, _) => "it already holds this set",
                (Skip::NotStored, _) => "the set in use came from the environment and is not in the store",
                (Skip::Interrupted, _) => "a signal ended the run right after the save",
                (Skip::PulledFrom, CopyKind::Railway) => "the set was read from it",
                (Skip::PulledFrom, CopyKind::EnvFile) => "pull writes only the store",
            }
            .to_owned(),
        )
    }
}

/// Which copy a [`Delivery`] is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    EnvFile,
    Railway,
}

/// Both copies, and what Railway ended up holding.
#[derive(Debug)]
pub struct Deliveries {
    pub env_file: Delivery,
    pub railway: Delivery,
    pub deployed: bool,
    /// The set Railway received, when it is newer than the one reported.
    pub pushed: Option<(TokenSet, u64)>,
    /// The env file, when it was rewritten.
    pub env_file_path: Option<PathBuf>,
}

impl Deliveries {
    pub fn none(why: Skip) -> Deliveries {
        Deliveries {
            env_file: Delivery::Skipped(why),
            railway: Delivery::Skipped(why),
            deployed: false,
            pushed: None,
            env_file_path: None,
        }
    }

    pub fn failures(&self) -> impl Iterator<Item = &Error> {
        self.env_file.error().into_iter().chain(self.railway.error())
    }
}

/// Which copies a run asks for: the CLI's `--no-env-file-update`,
/// `--no-railway` and `--trigger-deployment`, the API's `update_railway`
/// and `trigger_deployment`. A copy asked for is written when configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choices {
    pub env_file: bool,
    pub railway: bool,
    /// Redeploy the Railway service once after updating its variables.
    pub deploy: bool,
}

impl Default for Choices {
    /// Every configured copy, no redeploy.
    fn default() -> Choices {
        Choices {
            env_file: true,
            railway: true,
            deploy: false,
        }
    }
}

/// Whether an env file holds one of the account's token keys: only then
/// is it the account's copy to rewrite.
pub fn holds_token_keys(file: &crate::envfile::EnvFile, prefix: &str) -> bool {
    let keys = prefixed_keys(prefix);
    file.holds_any(&keys.each_ref().map(String::as_str))
}

/// The copies this run may write. Railway half configured, or a deploy
/// asked for without Railway, is a configuration error before anything is
/// sent, so a typo never lets a refresh leave Railway silently behind.
pub fn targets(settings: &Settings, choices: Choices) -> Result<Targets> {
    let (env_file, env_file_skip) = match &settings.env_file {
        None => (None, Skip::NotConfigured),
        Some(f) if !holds_token_keys(&f.file, &settings.variable_prefix) => (None, Skip::NoTokenKeys),
        Some(_) if !choices.env_file => (None, Skip::Declined),
        Some(f) => (Some(f.path.clone()), Skip::NotConfigured),
    };
    let railway = match settings.railway.configuration() {
        _ if !choices.railway => false,
        RailwayConfig::Complete => true,
        RailwayConfig::Absent if choices.deploy => {
            return Err(Error::config(
                "--trigger-deployment needs Railway, which is not configured",
                "set RAILWAY_TOKEN (or RAILWAY_API_TOKEN), RAILWAY_PROJECT_ID and RAILWAY_SERVICE_ID, or drop --trigger-deployment",
            ));
        }
        RailwayConfig::Absent => false,
        RailwayConfig::Partial { missing } => return Err(half_configured(&missing)),
    };
    Ok(Targets {
        env_file,
        env_file_skip,
        railway,
        railway_target: None,
        deploy: choices.deploy,
        variable_prefix: settings.variable_prefix.clone(),
    })
}

fn half_configured(missing: &[&str]) -> Error {
    Error::config(
        format!(
            "Railway is only partly configured: missing {}; nothing was sent",
            missing.join(", ")
        ),
        "set the missing variables (check for typos such as RAILWAY_SERVICE for RAILWAY_SERVICE_ID), or pass `--no-railway`",
    )
}

/// `env_file:PATH`; in a store shared by many hosts (Redis) each host has
/// its own env file at what may be the same path: `env_file:HOST:PATH`.
pub fn env_file_key(settings: &Settings, path: &std::path::Path) -> String {
    match settings.store {
        StoreLocation::File(_) => format!("{ENV_FILE_PREFIX}{}", path.display()),
        StoreLocation::Redis { .. } => format!("{ENV_FILE_PREFIX}{}:{}", host_name(), path.display()),
    }
}

/// `railway:PROJECT/SERVICE@ENVIRONMENT` (the environment's id, or its name).
pub fn railway_key(settings: &Settings) -> String {
    let r = &settings.railway;
    let environment = r.environment_id.as_deref().unwrap_or(&r.environment_name);
    format!(
        "railway:{}/{}@{environment}",
        r.project_id.as_deref().unwrap_or_default(),
        r.service_id.as_deref().unwrap_or_default()
    )
}

/// Whether every copy `targets` names holds the set `state` holds.
pub fn none_behind(settings: &Settings, targets: &Targets, state: &StoreState) -> bool {
    let env_file = targets.env_file.as_ref().map(|path| env_file_key(settings, path));
    let railway = targets.railway.then(|| railway_key(settings));
    env_file.iter().chain(railway.iter()).all(|key| !behind(state, key))
}

/// Whether the copy named `key` lacks the stored set.
pub fn behind(state: &StoreState, key: &str) -> bool {
    state.copies.get(key).is_none_or(|got| *got < state.tokens_generation)
}

/// Brings every target that lacks the stored set up to date (after a
/// rotation, that is all of them). Never fails: each copy reports its own.
pub async fn deliver(
    settings: &Settings,
    http: &HttpClient,
    store: &dyn TokenStore,
    targets: &Targets,
    rotation: Rotation,
) -> Deliveries {
    let Rotation {
        outcome,
        source,
        mut state,
        lock,
        signal,
        ..
    } = rotation;
    let stop = if signal.is_some() {
        Some(Skip::Interrupted)
    } else if !outcome.rotated() && source != TokenSource::Store {
        Some(Skip::NotStored)
    } else {
        None
    };
    let env_file = match (stop, &targets.env_file, &lock) {
        (Some(why), _, _) => Delivery::Skipped(why),
        (None, None, _) => Delivery::Skipped(targets.env_file_skip),
        // Found current without the lock (see `rotation::refresh`).
        (None, Some(_), None) => Delivery::Skipped(Skip::UpToDate),
        (None, Some(path), Some(lock)) => {
            let key = env_file_key(settings, path);
            let read_at_start = settings.env_file.as_ref().map(|f| &f.file);
            deliver_env_file(
                lock.as_ref(),
                &mut state,
                (path, &targets.variable_prefix),
                key,
                read_at_start,
            )
            .await
        }
    };
    if let Some(lock) = lock {
        lock.release().await;
    }
    if let Some(why) = stop {
        return Deliveries::none(why);
    }
    let railway = deliver_railway(settings, http, store, targets, &state).await;
    let env_file_path = matches!(env_file, Delivery::Delivered)
        .then(|| targets.env_file.clone())
        .flatten();
    let railway_delivery = match railway.delivery {
        Delivery::Failed(e) => Delivery::Failed(as_railway_failure(e)),
        other => other,
    };
    let account = settings.account_name();
    if let Some(path) = &targets.env_file {
        note_copy(&account, env_file_key(settings, path), &env_file);
    }
    if targets.railway {
        note_copy(&account, railway_key(settings), &railway_delivery);
    }
    Deliveries {
        env_file,
        railway: railway_delivery,
        deployed: railway.deployed,
        pushed: railway.newer,
        env_file_path,
    }
}

/// Notes for the account's events whether the copy `key` holds the set
/// (delivered now, or already) or failed to take it.
fn note_copy(account: &crate::account_name::AccountName, key: String, delivery: &Delivery) {
    use crate::events::{Observation, Problem};
    let observation = match delivery {
        Delivery::Delivered | Delivery::Skipped(Skip::UpToDate) => Observation::CopyDelivered { copy: key },
        Delivery::Failed(e) => Observation::CopyFailed {
            copy: key,
            problem: Problem::of(e),
        },
        Delivery::Skipped(_) => return,
    };
    crate::events::note(account, observation);
}

/// Railway's copy, after the env file's and outside the lock: pushed when
/// Railway is a target and behind the store.
async fn deliver_railway(
    settings: &Settings,
    http: &HttpClient,
    store: &dyn TokenStore,
    targets: &Targets,
    state: &StoreState,
) -> Pushed {
    let skipped = |why| Pushed {
        delivery: Delivery::Skipped(why),
        newer: None,
        deployed: false,
    };
    match (targets.railway, &state.tokens) {
        (false, _) => skipped(declined_or_absent(settings)),
        (true, None) => skipped(Skip::NotConfigured),
        (true, Some(_)) if !behind(state, &railway_key(settings)) => skipped(Skip::UpToDate),
        (true, Some(tokens)) => {
            let from = match &targets.railway_target {
                Some(resolved) => TargetFrom::Resolved(resolved),
                None => TargetFrom::Store(state),
            };
            push(
                settings,
                http,
                store,
                from,
                tokens,
                state.tokens_generation,
                targets.deploy,
            )
            .await
        }
    }
}

fn declined_or_absent(settings: &Settings) -> Skip {
    match settings.railway.configuration() {
        RailwayConfig::Complete => Skip::Declined,
        _ => Skip::NotConfigured,
    }
}

/// Rewrites the env file's token keys when it lacks the stored set, and
/// records that it has it (one more small save under the same lock).
async fn deliver_env_file(
    lock: &dyn StoreLease,
    state: &mut StoreState,
    (path, prefix): (&std::path::Path, &str),
    key: String,
    read_at_start: Option<&crate::envfile::EnvFile>,
) -> Delivery {
    let Some(tokens) = state.tokens.as_ref() else {
        return Delivery::Skipped(Skip::NotConfigured);
    };
    if !behind(state, &key) {
        return Delivery::Skipped(Skip::UpToDate);
    }
    let variables = prefixed_variables(tokens, prefix);
    let updates: Vec<(&str, String)> = variables.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let refresh_key = format!("{prefix}{REFRESH_KEY}");
    // The file is ours to rewrite while its refresh token is one this tool
    // knows it holds: as read at start, the one just rotated away, or the
    // stored one (a long-running `serve` wrote the last two itself).
    let known = [
        read_at_start.and_then(|f| f.get(&refresh_key)),
        state.previous.as_ref().map(|p| p.refresh_token.expose_secret()),
        Some(tokens.refresh_token.expose_secret()),
    ];
    let still_ours = |now: &crate::envfile::EnvFile| known.contains(&now.get(&refresh_key));
    if let Err(e) = envfile::rewrite_file(path, &updates, Some(&still_ours)) {
        return Delivery::Failed(as_env_file_failure(path, e));
    }
    let generation = state.tokens_generation;
    record(lock, state, key, generation).await;
    Delivery::Delivered
}

/// Saves a copy record; losing one only means a later run writes that copy
/// again, so a failure is a warning.
async fn record(lock: &dyn StoreLease, state: &mut StoreState, key: String, generation: u64) {
    let mut next = state.clone();
    if key.starts_with(ENV_FILE_PREFIX) {
        // Other env files lacking the set are rewritten by their own hosts
        // whether their record says "behind" or is missing; dropping such
        // records keeps a store shared by short-lived hosts from growing.
        let current = state.tokens_generation;
        next.copies
            .retain(|other, got| !other.starts_with(ENV_FILE_PREFIX) || *got >= current);
    }
    next.copies.insert(key, generation);
    match lock.save(state.generation, &next).await {
        Ok(saved) => {
            *state = StoreState {
                generation: saved,
                ..next
            }
        }
        Err(e) => tracing::warn!("could not record the delivered copy in the store ({e}); it will be written again"),
    }
}

fn as_env_file_failure(path: &std::path::Path, e: Error) -> Error {
    match e {
        Error::EnvFileUpdateFailed { .. } => e,
        Error::Config { message, .. } => Error::EnvFileUpdateFailed {
            path: path.to_path_buf(),
            detail: message,
        },
        other => Error::EnvFileUpdateFailed {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

/// Railway's one error mapper: whatever stopped the push, the copy is stale.
/// A signal (`serve` stopping) keeps its own words: no setting is wrong.
pub fn as_railway_failure(e: Error) -> Error {
    match e {
        Error::RailwayUpdateFailed { .. } | Error::Interrupted { .. } => e,
        Error::Config { message, action } => Error::RailwayUpdateFailed {
            detail: format!("{message} ({action})"),
        },
        other => Error::RailwayUpdateFailed {
            detail: other.to_string(),
        },
    }
}

/// Where the Railway service's environment id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// RAILWAY_ENVIRONMENT_ID: nothing to ask Railway.
    Given,
    /// The store's record of an earlier lookup with the same settings.
    Recorded,
    /// Looked up by name in this run: recorded with the next copy record.
    LookedUp,
}

/// The Railway service the settings name, and how its environment was found.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub target: RailwayTarget,
    pub source: TargetSource,
}

/// How a push finds its target.
pub enum TargetFrom<'a> {
    /// Resolved earlier in this run (`refresh`, before rotating).
    Resolved(&'a Resolved),
    /// From the store as read: its record, or a lookup.
    Store(&'a StoreState),
}

/// The key of the environment id found for these settings: the Railway
/// copy record's key and a digest of every setting the lookup depends on
/// (endpoint, token, project, service, name), so that a change of any of
/// them (a new token, another URL) is one more lookup, made before a
/// refresh is sent, which finds a bad one before the token rotates. The
/// digest is 64 bits of SipHash: it tells settings apart, and gives no way
/// back to the token.
fn environment_key(settings: &Settings) -> String {
    use std::hash::{Hash, Hasher};
    let railway = &settings.railway;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    railway
        .api_url()
        .map(|u| u.as_str())
        .unwrap_or_default()
        .hash(&mut hasher);
    match &railway.auth {
        Some(crate::settings::RailwayAuth::Project(t)) => ("project", t.expose_secret()).hash(&mut hasher),
        Some(crate::settings::RailwayAuth::Account(t)) => ("account", t.expose_secret()).hash(&mut hasher),
        None => "none".hash(&mut hasher),
    }
    format!("{}#{:016x}", railway_key(settings), hasher.finish())
}

/// The Railway service the settings name. With RAILWAY_ENVIRONMENT_ID it
/// is known at once; an environment named by RAILWAY_ENVIRONMENT_NAME is
/// taken from the store's record (`known`: the store as read) when these
/// settings found it before, else looked up (one `environments` call).
/// Nothing is written here: a lookup is recorded with the copy record,
/// after a push that worked (see [`record_pushed`]).
pub async fn railway_target(settings: &Settings, client: &RailwayClient, known: &StoreState) -> Result<Resolved> {
    let railway = &settings.railway;
    if railway.environment_id.is_some() {
        let target = client.resolve_target(railway).await?;
        return Ok(Resolved {
            target,
            source: TargetSource::Given,
        });
    }
    if let Some(id) = known.railway_environments.get(&environment_key(settings)) {
        let mut recorded = railway.clone();
        recorded.environment_id = Some(id.clone());
        let target = client.resolve_target(&recorded).await?;
        return Ok(Resolved {
            target,
            source: TargetSource::Recorded,
        });
    }
    let target = client.resolve_target(railway).await?;
    Ok(Resolved {
        target,
        source: TargetSource::LookedUp,
    })
}

/// Before a refresh is sent to Withings: Railway's target, resolved as
/// [`railway_target`] does, so that a setting Railway refuses stops the
/// run before the token rotates (CONFIGURATION_ERROR, nothing sent). When
/// Railway cannot be reached, that error (network, upstream, rate limit)
/// is returned for the caller to weigh (see `refresh`).
pub async fn railway_target_before_rotating(
    settings: &Settings,
    http: &HttpClient,
    known: &StoreState,
) -> Result<Resolved> {
    let client = RailwayClient::new(http.clone(), &settings.railway)?;
    let nothing_sent = "; nothing was sent to Withings";
    match railway_target(settings, &client, known).await {
        Ok(resolved) => Ok(resolved),
        Err(e) if is_unreachable(&e) => Err(e),
        Err(Error::Config { message, action }) => Err(Error::config(
            format!("{message}{nothing_sent}"),
            format!("{action}; or pass `--no-railway` to refresh without Railway"),
        )),
        Err(other) => Err(Error::config(
            format!("Railway refused the lookup of the target service: {other}{nothing_sent}"),
            "fix the Railway token (RAILWAY_TOKEN or RAILWAY_API_TOKEN), RAILWAY_PROJECT_ID and RAILWAY_ENVIRONMENT_NAME (or set RAILWAY_ENVIRONMENT_ID), or pass `--no-railway` to refresh without Railway",
        )),
    }
}

/// What a refresh about to be sent learnt of Railway first (see
/// [`railway_before_rotating`]).
pub enum RailwayFirst {
    /// Railway's target is resolved, or there was none to resolve (Railway
    /// is not a target, or nothing would be sent): rotate, then deliver to
    /// these targets.
    Ready(Targets),
    /// Railway could not be reached (`error`) and the token works until
    /// `until`: a refresh that was not forced does not rotate a set Railway
    /// could not receive (the next run tries again; the service on Railway
    /// keeps a working pair meanwhile).
    Wait { error: Error, until: DateTime<Utc> },
    /// Railway could not be reached (`error`), but the token has expired
    /// (or its expiry is unknown) or the refresh was forced: rotate anyway,
    /// since a due token must never be left to die waiting for Railway;
    /// Railway is pushed after the save (a stale copy if it still fails).
    Anyway { targets: Targets, error: Error },
}

/// Before a refresh is sent: Railway's target, resolved when Railway is a
/// target and `policy` would send one for the set `seen_before` holds
/// ([`railway_target_before_rotating`]). A setting Railway refuses is the
/// error: rotating would leave Railway behind on every run. Railway that
/// cannot be reached is weighed as [`RailwayFirst`] says.
pub async fn railway_before_rotating(
    settings: &Settings,
    http: &HttpClient,
    seen_before: &StoreState,
    policy: Policy,
    targets: &Targets,
) -> Result<RailwayFirst> {
    let mut targets = targets.clone();
    if !targets.railway || !would_send(settings, seen_before, policy) {
        return Ok(RailwayFirst::Ready(targets));
    }
    let error = match railway_target_before_rotating(settings, http, seen_before).await {
        Ok(resolved) => {
            targets.railway_target = Some(resolved);
            return Ok(RailwayFirst::Ready(targets));
        }
        Err(e) if !is_unreachable(&e) => return Err(e),
        Err(e) => e,
    };
    let valid_until = seen_before
        .tokens
        .as_ref()
        .and_then(|t| t.expires_at)
        .filter(|at| *at > now());
    Ok(match (policy.force, valid_until) {
        (false, Some(until)) => RailwayFirst::Wait { error, until },
        _ => RailwayFirst::Anyway { targets, error },
    })
}

/// Whether a refresh would be sent, as the store read before the lock tells.
fn would_send(settings: &Settings, seen: &StoreState, policy: Policy) -> bool {
    let assessment = crate::rotation::assess_in_use(settings, seen, now(), policy);
    matches!(assessment.action, Action::Refresh(_))
}

/// Railway gave no usable answer (as opposed to refusing a setting).
pub fn is_unreachable(e: &Error) -> bool {
    matches!(
        e,
        Error::Network { .. } | Error::Upstream { .. } | Error::RateLimited { .. }
    )
}

/// Pushes `tokens` (generation `generation`), re-checks (see the module
/// doc), then redeploys once when asked.
pub async fn push(
    settings: &Settings,
    http: &HttpClient,
    store: &dyn TokenStore,
    from: TargetFrom<'_>,
    tokens: &TokenSet,
    generation: u64,
    deploy: bool,
) -> Pushed {
    let result = async {
        let client = RailwayClient::new(http.clone(), &settings.railway)?;
        let resolved = match from {
            TargetFrom::Resolved(resolved) => resolved.clone(),
            TargetFrom::Store(known) => railway_target(settings, &client, known).await?,
        };
        let (newest, target) = push_to(settings, &client, store, resolved, tokens, generation).await?;
        if deploy {
            client.redeploy(&target).await?;
            tracing::info!("Railway redeploy of service {} triggered", target.service_id);
        }
        Ok::<_, Error>(newest)
    };
    match result.await {
        Ok((set, pushed)) => Pushed {
            delivery: Delivery::Delivered,
            newer: (pushed != generation).then_some((set, pushed)),
            deployed: deploy,
        },
        // Mapped by the caller: a stale copy after a rotation, but a wrong
        // setting stays exit 3 for `railway-sync`, which rotated nothing.
        Err(e) => Pushed {
            delivery: Delivery::Failed(e),
            newer: None,
            deployed: false,
        },
    }
}

/// What a push did.
pub struct Pushed {
    pub delivery: Delivery,
    /// The set Railway ended up with, when a peer's newer one was pushed.
    pub newer: Option<(TokenSet, u64)>,
    pub deployed: bool,
}

/// Pushes to the resolved target; when Railway refuses a recorded one,
/// looks the name up once more (the environment may have been recreated
/// under the same name) and pushes there if the id changed. Returns the
/// set Railway holds and the target that took it.
async fn push_to(
    settings: &Settings,
    client: &RailwayClient,
    store: &dyn TokenStore,
    resolved: Resolved,
    tokens: &TokenSet,
    generation: u64,
) -> Result<((TokenSet, u64), RailwayTarget)> {
    let pushed = push_newest(settings, client, &resolved, store, tokens.clone(), generation).await;
    let refused_recorded =
        resolved.source == TargetSource::Recorded && matches!(pushed, Err(Error::RailwayUpdateFailed { .. }));
    if !refused_recorded {
        return pushed.map(|newest| (newest, resolved.target));
    }
    let again = railway_target(settings, client, &StoreState::default()).await?;
    if again.target == resolved.target {
        return pushed.map(|newest| (newest, resolved.target));
    }
    tracing::info!("Railway's environment id for these settings changed; pushing to the new one");
    let newest = push_newest(settings, client, &again, store, tokens.clone(), generation).await?;
    Ok((newest, again.target))
}

async fn push_newest(
    settings: &Settings,
    client: &RailwayClient,
    resolved: &Resolved,
    store: &dyn TokenStore,
    mut tokens: TokenSet,
    mut generation: u64,
) -> Result<(TokenSet, u64)> {
    let target = &resolved.target;
    for _ in 0..MAX_PUSH_ROUNDS {
        client
            .upsert(
                target,
                &prefixed_variables(&tokens, &settings.variable_prefix)
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect(),
            )
            .await?;
        tracing::info!(
            "Railway service {} now holds set generation {generation}",
            target.service_id
        );
        // Reads are whole files (atomic renames), so the re-check needs no
        // lock: a run that waits for one could report a set Railway lost.
        let state = store.load().await?;
        match state.tokens {
            Some(newer) if state.tokens_generation > generation => {
                tracing::info!(
                    "a peer saved set generation {} meanwhile; pushing it too",
                    state.tokens_generation
                );
                (tokens, generation) = (newer, state.tokens_generation);
            }
            _ => {
                let looked_up = (resolved.source == TargetSource::LookedUp).then_some(target.environment_id.as_str());
                record_pushed(settings, store, generation, looked_up).await;
                return Ok((tokens, generation));
            }
        }
    }
    Err(Error::RailwayUpdateFailed {
        detail: format!(
            "peers kept saving newer sets while this run pushed (last seen set generation {generation}); the next push brings Railway up to date"
        ),
    })
}

/// Records that Railway holds `generation`, unless a newer record exists,
/// and the environment id `looked_up` by name for these settings (replacing
/// the records of their earlier versions), in one save. Missing the record
/// only means a later run pushes, or looks up, again.
async fn record_pushed(settings: &Settings, store: &dyn TokenStore, generation: u64, looked_up: Option<&str>) {
    let key = railway_key(settings);
    let recorded = async {
        let lock = store.lock(settings.lock_timeout).await?;
        let saved = async {
            let state = lock.load().await?;
            let mut next = state.clone();
            let known = state.copies.get(&key).copied().unwrap_or(0);
            if known < generation && state.tokens_generation == generation {
                next.copies.insert(key.clone(), generation);
            }
            if let Some(id) = looked_up {
                let key = environment_key(settings);
                let same_settings_before = format!("{}#", railway_key(settings));
                next.railway_environments
                    .retain(|other, _| !other.starts_with(&same_settings_before));
                next.railway_environments.insert(key, id.to_owned());
            }
            if next.copies == state.copies && next.railway_environments == state.railway_environments {
                return Ok(());
            }
            lock.save(state.generation, &next).await.map(|_| ())
        }
        .await;
        lock.release().await;
        saved
    };
    if let Err(e) = recorded.await {
        tracing::warn!("Railway is updated, but the store could not record it ({e}); a later run pushes again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(store: &str) -> Settings {
        let global = crate::cli::overrides(&["--no-env-file", "--store", store]);
        let vars = |name: &str| (name == "WITHINGS_CLIENT_ID").then(|| "id".to_owned());
        Settings::resolve(&global, None, &vars).unwrap()
    }

    #[test]
    fn the_recorded_environment_is_keyed_by_every_setting_its_lookup_depends_on() {
        let with = |token: &str, url: &str| {
            let global = crate::cli::overrides(&["--no-env-file"]);
            let vars = |name: &str| match name {
                "HOME" => Some("/h".to_owned()),
                "RAILWAY_TOKEN" => Some(token.to_owned()),
                "RAILWAY_API_URL" => Some(url.to_owned()),
                "RAILWAY_PROJECT_ID" => Some("p".to_owned()),
                "RAILWAY_SERVICE_ID" => Some("s".to_owned()),
                _ => None,
            };
            environment_key(&Settings::resolve(&global, None, &vars).unwrap())
        };
        let key = with("t1", "https://railway.example/graphql");
        assert!(key.starts_with("railway:p/s@production#"), "{key}");
        assert!(!key.contains("t1"), "{key}");
        assert_eq!(key, with("t1", "https://railway.example/graphql"));
        assert_ne!(key, with("t2", "https://railway.example/graphql"));
        assert_ne!(key, with("t1", "https://other.example/graphql"));
    }

    #[test]
    fn an_env_file_copy_in_a_shared_store_is_recorded_per_host() {
        let path = std::path::Path::new("/app/.env");
        assert_eq!(env_file_key(&settings("/s/tokens.json"), path), "env_file:/app/.env");
        let shared = env_file_key(&settings("redis://127.0.0.1"), path);
        assert_eq!(shared, format!("env_file:{}:/app/.env", host_name()));
        assert!(!host_name().is_empty() && !host_name().contains('\n'));
    }
}
