//! The token set and the pure decision of whether it needs refreshing.
//! Nothing here does I/O: `decide` is tested with plain values, and the
//! commands carry its answer out under the store lock.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use secrecy::{ExposeSecret, SecretString};

/// Withings' access tokens live 3 hours; used when a set does not say.
const ASSUMED_LIFETIME: Duration = Duration::hours(3);
const MAX_DEFAULT_BUFFER: Duration = Duration::hours(24);

/// One Withings grant: what `requesttoken` returns, plus when we got it.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: Option<SecretString>,
    pub refresh_token: SecretString,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed: Option<DateTime<Utc>>,
    pub userid: Option<String>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token.as_ref().map(|_| "[REDACTED]"))
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("last_refreshed", &self.last_refreshed)
            .field("userid", &self.userid)
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenSet {
    pub fn refresh_token_equals(&self, other: &TokenSet) -> bool {
        self.refresh_token.expose_secret() == other.refresh_token.expose_secret()
    }

    /// `expires_at - last_refreshed`, when both are known and sensible.
    fn lifetime(&self) -> Option<Duration> {
        let lifetime = self.expires_at? - self.last_refreshed?;
        (lifetime > Duration::zero()).then_some(lifetime)
    }
}

/// Now, truncated to whole seconds: every time we store or print has no
/// fraction, so the JSON, the env lines and the store agree to the letter.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Formats a time the way the contract wants it: RFC 3339, UTC, `Z`, seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long before expiry a refresh is due: the explicit setting, else
/// `min(24h, lifetime / 3)` (1 h for Withings' 3 h tokens).
pub fn effective_buffer(tokens: &TokenSet, explicit: Option<Duration>) -> Duration {
    explicit.unwrap_or_else(|| {
        let lifetime = tokens.lifetime().unwrap_or(ASSUMED_LIFETIME);
        (lifetime / 3).min(MAX_DEFAULT_BUFFER)
    })
}

/// Why a refresh is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueReason {
    Expired,
    WithinBuffer,
    UnknownExpiry,
    Forced,
}

impl DueReason {
    pub fn describe(self) -> &'static str {
        match self {
            DueReason::Expired => "the access token has expired",
            DueReason::WithinBuffer => "the access token expires within the refresh buffer",
            DueReason::UnknownExpiry => "the expiry time is unknown",
            DueReason::Forced => "a refresh was asked for",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Refresh(DueReason),
    NotDue {
        expires_at: DateTime<Utc>,
        refresh_at: DateTime<Utc>,
    },
}

/// Decides whether `tokens` should be refreshed at `now`.
/// `only_if_needed == false` means the user forces a refresh.
pub fn decide(tokens: &TokenSet, now: DateTime<Utc>, buffer: Duration, only_if_needed: bool) -> Decision {
    let natural = due_reason(tokens, now, buffer);
    match (natural, only_if_needed) {
        (Ok(reason), _) => Decision::Refresh(reason),
        (Err(_), false) => Decision::Refresh(DueReason::Forced),
        (Err((expires_at, refresh_at)), true) => Decision::NotDue { expires_at, refresh_at },
    }
}

/// `Ok(reason)` when a refresh is due by the clock, else `Err((expires_at, refresh_at))`.
fn due_reason(
    tokens: &TokenSet,
    now: DateTime<Utc>,
    buffer: Duration,
) -> Result<DueReason, (DateTime<Utc>, DateTime<Utc>)> {
    let Some(expires_at) = tokens.expires_at else {
        return Ok(DueReason::UnknownExpiry);
    };
    let refresh_at = expires_at - buffer;
    if now >= expires_at {
        Ok(DueReason::Expired)
    } else if now >= refresh_at {
        Ok(DueReason::WithinBuffer)
    } else {
        Err((expires_at, refresh_at))
    }
}

/// Where the token set in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    Store,
    Env,
    None,
}

/// The store wins; the environment's seed is used only when the store holds
/// no set, or when the seed was refreshed later than the stored set (the user
/// re-authorised elsewhere). A rotated token is never read back from a stale
/// environment: a seed of unknown age never beats the store.
pub fn choose_tokens(stored: Option<&TokenSet>, seed: Option<&TokenSet>) -> (Option<TokenSet>, TokenSource) {
    match (stored, seed) {
        (None, None) => (None, TokenSource::None),
        (Some(s), None) => (Some(s.clone()), TokenSource::Store),
        (None, Some(e)) => (Some(e.clone()), TokenSource::Env),
        (Some(s), Some(e)) => {
            let env_is_newer = matches!((e.last_refreshed, s.last_refreshed), (Some(env), Some(store)) if env > store);
            if env_is_newer && !s.refresh_token_equals(e) {
                (Some(e.clone()), TokenSource::Env)
            } else {
                (Some(s.clone()), TokenSource::Store)
            }
        }
    }
}

/// Masks a secret for display: `token_*****xyz` (its last three characters).
pub fn mask(secret: &SecretString) -> String {
    let value = secret.expose_secret();
    let tail: String = {
        let chars: Vec<char> = value.chars().collect();
        if chars.len() <= 6 {
            String::new()
        } else {
            chars[chars.len() - 3..].iter().collect()
        }
    };
    format!("token_*****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn set(expires_at: Option<DateTime<Utc>>, last_refreshed: Option<DateTime<Utc>>) -> TokenSet {
        TokenSet {
            access_token: Some(SecretString::from("access-abcdef")),
            refresh_token: SecretString::from("refresh-123456"),
            expires_at,
            last_refreshed,
            userid: None,
            scope: None,
        }
    }

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    #[test]
    fn default_buffer_is_a_third_of_a_three_hour_lifetime() {
        let tokens = set(Some(t(3)), Some(t(0)));
        assert_eq!(effective_buffer(&tokens, None), Duration::hours(1));
    }

    #[test]
    fn default_buffer_is_capped_at_a_day() {
        let tokens = set(Some(t(14 * 24)), Some(t(0)));
        assert_eq!(effective_buffer(&tokens, None), Duration::hours(24));
    }

    #[test]
    fn explicit_buffer_wins() {
        let tokens = set(Some(t(3)), Some(t(0)));
        assert_eq!(
            effective_buffer(&tokens, Some(Duration::minutes(5))),
            Duration::minutes(5)
        );
    }

    #[test]
    fn fresh_token_is_not_due_when_only_if_needed() {
        let tokens = set(Some(t(3)), Some(t(0)));
        assert_eq!(
            decide(&tokens, t(1), Duration::hours(1), true),
            Decision::NotDue {
                expires_at: t(3),
                refresh_at: t(2)
            }
        );
    }

    #[test]
    fn forced_refresh_of_a_fresh_token() {
        let tokens = set(Some(t(3)), Some(t(0)));
        assert_eq!(
            decide(&tokens, t(1), Duration::hours(1), false),
            Decision::Refresh(DueReason::Forced)
        );
    }

    #[test]
    fn within_buffer_and_expired_are_due() {
        let tokens = set(Some(t(3)), Some(t(0)));
        assert_eq!(
            decide(&tokens, t(2), Duration::hours(1), true),
            Decision::Refresh(DueReason::WithinBuffer)
        );
        assert_eq!(
            decide(&tokens, t(3), Duration::hours(1), true),
            Decision::Refresh(DueReason::Expired)
        );
    }

    #[test]
    fn unknown_expiry_is_due() {
        let tokens = set(None, None);
        assert_eq!(
            decide(&tokens, t(0), Duration::hours(1), true),
            Decision::Refresh(DueReason::UnknownExpiry)
        );
    }

    #[test]
    fn store_beats_a_stale_or_undated_environment() {
        let store = set(Some(t(5)), Some(t(2)));
        let mut env = set(Some(t(3)), Some(t(0)));
        env.refresh_token = SecretString::from("dead-token-from-env");
        assert_eq!(choose_tokens(Some(&store), Some(&env)).1, TokenSource::Store);
        env.last_refreshed = None;
        assert_eq!(choose_tokens(Some(&store), Some(&env)).1, TokenSource::Store);
        env.last_refreshed = Some(t(4));
        assert_eq!(choose_tokens(Some(&store), Some(&env)).1, TokenSource::Env);
        assert_eq!(choose_tokens(None, Some(&env)).1, TokenSource::Env);
        assert_eq!(choose_tokens(None, None).1, TokenSource::None);
    }

    #[test]
    fn mask_keeps_only_the_last_three_characters() {
        assert_eq!(mask(&SecretString::from("f631236fabcxyz")), "token_*****xyz");
        assert_eq!(mask(&SecretString::from("short")), "token_*****");
    }
}
