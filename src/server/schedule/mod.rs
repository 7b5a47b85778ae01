//! The background refresh: each account's store is assessed with the same
//! decision and buffer as `refresh --if-needed`, and refreshed through the
//! same job when due. Between checks of an account it sleeps until its set
//! is due, but never longer than `--check-interval` (pizauth's
//! `MAX_WAIT_SECS`): a suspended host, a jumped clock or a set a peer
//! changed is noticed within one interval. Each account has its own pace,
//! backoff and memory below; a few are checked at once ([`run`]).
//!
//! A check sends one request at most (see `AppState::schedule_withings`).
//! While checks fail (Withings down, the store unreadable), the loop backs
//! off ([`backoff`]) and honours a wait Withings asks for (`Retry-After`,
//! status 601) up to an hour, but never sleeps past [`EXPIRY_MARGIN`]
//! before the stored access token expires (a `wait_seconds` of 10^12
//! would put the next check past the expiry); see
//! [`pause_after_failure`]. It says so once when checks start failing (and
//! when the failure changes), nothing while they go on failing the same
//! way, and once when one works again. A refused refresh token is the
//! `failures` memory's to say, and is not sent again; a check that comes
//! while the broker's last refresh is still backing off (see `failures`)
//! waits for the rest of that backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::accounts::AccountName;
use crate::copies::Choices;
use crate::duration::humanize;
use crate::error::Error;
use crate::tokens::{Action, Policy, now, rfc3339};

use super::AppState;
use super::accounts::{Account, said_of};
use super::jobs::{self, Trigger, Want};

/// The shortest pause, so that a clock at the due instant never spins.
const MIN_PAUSE: Duration = Duration::from_millis(100);
/// While checks fail, they come at most this many intervals apart ...
const BACKOFF_INTERVALS: u32 = 16;
/// ... and at most this far apart, so that a recovered Withings is used
/// long before a set whose check failed expires.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest wait Withings may ask of the loop.
const MAX_ASKED_WAIT: Duration = Duration::from_secs(3600);
/// A pause after a failure ends this long before the stored access token
/// expires, so that a check can still refresh it in time; the broker's
/// default `min_ttl` is as long.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Within [`EXPIRY_MARGIN`] of the expiry, failing checks come this far
/// apart (or a base interval apart, when longer): often enough to catch a
/// recovered Withings in time, not so often that a rate limit gets worse.
const NEAR_EXPIRY_PAUSE: Duration = Duration::from_secs(10);
/// Accounts checked at once: a household's all at once, a fleet's few at
/// a time (the upstream budget paces their requests anyway).
const CONCURRENT_CHECKS: usize = 4;
/// The accounts are listed again at a wake of the loop at most this often.
const LIST_EVERY: Duration = Duration::from_secs(1);
/// Accounts due within this much of a wake (or a quarter interval, when
/// shorter) are checked at that wake: a thousand accounts wake the loop
/// about once a second, not once per account. A check a little early is
/// still right: it decides from the set it reads.
const COALESCE: Duration = Duration::from_secs(1);

/// What the loop remembers of one account between its checks.
#[derive(Default)]
struct Memory {
    /// Checks that failed in a row.
    failures: u32,
    /// The code of the failure said last, while checks go on failing.
    said: Option<&'static str>,
    /// Whether "no token set" was already said.
    said_no_tokens: bool,
}

/// One account in the loop: its memory and when it is checked next.
struct Slot {
    memory: Memory,
    next: Instant,
    /// A check of it is running (then it is not started again).
    checking: bool,
}

/// How one check ended.
enum Checked {
    /// It worked (refreshed, or nothing was due): the next check after this.
    Worked(Duration),
    /// The store holds no set (nor the environment).
    NoTokens,
    /// The refresh token in use was refused before (or now).
    Refused,
    /// It failed; `expires_at`: when the stored access token expires, if known.
    Failed {
        error: Error,
        expires_at: Option<DateTime<Utc>>,
    },
}

/// Checks every account at once, then each after its own pause, until
/// `stop` turns true; at most [`CONCURRENT_CHECKS`] at a time, each on its
/// own, so that one account's slow or failing check delays no other's.
/// Accounts are listed again at each wake (at most once a second), so one
/// created meanwhile (a `login --account` on this host) is checked at the
/// next. The checks in progress (refreshes included) are finished before it
/// returns.
pub async fn run(state: Arc<AppState>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut slots: HashMap<AccountName, Slot> = HashMap::new();
    let mut checks: JoinSet<(AccountName, Checked)> = JoinSet::new();
    let permits = Arc::new(Semaphore::new(CONCURRENT_CHECKS));
    let mut listed: Option<Instant> = None;
    loop {
        let accounts = if listed.is_none_or(|at| at.elapsed() >= LIST_EVERY) {
            listed = Some(Instant::now());
            list(&state).await
        } else {
            state.accounts.all()
        };
        slots.retain(|name, _| accounts.contains_key(name));
        let now = Instant::now();
        let soon = now + COALESCE.min(interval / 4);
        for (name, account) in accounts.iter() {
            let slot = slots.entry(name.clone()).or_insert_with(|| Slot {
                memory: Memory::default(),
                next: now,
                checking: false,
            });
            if !slot.checking && slot.next <= soon {
                slot.checking = true;
                checks.spawn(check_when_permitted(
                    Arc::clone(&state),
                    Arc::clone(account),
                    interval,
                    Arc::clone(&permits),
                ));
            }
        }
        // The outbox's sweep rides on this wake (see `outbox`).
        crate::events::nudge();
        let next = slots.values().filter(|s| !s.checking).map(|s| s.next).min();
        let wake = next.unwrap_or(now + interval).min(now + interval);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            Some(ended) = checks.join_next(), if !checks.is_empty() => {
                if let Ok((name, checked)) = ended
                    && let Some(slot) = slots.get_mut(&name)
                {
                    slot.after(&name, checked, interval);
                }
            }
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    while checks.join_next().await.is_some() {}
}

/// The accounts as the store lists them now; as before when it cannot say.
async fn list(state: &AppState) -> Arc<super::accounts::Map> {
    match state.accounts.list(false).await {
        Ok(accounts) => accounts,
        Err(e) => {
            tracing::warn!(
                "cannot list the accounts [{}]: {e}; the known ones are checked",
                e.code()
            );
            state.accounts.all()
        }
    }
}

async fn check_when_permitted(
    state: Arc<AppState>,
    account: Arc<Account>,
    interval: Duration,
    permits: Arc<Semaphore>,
) -> (AccountName, Checked) {
    // The semaphore is never closed; were it, the check runs unbounded.
    let _permit = permits.acquire_owned().await.ok();
    let checked = check(&state, &account, interval).await;
    (account.name.clone(), checked)
}

impl Slot {
    /// Takes in how a check ended and says when the next one comes.
    fn after(&mut self, name: &AccountName, checked: Checked, interval: Duration) {
        let said = said_of(name);
        self.checking = false;
        let memory = &mut self.memory;
        memory.said_no_tokens &= matches!(checked, Checked::NoTokens);
        let pause = match checked {
            Checked::Worked(pause) => {
                memory.worked(&said);
                pause
            }
            Checked::NoTokens => {
                memory.worked(&said);
                if !memory.said_no_tokens {
                    tracing::warn!(
                        "{said}no token set yet: authorise with GET /admin/authorization-url, then POST /admin/token/exchange{}",
                        consent_query(name)
                    );
                    memory.said_no_tokens = true;
                }
                interval
            }
            Checked::Refused => {
                memory.failures = 0;
                memory.said = None;
                interval
            }
            Checked::Failed { error, expires_at } => memory.failed(&said, &error, interval, expires_at),
        };
        self.next = Instant::now() + pause;
    }
}

/// The query that names a named account's consent.
fn consent_query(name: &AccountName) -> String {
    if name.is_default() {
        String::new()
    } else {
        format!(" (both with ?account={name})")
    }
}

impl Memory {
    fn worked(&mut self, said: &str) {
        if self.failures > 0 {
            tracing::info!(
                "{said}the background refresh works again, after {} failed check(s)",
                self.failures
            );
        }
        self.failures = 0;
        self.said = None;
    }

    /// Counts the failure, says it when it is new, and returns the pause.
    fn failed(&mut self, said: &str, error: &Error, interval: Duration, expires_at: Option<DateTime<Utc>>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let pause = match error {
            // The broker's refresh failed moments ago: the rest of its backoff.
            Error::HeldBack { retry_in, .. } => Pause {
                length: (*retry_in).max(MIN_PAUSE),
                reason: Reason::HeldBack,
            },
            _ => pause_after_failure(
                self.failures,
                interval,
                asked_wait(error),
                jitter(),
                expires_at.map(|at| (now(), at)),
            ),
        };
        if self.said != Some(error.code()) {
            tracing::error!(
                "{said}the background refresh failed [{}]: {error}; next check in {}: {}; while checks fail they come at most {} apart, or as long as Withings asks (up to {}), never past {} before the access token expires; this is said again only when the failure changes or ends",
                error.code(),
                humanize(pause.length),
                pause.reason.describe(self.failures),
                humanize(backoff_cap(interval)),
                humanize(MAX_ASKED_WAIT),
                humanize(EXPIRY_MARGIN),
            );
            self.said = Some(error.code());
        }
        pause.length
    }
}

/// One check of one account.
async fn check(state: &Arc<AppState>, account: &Arc<Account>, interval: Duration) -> Checked {
    let stored = match account.store.load().await {
        Ok(stored) => stored,
        Err(error) => {
            crate::events::note_error(&account.name, &error, 0);
            return Checked::Failed {
                error,
                expires_at: None,
            };
        }
    };
    let expires_at = stored.tokens.as_ref().and_then(|tokens| tokens.expires_at);
    let policy = Policy {
        buffer: account.settings.buffer,
        force: false,
        cadence: account.settings.cadence(),
    };
    let assessment = crate::rotation::assess_in_use(&account.settings, &stored, now(), policy);
    match assessment.action {
        Action::NoTokens => Checked::NoTokens,
        // A set a run could not save waits: the job adopts it, due or not.
        Action::NotDue { refresh_at, .. }
            if account.store.waiting_rescue().is_none() && !crate::rotation::unsaved_waiting(&account.location) =>
        {
            let until_due = (refresh_at - now()).to_std().unwrap_or(Duration::ZERO);
            Checked::Worked(until_due.clamp(MIN_PAUSE, interval.max(MIN_PAUSE)))
        }
        Action::NotDue { .. } | Action::Refresh(_) | Action::RefreshedByPeer => {
            let want = Want::IfDue { buffer: policy.buffer };
            match jobs::refresh(state, account, Trigger::Schedule, want, Choices::default()).await {
                Ok(_) => Checked::Worked(interval),
                Err(Error::InvalidRefreshToken { .. }) => Checked::Refused,
                Err(error) => Checked::Failed { error, expires_at },
            }
        }
    }
}

/// The wait Withings asked for, when it did (HTTP 429's `Retry-After`,
/// status 601's `wait_seconds`).
pub fn asked_wait(error: &Error) -> Option<Duration> {
    match error {
        Error::RateLimited { wait, .. } => *wait,
        _ => None,
    }
}

/// The longest pause between failing checks for `interval`.
fn backoff_cap(interval: Duration) -> Duration {
    interval
        .saturating_mul(BACKOFF_INTERVALS)
        .min(MAX_BACKOFF)
        .max(interval)
}

/// The pause after the `failures`-th failed check in a row (1 for the
/// first): `interval · 2^failures`, at most [`backoff_cap`], taken at the
/// point `jitter` (0 to 1) of its upper half, so that the first retry comes
/// one to two intervals later and servers sharing a store spread their
/// tries; never shorter than a `wait` Withings asked for (up to an hour).
pub fn backoff(failures: u32, interval: Duration, wait: Option<Duration>, jitter: f64) -> Duration {
    let doubled = interval.saturating_mul(2u32.saturating_pow(failures.max(1)));
    let ceiling = doubled.min(backoff_cap(interval));
    let half = ceiling / 2;
    let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
    let jittered = half + half.mul_f64(jitter);
    let asked = wait.unwrap_or(Duration::ZERO).min(MAX_ASKED_WAIT);
    jittered.max(asked).max(MIN_PAUSE)
}

/// A pause after a failure, and why it is that long (for the log line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pause {
    pub length: Duration,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// The backoff for the failures so far.
    Backoff,
    /// The wait Withings asked for, up to [`MAX_ASKED_WAIT`].
    Asked { asked: Duration },
    /// Cut to end [`EXPIRY_MARGIN`] before the access token expires; the
    /// wait Withings asked for, if that was the longer.
    BeforeExpiry {
        asked: Option<Duration>,
        expires_at: DateTime<Utc>,
    },
    /// Within the margin of the expiry already: the near-expiry pace.
    NearExpiry {
        asked: Option<Duration>,
        expires_at: DateTime<Utc>,
    },
    /// The rest of a backoff another caller's failure began (`failures`).
    HeldBack,
}

impl Reason {
    /// The words after "next check in N:", true to the number.
    pub fn describe(&self, failures: u32) -> String {
        let asked_words = |asked: &Option<Duration>| match asked {
            Some(asked) => format!("Withings asked to wait {}", humanize(*asked)),
            None => format!("the backoff after {failures} failure(s) in a row"),
        };
        match self {
            Reason::Backoff => format!("the backoff after {failures} failure(s) in a row"),
            Reason::Asked { asked } if *asked > MAX_ASKED_WAIT => format!(
                "Withings asked to wait {}, honoured up to {}",
                humanize(*asked),
                humanize(MAX_ASKED_WAIT)
            ),
            Reason::Asked { asked } => format!("Withings asked to wait {}", humanize(*asked)),
            Reason::BeforeExpiry { asked, expires_at } => format!(
                "{}: cut to {} before the access token expires at {}",
                asked_words(asked),
                humanize(EXPIRY_MARGIN),
                rfc3339(*expires_at)
            ),
            Reason::NearExpiry { asked, expires_at } => format!(
                "{}, but the access token expires at {}, within {}: checks come this often until it is refreshed",
                asked_words(asked),
                rfc3339(*expires_at),
                humanize(EXPIRY_MARGIN)
            ),
            Reason::HeldBack => "the rest of the backoff after the broker's refresh failed".to_owned(),
        }
    }
}

/// The pause after the `failures`-th failure in a row: [`backoff`] from
/// `base`, or the wait Withings asked for (up to an hour) when longer; but
/// while the access token is alive (`expiry`: now, its expiry), never past
/// [`EXPIRY_MARGIN`] before it expires, and within that margin
/// [`NEAR_EXPIRY_PAUSE`] (or `base`, when longer) at most.
pub fn pause_after_failure(
    failures: u32,
    base: Duration,
    asked: Option<Duration>,
    jitter: f64,
    expiry: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Pause {
    let backed_off = backoff(failures, base, None, jitter);
    let (wanted, reason) = match asked {
        Some(asked) if asked.min(MAX_ASKED_WAIT) > backed_off => (asked.min(MAX_ASKED_WAIT), Reason::Asked { asked }),
        _ => (backed_off, Reason::Backoff),
    };
    let asked = asked.filter(|_| matches!(reason, Reason::Asked { .. }));
    let Some((now, expires_at)) = expiry.filter(|(now, expires_at)| now < expires_at) else {
        return Pause { length: wanted, reason };
    };
    let until_margin = (expires_at - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .saturating_sub(EXPIRY_MARGIN);
    let near_pace = base.max(NEAR_EXPIRY_PAUSE);
    if until_margin >= wanted || wanted <= near_pace {
        Pause { length: wanted, reason }
    } else if until_margin > near_pace {
        Pause {
            length: until_margin,
            reason: Reason::BeforeExpiry { asked, expires_at },
        }
    } else {
        Pause {
            length: near_pace,
            reason: Reason::NearExpiry { asked, expires_at },
        }
    }
}

/// A random point from 0 to 1; the middle if the system has no randomness
/// to give (the backoff still works, only in step with other servers).
pub fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests;
