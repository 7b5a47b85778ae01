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
fn a_min_ttl_longer_than_half_the_lifetime_is_capped_to_half() {
    // 3 h tokens, `--min-ttl 4h`: 1h30m, said.
    let three_hours = set(Some(t(3)), Some(t(0)));
    let capped = min_ttl_for(&three_hours, Duration::hours(4));
    assert_eq!(
        (capped.ttl, capped.capped_by),
        (Duration::minutes(90), Some(Duration::hours(3)))
    );
    assert_eq!(
        capped.capped_note("--min-ttl").unwrap(),
        "--min-ttl 4h is more than half the token's lifetime (3h): 1h30m is used, so that a token just issued is not refreshed again on every call"
    );
    // Half exactly, and less: as asked, nothing said.
    for asked in [Duration::minutes(90), Duration::minutes(5), Duration::zero()] {
        let kept = min_ttl_for(&three_hours, asked);
        assert_eq!((kept.ttl, kept.capped_by), (asked, None));
        assert_eq!(kept.capped_note("--min-ttl"), None);
    }
    // 4-minute tokens, the broker's default 5m: 2m.
    let short = set(Some(t(0) + Duration::minutes(4)), Some(t(0)));
    let capped = min_ttl_for(&short, Duration::minutes(5));
    assert_eq!(capped.ttl, Duration::minutes(2));
    assert!(
        capped
            .capped_note("min_ttl")
            .unwrap()
            .starts_with("min_ttl 5m is more than half the token's lifetime (4m): 2m is used")
    );
    // Unknown lifetime: Withings' 3 h.
    let undated = set(Some(t(3)), None);
    assert_eq!(min_ttl_for(&undated, Duration::hours(4)).ttl, Duration::minutes(90));
}

#[test]
fn a_token_just_issued_meets_the_capped_min_ttl() {
    // Issued now for 3 h; asked 4 h: not due (uncapped, it would be).
    let fresh = set(Some(t(3)), Some(t(0)));
    let (a, min_ttl) = assess_for_min_ttl(Some(&fresh), None, t(0), Duration::hours(4), Cadence::EXPIRY_ONLY);
    assert!(matches!(a.action, Action::NotDue { .. }), "{:?}", a.action);
    assert_eq!(min_ttl.ttl, Duration::minutes(90));
    // Once less than half is left, it is due.
    let (a, _) = assess_for_min_ttl(Some(&fresh), None, t(2), Duration::hours(4), Cadence::EXPIRY_ONLY);
    assert_eq!(a.action, Action::Refresh(DueReason::WithinBuffer));
    // No set: nothing to cap.
    let (a, min_ttl) = assess_for_min_ttl(None, None, t(0), Duration::hours(4), Cadence::EXPIRY_ONLY);
    assert_eq!((a.action, min_ttl.ttl), (Action::NoTokens, Duration::hours(4)));
}

const IF_NEEDED: Policy = Policy {
    buffer: Some(Duration::hours(1)),
    force: false,
    cadence: Cadence::EXPIRY_ONLY,
};
const FORCE: Policy = Policy {
    buffer: Some(Duration::hours(1)),
    force: true,
    cadence: Cadence::EXPIRY_ONLY,
};

fn action(tokens: &TokenSet, now: DateTime<Utc>, policy: Policy) -> Action {
    assess(Some(tokens), None, SeenBefore::NotLooked, now, policy).action
}

#[test]
fn fresh_token_is_not_due_when_only_if_needed() {
    let tokens = set(Some(t(3)), Some(t(0)));
    assert_eq!(
        action(&tokens, t(1), IF_NEEDED),
        Action::NotDue {
            expires_at: t(3),
            refresh_at: t(2)
        }
    );
}

#[test]
fn forced_refresh_of_a_fresh_token() {
    let tokens = set(Some(t(3)), Some(t(0)));
    assert_eq!(action(&tokens, t(1), FORCE), Action::Refresh(DueReason::Forced));
}

#[test]
fn within_buffer_and_expired_are_due() {
    let tokens = set(Some(t(3)), Some(t(0)));
    assert_eq!(
        action(&tokens, t(2), IF_NEEDED),
        Action::Refresh(DueReason::WithinBuffer)
    );
    assert_eq!(action(&tokens, t(3), IF_NEEDED), Action::Refresh(DueReason::Expired));
    assert_eq!(action(&tokens, t(3), FORCE), Action::Refresh(DueReason::Expired));
}

#[test]
fn times_ahead_of_the_clock_beyond_the_lifetime_make_a_set_due() {
    // Saved a year ahead: both times in the future.
    let poisoned = set(Some(t(365 * 24 + 3)), Some(t(365 * 24)));
    assert_eq!(
        action(&poisoned, t(0), IF_NEEDED),
        Action::Refresh(DueReason::TimesAhead)
    );
    // Only last_refreshed in the future (beyond skew): suspect too.
    let refreshed_later = set(Some(t(2)), Some(t(1)));
    assert_eq!(
        action(&refreshed_later, t(0), IF_NEEDED),
        Action::Refresh(DueReason::TimesAhead)
    );
    // An expiry beyond now + lifetime, with no last_refreshed (3 h assumed).
    let far = set(Some(t(4)), None);
    assert_eq!(action(&far, t(0), IF_NEEDED), Action::Refresh(DueReason::TimesAhead));
    // A fresh set, and one a few minutes ahead (clock skew), are not.
    let fresh = set(Some(t(3)), Some(t(0)));
    assert!(matches!(action(&fresh, t(0), IF_NEEDED), Action::NotDue { .. }));
    let skewed = set(Some(t(3) + Duration::minutes(4)), Some(t(0) + Duration::minutes(4)));
    assert!(matches!(action(&skewed, t(0), IF_NEEDED), Action::NotDue { .. }));
}

#[test]
fn unknown_expiry_is_due() {
    let tokens = set(None, None);
    assert_eq!(
        action(&tokens, t(0), IF_NEEDED),
        Action::Refresh(DueReason::UnknownExpiry)
    );
}

#[test]
fn nothing_anywhere_is_no_tokens() {
    let a = assess(None, None, SeenBefore::NotLooked, t(0), IF_NEEDED);
    assert_eq!(
        (a.action, a.source, a.buffer),
        (Action::NoTokens, TokenSource::None, None)
    );
}

/// The contract's "Token sources", row by row.
#[test]
fn token_sources_follow_the_contract() {
    let store = set(Some(t(5)), Some(t(2)));
    let mut env = set(Some(t(3)), Some(t(0)));
    env.refresh_token = SecretString::from("dead-token-from-env");
    let source = |stored: Option<&TokenSet>, seed: Option<&TokenSet>| {
        assess(stored, seed, SeenBefore::NotLooked, t(10), IF_NEEDED).source
    };
    // The store holds a set: it is used.
    assert_eq!(source(Some(&store), None), TokenSource::Store);
    // The store holds none: the environment seeds it.
    assert_eq!(source(None, Some(&env)), TokenSource::Env);
    // Both, the environment older: the store (a rotated token is never read back).
    assert_eq!(source(Some(&store), Some(&env)), TokenSource::Store);
    // Both, the environment undated: the store.
    env.last_refreshed = None;
    assert_eq!(source(Some(&store), Some(&env)), TokenSource::Store);
    // Both, the environment newer (re-authorised elsewhere): the environment.
    env.last_refreshed = Some(t(4));
    assert_eq!(source(Some(&store), Some(&env)), TokenSource::Env);
    // Dated in the future (beyond clock skew): never trusted over the store.
    env.last_refreshed = Some(t(30));
    assert_eq!(source(Some(&store), Some(&env)), TokenSource::Store);
    // Newer but the same refresh token: nothing to prefer, the store.
    let same = set(Some(t(9)), Some(t(8)));
    assert_eq!(source(Some(&store), Some(&same)), TokenSource::Store);
    // Neither: none.
    assert_eq!(source(None, None), TokenSource::None);
}

#[test]
fn a_peer_rotation_while_waiting_counts_as_done_for_if_needed_only() {
    let seen = set(Some(t(3)), Some(t(0)));
    let mut rotated = set(Some(t(3)), Some(t(0)));
    rotated.refresh_token = SecretString::from("rotated-by-peer");
    // Still due by the clock (a buffer longer than the lifetime), but a peer rotated it.
    let long = Policy {
        buffer: Some(Duration::hours(5)),
        force: false,
        cadence: Cadence::EXPIRY_ONLY,
    };
    let a = assess(Some(&rotated), None, SeenBefore::Set(&seen), t(1), long);
    assert_eq!(a.action, Action::RefreshedByPeer);
    // The store was empty before and holds a set now: a peer's exchange or refresh.
    assert_eq!(
        assess(Some(&rotated), None, SeenBefore::Nothing, t(1), long).action,
        Action::RefreshedByPeer
    );
    // Unchanged: the clock decides.
    assert_eq!(
        assess(Some(&seen), None, SeenBefore::Set(&seen), t(1), long).action,
        Action::Refresh(DueReason::WithinBuffer)
    );
    // A forced refresh rotates anyway.
    let forced = Policy { force: true, ..long };
    assert_eq!(
        assess(Some(&rotated), None, SeenBefore::Set(&seen), t(1), forced).action,
        Action::Refresh(DueReason::WithinBuffer)
    );
}

#[test]
fn extreme_times_and_buffers_never_panic() {
    let ancient = DateTime::<Utc>::MIN_UTC;
    let far = DateTime::<Utc>::MAX_UTC;
    for (expires, refreshed) in [
        (Some(ancient), None),
        (Some(far), Some(ancient)),
        (Some(ancient), Some(far)),
    ] {
        let tokens = set(expires, refreshed);
        for buffer in [None, Some(Duration::MAX), Some(Duration::MIN), Some(Duration::zero())] {
            let a = assess(
                Some(&tokens),
                None,
                SeenBefore::NotLooked,
                t(0),
                Policy {
                    buffer,
                    force: false,
                    cadence: Cadence::EXPIRY_ONLY,
                },
            );
            let _ = a.refresh_at();
        }
    }
}

#[test]
fn mask_keeps_only_the_last_three_characters() {
    assert_eq!(mask(&SecretString::from("f631236fabcxyz")), "token_*****xyz");
    assert_eq!(mask(&SecretString::from("short")), "token_*****");
    assert_eq!(mask(&SecretString::from("abcdefg\u{0}x")), "token_*****g\\u{0}x");
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    fn any_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        let min = DateTime::<Utc>::MIN_UTC.timestamp();
        let max = DateTime::<Utc>::MAX_UTC.timestamp();
        proptest::option::of((min..=max).prop_filter_map("in range", |s| DateTime::from_timestamp(s, 0)))
    }

    fn any_buffer() -> impl Strategy<Value = Option<Duration>> {
        proptest::option::of(any::<i64>().prop_map(|ms| Duration::try_milliseconds(ms).unwrap_or(Duration::MAX)))
    }

    proptest! {
        /// No date a store can hold and no buffer a flag can give makes the decision (or what status derives
        /// from it) panic.
        #[test]
        fn assess_never_panics(
            expires in any_time(),
            refreshed in any_time(),
            now in any_time(),
            buffer in any_buffer(),
            force in any::<bool>(),
        ) {
            let tokens = set(expires, refreshed);
            let now = now.unwrap_or_else(Utc::now);
            let a = assess(Some(&tokens), Some(&tokens), SeenBefore::Nothing, now, Policy {
                buffer,
                force,
                cadence: Cadence::EXPIRY_ONLY,
            });
            let _ = a.refresh_at();
            let _ = expires.map(|at| at.signed_duration_since(now).num_seconds());
        }
    }
}

fn cadence(refresh_at_least_h: Option<i64>, early_by_min: i64) -> Policy {
    Policy {
        cadence: Cadence {
            refresh_at_least: refresh_at_least_h.map(Duration::hours),
            early_by: Duration::minutes(early_by_min),
        },
        ..IF_NEEDED
    }
}

#[test]
fn an_idle_set_falls_due_by_refresh_at_least_and_says_so() {
    // A long-lived set (as a sandbox or a hand-made one may be): its expiry
    // is far, its last refresh 48 h ago.
    let tokens = set(Some(t(100)), Some(t(0)));
    let daily = cadence(Some(24), 0);
    assert_eq!(action(&tokens, t(48), daily), Action::Refresh(DueReason::Idle));
    let a = assess(Some(&tokens), None, SeenBefore::NotLooked, t(12), daily);
    assert_eq!(
        a.action,
        Action::NotDue {
            expires_at: t(100),
            refresh_at: t(24)
        }
    );
    assert_eq!(a.refresh_at(), Some(t(24)));
    // Expiry still names itself first.
    assert_eq!(action(&tokens, t(100), daily), Action::Refresh(DueReason::Expired));
    // Without a last refresh time the age is unknown: not due for it.
    assert_eq!(
        action(&set(Some(t(50)), None), t(48), daily),
        Action::NotDue {
            expires_at: t(50),
            refresh_at: t(49)
        }
    );
    assert_eq!(
        DueReason::Idle.describe(),
        "the set was last refreshed longer ago than the account's refresh_at_least"
    );
}

#[test]
fn jitter_makes_a_set_due_earlier_by_its_offset_both_ways() {
    let tokens = set(Some(t(3)), Some(t(0)));
    // The 1 h buffer and 30 min earlier: due from 1:30.
    let early = cadence(None, 30);
    let a = assess(Some(&tokens), None, SeenBefore::NotLooked, t(1), early);
    assert_eq!(
        a.action,
        Action::NotDue {
            expires_at: t(3),
            refresh_at: t(1) + Duration::minutes(30)
        }
    );
    assert_eq!(a.buffer, Some(Duration::minutes(90)));
    assert_eq!(
        action(&tokens, t(1) + Duration::minutes(31), early),
        Action::Refresh(DueReason::WithinBuffer)
    );
    let long_lived = set(Some(t(100)), Some(t(0)));
    assert_eq!(
        action(&long_lived, t(24) - Duration::minutes(30), cadence(Some(24), 30)),
        Action::Refresh(DueReason::Idle)
    );
}

#[test]
fn a_jitter_longer_than_the_token_lives_takes_at_most_a_third_of_its_life() {
    let tokens = set(Some(t(3)), Some(t(0)));
    // A day of jitter on a 3 h token: the 1 h buffer and 1 h more, never
    // due on every run.
    let a = assess(Some(&tokens), None, SeenBefore::NotLooked, t(0), cadence(None, 24 * 60));
    assert_eq!(
        a.action,
        Action::NotDue {
            expires_at: t(3),
            refresh_at: t(1)
        }
    );
}
