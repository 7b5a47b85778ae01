//! `serve` while Withings fails or asks to wait: a refused token is sent
//! once for all concurrent callers, callers queued behind a failing refresh
//! get its error, the loop backs off (saying so once) and never sleeps past
//! the token's expiry, and a `min_ttl` no token can meet rotates once.

use crate::support::*;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::{Request, Respond};

// ---------------------------------------------------------------------------
// failures shared, not repeated

/// A refresh token this store rotated away an hour ago (still in Withings'
/// grace, so a refusal of the current one tries it too).
const PREVIOUS_REFRESH: &str = "previous-refresh-def";

/// A server user whose set expires in two minutes (the broker's default
/// `min_ttl` refreshes it; the loop, with `--buffer 1m`, does not) and
/// whose store remembers [`PREVIOUS_REFRESH`].
fn given_an_expiring_set_with_a_previous_token(withings_url: &str) -> TestEnv {
    let mut env = given_store_expiring_in(120);
    let mut store = env.store_json();
    let rotated_at = chrono::Utc::now() - chrono::Duration::hours(1);
    store["previous"] = json!({ "refresh_token": PREVIOUS_REFRESH, "rotated_at": rfc3339(rotated_at) });
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    env.withings(withings_url).serve_credentials();
    env
}

#[test]
fn a_refused_token_is_sent_once_for_all_concurrent_broker_calls_and_not_again_until_the_store_changes() {
    let withings = Upstream::start();
    for token in [OLD_REFRESH, PREVIOUS_REFRESH] {
        // Once for the broker, once for the operator's explicit retry.
        withings.mount(refresh_of(token).respond_with(refused_refresh()).expect(2));
    }
    let env = given_an_expiring_set_with_a_previous_token(&withings.uri());
    let server = env.serve(&["--buffer", "1m", "--check-interval", "1h"]);

    let answers = concurrently(10, || broker(&server));
    for answer in answers.iter().chain([broker(&server), broker(&server)].iter()) {
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (400, "INVALID_REFRESH_TOKEN"),
            "{answer:?}"
        );
        assert!(answer.json()["error"]["action"].as_str().unwrap().contains("auth-url"));
    }
    assert_eq!(
        withings.requests().len(),
        2,
        "the current token and the previous one, once"
    );
    let later = broker(&server);
    let message = later.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("it is not sent again until the store holds another set"),
        "{message}"
    );

    // The operator's POST /admin/token/refresh is an explicit retry: sent.
    let retried = server.admin_post("/admin/token/refresh", None);
    assert_eq!(retried.error_code(), "INVALID_REFRESH_TOKEN", "{retried:?}");
    assert_eq!(withings.requests().len(), 4);
    withings.verify();
    let log = server.log();
    assert_eq!(
        lines_with(
            &log,
            "Withings refused the refresh token in use: the broker and the background refresh do not send it again"
        ),
        1,
        "{log}"
    );

    // Re-authorised (here: by hand): the broker refreshes the new set.
    env.seed_store(OLD_ACCESS, "reauthorised-refresh", 120);
    withings.mount(
        refresh_of("reauthorised-refresh")
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    let answer = broker(&server);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["access_token"], NEW_ACCESS);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

/// Consumers that arrive while a refresh is failing share its error: four
/// arrive while the first one's refresh gets 500s, and all five get its
/// error, from one refresh's attempts (not 23 requests, the slowest waiting
/// 41.5 s, as each repeating the attempts would make).
#[test]
fn consumers_queued_behind_a_failing_refresh_get_its_error_without_sending_again() {
    let failing = ResponseTemplate::new(500).set_delay(Duration::from_millis(600));
    // --retries 2: one refresh is three attempts.
    let withings = withings_answering(failing).times(3);
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let before = env.store_bytes();
    let server = env.serve(&[
        "--retries",
        "2",
        "--retry-delay",
        "0s",
        "--buffer",
        "1m",
        "--check-interval",
        "1h",
    ]);
    let answers = std::thread::scope(|scope| {
        let first = scope.spawn(|| broker(&server));
        until_asked(&withings);
        let mut answers = concurrently(4, || broker(&server));
        answers.push(first.join().expect("first consumer"));
        answers
    });
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (502, "UPSTREAM_ERROR"),
            "{answer:?}"
        );
    }
    assert_eq!(
        withings.requests().len(),
        3,
        "one refresh's attempts for five consumers"
    );
    withings.verify();
    assert_eq!(env.store_bytes(), before, "the stored set is kept");
    assert_eq!(
        lines_with(&server.log(), "Token refresh failed (broker)"),
        1,
        "{}",
        server.log()
    );
}

/// After a failed refresh, callers get its error at
/// once, with the time left of the backoff as `Retry-After`, until it
/// ends; an operator's POST /admin/token/refresh is sent all the same.
#[test]
fn after_a_failed_refresh_broker_calls_get_its_error_at_once_until_the_backoff_ends() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(ResponseTemplate::new(500)));
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let before = env.store_bytes();
    let server = env.serve(&["--retries", "0", "--buffer", "1m", "--check-interval", "1h"]);

    let first = broker(&server);
    assert_eq!(
        (first.status, first.error_code().as_str()),
        (502, "UPSTREAM_ERROR"),
        "{first:?}"
    );
    let held: Vec<Answer> = (0..20).map(|_| broker(&server)).collect();
    for answer in &held {
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (502, "UPSTREAM_ERROR"),
            "{answer:?}"
        );
        let retry_after: u64 = answer
            .header("retry-after")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{answer:?}"));
        assert!((1..=10).contains(&retry_after), "Retry-After: {retry_after}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("not sent again before"), "{message}");
    }
    assert_eq!(withings.requests().len(), 1, "one refresh for 21 broker calls");
    assert_eq!(env.store_bytes(), before);

    // The operator's explicit retry is sent.
    let retried = server.admin_post("/admin/token/refresh", None);
    assert_eq!(retried.error_code(), "UPSTREAM_ERROR", "{retried:?}");
    assert_eq!(withings.requests().len(), 2);

    // Withings is back: once the backoff ends, a broker call refreshes.
    withings.mount(
        token_request()
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .with_priority(1)
            .expect(1),
    );
    let refreshed = wait_until(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(250));
        broker(&server).status == 200
    });
    assert!(refreshed, "{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

// ---------------------------------------------------------------------------
// the loop's waits

#[test]
fn while_withings_fails_the_loop_backs_off_says_so_once_and_once_when_it_recovers() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(ResponseTemplate::new(500)));
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    // Without a back-off this would be four requests and four lines per 100 ms tick.
    let server = env.serve(&["--check-interval", "100ms", "--retry-delay", "0s"]);
    std::thread::sleep(Duration::from_secs(3));
    let calls = withings.requests().len();
    // 100 ms doubling to 1.6 s, jittered: at most seven checks in 3 s.
    assert!((2..=10).contains(&calls), "{calls} requests in 3 s:\n{}", server.log());
    let log = server.log();
    assert_eq!(
        lines_with(&log, "the background refresh failed [UPSTREAM_ERROR]"),
        1,
        "{log}"
    );
    assert_eq!(lines_with(&log, "retrying in"), 0, "{log}");
    assert_eq!(lines_with(&log, "Token refresh failed"), 0, "{log}");

    withings.mount(
        token_request()
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .with_priority(1)
            .expect(1),
    );
    let recovered = wait_until(Duration::from_secs(15), || {
        server.log().contains("the background refresh works again")
    });
    assert!(recovered, "{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let log = server.log();
    assert_eq!(lines_with(&log, "the background refresh works again"), 1, "{log}");
    assert_eq!(lines_with(&log, "Token refresh successful"), 1, "{log}");
    assert_eq!(lines_with(&log, "the background refresh failed"), 1, "{log}");
    withings.verify();
}

/// Withings' status 601 asks for a wait, here longer than a run waits
/// (60 s): the loop waits that long instead of asking again every tick.
#[test]
fn the_loop_waits_as_long_as_withings_asks() {
    let slow_down = ResponseTemplate::new(200).set_body_json(json!({
        "status": 601,
        "body": { "wait_seconds": 120 },
        "error": "Same arguments in less than 10 seconds",
    }));
    let withings = withings_answering(slow_down).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "100ms"]);
    until_asked(&withings);
    std::thread::sleep(Duration::from_secs(2));
    withings.verify();
    let log = server.log();
    assert_eq!(
        lines_with(&log, "the background refresh failed [RATE_LIMITED]"),
        1,
        "{log}"
    );
    assert!(log.contains("next check in 120 s"), "{log}");
}

/// Withings' status 601 asking for a wait of `seconds`.
fn asks_to_wait(seconds: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": 601,
        "body": { "wait_seconds": seconds },
        "error": "Same arguments in less than 10 seconds",
    }))
}

const YEARS: u64 = 1_000_000_000_000;

/// `wait_seconds: 10^12` never makes the loop sleep past the token's
/// expiry. The set here expires in 5 min 15 s: the next check comes when
/// 5 min are left, and the line says why it comes then.
#[test]
fn a_wait_withings_asks_for_never_puts_the_next_check_past_the_tokens_expiry() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(asks_to_wait(YEARS)));
    let mut env = given_store_expiring_in(5 * 60 + 15);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--buffer", "10m", "--check-interval", "1s"]);
    let checked_again = wait_until(Duration::from_secs(40), || withings.requests().len() >= 2);
    assert!(checked_again, "{}", server.log());
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("the background refresh failed [RATE_LIMITED]"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(&format!(
            "Withings asked to wait {YEARS} s: cut to 300 s before the access token expires at "
        )),
        "{line}"
    );
    assert!(!line.contains("next check in 3600 s"), "{line}");
}

/// The broker passed Withings' `Retry-After: 1000000000000` on to its
/// consumers.
#[test]
fn the_broker_never_tells_a_consumer_to_wait_longer_than_an_hour() {
    let withings = withings_answering(asks_to_wait(YEARS)).times(1);
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--buffer", "1m", "--check-interval", "1h"]);
    let answer = broker(&server);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (503, "RATE_LIMITED"),
        "{answer:?}"
    );
    let retry_after: u64 = answer
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{answer:?}"));
    assert!((1..=3600).contains(&retry_after), "Retry-After: {retry_after}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// a min_ttl beyond the token's lifetime

/// A Withings that honours only the refresh token it issued last (the
/// store's at first), as Withings does once a new token was used, and
/// issues sets that live `lifetime_secs`: `chain-access-<n>`, `chain-refresh-<n>`.
struct Chain {
    current: Mutex<String>,
    issued: AtomicU64,
    lifetime_secs: i64,
}

impl Chain {
    fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    fn current(&self) -> String {
        self.current.lock().expect("chain").clone()
    }
}

struct ChainAnswers(Arc<Chain>);

impl Respond for ChainAnswers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let sent = body.split('&').find_map(|pair| pair.strip_prefix("refresh_token="));
        let mut current = self.0.current.lock().expect("chain");
        if sent != Some(current.as_str()) {
            return refused_refresh();
        }
        let n = self.0.issued.fetch_add(1, Ordering::SeqCst) + 1;
        *current = format!("chain-refresh-{n}");
        let answer = token_body(&format!("chain-access-{n}"), &current, self.0.lifetime_secs);
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

fn withings_chain(first: &str, lifetime_secs: i64) -> (Upstream, Arc<Chain>) {
    let chain = Arc::new(Chain {
        current: Mutex::new(first.to_owned()),
        issued: AtomicU64::new(0),
        lifetime_secs,
    });
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(ChainAnswers(Arc::clone(&chain))));
    (withings, chain)
}

/// Tokens that live 4 minutes, the broker's default `min_ttl` of 5: every
/// call rotated (two calls, two rotations, each pushed to the copies).
#[test]
fn two_broker_calls_on_tokens_that_live_less_than_min_ttl_rotate_once() {
    let (withings, chain) = withings_chain(OLD_REFRESH, 240);
    let mut env = given_store_expiring_in(90);
    let mut store = env.store_json();
    let expires = chrono::Utc::now() + chrono::Duration::seconds(90);
    store["tokens"]["expires_at"] = json!(rfc3339(expires));
    store["tokens"]["last_refreshed"] = json!(rfc3339(expires - chrono::Duration::minutes(4)));
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    env.withings(&withings.uri()).serve_credentials();
    let generation = env.generation();
    let server = env.serve(&["--buffer", "30s", "--check-interval", "1h"]);
    for round in 1..=2 {
        let answer = broker(&server);
        assert_eq!(answer.status, 200, "round {round}: {answer:?}");
        assert_eq!(answer.json()["access_token"], "chain-access-1", "round {round}");
    }
    assert_eq!(chain.issued(), 1, "{}", server.log());
    assert_eq!(env.generation(), generation + 1);
    assert_eq!(
        env.stored_refresh_token(),
        chain.current(),
        "the peer's live token is stored"
    );
    assert_eq!(
        lines_with(
            &server.log(),
            "min_ttl 5m is more than half the token's lifetime (4m): 2m is used"
        ),
        1,
        "{}",
        server.log()
    );
}

/// `access-token --min-ttl 4h` on Withings' 3 h tokens rotated on every
/// run; capped to 1h30m, a set with an hour left rotates once.
#[test]
fn two_access_token_runs_with_a_min_ttl_beyond_the_lifetime_rotate_once() {
    let (withings, chain) = withings_chain(OLD_REFRESH, 3 * 3600);
    let env = given_expired_store(&withings.uri());
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 3600);
    let generation = env.generation();
    let runs: Vec<Run> = (0..2)
        .map(|_| env.run(&["access-token", "--min-ttl", "4h", "--no-railway"]))
        .collect();
    for run in &runs {
        assert_eq!((run.code, run.stdout.as_str()), (0, "chain-access-1\n"), "{run:?}");
    }
    assert_eq!(chain.issued(), 1);
    assert_eq!(env.generation(), generation + 1);
    assert_eq!(
        env.stored_refresh_token(),
        chain.current(),
        "the peer's live token is stored"
    );
    // Each run (one process) says it once.
    for run in &runs {
        assert_eq!(
            lines_with(
                &run.stderr,
                "warning: --min-ttl 4h is more than half the token's lifetime (3h): 1h30m is used, so that a token just issued is not refreshed again on every call"
            ),
            1,
            "{run:?}"
        );
    }
}
