//! The one clock every stored and compared time comes from.
//!
//! Expiry times are judged against this host's clock, so a clock that is
//! wrong when a set is saved, or when it is judged, could keep a dead token
//! looking fresh (issue 18: one refresh under a clock a year ahead left
//! times a year ahead, and nothing refreshed again). So:
//! - when a Withings answer's `Date` differs from this host's clock by more
//!   than [`TRUSTED_SKEW`], the new set's times are taken from that `Date`,
//!   and the person is told;
//! - a host found *behind* Withings records its lag in the store (one entry
//!   per host name) and judges times that much later, so that Withings' own
//!   times do not look to lie in the future on every run. A host found
//!   *ahead* is not moved back: a lag remembered after the clock was fixed
//!   would then make an expired token look fresh, while one moved forward
//!   can only make a set due early (and the refresh that follows measures
//!   the clock again and clears the entry);
//! - a stored time that lies ahead of the clock by more than the token's
//!   lifetime is suspect, and the set is due (`tokens::assess`).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// Clocks of hosts kept in sync differ by well under this; beyond it a
/// Withings answer's `Date` is believed over this host's clock.
pub const TRUSTED_SKEW: Duration = Duration::minutes(1);

/// Seconds this host's clock was found behind Withings' (never negative).
static LAG_SECS: AtomicI64 = AtomicI64::new(0);
/// Whether this process measured the lag itself (which beats a record).
static MEASURED: AtomicBool = AtomicBool::new(false);

/// Now, truncated to whole seconds (every time stored or printed has no
/// fraction, so the JSON, the env lines and the store agree to the letter),
/// moved forward by the lag this host's clock is known to have.
pub fn now() -> DateTime<Utc> {
    let host = host_now();
    host.checked_add_signed(Duration::seconds(lag_secs())).unwrap_or(host)
}

/// This host's own clock, in whole seconds, with no lag applied: for
/// comparing it with Withings' (`doctor --online`).
pub fn host_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// The known lag behind Withings' clock, in seconds (0 when none).
pub fn lag_secs() -> i64 {
    LAG_SECS.load(Ordering::SeqCst)
}

/// Takes the lag a store recorded for this host, unless this process has
/// measured the clock itself since.
fn recall(secs: i64) {
    if !MEASURED.load(Ordering::SeqCst) {
        LAG_SECS.store(secs.max(0), Ordering::SeqCst);
    }
}

/// Reads this host's entry of a store's `lags` (see the module doc).
pub fn recall_from(lags: &BTreeMap<String, i64>) {
    if lags.is_empty() {
        return;
    }
    recall(lags.get(host_name()).copied().unwrap_or(0));
}

/// Writes this host's entry into a store's `lags`: its lag, or none.
pub fn record_into(lags: &mut BTreeMap<String, i64>) {
    record(lags, lag_secs());
}

fn record(lags: &mut BTreeMap<String, i64>, secs: i64) {
    match secs {
        0 if lags.is_empty() => {}
        0 => {
            lags.remove(host_name());
        }
        secs => {
            lags.insert(host_name().to_owned(), secs);
        }
    }
}

/// The time to record for an answer received now, whose `Date` header said
/// `server` (when it had a readable one): this host's time, or Withings'
/// when the two differ by more than [`TRUSTED_SKEW`] (said once per
/// process). Also measures the lag.
pub fn received_at(server: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let Some(server) = server else {
        return now();
    };
    let reading = read(host_now(), server);
    MEASURED.store(true, Ordering::SeqCst);
    LAG_SECS.store(reading.lag_secs, Ordering::SeqCst);
    static SAID: AtomicBool = AtomicBool::new(false);
    if let Some(skew) = reading.skew
        && !SAID.swap(true, Ordering::SeqCst)
    {
        tracing::warn!("{}", describe_skew(skew));
    }
    reading.time
}

/// What one comparison of the clocks gives.
#[derive(Debug, PartialEq, Eq)]
struct Reading {
    /// The time to record.
    time: DateTime<Utc>,
    /// This host's lag behind Withings (0 when in step or ahead).
    lag_secs: i64,
    /// Withings' minus this host's, when beyond [`TRUSTED_SKEW`].
    skew: Option<Duration>,
}

fn read(host: DateTime<Utc>, server: DateTime<Utc>) -> Reading {
    let skew = server.signed_duration_since(host);
    if skew.abs() <= TRUSTED_SKEW {
        return Reading {
            time: host,
            lag_secs: 0,
            skew: None,
        };
    }
    Reading {
        time: server,
        lag_secs: skew.num_seconds().max(0),
        skew: Some(skew),
    }
}

/// What a person is told of a clock `skew` (Withings' minus this host's).
fn describe_skew(skew: Duration) -> String {
    let (side, then) = if skew > Duration::zero() {
        (
            "behind",
            "this host's clock is taken as that much late until it is fixed",
        )
    } else {
        (
            "ahead of",
            "so this host sees the set as older than it is and refreshes it early",
        )
    };
    format!(
        "this host's clock is {} {side} Withings' (the Date of its answer): the new set's times are Withings' own, and {then}; sync the clock (NTP, e.g. `timedatectl set-ntp true`)",
        span(skew.abs())
    )
}

/// `42 s`, `5 min 3 s`, `3 h 2 min`, `365 d 0 h`.
pub fn span(d: Duration) -> String {
    let secs = d.num_seconds();
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// This machine's name, as the kernel has it (read once).
pub fn host_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(Duration::seconds(42)), "42 s");
        assert_eq!(span(Duration::seconds(303)), "5 min 3 s");
        assert_eq!(span(Duration::seconds(3 * 3600 + 120)), "3 h 2 min");
        assert_eq!(span(Duration::days(365)), "365 d 0 h");
    }

    #[test]
    fn skews_say_which_side_and_what_follows() {
        let behind = describe_skew(Duration::minutes(5));
        assert!(
            behind.starts_with("this host's clock is 5 min 0 s behind Withings'"),
            "{behind}"
        );
        assert!(behind.contains("taken as that much late"), "{behind}");
        let ahead = describe_skew(Duration::days(-365));
        assert!(
            ahead.starts_with("this host's clock is 365 d 0 h ahead of Withings'"),
            "{ahead}"
        );
        assert!(ahead.contains("refreshes it early"), "{ahead}");
    }

    #[test]
    fn this_hosts_entry_is_written_only_while_it_lags() {
        let mut lags = BTreeMap::from([("another-host".to_owned(), 90)]);
        record(&mut lags, 600);
        assert_eq!(lags.get(host_name()), Some(&600));
        record(&mut lags, 0);
        assert_eq!(lags, BTreeMap::from([("another-host".to_owned(), 90)]));
    }

    #[test]
    fn withings_date_is_believed_only_beyond_a_minute_and_only_a_lag_moves_the_clock() {
        let host = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let in_step = read(host, host + Duration::seconds(60));
        assert_eq!((in_step.time, in_step.lag_secs, in_step.skew), (host, 0, None));
        let behind = read(host, host + Duration::minutes(10));
        assert_eq!(behind.time, host + Duration::minutes(10));
        assert_eq!((behind.lag_secs, behind.skew), (600, Some(Duration::minutes(10))));
        let ahead = read(host, host - Duration::days(365));
        assert_eq!(ahead.time, host - Duration::days(365));
        assert_eq!(ahead.lag_secs, 0, "an ahead clock is never moved back");
    }
}
