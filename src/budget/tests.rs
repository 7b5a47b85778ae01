use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_full_bucket_gives_its_capacity_at_once_then_refuses() {
    let start = Instant::now();
    let mut bucket = Bucket::full(Rate::per_minute(3), start);
    for _ in 0..3 {
        assert!(bucket.take(Rate::per_minute(3), start).is_ok());
    }
    // One unit of 3 a minute comes back in 20 s.
    assert_eq!(bucket.take(Rate::per_minute(3), start), Err(Duration::from_secs(20)));
}

#[test]
fn units_come_back_at_the_rate_per_minute() {
    let start = Instant::now();
    let mut bucket = Bucket::full(Rate::per_minute(120), start);
    for _ in 0..120 {
        bucket.take(Rate::per_minute(120), start).unwrap();
    }
    assert!(bucket.take(Rate::per_minute(120), start).is_err());
    // 120 a minute: one every 500 ms.
    let later = start + Duration::from_millis(499);
    let wait = bucket.take(Rate::per_minute(120), later).unwrap_err();
    assert!(wait <= Duration::from_millis(2), "{wait:?}");
    assert!(
        bucket
            .take(Rate::per_minute(120), start + Duration::from_millis(500))
            .is_ok()
    );
    assert!(
        bucket
            .take(Rate::per_minute(120), start + Duration::from_millis(500))
            .is_err()
    );
}

#[test]
fn refused_takes_never_drive_the_bucket_below_zero() {
    let start = Instant::now();
    let mut bucket = Bucket::full(Rate::per_minute(1), start);
    bucket.take(Rate::per_minute(1), start).unwrap();
    for _ in 0..1000 {
        assert!(bucket.take(Rate::per_minute(1), start).is_err());
    }
    assert_eq!(bucket.available(Rate::per_minute(1), start), 0.0);
    // A minute after the one request, one unit is back, not fewer.
    assert!(
        bucket
            .take(Rate::per_minute(1), start + Duration::from_secs(60))
            .is_ok()
    );
}

#[test]
fn an_idle_bucket_holds_no_more_than_its_capacity() {
    let start = Instant::now();
    let mut bucket = Bucket::full(Rate::per_minute(2), start);
    let much_later = start + Duration::from_secs(3600);
    assert_eq!(bucket.available(Rate::per_minute(2), much_later), 2.0);
    bucket.take(Rate::per_minute(2), much_later).unwrap();
    bucket.take(Rate::per_minute(2), much_later).unwrap();
    assert!(bucket.take(Rate::per_minute(2), much_later).is_err());
}

#[test]
fn a_clock_that_goes_back_refills_nothing() {
    let start = Instant::now() + Duration::from_secs(60);
    let mut bucket = Bucket::full(Rate::per_minute(1), start);
    bucket.take(Rate::per_minute(1), start).unwrap();
    let earlier = start - Duration::from_secs(30);
    assert_eq!(bucket.available(Rate::per_minute(1), earlier), 0.0);
    assert!(bucket.take(Rate::per_minute(1), earlier).is_err());
    // The look back did not move the bucket's time back either.
    assert!(
        bucket
            .take(Rate::per_minute(1), start + Duration::from_secs(30))
            .is_err()
    );
    assert!(
        bucket
            .take(Rate::per_minute(1), start + Duration::from_secs(60))
            .is_ok()
    );
}

#[tokio::test]
async fn a_spent_budget_whose_next_unit_is_far_refuses_with_nothing_to_wait_for() {
    let budget = UpstreamBudget::new("app", 1);
    budget.take(None).await.unwrap();
    let refused = budget.take(None).await.unwrap_err();
    assert_eq!(refused.code(), "RATE_LIMITED");
    assert!(
        refused
            .to_string()
            .contains("the 1 token requests a minute allowed for app app"),
        "{refused}"
    );
    let Error::RateLimited { wait: Some(wait), .. } = &refused else {
        panic!("{refused:?}")
    };
    assert!(*wait > MAX_WAIT && *wait <= Duration::from_secs(60), "{wait:?}");
    assert!(refused.action().contains("--upstream-budget"), "{}", refused.action());
}

#[test]
fn the_clients_of_one_app_share_one_budget() {
    let first = for_client("shared-app", 5);
    let second = for_client("shared-app", 5);
    assert!(Arc::ptr_eq(&first, &second));
    assert!(!Arc::ptr_eq(&first, &for_client("other-app", 5)));
}

#[test]
fn a_rate_is_a_count_a_minute_or_an_hour() {
    let hour = Duration::from_secs(3600);
    assert_eq!(Rate::parse("30/min"), Ok(Rate::per_minute(30)));
    assert_eq!(Rate::parse(" 2 / minute "), Ok(Rate::per_minute(2)));
    assert_eq!(
        Rate::parse("500/hour"),
        Ok(Rate {
            count: 500,
            period: hour
        })
    );
    assert_eq!(Rate::parse("1/h"), Ok(Rate { count: 1, period: hour }));
    assert_eq!(
        Rate::parse("0/min"),
        Err("`0` is not a number from 1 to 10000000".into())
    );
    assert_eq!(
        Rate::parse("10000001/min"),
        Err("`10000001` is not a number from 1 to 10000000".into())
    );
    assert_eq!(
        Rate::parse("-1/min"),
        Err("`-1` is not a number from 1 to 10000000".into())
    );
    assert_eq!(Rate::parse("30/s"), Err("`s` is not `min` or `hour`".into()));
    assert_eq!(
        Rate::parse("30"),
        Err("`30` is not a number of requests per minute or hour".into())
    );
    assert_eq!(Rate::parse("500/hour").unwrap().to_string(), "500/hour");
    assert_eq!(Rate::parse("2/minute").unwrap().to_string(), "2/min");
    assert_eq!(Rate::per_minute(2).interval(), Duration::from_secs(30));
}

#[test]
fn an_hourly_bucket_gives_its_count_then_one_unit_per_interval() {
    let start = Instant::now();
    let hourly = Rate {
        count: 4,
        period: Duration::from_secs(3600),
    };
    let mut bucket = Bucket::full(hourly, start);
    for _ in 0..4 {
        bucket.take(hourly, start).unwrap();
    }
    assert_eq!(bucket.take(hourly, start), Err(Duration::from_secs(900)));
    assert!(bucket.take(hourly, start + Duration::from_secs(899)).is_err());
    assert!(bucket.take(hourly, start + Duration::from_secs(900)).is_ok());
}

#[test]
fn a_share_refuses_at_once_and_a_unit_given_back_can_be_taken_again() {
    let start = Instant::now();
    let share = Share::new(Rate::per_minute(2), start);
    share.take(start).unwrap();
    share.take(start).unwrap();
    assert_eq!(share.take(start), Err(Duration::from_secs(30)));
    share.give_back(start);
    assert!(share.take(start).is_ok());
    assert!(share.take(start).is_err());
    // Never above its count, however many are given back.
    for _ in 0..5 {
        share.give_back(start);
    }
    share.take(start).unwrap();
    share.take(start).unwrap();
    assert!(share.take(start).is_err());
}

#[tokio::test]
async fn a_take_says_how_long_it_waited_and_none_when_it_did_not() {
    // 2 a minute, both sent 59 s ago: the next may go in a second.
    let long_ago = Instant::now() - Duration::from_secs(59);
    let budget = UpstreamBudget::having_sent("app", 2, &[long_ago, long_ago]);
    let waited = budget.take(None).await.unwrap().expect("a wait");
    assert!(waited >= Duration::from_millis(900) && waited < MAX_WAIT, "{waited:?}");
    let fresh = UpstreamBudget::new("app", 2);
    assert_eq!(fresh.take(None).await.unwrap(), None);
}

#[test]
fn a_rolling_minute_never_holds_more_sends_than_the_budget() {
    // A bucket refilled continuously let 238 of a budget of 120 through in
    // a minute that started full; the log lets 120, whatever the pace.
    let start = Instant::now();
    let mut log = SentLog::default();
    let mut sent = Vec::new();
    for tenth in 0..1200u64 {
        let now = start + Duration::from_millis(100 * tenth);
        for _ in 0..5 {
            if log.take(120, now).is_ok() {
                sent.push(now);
            }
        }
    }
    for (i, &at) in sent.iter().enumerate() {
        let within = sent[i..]
            .iter()
            .take_while(|&&later| later - at < Duration::from_secs(60))
            .count();
        assert!(within <= 120, "{within} sends in the minute from {i}");
    }
    assert_eq!(sent.len(), 240, "two whole minutes: 120 each");
    // Full: the wait is until the oldest send is a minute old.
    let mut full = SentLog::default();
    full.take(1, start).unwrap();
    assert_eq!(
        full.take(1, start + Duration::from_secs(20)),
        Err(Duration::from_secs(40))
    );
    assert!(full.take(1, start + Duration::from_secs(60)).is_ok());
}

#[test]
fn a_flood_is_counted_in_grains_so_the_log_stays_small_whatever_the_budget() {
    // 10,000 sends in 10 ms, under a budget of ten million a minute: ten
    // instants kept, not ten thousand.
    let start = Instant::now();
    let mut log = SentLog::default();
    for n in 0..10_000u64 {
        log.take(10_000_000, start + Duration::from_micros(n)).unwrap();
    }
    assert_eq!((log.sent.len(), log.total), (10, 10_000));
    // Each grain leaves the window with its first send.
    assert!(log.take(10_000, start + Duration::from_secs(60)).is_ok());
    assert_eq!(log.total, 9_001, "the first grain's thousand left, one came");
}
