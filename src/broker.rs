//! A fresh access token for a consumer (`access-token`, `exec`, the broker
//! of `serve`): the set in use when its access token lives `min_ttl` more,
//! else a refresh first. [`decide`] is the decision both faces make;
//! [`fresh_tokens`] is the command line's whole operation (`serve` runs its
//! refresh as a single-flight job of its own, `server::jobs`).

use secrecy::SecretString;

use crate::copies::{self, Choices, Targets};
use crate::error::{Error, Result};
use crate::http::{HttpClient, block_on};
use crate::output::Secrets;
use crate::progress::Progress;
use crate::report::{Ending, deliver_and_build_report};
use crate::rotation;
use crate::settings::Settings;
use crate::store::{StoreState, TokenStore};
use crate::tokens::{AccessDigest, Action, Assessment, Cadence, MinTtl, Policy, TokenSet, assess_for_min_ttl, now};

/// What a consumer that needs the access token to live `min_ttl` more gets
/// from the set in use.
#[derive(Debug, Clone)]
pub enum Freshness {
    /// The set in use lives long enough: its access token is the answer.
    Fresh(TokenSet),
    /// Its access token expires within `min_ttl` (or its expiry cannot be
    /// trusted): refresh first.
    Due { has_access_token: bool },
    /// It holds no access token (a bare seed) though it is not due: rotate
    /// to get one.
    NoAccessToken,
    /// Neither the store nor the environment holds a set.
    NoTokens,
}

/// Whether [`decide`] logs its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// A run acts on it: logged (`-vv`), as every decision a run acts on.
    Decision,
    /// `serve` renders it for its requests (once a second at most): quiet.
    Quiet,
}

/// The decision for a consumer asking for `asked`, about the set in use in
/// `state` (the store's, else `seed`: `rotation::seed_for`) at `now`, and
/// the `min_ttl` in force (capped to half the set's lifetime:
/// `tokens::MinTtl`), to be said by the caller when capped. `cadence`: the
/// account's (`Settings::cadence`); an idle set is refreshed for a consumer
/// too, but without jitter (see [`Cadence::without_jitter`]).
pub fn decide(
    state: &StoreState,
    seed: Option<&TokenSet>,
    now: chrono::DateTime<chrono::Utc>,
    (asked, cadence): (chrono::Duration, Cadence),
    log: Log,
) -> (Freshness, MinTtl) {
    let cadence = cadence.without_jitter();
    let (assessment, min_ttl) = assess_for_min_ttl(state.tokens.as_ref(), seed, now, asked, cadence);
    if log == Log::Decision {
        rotation::log_decision(&assessment);
    }
    (freshness(assessment), min_ttl)
}

fn freshness(assessment: Assessment) -> Freshness {
    match (assessment.action, assessment.tokens) {
        (Action::NoTokens, _) => Freshness::NoTokens,
        (Action::NotDue { .. }, Some(tokens)) if tokens.access_token.is_some() => Freshness::Fresh(tokens),
        (Action::NotDue { .. }, _) => Freshness::NoAccessToken,
        (_, tokens) => Freshness::Due {
            has_access_token: tokens.is_some_and(|t| t.access_token.is_some()),
        },
    }
}

impl Freshness {
    /// The command line's refresh for a set that is not fresh: due within
    /// the `min_ttl` in force, and forced when the set lacks an access token
    /// (or there is none to look at yet). `serve`'s broker forces only a set
    /// that is not due (`Want::Rotate`), so that a peer's set saved while it
    /// waited is taken instead of rotated again.
    fn refresh_policy(&self, min_ttl: chrono::Duration, cadence: Cadence) -> Policy {
        Policy {
            buffer: Some(min_ttl),
            force: !matches!(self, Freshness::Due { has_access_token: true }),
            cadence: cadence.without_jitter(),
        }
    }
}

/// The set `fresh_tokens` gives.
pub enum Fresh {
    /// The set in use lived long enough: nothing was sent.
    InUse(TokenSet),
    /// A refresh ran: its set, and how its copies went (or the signal that
    /// ended it right after the save).
    Refreshed(TokenSet, Ending),
}

/// A set whose access token has at least `min_ttl` left, refreshing first
/// (store, then the copies `choices` keep) when it has less; `command` is
/// named by a missing setting's error.
pub fn fresh_tokens(
    (min_ttl, command): (std::time::Duration, &str),
    choices: Choices,
    settings: &Settings,
    (progress, secrets): (&impl Progress, Secrets),
) -> Result<Fresh> {
    let targets = copies::targets(settings, choices)?;
    let store = crate::store::open(settings)?;
    let min_ttl =
        chrono::Duration::from_std(min_ttl).map_err(|_| Error::config("--min-ttl is too long", "use at most 366d"))?;
    // A file is read without a runtime: a fresh set in one then needs no
    // runtime, client or lock at all.
    let local = store.load_local().transpose()?;
    let read = match local {
        Some(seen) => match fresh_enough(settings, &seen, min_ttl, progress) {
            Ok(tokens) => return Ok(Fresh::InUse(tokens)),
            Err(refresh) => Some((seen, refresh)),
        },
        None => None,
    };
    block_on(fresh_from(
        store.as_ref(),
        read,
        &targets,
        (min_ttl, command),
        settings,
        (progress, secrets),
    ))?
}

/// The set in use when its access token lives at least `min_ttl` more,
/// `min_ttl` capped to half the set's lifetime (and that said); else the
/// policy of the refresh it needs.
fn fresh_enough(
    settings: &Settings,
    seen: &StoreState,
    min_ttl: chrono::Duration,
    progress: &impl Progress,
) -> std::result::Result<TokenSet, Policy> {
    let seed = rotation::seed_for(settings, seen);
    let cadence = settings.cadence();
    let (freshness, min_ttl) = decide(seen, seed, now(), (min_ttl, cadence), Log::Decision);
    if let Some(note) = min_ttl.capped_note("--min-ttl") {
        progress.tell(&format!("warning: {note}"));
    }
    match freshness {
        Freshness::Fresh(tokens) => Ok(tokens),
        other => Err(other.refresh_policy(min_ttl.ttl, cadence)),
    }
}

/// `read`: the store as `fresh_tokens` read it (a file) and the refresh it
/// needs, else it is read here, on the runtime (Redis), and may turn out
/// fresh.
async fn fresh_from(
    store: &dyn TokenStore,
    read: Option<(StoreState, Policy)>,
    targets: &Targets,
    (min_ttl, command): (chrono::Duration, &str),
    settings: &Settings,
    (progress, secrets): (&impl Progress, Secrets),
) -> Result<Fresh> {
    let (seen_before, policy) = match read {
        Some(read) => read,
        None => {
            let seen = store.load().await?;
            match fresh_enough(settings, &seen, min_ttl, progress) {
                Ok(tokens) => return Ok(Fresh::InUse(tokens)),
                Err(policy) => (seen, policy),
            }
        }
    };
    let current = copies::none_behind(settings, targets, &seen_before);
    let read = (&seen_before, policy, current);
    refresh_and_deliver(store, read, targets, command, settings, (progress, secrets)).await
}

/// One refresh of what `seen_before` held under `policy` (`shortcut`: a
/// set not due may be answered without the lock), then its copies.
async fn refresh_and_deliver(
    store: &dyn TokenStore,
    (seen_before, policy, shortcut): (&StoreState, Policy, bool),
    targets: &Targets,
    command: &str,
    settings: &Settings,
    (progress, secrets): (&impl Progress, Secrets),
) -> Result<Fresh> {
    let http = HttpClient::new(settings.http)?;
    let client = crate::withings::client_for(settings, &http, command)?.sharing_budget_through(store);
    let _waiting = progress.waiting("refreshing the Withings tokens…");
    let rotation = rotation::refresh(settings, store, seen_before, &client, policy, shortcut).await?;
    let tokens = rotation.tokens.clone();
    let ending = deliver_and_build_report(settings, &http, store, targets, rotation, secrets).await;
    Ok(Fresh::Refreshed(tokens, ending))
}

/// A set in place of one whose access token `refused` Withings refused
/// (`api`'s read, sent once more with it): the set in use when it holds
/// another access token already (another run replaced it) or was issued a
/// moment ago, else the one refresh `tokens::replacing` allows, judged
/// again under the lock, its copies delivered as `fresh_tokens` delivers
/// them.
pub fn replaced_tokens(
    refused: &SecretString,
    choices: Choices,
    settings: &Settings,
    (progress, secrets): (&impl Progress, Secrets),
) -> Result<Fresh> {
    let targets = copies::targets(settings, choices)?;
    let store = crate::store::open(settings)?;
    block_on(async {
        let store = store.as_ref();
        let seen_before = store.load().await?;
        let policy = rotation::replacing_policy(settings, &seen_before, AccessDigest::of(refused));
        // Kept (another run replaced it, or it was issued a moment ago):
        // no lock, no request.
        let in_use = rotation::assess_in_use(settings, &seen_before, now(), policy);
        if matches!(in_use.action, Action::NotDue { .. })
            && let Some(tokens) = in_use.tokens.filter(|tokens| tokens.access_token.is_some())
        {
            return Ok(Fresh::InUse(tokens));
        }
        let read = (&seen_before, policy, false);
        refresh_and_deliver(store, read, &targets, "api", settings, (progress, secrets)).await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use secrecy::SecretString;

    fn set(access: bool, expires_in: Duration) -> TokenSet {
        let at = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
        TokenSet {
            access_token: access.then(|| SecretString::from("a")),
            refresh_token: SecretString::from("r"),
            expires_at: Some(at + expires_in),
            last_refreshed: Some(at + expires_in - Duration::hours(3)),
            userid: None,
            scope: None,
        }
    }

    fn decide_for(tokens: Option<TokenSet>, asked: Duration) -> Freshness {
        let state = StoreState {
            tokens,
            ..StoreState::default()
        };
        let at = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
        decide(&state, None, at, (asked, Cadence::default()), Log::Quiet).0
    }

    #[test]
    fn a_set_is_fresh_only_with_an_access_token_that_lives_min_ttl_more() {
        let five = Duration::minutes(5);
        assert!(matches!(
            decide_for(Some(set(true, Duration::hours(2))), five),
            Freshness::Fresh(_)
        ));
        assert!(matches!(
            decide_for(Some(set(true, Duration::minutes(3))), five),
            Freshness::Due { has_access_token: true }
        ));
        assert!(matches!(
            decide_for(Some(set(false, Duration::minutes(3))), five),
            Freshness::Due {
                has_access_token: false
            }
        ));
        assert!(matches!(
            decide_for(Some(set(false, Duration::hours(2))), five),
            Freshness::NoAccessToken
        ));
        assert!(matches!(decide_for(None, five), Freshness::NoTokens));
    }

    #[test]
    fn the_command_line_forces_a_refresh_of_a_set_without_an_access_token() {
        let ttl = Duration::minutes(5);
        let forced = |f: Freshness| f.refresh_policy(ttl, Cadence::default()).force;
        assert!(!forced(Freshness::Due { has_access_token: true }));
        assert!(forced(Freshness::Due {
            has_access_token: false
        }));
        assert!(forced(Freshness::NoAccessToken));
        assert!(forced(Freshness::NoTokens));
        assert_eq!(
            Freshness::NoTokens.refresh_policy(ttl, Cadence::default()).buffer,
            Some(ttl)
        );
    }
}
