use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_full_bucket_gives_its_capacity_at_once_then_refuses() {
    let start = Instant::now();
    let mut bucket = Bucket::full(3, start);
    for _ in 0..3 {
        assert!(bucket.take(3, start).is_ok());
    }
    // One unit of 3 a minute comes back in 20 s.
    assert_eq!(bucket.take(3, start), Err(Duration::from_secs(20)));
}

#[test]
fn units_come_back_at_the_rate_per_minute() {
    let start = Instant::now();
    let mut bucket = Bucket::full(120, start);
    for _ in 0..120 {
        bucket.take(120, start).unwrap();
    }
    assert!(bucket.take(120, start).is_err());
    // 120 a minute: one every 500 ms.
    let later = start + Duration::from_millis(499);
    let wait = bucket.take(120, later).unwrap_err();
    assert!(wait <= Duration::from_millis(2), "{wait:?}");
    assert!(bucket.take(120, start + Duration::from_millis(500)).is_ok());
    assert!(bucket.take(120, start + Duration::from_millis(500)).is_err());
}

#[test]
fn refused_takes_never_drive_the_bucket_below_zero() {
    let start = Instant::now();
    let mut bucket = Bucket::full(1, start);
    bucket.take(1, start).unwrap();
    for _ in 0..1000 {
        assert!(bucket.take(1, start).is_err());
    }
    assert_eq!(bucket.available(1, start), 0.0);
    // A minute after the one request, one unit is back, not fewer.
    assert!(bucket.take(1, start + Duration::from_secs(60)).is_ok());
}

#[test]
fn an_idle_bucket_holds_no_more_than_its_capacity() {
    let start = Instant::now();
    let mut bucket = Bucket::full(2, start);
    let much_later = start + Duration::from_secs(3600);
    assert_eq!(bucket.available(2, much_later), 2.0);
    bucket.take(2, much_later).unwrap();
    bucket.take(2, much_later).unwrap();
    assert!(bucket.take(2, much_later).is_err());
}

#[test]
fn a_clock_that_goes_back_refills_nothing() {
    let start = Instant::now() + Duration::from_secs(60);
    let mut bucket = Bucket::full(1, start);
    bucket.take(1, start).unwrap();
    let earlier = start - Duration::from_secs(30);
    assert_eq!(bucket.available(1, earlier), 0.0);
    assert!(bucket.take(1, earlier).is_err());
    // The look back did not move the bucket's time back either.
    assert!(bucket.take(1, start + Duration::from_secs(30)).is_err());
    assert!(bucket.take(1, start + Duration::from_secs(60)).is_ok());
}

#[tokio::test]
async fn a_spent_budget_whose_next_unit_is_far_refuses_with_nothing_to_wait_for() {
    let budget = UpstreamBudget::new("app", 1, Instant::now());
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

#[tokio::test]
async fn a_unit_due_within_the_bound_is_waited_for() {
    // 60 a minute: the next unit comes in a second, within MAX_WAIT.
    let budget = UpstreamBudget::new("app", 60, Instant::now());
    for _ in 0..60 {
        budget.take(None).await.unwrap();
    }
    let before = Instant::now();
    budget.take(None).await.unwrap();
    assert!(before.elapsed() >= Duration::from_millis(900), "{:?}", before.elapsed());
}

#[test]
fn the_clients_of_one_app_share_one_budget() {
    let first = for_client("shared-app", 5);
    let second = for_client("shared-app", 5);
    assert!(Arc::ptr_eq(&first, &second));
    assert!(!Arc::ptr_eq(&first, &for_client("other-app", 5)));
}
