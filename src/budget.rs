//! The upstream budget: how many requests this tool sends to Withings'
//! token endpoint per minute for one app (client id). Withings allows an
//! application 120 requests a minute and answers a burst beyond that with
//! status 601; several processes (or accounts) of one app must share that
//! allowance rather than each spend it, so every request takes one unit of
//! the budget first, and a request without one waits (briefly) or is not
//! sent at all (`RATE_LIMITED`, nothing sent).
//!
//! In one process the budget is a token bucket (capacity N, refilled at N
//! per minute) shared by every client of the app (`serve` builds two);
//! with a store shared by hosts (Redis) each request also takes a unit of
//! a fixed one-minute window counted in the store, so that all hosts
//! together stay within N.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Withings' own limit per application.
pub const DEFAULT_PER_MINUTE: u32 = 120;

/// The bounds of `--upstream-budget`.
pub const MIN_PER_MINUTE: u32 = 1;
pub const MAX_PER_MINUTE: u32 = 10_000_000;

/// The longest a request waits for a unit: a refresh that waits longer
/// would keep the store lock (and a caller) waiting for nothing it needs.
pub const MAX_WAIT: Duration = crate::error::BUDGET_MAX_WAIT;

/// The `what` of a budget refusal, which [`Error::action`] tells apart from
/// Withings' own rate limiting.
pub const WHAT: &str = crate::error::UPSTREAM_BUDGET;

/// A token bucket at one instant: `available` units (never negative, never
/// above the capacity) as of `at`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    available: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `per_minute` units at `now`.
    pub fn full(per_minute: u32, now: Instant) -> Bucket {
        Bucket {
            available: f64::from(per_minute),
            at: now,
        }
    }

    /// Units available at `now`, refilled at `per_minute` a minute since
    /// the last look; a clock that went back refills nothing.
    pub fn available(&self, per_minute: u32, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let capacity = f64::from(per_minute);
        (self.available + elapsed * capacity / 60.0).clamp(0.0, capacity)
    }

    /// Takes one unit at `now`, or says how long until one is there.
    pub fn take(&mut self, per_minute: u32, now: Instant) -> std::result::Result<(), Duration> {
        let available = self.available(per_minute, now);
        self.at = self.at.max(now);
        if available >= 1.0 {
            self.available = available - 1.0;
            return Ok(());
        }
        self.available = available;
        let missing = 1.0 - available;
        Err(Duration::from_secs_f64(missing * 60.0 / f64::from(per_minute.max(1))))
    }
}

/// A budget counted where every host sees it (a Redis store's).
#[async_trait::async_trait]
pub trait SharedBudget: Send + Sync {
    /// Takes one request of `per_minute` in the current window: `None`
    /// when taken, else how long until the window ends.
    async fn take(&self, per_minute: u32) -> Result<Option<Duration>>;
}

/// One app's budget in this process.
pub struct UpstreamBudget {
    client_id: String,
    per_minute: u32,
    bucket: Mutex<Bucket>,
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
        .or_insert_with(|| Arc::new(UpstreamBudget::new(client_id, per_minute, Instant::now())));
    Arc::clone(budget)
}

impl UpstreamBudget {
    pub fn new(client_id: &str, per_minute: u32, now: Instant) -> UpstreamBudget {
        UpstreamBudget {
            client_id: client_id.to_owned(),
            per_minute,
            bucket: Mutex::new(Bucket::full(per_minute, now)),
        }
    }

    /// Takes one unit for a request about to be sent: from this process's
    /// bucket, then from `shared` (the store all hosts use) when there is
    /// one. Waits up to [`MAX_WAIT`] for a unit; beyond that, or when a
    /// signal came meanwhile, the request is not sent and the error says why.
    pub async fn take(&self, shared: Option<&dyn SharedBudget>) -> Result<()> {
        let deadline = Instant::now() + MAX_WAIT;
        loop {
            let taken = crate::locked(&self.bucket).take(self.per_minute, Instant::now());
            let wait = match taken {
                Ok(()) => break,
                Err(wait) => wait,
            };
            self.wait_or_refuse(wait, deadline, "this process").await?;
        }
        let Some(shared) = shared else { return Ok(()) };
        while let Some(wait) = shared.take(self.per_minute).await? {
            self.wait_or_refuse(wait, deadline, "all hosts sharing the store")
                .await?;
        }
        Ok(())
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
