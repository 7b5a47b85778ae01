//! Replacing a set whose access token Withings refused (`{"status": 401}`
//! to a data call): the proxy's and `api`'s one refresh for a refusal; and
//! `serve`'s rotation asked for, which gives way to a peer's the same way.
//!
//! The set is made due rather than forced: under the lock, a forced
//! refresh rotates whatever it finds, while a due one gives way to a peer
//! that rotated since (`Action::RefreshedByPeer`), so however many calls
//! and processes saw the token refused, the chain rotates once. A set
//! issued a moment ago is not replaced at all: Withings refusing a token
//! it just issued says something else is wrong (a scope, the app), and
//! rotating again on every refusal would only churn the chain.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{Cadence, Policy, TokenSet};

/// How new a set is kept even when its token was refused.
pub const REPLACE_GRACE: Duration = Duration::seconds(60);

/// A buffer no set outlives: "due now".
const DUE_NOW: Duration = Duration::days(100 * 366);

/// The SHA-256 of an access token: what a replacement remembers of the
/// token refused (copyable, comparable, and no secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessDigest([u8; 32]);

impl AccessDigest {
    pub fn of(token: &SecretString) -> AccessDigest {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.expose_secret().as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        AccessDigest(bytes)
    }

    /// Whether `set`'s access token is the one digested.
    pub fn is_of(&self, set: &TokenSet) -> bool {
        set.access_token
            .as_ref()
            .is_some_and(|token| AccessDigest::of(token) == *self)
    }
}

/// The policy of a refresh replacing `refused`, given the set in use as
/// the run saw it before the lock (`in_use`): due now when that set still
/// holds the refused token and was not issued within [`REPLACE_GRACE`];
/// else the account's usual policy (`buffer`), which finds the set in use
/// (a peer's replacement, or the new set) not due and returns it.
pub fn replacing(
    refused: AccessDigest,
    in_use: Option<&TokenSet>,
    buffer: Option<Duration>,
    cadence: Cadence,
    now: DateTime<Utc>,
) -> Policy {
    let just_issued = |set: &TokenSet| set.last_refreshed.is_some_and(|at| now - at < REPLACE_GRACE);
    let due = in_use.is_some_and(|set| refused.is_of(set) && !just_issued(set));
    Policy {
        buffer: if due { Some(DUE_NOW) } else { buffer },
        force: false,
        cadence,
    }
}

/// The policy of a rotation asked for (`serve`'s admin refresh): due now,
/// yet giving way, under the lock, to a peer that rotated since the set was
/// seen: the peer's set is the answer, not a second rotation of it.
pub fn rotating(cadence: Cadence) -> Policy {
    Policy {
        buffer: Some(DUE_NOW),
        force: false,
        cadence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{Action, SeenBefore, assess};

    fn set(access: &str, refresh: &str, issued_ago: Duration, now: DateTime<Utc>) -> TokenSet {
        TokenSet {
            access_token: Some(SecretString::from(access.to_owned())),
            refresh_token: SecretString::from(refresh.to_owned()),
            expires_at: Some(now - issued_ago + Duration::hours(3)),
            last_refreshed: Some(now - issued_ago),
            userid: None,
            scope: None,
        }
    }

    fn cadence() -> Cadence {
        Cadence {
            refresh_at_least: None,
            early_by: Duration::zero(),
        }
    }

    #[test]
    fn the_set_holding_the_refused_token_is_due_unless_a_peer_rotated_under_the_lock() {
        let now = Utc::now();
        let old = set("old-access", "old-refresh", Duration::minutes(10), now);
        let refused = AccessDigest::of(&SecretString::from("old-access".to_owned()));
        let policy = replacing(refused, Some(&old), None, cadence(), now);
        let alone = assess(Some(&old), None, SeenBefore::Set(&old), now, policy);
        assert!(matches!(alone.action, Action::Refresh(_)), "{:?}", alone.action);
        let peer = set("new-access", "new-refresh", Duration::zero(), now);
        let raced = assess(Some(&peer), None, SeenBefore::Set(&old), now, policy);
        assert!(matches!(raced.action, Action::RefreshedByPeer), "{:?}", raced.action);
    }

    #[test]
    fn a_rotation_asked_for_rotates_a_fresh_set_but_gives_way_to_a_peer_s() {
        let now = Utc::now();
        let seen = set("access", "refresh", Duration::seconds(5), now);
        let policy = rotating(cadence());
        let alone = assess(Some(&seen), None, SeenBefore::Set(&seen), now, policy);
        assert!(matches!(alone.action, Action::Refresh(_)), "{:?}", alone.action);
        let peer = set("peer-access", "peer-refresh", Duration::zero(), now);
        let raced = assess(Some(&peer), None, SeenBefore::Set(&seen), now, policy);
        assert!(matches!(raced.action, Action::RefreshedByPeer), "{:?}", raced.action);
    }

    #[test]
    fn a_set_already_replaced_or_just_issued_is_kept() {
        let now = Utc::now();
        let refused = AccessDigest::of(&SecretString::from("old-access".to_owned()));
        let replaced = set("new-access", "new-refresh", Duration::minutes(1), now);
        let policy = replacing(refused, Some(&replaced), None, cadence(), now);
        let kept = assess(Some(&replaced), None, SeenBefore::Set(&replaced), now, policy);
        assert!(matches!(kept.action, Action::NotDue { .. }), "{:?}", kept.action);
        let fresh = set("old-access", "old-refresh", Duration::seconds(20), now);
        let policy = replacing(refused, Some(&fresh), None, cadence(), now);
        let kept = assess(Some(&fresh), None, SeenBefore::Set(&fresh), now, policy);
        assert!(matches!(kept.action, Action::NotDue { .. }), "{:?}", kept.action);
        assert!(!policy.force);
    }
}
