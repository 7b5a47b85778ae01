//! The one clock every stored and compared time comes from.
//!
//! Expiry times are judged against this host's clock, so a clock that is
//! wrong when a set is saved, or when it is judged, could keep a dead token
//! looking fresh (one refresh under a clock a year ahead would leave times
//! a year ahead, and nothing would refresh again). So:
//! - when a Withings answer's `Date` differs from this host's clock by more
//!   than [`TRUSTED_SKEW`], the new set's times are taken from that `Date`,
//!   and the person is told;
//! - the offset measured (Withings' minus this host's) is kept in the store,
//!   one entry per host name, and judgements use this host's clock moved by
//!   it. A host found *behind* is moved forward for as long as the entry
//!   stays: an entry outliving the fix of its clock only makes a set due
//!   early, and the refresh that follows measures again. A host found
//!   *ahead* is moved back only for [`AHEAD_TRUSTED_FOR`] after the
//!   measurement (by the process's own monotonic clock, or, across runs, by
//!   this host's clock running forward from it): moved back after its
//!   clock was fixed, it would make an expired token look fresh. Within
//!   that window a clock set back by more than the window is seen (the
//!   clock reads before the measurement), and one set back by less can
//!   misjudge by less than the window. So a host hours ahead refreshes once
//!   per window, not on every call;
//! - a stored time that lies ahead of the clock by more than the token's
//!   lifetime is suspect, and the set is due (`tokens::assess`).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// Clocks of hosts kept in sync differ by well under this; beyond it a
/// Withings answer's `Date` is believed over this host's clock.
pub const TRUSTED_SKEW: Duration = Duration::minutes(1);

/// How long after a measurement a clock found ahead is moved back.
pub const AHEAD_TRUSTED_FOR: Duration = Duration::minutes(10);

/// A measured offset, as a store keeps it for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// Withings' clock minus this host's, in seconds (positive: behind).
    pub secs: i64,
    /// This host's clock when it was measured.
    pub at: DateTime<Utc>,
}

/// What this process knows of its clock.
#[derive(Clone, Copy)]
struct Known {
    offset: Option<Offset>,
    /// For an offset of a clock ahead: until when it may be used.
    until: Option<Instant>,
    /// Measured by this process (beats what a store recorded).
    measured: bool,
}

static KNOWN: Mutex<Known> = Mutex::new(Known {
    offset: None,
    until: None,
    measured: false,
});

/// Now, truncated to whole seconds (every time stored or printed has no
/// fraction, so the JSON, the env lines and the store agree to the letter),
/// moved by this host's offset from Withings' clock while it is in force.
pub fn now() -> DateTime<Utc> {
    let host = host_now();
    host.checked_add_signed(Duration::seconds(offset_in_force()))
        .unwrap_or(host)
}

/// This host's own clock, in whole seconds, with no offset applied: for
/// comparing it with Withings' (`doctor --online`).
pub fn host_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// The offset `now` applies, in seconds.
fn offset_in_force() -> i64 {
    let known = *crate::locked(&KNOWN);
    match known.offset {
        Some(offset) if offset.secs > 0 => offset.secs,
        Some(offset) if known.until.is_some_and(|until| Instant::now() < until) => offset.secs,
        _ => 0,
    }
}

/// Takes this host's entry of a store's `offsets`, unless this process has
/// measured the clock itself.
pub fn recall_from(offsets: &BTreeMap<String, Offset>) {
    if offsets.is_empty() {
        return;
    }
    let mut known = crate::locked(&KNOWN);
    if known.measured {
        return;
    }
    let offset = offsets.get(host_name()).copied();
    known.until = offset.and_then(|o| ahead_until(o, host_now()));
    known.offset = offset;
}

/// For an offset of a clock ahead, read at `host` (this host's clock): the
/// monotonic instant its window ends, when `host` lies inside it.
fn ahead_until(offset: Offset, host: DateTime<Utc>) -> Option<Instant> {
    let since = host.signed_duration_since(offset.at);
    if offset.secs >= 0 || since < Duration::zero() || since > AHEAD_TRUSTED_FOR {
        return None;
    }
    let left = (AHEAD_TRUSTED_FOR - since).to_std().ok()?;
    Instant::now().checked_add(left)
}

/// Writes this host's entry into a store's `offsets`: its offset, or none.
pub fn record_into(offsets: &mut BTreeMap<String, Offset>) {
    let offset = crate::locked(&KNOWN).offset;
    record(offsets, offset);
}

fn record(offsets: &mut BTreeMap<String, Offset>, offset: Option<Offset>) {
    match offset {
        Some(offset) if offset.secs != 0 => {
            offsets.insert(host_name().to_owned(), offset);
        }
        _ if offsets.is_empty() => {}
        _ => {
            offsets.remove(host_name());
        }
    }
}

/// The time to record for an answer received now, whose `Date` header said
/// `server` (when it had a readable one): this host's time, or Withings'
/// when the two differ by more than [`TRUSTED_SKEW`] (said once per
/// process). Also measures the offset.
pub fn received_at(server: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let Some(server) = server else {
        return now();
    };
    let host = host_now();
    let reading = read(host, server);
    {
        let mut known = crate::locked(&KNOWN);
        let offset = Offset {
            secs: reading.offset_secs,
            at: host,
        };
        *known = Known {
            offset: Some(offset),
            until: ahead_until(offset, host),
            measured: true,
        };
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    if let Some(skew) = reading.skew {
        SAID.call_once(|| tracing::warn!("{}", describe_skew(skew)));
    }
    reading.time
}

/// What one comparison of the clocks gives.
#[derive(Debug, PartialEq, Eq)]
struct Reading {
    /// The time to record.
    time: DateTime<Utc>,
    /// Withings' minus this host's, 0 when within [`TRUSTED_SKEW`].
    offset_secs: i64,
    /// The same, when beyond it.
    skew: Option<Duration>,
}

fn read(host: DateTime<Utc>, server: DateTime<Utc>) -> Reading {
    let skew = server.signed_duration_since(host);
    if skew.abs() <= TRUSTED_SKEW {
        return Reading {
            time: host,
            offset_secs: 0,
            skew: None,
        };
    }
    Reading {
        time: server,
        offset_secs: skew.num_seconds(),
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
            "for 10 minutes this host judges expiry by Withings' clock, then sees the set as older than it is and refreshes it early",
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

    fn offset(secs: i64, at: DateTime<Utc>) -> Offset {
        Offset { secs, at }
    }

    #[test]
    fn this_hosts_entry_is_written_only_while_its_clock_is_off() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let other = BTreeMap::from([("another-host".to_owned(), offset(90, at))]);
        let mut offsets = other.clone();
        record(&mut offsets, Some(offset(600, at)));
        assert_eq!(offsets.get(host_name()), Some(&offset(600, at)));
        record(&mut offsets, Some(offset(-600, at)));
        assert_eq!(offsets.get(host_name()), Some(&offset(-600, at)));
        record(&mut offsets, Some(offset(0, at)));
        assert_eq!(offsets, other);
        record(&mut offsets, None);
        assert_eq!(offsets, other);
    }

    #[test]
    fn withings_date_is_believed_only_beyond_a_minute() {
        let host = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let in_step = read(host, host + Duration::seconds(60));
        assert_eq!((in_step.time, in_step.offset_secs, in_step.skew), (host, 0, None));
        let behind = read(host, host + Duration::minutes(10));
        assert_eq!(behind.time, host + Duration::minutes(10));
        assert_eq!((behind.offset_secs, behind.skew), (600, Some(Duration::minutes(10))));
        let ahead = read(host, host - Duration::days(365));
        assert_eq!(ahead.time, host - Duration::days(365));
        assert_eq!(ahead.offset_secs, -365 * 86_400);
    }

    #[test]
    fn a_clock_found_ahead_is_moved_back_only_within_its_window_after_the_measurement() {
        let at = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let ahead = offset(-3 * 3600, at);
        assert!(ahead_until(ahead, at).is_some());
        assert!(ahead_until(ahead, at + Duration::minutes(9)).is_some());
        assert!(ahead_until(ahead, at + Duration::minutes(11)).is_none(), "too old");
        // This host's clock now reads before the measurement: it was set
        // back, and the offset says nothing any more.
        assert!(ahead_until(ahead, at - Duration::seconds(1)).is_none());
        // A clock behind is moved forward without a window.
        assert!(ahead_until(offset(600, at), at).is_none());
    }
}
