//! The upstream budget: the token requests one app sends Withings a minute,
//! shared by `serve`'s refreshes, by a run's retries and, through Redis, by
//! every host; one over it is `RATE_LIMITED` with nothing sent.

use crate::support::*;

#[test]
fn serve_refuses_a_second_refresh_within_a_budget_of_one_and_sends_it_nowhere() {
    let (withings, issued) = withings_always_rotating();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--upstream-budget", "1"]);

    let first = server.admin_post("/admin/token/refresh", None);
    let second = server.admin_post("/admin/token/refresh", None);

    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(second.error_code(), "RATE_LIMITED", "{second:?}");
    assert_eq!(second.status, 503, "{second:?}");
    let body = second.json();
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("the 1 token requests a minute allowed for app"),
        "{body}"
    );
    assert!(body.to_string().contains("--upstream-budget"), "{body}");
    assert_eq!(
        withings.requests().len(),
        1,
        "Withings received exactly one token request"
    );
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn retries_beyond_the_budget_are_not_sent_and_leave_the_store_unchanged() {
    let withings = withings_answering(ResponseTemplate::new(500)).times(2);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--json", "--upstream-budget", "2", "--retries", "3"]);

    let (message, action) = assert_json_error(&out, 5, "RATE_LIMITED");
    assert!(
        message.contains("the 2 token requests a minute allowed for app test-client-id"),
        "{message}"
    );
    assert!(message.contains("nothing was sent"), "{message}");
    assert!(action.contains("--upstream-budget"), "{action}");
    assert!(action.contains("the stored tokens were not changed"), "{action}");
    assert_eq!(withings.requests().len(), 2, "the third attempt is over the budget");
    assert_eq!(env.store_bytes(), before);
    assert_eq!(env.store_dir_entries(), STORE_WITH_ALERT_STATE);
    withings.verify();
}

#[test]
fn two_hosts_on_one_redis_share_the_budget() {
    let (withings, issued) = withings_always_rotating();
    let (redis, host_a) = given_expired_redis_store(&withings.uri());
    let mut host_b = TestEnv::new();
    host_b.withings(&withings.uri()).on_redis(&redis);
    // Both runs in one window of the shared count: not in a minute's last
    // seconds, when the second run could start the next window.
    let into_minute = chrono::Utc::now().timestamp().rem_euclid(60);
    if into_minute > 45 {
        std::thread::sleep(std::time::Duration::from_secs((61 - into_minute) as u64));
    }

    let first = host_a.run(&["refresh", "--no-railway", "--json", "--upstream-budget", "1"]);
    let stored = redis.store_json();
    let second = host_b.run(&["refresh", "--no-railway", "--json", "--upstream-budget", "1"]);

    assert_eq!(first.code, 0, "{first:?}");
    let (message, _) = assert_json_error(&second, 5, "RATE_LIMITED");
    assert!(message.contains("spent by all hosts sharing the store"), "{message}");
    assert_eq!(withings.requests().len(), 1, "the second host sent nothing");
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(redis.store_json(), stored, "the second host changed nothing");
}
