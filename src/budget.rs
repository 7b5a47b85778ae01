//! The upstream budget: how many requests this tool sends to Withings per
//! minute for one app (client id): token requests, and the data calls
//! `serve` proxies for its consumers. Withings allows an
//! application 120 requests a minute and answers a burst beyond that with
//! status 601; several processes (or accounts) of one app must share that
//! allowance rather than each spend it, so every request takes one unit of
//! the budget first, and a request without one waits (briefly) or is not
//! sent at all (`RATE_LIMITED`, nothing sent).
//!
//! In one process the budget is a log of the sends of the last minute
//! (never more than N in any rolling minute) shared by every client of the
//! app (`serve` builds two);
//! with a store shared by hosts (Redis) each request also takes a unit of
//! a fixed one-minute window counted in the store, so that all hosts
//! together stay within N.
//!
//! A named reader of `serve` may also have a share (`[reader.NAME] budget
//! = "30/min"`, a [`Rate`]): a bucket of its own ([`Share`]), never waited
//! for, and with Redis a bucket counted in the store (`SharedBudget::
//! take_share`), so that every host together gives the reader its share once.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Withings' own limit per application.
pub const DEFAULT_PER_MINUTE: u32 = 120;

/// The bounds of `--upstream-budget`.
pub const MIN_PER_MINUTE: u32 = 1;
/// High enough that a loopback benchmark of the proxy is not throttled,
/// and for partner apps Withings allows more.
pub const MAX_PER_MINUTE: u32 = 10_000_000;

/// The longest a request waits for a unit: a refresh that waits longer
/// would keep the store lock (and a caller) waiting for nothing it needs.
pub const MAX_WAIT: Duration = crate::error::BUDGET_MAX_WAIT;

/// The `what` of a budget refusal, which [`Error::action`] tells apart from
/// Withings' own rate limiting.
pub const WHAT: &str = crate::error::UPSTREAM_BUDGET;

/// A number of requests per period (a minute or an hour): the app's
/// budget, or a reader's share of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

/// The units a reader's `budget` may be given in, and the period of each.
const RATE_UNITS: [(&str, u64); 4] = [("min", 60), ("minute", 60), ("h", 3600), ("hour", 3600)];

impl Rate {
    #[cfg(test)]
    pub const fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(60),
        }
    }

    /// `N/min`, `N/minute`, `N/h` or `N/hour`, N from 1 to
    /// [`MAX_PER_MINUTE`]; the error says what is wrong with the text.
    pub fn parse(text: &str) -> std::result::Result<Rate, String> {
        let Some((count, unit)) = text.split_once('/') else {
            return Err(format!("`{text}` is not a number of requests per minute or hour"));
        };
        let Some(&(_, secs)) = RATE_UNITS.iter().find(|(name, _)| *name == unit.trim()) else {
            return Err(format!("`{}` is not `min` or `hour`", unit.trim()));
        };
        match count.trim().parse::<u32>() {
            Ok(count) if (MIN_PER_MINUTE..=MAX_PER_MINUTE).contains(&count) => Ok(Rate {
                count,
                period: Duration::from_secs(secs),
            }),
            _ => Err(format!(
                "`{}` is not a number from {MIN_PER_MINUTE} to {MAX_PER_MINUTE}",
                count.trim()
            )),
        }
    }

    /// The time one unit takes to come back.
    pub fn interval(self) -> Duration {
        self.period / self.count.max(1)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.period >= Duration::from_secs(3600) {
            "hour"
        } else {
            "min"
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// A token bucket at one instant: `available` units (never negative, never
/// above the capacity) as of `at`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    available: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `rate`'s count at `now`.
    pub fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            available: f64::from(rate.count),
            at: now,
        }
    }

    /// Units available at `now`, refilled at `rate` since the last look
    /// (at most its count); a clock that went back refills nothing.
    pub fn available(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let period = rate.period.as_secs_f64().max(f64::MIN_POSITIVE);
        (self.available + elapsed * f64::from(rate.count) / period).clamp(0.0, f64::from(rate.count))
    }

    /// Takes one unit at `now`, or says how long until one is there.
    pub fn take(&mut self, rate: Rate, now: Instant) -> std::result::Result<(), Duration> {
        let available = self.available(rate, now);
        self.at = self.at.max(now);
        if available >= 1.0 {
            self.available = available - 1.0;
            return Ok(());
        }
        self.available = available;
        let missing = 1.0 - available;
        Err(Duration::from_secs_f64(
            missing * rate.period.as_secs_f64() / f64::from(rate.count.max(1)),
        ))
    }

    /// Returns a unit taken for a request that was not sent after all.
    pub fn give_back(&mut self, rate: Rate, now: Instant) {
        self.available = (self.available(rate, now) + 1.0).min(f64::from(rate.count));
        self.at = self.at.max(now);
    }
}

/// A budget counted where every host sees it (a Redis store's).
#[async_trait::async_trait]
pub trait SharedBudget: Send + Sync {
    /// Takes one request of `per_minute` in the current window: `None`
    /// when taken, else how long until the window ends.
    async fn take(&self, per_minute: u32) -> Result<Option<Duration>>;

    /// Takes one unit of `reader`'s share (`rate`, a bucket as
    /// [`Bucket`]): `None` when taken, else how long until one is there.
    async fn take_share(&self, reader: &str, rate: Rate) -> Result<Option<Duration>>;
}

/// A reader's share in this process: taken before the app's budget, never
/// waited for (a consumer over its share is refused at once).
#[derive(Debug)]
pub struct Share {
    rate: Rate,
    bucket: Mutex<Bucket>,
}

impl Share {
    pub fn new(rate: Rate, now: Instant) -> Share {
        Share {
            rate,
            bucket: Mutex::new(Bucket::full(rate, now)),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one unit, or says how long until one is there.
    pub fn take(&self, now: Instant) -> std::result::Result<(), Duration> {
        crate::locked(&self.bucket).take(self.rate, now)
    }

    /// Returns the unit of a request that another count refused.
    pub fn give_back(&self, now: Instant) {
        crate::locked(&self.bucket).give_back(self.rate, now);
    }
}

/// The requests one app sent in the last minute, oldest first: never
/// more than its budget. Withings counts requests in a minute, and a
/// bucket refilled continuously would let nearly twice its size through
/// in a minute that starts full (the attacker's 238 of 120): a log of
/// sends holds a rolling minute to the budget exactly.
///
/// Sends within [`GRAIN`] of a kept instant are counted on it, so the log
/// holds at most a minute's worth of grains (60,000: about 1.4 MiB),
/// whatever the budget; at 120 a minute it holds at most 120.
#[derive(Debug, Default)]
struct SentLog {
    /// An instant, and the sends counted on it.
    sent: std::collections::VecDeque<(Instant, u32)>,
    /// The sends in `sent`.
    total: u32,
}

const MINUTE: Duration = Duration::from_secs(60);
/// How close sends are counted together: each leaves the window with the
/// first of its grain, at most a millisecond early.
const GRAIN: Duration = Duration::from_millis(1);

impl SentLog {
    /// Notes a send at `now` when fewer than `per_minute` were sent in the
    /// minute before it, else says how long until the oldest of them is a
    /// minute old. A clock that went back finds the later sends still there.
    fn take(&mut self, per_minute: u32, now: Instant) -> std::result::Result<(), Duration> {
        while let Some(&(oldest, count)) = self.sent.front() {
            if now.saturating_duration_since(oldest) < MINUTE {
                break;
            }
            self.sent.pop_front();
            self.total -= count;
        }
        if self.total < per_minute {
            self.note(now);
            return Ok(());
        }
        let oldest = self.sent.front().map_or(now, |&(at, _)| at);
        Err((oldest + MINUTE)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1)))
    }

    fn note(&mut self, now: Instant) {
        match self.sent.back_mut() {
            Some((at, count)) if now >= *at && now - *at < GRAIN => *count += 1,
            _ => self.sent.push_back((now, 1)),
        }
        self.total += 1;
    }
}

/// One app's budget in this process.
pub struct UpstreamBudget {
    client_id: String,
    per_minute: u32,
    sent: Mutex<SentLog>,
}

/// Every app's budget in this process, by client id: the clients of one
/// app (`serve`'s two, a command's one) take from the same bucket.
static BUDGETS: LazyLock<Mutex<HashMap<String, Arc<UpstreamBudget>>>> = LazyLock::new(Default::default);

/// The budget of `client_id` in this process. The first caller's
/// `per_minute` sets it: a process reads one set of settings.
pub fn for_client(client_id: &str, per_minute: u32) -> Arc<UpstreamBudget> {
    let mut budgets = crate::locked(&BUDGETS);
    let budget = budgets
        .entry(client_id.to_owned())
        .or_insert_with(|| Arc::new(UpstreamBudget::new(client_id, per_minute)));
    Arc::clone(budget)
}

impl UpstreamBudget {
    pub fn new(client_id: &str, per_minute: u32) -> UpstreamBudget {
        UpstreamBudget {
            client_id: client_id.to_owned(),
            per_minute,
            sent: Mutex::new(SentLog::default()),
        }
    }

    /// A budget that sent at each of `sent` already (tests).
    #[cfg(test)]
    pub(crate) fn having_sent(client_id: &str, per_minute: u32, sent: &[Instant]) -> UpstreamBudget {
        let budget = UpstreamBudget::new(client_id, per_minute);
        let mut log = crate::locked(&budget.sent);
        sent.iter().for_each(|&at| log.note(at));
        drop(log);
        budget
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one unit for a request about to be sent: from this process's
    /// bucket, then from `shared` (the store all hosts use) when there is
    /// one. Waits up to [`MAX_WAIT`] for a unit; beyond that, or when a
    /// signal came meanwhile, the request is not sent and the error says
    /// why. `Some(time waited)` when it waited.
    pub async fn take(&self, shared: Option<&dyn SharedBudget>) -> Result<Option<Duration>> {
        let started = Instant::now();
        let deadline = started + MAX_WAIT;
        let mut waited = false;
        loop {
            let taken = crate::locked(&self.sent).take(self.per_minute, Instant::now());
            let wait = match taken {
                Ok(()) => break,
                Err(wait) => wait,
            };
            self.wait_or_refuse(wait, deadline, "this process").await?;
            waited = true;
        }
        if let Some(shared) = shared {
            while let Some(wait) = shared.take(self.per_minute).await? {
                self.wait_or_refuse(wait, deadline, "all hosts sharing the store")
                    .await?;
                waited = true;
            }
        }
        Ok(waited.then(|| started.elapsed()))
    }

    /// Sleeps `wait` when it ends by `deadline`, else refuses.
    async fn wait_or_refuse(&self, wait: Duration, deadline: Instant, spent_by: &str) -> Result<()> {
        if Instant::now() + wait > deadline {
            return Err(self.refusal(wait, spent_by));
        }
        tracing::info!(
            "the upstream budget of {}/min is spent; waiting {} before the request",
            self.per_minute,
            crate::duration::humanize(wait)
        );
        crate::signals::sleep_unless_held(wait).await;
        match crate::signals::pending() {
            Some(signal) => Err(Error::Interrupted {
                signal,
                what: "Withings",
            }),
            None => Ok(()),
        }
    }

    fn refusal(&self, wait: Duration, spent_by: &str) -> Error {
        // Whole seconds, rounded up: a retry at the time said finds a unit.
        let wait = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        Error::RateLimited {
            what: WHAT,
            detail: format!(
                "the {} token requests a minute allowed for app {} were spent by {spent_by}; nothing was sent, the next is free in {}",
                self.per_minute,
                self.client_id,
                crate::duration::humanize(wait)
            ),
            wait: Some(wait),
        }
    }
}

#[cfg(test)]
mod tests;
