use super::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn the_pause_doubles_from_one_interval_within_its_upper_half() {
    for (failures, low, high) in [(1, 1, 2), (2, 2, 4), (3, 4, 8), (4, 8, 16)] {
        assert_eq!(backoff(failures, MINUTE, None, 0.0), MINUTE * low, "{failures}");
        assert_eq!(backoff(failures, MINUTE, None, 1.0), MINUTE * high, "{failures}");
        let middle = backoff(failures, MINUTE, None, 0.5);
        assert!(
            middle > MINUTE * low && middle < MINUTE * high,
            "{failures}: {middle:?}"
        );
    }
}

#[test]
fn the_pause_is_capped_at_sixteen_intervals_and_an_hour() {
    for failures in [5, 6, 30, u32::MAX] {
        assert_eq!(backoff(failures, MINUTE, None, 1.0), MINUTE * 16, "{failures}");
        assert_eq!(backoff(failures, MINUTE, None, 0.0), MINUTE * 8, "{failures}");
    }
    let ms100 = Duration::from_millis(100);
    assert_eq!(backoff(40, ms100, None, 1.0), Duration::from_millis(1600));
    // A long interval: an hour at most, but never less than the interval.
    assert_eq!(backoff(40, MINUTE * 10, None, 1.0), MINUTE * 60);
    assert_eq!(backoff(40, MINUTE * 60, None, 1.0), MINUTE * 60);
    assert_eq!(backoff(1, MINUTE * 60, None, 0.0), MINUTE * 30);
}

#[test]
fn a_wait_withings_asked_for_is_honoured_up_to_an_hour() {
    assert_eq!(backoff(1, MINUTE, Some(MINUTE * 5), 1.0), MINUTE * 5);
    // Shorter than the backoff: the backoff.
    assert_eq!(backoff(3, MINUTE, Some(Duration::from_secs(5)), 0.0), MINUTE * 4);
    assert_eq!(backoff(1, MINUTE, Some(MINUTE * 600), 0.0), MINUTE * 60);
    let limited = Error::RateLimited {
        what: "Withings",
        detail: "status 601".into(),
        wait: Some(MINUTE),
    };
    assert_eq!(asked_wait(&limited), Some(MINUTE));
}

fn at(seconds_from_now: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds_from_now, 0).unwrap()
}

#[test]
fn a_wait_of_years_is_cut_to_five_minutes_before_the_expiry_and_says_so() {
    let asked = Some(Duration::from_secs(1_000_000_000_000));
    let second = Duration::from_secs(1);
    // The token expires in 5 min 15 s: the next check in 15 s.
    let pause = pause_after_failure(1, second, asked, 0.0, Some((at(0), at(315))));
    assert_eq!(pause.length, Duration::from_secs(15));
    assert_eq!(
        pause.reason.describe(1),
        "Withings asked to wait 1000000000000 s: cut to 300 s before the access token expires at 2027-01-15T08:05:15Z"
    );
    // Without a known expiry (the store unreadable): an hour at most.
    let pause = pause_after_failure(1, second, asked, 0.0, None);
    assert_eq!(pause.length, MAX_ASKED_WAIT);
    assert_eq!(
        pause.reason.describe(1),
        "Withings asked to wait 1000000000000 s, honoured up to 3600 s"
    );
}

#[test]
fn within_the_margin_checks_come_at_the_near_expiry_pace_never_in_a_spin() {
    let asked = Some(MINUTE * 30);
    for left in [299, 60, 1] {
        let pause = pause_after_failure(3, Duration::from_secs(1), asked, 0.5, Some((at(0), at(left))));
        assert_eq!(pause.length, NEAR_EXPIRY_PAUSE, "{left}");
        assert!(matches!(pause.reason, Reason::NearExpiry { .. }), "{left}");
    }
    // A longer interval is the pace; a shorter backoff stays as it is.
    let pause = pause_after_failure(1, MINUTE, asked, 0.0, Some((at(0), at(60))));
    assert_eq!(pause.length, MINUTE);
    let pause = pause_after_failure(1, Duration::from_millis(100), None, 0.0, Some((at(0), at(60))));
    assert_eq!(pause.length, Duration::from_millis(100));
    assert_eq!(pause.reason, Reason::Backoff);
    // An expired token: the plain backoff (there is no expiry to keep).
    let pause = pause_after_failure(1, MINUTE, asked, 0.0, Some((at(0), at(-10))));
    assert_eq!(pause.length, MINUTE * 30);
    // Far from the expiry: what was asked.
    let pause = pause_after_failure(1, MINUTE, asked, 0.0, Some((at(0), at(3 * 3600))));
    assert_eq!(
        pause,
        Pause {
            length: MINUTE * 30,
            reason: Reason::Asked { asked: MINUTE * 30 }
        }
    );
}

#[test]
fn the_backoff_alone_is_cut_before_the_expiry_too() {
    // 10-minute interval, third failure: 40 min wanted, 20 min left.
    let pause = pause_after_failure(3, MINUTE * 10, None, 0.0, Some((at(0), at(25 * 60))));
    assert_eq!(pause.length, MINUTE * 20);
    assert!(
        pause
            .reason
            .describe(3)
            .starts_with("the backoff after 3 failure(s) in a row: cut to")
    );
}

#[test]
fn a_tiny_interval_never_spins_and_odd_jitter_stays_in_range() {
    assert_eq!(backoff(1, Duration::ZERO, None, 0.5), MIN_PAUSE);
    assert_eq!(backoff(1, MINUTE, None, f64::NAN), backoff(1, MINUTE, None, 0.0));
    assert_eq!(backoff(1, MINUTE, None, 7.0), MINUTE * 2);
    assert_eq!(backoff(0, MINUTE, None, 0.0), MINUTE);
    for _ in 0..100 {
        let j = jitter();
        assert!((0.0..1.0).contains(&j), "{j}");
    }
}
