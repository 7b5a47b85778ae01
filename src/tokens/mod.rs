//! The token set and the pure decision of whether it needs refreshing.
//! Nothing here does I/O: `decide` is tested with plain values, and the
//! commands carry its answer out under the store lock.

use chrono::{DateTime, Duration, Utc};
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

/// Now, in whole seconds, on the clock every stored time comes from.
pub use crate::clock::now;

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

/// A `min_ttl` (how long the access token must still live for a consumer:
/// `access-token --min-ttl`, `exec`, the broker's `?min_ttl=`) as it is
/// used for one set: at most half the set's lifetime (`expires_at -
/// last_refreshed`, else Withings' 3 h). A longer one would find even a
/// token just issued too short, so every call would rotate the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinTtl {
    /// What was asked for.
    pub asked: Duration,
    /// What is used.
    pub ttl: Duration,
    /// The set's lifetime, when it capped `asked`.
    pub capped_by: Option<Duration>,
}

impl MinTtl {
    /// The warning when `asked` was capped; `name` is how it was asked
    /// for (`--min-ttl`, `min_ttl`).
    pub fn capped_note(&self, name: &str) -> Option<String> {
        let lifetime = self.capped_by?;
        Some(format!(
            "{name} {} is more than half the token's lifetime ({}): {} is used, so that a token just issued is not refreshed again on every call",
            spoken(self.asked),
            spoken(lifetime),
            spoken(self.ttl)
        ))
    }
}

/// `asked`, capped to half of `tokens`' lifetime (see [`MinTtl`]).
pub fn min_ttl_for(tokens: &TokenSet, asked: Duration) -> MinTtl {
    let lifetime = tokens.lifetime().unwrap_or(ASSUMED_LIFETIME);
    let most = lifetime / 2;
    if asked > most {
        MinTtl {
            asked,
            ttl: most,
            capped_by: Some(lifetime),
        }
    } else {
        MinTtl {
            asked,
            ttl: asked,
            capped_by: None,
        }
    }
}

/// [`assess`] for a consumer that needs the access token to live `min_ttl`
/// more, capped for the set in use ([`min_ttl_for`]); the cap in force is
/// returned beside it, to be passed on as the refresh's buffer.
pub fn assess_for_min_ttl(
    stored: Option<&TokenSet>,
    seed: Option<&TokenSet>,
    now: DateTime<Utc>,
    min_ttl: Duration,
    cadence: Cadence,
) -> (Assessment, MinTtl) {
    let (in_use, _) = choose_tokens(stored, seed, now);
    let min_ttl = match &in_use {
        Some(set) => min_ttl_for(set, min_ttl),
        None => MinTtl {
            asked: min_ttl,
            ttl: min_ttl,
            capped_by: None,
        },
    };
    let policy = Policy {
        buffer: Some(min_ttl.ttl),
        force: false,
        cadence,
    };
    (assess(stored, seed, SeenBefore::NotLooked, now, policy), min_ttl)
}

/// `1h30m`, `4m`, `45s`: the CLI's duration syntax, largest units first.
fn spoken(d: Duration) -> String {
    let total = d.num_seconds().max(0);
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut text = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    if text.is_empty() { "0s".to_owned() } else { text }
}

/// The four env keys of a token set, in the contract's order.
pub const TOKEN_KEYS: [&str; 4] = [
    "WITHINGS_ACCESS_TOKEN",
    "WITHINGS_REFRESH_TOKEN",
    "WITHINGS_TOKEN_EXPIRES_AT",
    "WITHINGS_TOKEN_LAST_REFRESHED",
];

/// The four variables of a token set, unmasked: for the env file, Railway
/// and `--output env` alike.
pub fn token_variables(tokens: &TokenSet) -> [(&'static str, String); 4] {
    let time = |t: Option<DateTime<Utc>>| t.map(rfc3339).unwrap_or_default();
    let access = tokens.access_token.as_ref().map(|s| s.expose_secret().to_owned());
    [
        (TOKEN_KEYS[0], access.unwrap_or_default()),
        (TOKEN_KEYS[1], tokens.refresh_token.expose_secret().to_owned()),
        (TOKEN_KEYS[2], time(tokens.expires_at)),
        (TOKEN_KEYS[3], time(tokens.last_refreshed)),
    ]
}

/// Why four variables (Railway's, an export's) are not a token set: each
/// names the variable, never its value (it may be a token put in the
/// wrong place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariablesProblem {
    /// A value holds a control character (a NUL, a line break) inside it.
    ControlCharacter(&'static str),
    /// No refresh token, or a blank one.
    NoRefreshToken,
    /// A time that is not RFC 3339.
    NotATime(&'static str),
}

/// The set the four [`TOKEN_KEYS`] give, `value` looking each up; blanks
/// around a value are a paste's, not the token's.
pub fn set_of_variables<'a>(value: impl Fn(&str) -> Option<&'a str>) -> Result<TokenSet, VariablesProblem> {
    let value = |name: &str| value(name).map(str::trim).filter(|v| !v.is_empty());
    if let Some(name) = TOKEN_KEYS
        .iter()
        .find(|name| value(name).is_some_and(|v| v.chars().any(char::is_control)))
    {
        return Err(VariablesProblem::ControlCharacter(name));
    }
    let refresh = value(TOKEN_KEYS[1]).ok_or(VariablesProblem::NoRefreshToken)?;
    let time = |name: &'static str| -> Result<Option<DateTime<Utc>>, VariablesProblem> {
        value(name)
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| VariablesProblem::NotATime(name))
            })
            .transpose()
    };
    Ok(TokenSet {
        access_token: value(TOKEN_KEYS[0]).map(|t| SecretString::from(t.to_owned())),
        refresh_token: SecretString::from(refresh.to_owned()),
        expires_at: time(TOKEN_KEYS[2])?,
        last_refreshed: time(TOKEN_KEYS[3])?,
        userid: None,
        scope: None,
    })
}

/// The names an account's copies (env file, Railway) hold its set under:
/// [`TOKEN_KEYS`] after the account's prefix (none for `default`), so that
/// two accounts' copies can share a file or a service.
pub fn prefixed_keys(prefix: &str) -> [String; 4] {
    TOKEN_KEYS.map(|key| format!("{prefix}{key}"))
}

/// [`token_variables`] under an account's prefix.
pub fn prefixed_variables(tokens: &TokenSet, prefix: &str) -> Vec<(String, String)> {
    token_variables(tokens)
        .into_iter()
        .map(|(key, value)| (format!("{prefix}{key}"), value))
        .collect()
}

/// A copy's variables as one account sees them: its prefixed names under
/// [`TOKEN_KEYS`], and no other account's token variables, so a
/// comparison or an import reads the account's own set.
pub fn unprefixed(
    variables: std::collections::BTreeMap<String, String>,
    prefix: &str,
) -> std::collections::BTreeMap<String, String> {
    if prefix.is_empty() {
        return variables;
    }
    let mut own = variables.clone();
    for key in TOKEN_KEYS {
        own.remove(key);
        if let Some(value) = variables.get(&format!("{prefix}{key}")) {
            own.insert(key.to_owned(), value.clone());
        }
    }
    own
}

/// Why a refresh is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueReason {
    Expired,
    WithinBuffer,
    UnknownExpiry,
    Forced,
    /// The stored times lie too far ahead of the clock to be believed.
    TimesAhead,
    /// The set was last refreshed longer ago than the account's
    /// `refresh_at_least` (less its jitter): an idle account's refresh
    /// token must not age toward Withings' one-year limit.
    Idle,
}

impl DueReason {
    pub fn describe(self) -> &'static str {
        match self {
            DueReason::TimesAhead => {
                "the stored times lie ahead of this host's clock by more than the token's lifetime (saved under a clock that ran ahead?), so its expiry cannot be trusted"
            }
            DueReason::Expired => "the access token has expired",
            DueReason::WithinBuffer => "the access token expires within the refresh buffer",
            DueReason::UnknownExpiry => "the expiry time is unknown",
            DueReason::Forced => "a refresh was asked for",
            DueReason::Idle => "the set was last refreshed longer ago than the account's refresh_at_least",
        }
    }
}

/// Where the token set in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    Store,
    Env,
    None,
}

/// What the caller wants done with a set that is not due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `--buffer`/`WITHINGS_REFRESH_BUFFER`; `None` means the default.
    pub buffer: Option<Duration>,
    /// `refresh` without `--if-needed`: rotate even when not due.
    pub force: bool,
    /// When else than near expiry the account is due.
    pub cadence: Cadence,
}

/// An account's refresh policy beyond the buffer, as one set is judged by
/// it: `Settings::cadence` makes it from the settings' `RefreshPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Due once the set was last refreshed this long ago; `None`: never
    /// for that reason alone.
    pub refresh_at_least: Option<Duration>,
    /// This account's share of the jitter: it is due this much earlier,
    /// both before expiry and by `refresh_at_least`. Fixed per account, so
    /// a household spreads out and a run never flaps.
    pub early_by: Duration,
}

impl Default for Cadence {
    fn default() -> Cadence {
        Cadence::EXPIRY_ONLY
    }
}

impl Cadence {
    /// Due only by the buffer before expiry, as before policies existed.
    pub const EXPIRY_ONLY: Cadence = Cadence {
        refresh_at_least: None,
        early_by: Duration::zero(),
    };

    /// The same cadence without jitter: a consumer's `min_ttl` is its own
    /// need, not a schedule to spread out.
    pub fn without_jitter(self) -> Cadence {
        Cadence {
            early_by: Duration::zero(),
            ..self
        }
    }

    /// When a set last refreshed at `last_refreshed` falls due by
    /// `refresh_at_least`, when both are known.
    fn idle_due_at(&self, last_refreshed: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let at = last_refreshed?.checked_add_signed(self.refresh_at_least?)?;
        Some(saturating_sub(at, self.early_by))
    }
}

/// What to do with the set in use, decided without any I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Neither the store nor the environment holds a set.
    NoTokens,
    Refresh(DueReason),
    NotDue {
        expires_at: DateTime<Utc>,
        refresh_at: DateTime<Utc>,
    },
    /// A peer rotated the set between our first look and the lock: what
    /// `--if-needed` asked for is done, whatever the buffer says now.
    RefreshedByPeer,
}

/// The one decision `status`, `--dry-run`, `refresh`, `access-token`,
/// `validate`, `doctor` and `serve` share: which set, from where, and what
/// to do.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub tokens: Option<TokenSet>,
    pub source: TokenSource,
    pub action: Action,
    /// The buffer in force for this set (the account's jitter included),
    /// when there is a set.
    pub buffer: Option<Duration>,
    /// When the set falls due by the account's `refresh_at_least`, if ever.
    pub idle_due_at: Option<DateTime<Utc>>,
}

impl Assessment {
    pub fn is_due(&self) -> bool {
        matches!(self.action, Action::Refresh(_))
    }

    /// `expires_at - buffer`, when both are known (saturating, never a
    /// panic), or the idle due time when that comes first.
    pub fn refresh_at(&self) -> Option<DateTime<Utc>> {
        let expires_at = self.tokens.as_ref()?.expires_at?;
        let by_expiry = saturating_sub(expires_at, self.buffer?);
        Some(self.idle_due_at.map_or(by_expiry, |idle| idle.min(by_expiry)))
    }
}

/// What a run saw in the store before it took the lock: a set there now
/// that differs from it is a peer's refresh.
#[derive(Debug, Clone, Copy)]
pub enum SeenBefore<'a> {
    /// The run did not look first (status, a dry run, a look without the
    /// lock).
    NotLooked,
    /// The store held no set.
    Nothing,
    /// The store held this set.
    Set(&'a TokenSet),
}

impl<'a> SeenBefore<'a> {
    /// What a look that found `tokens` in the store saw.
    pub fn found(tokens: Option<&'a TokenSet>) -> SeenBefore<'a> {
        match tokens {
            Some(set) => SeenBefore::Set(set),
            None => SeenBefore::Nothing,
        }
    }
}

/// `stored`: the set under the lock (or as read); `seed`: the environment's;
/// `seen_before`: what the run saw before it took the lock.
pub fn assess(
    stored: Option<&TokenSet>,
    seed: Option<&TokenSet>,
    seen_before: SeenBefore<'_>,
    now: DateTime<Utc>,
    policy: Policy,
) -> Assessment {
    let (tokens, source) = choose_tokens(stored, seed, now);
    let Some(set) = tokens else {
        return Assessment {
            tokens: None,
            source,
            action: Action::NoTokens,
            buffer: None,
            idle_due_at: None,
        };
    };
    // The jitter spreads refreshes out; a jitter as long as the token's life
    // would make every run due, so its share is at most a third of it.
    let lifetime = set.lifetime().unwrap_or(ASSUMED_LIFETIME);
    let buffer = effective_buffer(&set, policy.buffer) + policy.cadence.early_by.min(lifetime / 3);
    let idle_due_at = policy.cadence.idle_due_at(set.last_refreshed);
    let peer_rotated = match (seen_before, stored) {
        (SeenBefore::Set(seen), Some(now_stored)) => !seen.refresh_token_equals(now_stored),
        (SeenBefore::Nothing, Some(_)) => true,
        _ => false,
    };
    let action = match due_reason(&set, now, buffer, idle_due_at) {
        _ if peer_rotated && !policy.force => Action::RefreshedByPeer,
        Ok(reason) => Action::Refresh(reason),
        Err(_) if policy.force => Action::Refresh(DueReason::Forced),
        Err((expires_at, refresh_at)) => Action::NotDue { expires_at, refresh_at },
    };
    Assessment {
        tokens: Some(set),
        source,
        action,
        buffer: Some(buffer),
        idle_due_at,
    }
}

fn saturating_sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `Ok(reason)` when a refresh is due by the clock, else `Err((expires_at,
/// refresh_at))`, `refresh_at` the earlier of the buffer's and `idle_due_at`.
fn due_reason(
    tokens: &TokenSet,
    now: DateTime<Utc>,
    buffer: Duration,
    idle_due_at: Option<DateTime<Utc>>,
) -> Result<DueReason, (DateTime<Utc>, DateTime<Utc>)> {
    let Some(expires_at) = tokens.expires_at else {
        return Ok(DueReason::UnknownExpiry);
    };
    if times_ahead(tokens, now) {
        return Ok(DueReason::TimesAhead);
    }
    let refresh_at = saturating_sub(expires_at, buffer);
    if now >= expires_at {
        Ok(DueReason::Expired)
    } else if now >= refresh_at {
        Ok(DueReason::WithinBuffer)
    } else {
        match idle_due_at {
            Some(idle) if now >= idle => Ok(DueReason::Idle),
            Some(idle) => Err((expires_at, idle.min(refresh_at))),
            None => Err((expires_at, refresh_at)),
        }
    }
}

/// How far in the future a time saved elsewhere may lie (clock skew between
/// hosts) and still be believed: a seed's `WITHINGS_TOKEN_LAST_REFRESHED`
/// to count as newer than the store, a stored set's times to be trusted.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Whether the set's times lie ahead of `now` beyond what a fresh set and
/// clock skew explain: `last_refreshed` in the future, or an expiry later
/// than now plus the token's lifetime. Such a set was saved under a clock
/// that ran ahead, and its expiry says nothing.
fn times_ahead(tokens: &TokenSet, now: DateTime<Utc>) -> bool {
    let lifetime = tokens.lifetime().unwrap_or(ASSUMED_LIFETIME);
    let beyond = |t: Option<DateTime<Utc>>, allowed: Duration| {
        let limit = now
            .checked_add_signed(CLOCK_SKEW)
            .and_then(|n| n.checked_add_signed(allowed));
        matches!((t, limit), (Some(t), Some(limit)) if t > limit)
    };
    beyond(tokens.last_refreshed, Duration::zero()) || beyond(tokens.expires_at, lifetime)
}

/// The store wins; the environment's seed is used only when the store holds
/// no set, or when the seed was refreshed later than the stored set (the user
/// re-authorised elsewhere). A rotated token is never read back from a stale
/// environment: a seed of unknown age never beats the store, and neither does
/// one dated in the future (a typo would otherwise win on every run).
/// Whether `seed` is the set a run would use over `stored` (see
/// [`assess`]): the store holds none, or the seed is a newer set.
pub fn seed_in_use(stored: Option<&TokenSet>, seed: &TokenSet, now: DateTime<Utc>) -> bool {
    choose_tokens(stored, Some(seed), now).1 == TokenSource::Env
}

fn choose_tokens(
    stored: Option<&TokenSet>,
    seed: Option<&TokenSet>,
    now: DateTime<Utc>,
) -> (Option<TokenSet>, TokenSource) {
    match (stored, seed) {
        (None, None) => (None, TokenSource::None),
        (Some(s), None) => (Some(s.clone()), TokenSource::Store),
        (None, Some(e)) => (Some(e.clone()), TokenSource::Env),
        (Some(s), Some(e)) => {
            let plausible = |t: DateTime<Utc>| now.checked_add_signed(CLOCK_SKEW).is_none_or(|limit| t <= limit);
            let env_is_newer = matches!((e.last_refreshed, s.last_refreshed), (Some(env), Some(store)) if env > store && plausible(env));
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
    // A server's token may hold control characters: shown escaped.
    format!("token_*****{}", crate::redact::visible(&tail))
}

mod replacing;
pub use replacing::{AccessDigest, REPLACE_GRACE, replacing, rotating};

#[cfg(test)]
mod tests;
