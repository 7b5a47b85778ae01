//! `serve` whose log reader stalls: the lines it cannot write are dropped
//! and counted, and the refreshes and the broker go on as before.

use crate::support::*;

use std::time::Duration;

/// Enough for the pipe (64 KiB) and the writer's queue (1,024 lines) to
/// fill at `-vv`.
const ROTATIONS: u64 = 300;

const NO_COPIES: &str = r#"{"update_railway": false, "trigger_deployment": false}"#;

#[test]
fn a_log_reader_that_never_reads_costs_log_lines_never_a_refresh_or_a_broker_answer() {
    let (sandbox, mut env) = given_authorised_sandbox();
    env.serve_credentials();
    let server = env.serve_with_stalled_log(&["-vv", "--check-interval", "100ms", "--upstream-budget", "100000"]);
    let before = sandbox.stats();
    let mut stored = env.stored_refresh_token();
    for rotation in 1..=ROTATIONS {
        // Each answers within the client's timeout or the test fails.
        let refreshed = server.admin_post("/admin/token/refresh", Some(NO_COPIES));
        assert_eq!(refreshed.status, 200, "rotation {rotation}: {refreshed:?}");
        let answer = broker(&server);
        assert_eq!(answer.status, 200, "broker after rotation {rotation}: {answer:?}");
        let now = env.stored_refresh_token();
        assert_ne!(now, stored, "rotation {rotation} left the stored token as it was");
        stored = now;
    }
    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "tokens_issued"), ROTATIONS);

    // The loop still refreshes: a set made due is rotated on its own.
    let mut store = env.store_json();
    store["tokens"]["expires_at"] = json!(rfc3339(chrono::Utc::now() - chrono::Duration::minutes(1)));
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    let rotated_by_the_loop = wait_until(Duration::from_secs(30), || env.stored_refresh_token() != stored);
    assert!(rotated_by_the_loop, "the loop did not refresh the expired set");
    assert_eq!(stat_delta(&before, &sandbox.stats(), "tokens_issued"), ROTATIONS + 1);
    let answer = broker(&server);
    assert_eq!(answer.status, 200, "{answer:?}");

    let metrics = server.get("/metrics", &[]);
    assert_eq!(metrics.status, 200, "{metrics:?}");
    let dropped: u64 = metrics
        .body
        .lines()
        .find_map(|line| line.strip_prefix("withings_token_log_lines_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in\n{}", metrics.body));
    assert!(dropped > 0, "no line was dropped:\n{}", metrics.body);
}
