//! `serve` (issue 11): the admin API of `admin-api.md`, the token broker,
//! the background refresh and the shutdown, against the real binary.

use crate::support::*;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every admin endpoint, with its method.
const ADMIN_ENDPOINTS: [(&str, &str); 4] = [
    ("GET", "/admin/token/status"),
    ("POST", "/admin/token/refresh"),
    ("GET", "/admin/authorization-url"),
    ("POST", "/admin/token/exchange?code=some-code"),
];

/// The body of the origin guide's "recommended" refresh command.
const ORIGIN_REFRESH_BODY: &str = r#"{"update_railway": true, "trigger_deployment": false}"#;

/// A user with a fresh set (3 h left), both serve credentials and a
/// Withings at `withings_url`.
fn given_fresh_server_user(withings_url: &str) -> TestEnv {
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(withings_url).serve_credentials();
    env
}

fn code_of(redirect: &str) -> String {
    let query = redirect.split_once('?').expect("query").1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .expect("code")
        .to_owned()
}

#[test]
fn health_needs_no_credential_and_is_503_when_the_store_is_unreadable() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    for path in ["/admin/health", "/health"] {
        let answer = server.get(path, &[]);
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(answer.json()["status"], "ok", "{path}");
        assert_eq!(answer.json()["token_configured"], true, "{path}");
    }
    env.write_store_bytes(b"{not json");
    let answer = server.get("/admin/health", &[]);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.error_code(), "CONFIGURATION_ERROR");
    assert!(!answer.json()["error"]["action"].as_str().unwrap().is_empty());
}

#[test]
fn every_admin_endpoint_refuses_a_missing_or_wrong_token_and_changes_nothing() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    let store_before = env.store_bytes();
    let wrong_admin = format!("{ADMIN_TOKEN}x");
    let bearer_admin = format!("Bearer {ADMIN_TOKEN}");
    for (method, path) in ADMIN_ENDPOINTS {
        for headers in [
            vec![],
            vec![("X-Admin-Token", "wrong")],
            vec![("X-Admin-Token", &wrong_admin[..])],
            vec![("X-Admin-Token", "")],
            // The admin API reads X-Admin-Token only.
            vec![("Authorization", &bearer_admin[..])],
        ] {
            let answer = request(&server.addr, method, path, &headers, Some(ORIGIN_REFRESH_BODY));
            assert_eq!(answer.status, 401, "{method} {path} {headers:?}: {answer:?}");
            assert_eq!(answer.error_code(), "UNAUTHORIZED", "{method} {path}");
            assert!(answer.header("www-authenticate").is_some(), "{method} {path}");
        }
    }
    assert_eq!(env.store_bytes(), store_before, "a refused request changed the store");
    withings.verify();
}

#[test]
fn serve_refuses_to_start_without_admin_api_token() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let out = env.run(&["serve", "--listen", "127.0.0.1:0", "--log-format", "text"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("error: ADMIN_API_TOKEN is not set (serve needs it: it guards the admin endpoints) [CONFIGURATION_ERROR]\n  next: set ADMIN_API_TOKEN"),
        "{out:?}"
    );
    // Under serve the default log format is JSON; `--json` adds the error object on stdout.
    let out = env.run(&["serve", "--listen", "127.0.0.1:0", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "CONFIGURATION_ERROR");
    let line: Value = serde_json::from_str(out.stderr.trim()).expect("one JSON log line");
    assert_eq!(line["level"], "ERROR");
    assert!(line["message"].as_str().unwrap().contains("ADMIN_API_TOKEN"));
}

#[test]
fn the_background_loop_refreshes_an_expired_set_once_and_not_again_while_fresh() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "100ms"]);
    let refreshed = wait_until(Duration::from_secs(10), || env.stored_refresh_token() == NEW_REFRESH);
    assert!(refreshed, "the loop never refreshed:\n{}", server.log());
    // Ten more checks of a fresh set.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(withings.requests().len(), 1, "{}", server.log());
    withings.verify();
    let log = server.log();
    assert!(
        log.contains("Token refresh successful. Expires at: ") && log.contains("(schedule, set generation 2)"),
        "{log}"
    );
    for line in log.lines() {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert_eq!(line["service"], "withings-token", "{line}");
    }
    for secret in [
        OLD_ACCESS,
        OLD_REFRESH,
        NEW_ACCESS,
        NEW_REFRESH,
        CLIENT_SECRET,
        ADMIN_TOKEN,
        READER_TOKEN,
    ] {
        assert!(!log.contains(secret), "a secret was logged:\n{log}");
    }
}

#[test]
fn twenty_concurrent_admin_refreshes_are_serialised_and_never_refused_upstream() {
    let (sandbox, mut env) = given_authorised_sandbox();
    env.serve_credentials();
    let server = env.serve(&[]);
    let before = sandbox.stats();
    let answers = concurrently(20, || {
        server.admin_post("/admin/token/refresh", Some(ORIGIN_REFRESH_BODY))
    });
    let after = sandbox.stats();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        let report = answer.json();
        assert!(
            report["access_token"].as_str().unwrap().starts_with("token_*****"),
            "masked: {report}"
        );
        *outcomes
            .entry(report["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let delta = |key| stat_delta(&before, &after, key);
    println!(
        "FIGURES 20 admin refreshes: outcomes {outcomes:?}, token requests {}",
        delta("token_requests")
    );
    assert_eq!(delta("refused"), 0, "a grant was refused upstream");
    assert_eq!(delta("rate_limited"), 0);
    let refreshed = outcomes.get("refreshed").copied().unwrap_or(0);
    assert!(refreshed >= 1, "{outcomes:?}");
    assert_eq!(
        refreshed + outcomes.get("already_refreshed_by_peer").copied().unwrap_or(0),
        20
    );
    assert_eq!(
        delta("tokens_issued"),
        refreshed,
        "one upstream rotation per `refreshed`"
    );
    // The stored set is the live one: the CLI, sharing the store, refreshes with it.
    let out = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn exchange_takes_the_code_by_query_or_by_body_and_checks_a_given_state() {
    let (sandbox, mut env) = given_sandbox();
    env.serve_credentials();
    let server = env.serve(&[]);
    let consent = || {
        let auth = server.admin_get("/admin/authorization-url");
        assert_eq!(auth.status, 200, "{auth:?}");
        let auth = auth.json();
        for key in ["authorization_url", "state", "redirect_uri", "scope"] {
            assert!(auth[key].is_string(), "{key}: {auth}");
        }
        sandbox.approve(auth["authorization_url"].as_str().unwrap())
    };

    // The admin guide's command: a bare code in the query.
    let redirect = consent();
    let answer = server.admin_post(&format!("/admin/token/exchange?code={}", code_of(&redirect)), None);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["outcome"], "exchanged");
    let first = env.stored_refresh_token();
    assert!(first.starts_with("sbx_refresh_"), "{first}");

    // A JSON body with the whole redirect URL: its state is checked.
    let redirect = consent();
    let body = json!({ "code": redirect }).to_string();
    let answer = server.admin_post("/admin/token/exchange", Some(&body));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["outcome"], "exchanged");
    assert_ne!(env.stored_refresh_token(), first);

    // A state that is not the pending one: refused before anything is sent.
    let redirect = consent();
    let requests = stat(&sandbox.stats(), "token_requests");
    let body = json!({ "code": code_of(&redirect), "state": "not-the-issued-state" }).to_string();
    let answer = server.admin_post("/admin/token/exchange", Some(&body));
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.error_code(), "INVALID_STATE");
    assert_eq!(stat(&sandbox.stats(), "token_requests"), requests, "nothing was sent");

    // No code at all is a bad request.
    let answer = server.admin_post("/admin/token/exchange", None);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (400, "BAD_REQUEST"),
        "{answer:?}"
    );
}

#[test]
fn forty_broker_requests_on_an_expiring_set_make_one_upstream_call_and_share_its_token() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(300));
    let withings = withings_answering(slow).times(1);
    // Two minutes left: inside the broker's default min_ttl (5m), outside
    // the loop's buffer (1m), so only the broker refreshes.
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--buffer", "1m"]);
    let bearer = format!("Bearer {READER_TOKEN}");
    let answers = concurrently(40, || server.get("/v1/access-token", &[("Authorization", &bearer)]));
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        let body = answer.json();
        assert_eq!(body["access_token"], NEW_ACCESS, "{body}");
        assert_eq!(body["userid"], "363");
        assert!(body["expires_at"].is_string() && body["scope"].is_string(), "{body}");
    }
    withings.verify();
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    // Fresh now: a later consumer is answered from the store.
    let answer = server.get("/v1/access-token?min_ttl=1h", &[("Authorization", &bearer)]);
    assert_eq!(answer.json()["access_token"], NEW_ACCESS);
    assert_eq!(withings.requests().len(), 1);
}

#[test]
fn the_reader_credential_opens_only_the_broker() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    let bearer_reader = format!("Bearer {READER_TOKEN}");
    for (method, path) in ADMIN_ENDPOINTS {
        let answer = request(&server.addr, method, path, &[("X-Admin-Token", READER_TOKEN)], None);
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (403, "FORBIDDEN"),
            "{path}: {answer:?}"
        );
        let answer = request(&server.addr, method, path, &[("Authorization", &bearer_reader)], None);
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
    }
    let bearer_admin = format!("Bearer {ADMIN_TOKEN}");
    for headers in [
        [("Authorization", &bearer_reader[..])],
        [("Authorization", &bearer_admin[..])],
        [("X-Admin-Token", ADMIN_TOKEN)],
    ] {
        let answer = server.get("/v1/access-token?min_ttl=10m", &headers);
        assert_eq!(answer.status, 200, "{headers:?}: {answer:?}");
        assert_eq!(answer.json()["access_token"], OLD_ACCESS);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", READER_TOKEN)],
    ] {
        let answer = server.get("/v1/access-token", &headers);
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (401, "UNAUTHORIZED"),
            "{headers:?}"
        );
    }
    let answer = server.get("/v1/access-token?min_ttl=1y", &[("Authorization", &bearer_reader)]);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (400, "BAD_REQUEST"),
        "{answer:?}"
    );
    withings.verify();
}

#[test]
fn without_a_reader_credential_only_the_admin_token_opens_the_broker() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).set("ADMIN_API_TOKEN", ADMIN_TOKEN);
    let server = env.serve(&[]);
    let answer = server.get(
        "/v1/access-token",
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    );
    assert_eq!(answer.status, 401, "{answer:?}");
    let answer = server.get(
        "/v1/access-token",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    );
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn sigterm_lets_the_refresh_in_flight_finish_and_answer_then_exits_0() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1500));
    let withings = withings_answering(slow).times(1);
    let env = given_fresh_server_user(&withings.uri());
    let mut server = env.serve(&[]);
    let answer = std::thread::scope(|scope| {
        let client = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        let sent = wait_until(Duration::from_secs(10), || !withings.requests().is_empty());
        assert!(sent, "the refresh never reached Withings:\n{}", server.log());
        server.signal("-TERM");
        client.join().expect("client")
    });
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    assert_eq!(answer.json()["outcome"], "refreshed");
    let status = server.wait(Duration::from_secs(10)).expect("serve did not stop");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the answer was saved");
    assert!(!env.journal_path().exists(), "the transaction ended");
    withings.verify();
}

/// Review finding: a stopping server kept running the whole retry loop of
/// a refresh in flight. It finishes the request already sent, retries
/// nothing more, and exits 0 long before the backoff would have ended.
#[test]
fn sigterm_during_a_failing_refresh_sends_nothing_more_and_exits_0() {
    let failing = ResponseTemplate::new(500).set_delay(Duration::from_millis(800));
    let withings = withings_answering(failing).times(1);
    let env = given_fresh_server_user(&withings.uri());
    let before = env.store_bytes();
    let mut server = env.serve(&["--retries", "5", "--retry-delay", "3s"]);
    let started = std::thread::scope(|scope| {
        let client = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        let sent = wait_until(Duration::from_secs(10), || !withings.requests().is_empty());
        assert!(sent, "the refresh never reached Withings:\n{}", server.log());
        let started = Instant::now();
        server.signal("-TERM");
        let answer = client.join().expect("client");
        assert_eq!(answer.status, 503, "{answer:?}");
        started
    });
    let status = server.wait(Duration::from_secs(10)).expect("serve did not stop");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no backoff after the signal"
    );
    assert_eq!(env.store_bytes(), before, "nothing was answered, nothing changed");
    withings.verify();
}

#[test]
fn sigterm_or_sigint_after_a_refresh_exits_0_promptly_even_with_an_idle_connection() {
    for signal in ["-TERM", "-INT"] {
        let (withings, _issued) = withings_always_rotating();
        let env = given_fresh_server_user(&withings.uri());
        let mut server = env.serve(&[]);
        // A refresh opens the CLI's signal window (signals.rs) in this
        // process: afterwards a signal must still be the server's to handle.
        let answer = server.admin_post("/admin/token/refresh", Some("{}"));
        assert_eq!(answer.status, 200, "{answer:?}");
        let _idle = TcpStream::connect(&server.addr).expect("idle connection");
        let started = Instant::now();
        server.signal(signal);
        let status = server.wait(Duration::from_secs(8)).expect("serve did not stop");
        assert_eq!(status.code(), Some(0), "{signal}: {status:?}\n{}", server.log());
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{signal}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn port_is_honoured_when_no_listen_address_is_given() {
    let withings = silent_withings();
    let mut env = given_fresh_server_user(&withings.uri());
    env.set("PORT", "0");
    let server = env.serve_with(&[]);
    assert!(
        server.log().contains("listening on http://0.0.0.0:"),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/health", &[]).status, 200);
}

#[test]
fn two_servers_and_a_cli_run_on_one_store_refresh_an_expired_set_once() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(300));
    let withings = withings_answering(slow).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let first = env.serve(&["--check-interval", "100ms"]);
    let second = env.serve(&["--check-interval", "100ms"]);
    let cli = env.run(&["refresh", "--if-needed", "--json"]);
    assert_eq!(cli.code, 0, "{cli:?}");
    let refreshed = wait_until(Duration::from_secs(10), || env.stored_refresh_token() == NEW_REFRESH);
    assert!(refreshed, "{}\n{}", first.log(), second.log());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(withings.requests().len(), 1, "{}\n{}", first.log(), second.log());
    withings.verify();
}

#[test]
fn health_and_the_broker_answer_while_a_refresh_waits_for_the_store_lock() {
    let (withings, issued) = withings_always_rotating();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    // A CLI run (here: this test) holds the store lock.
    let lock = std::fs::File::create(env.store_path().with_file_name("tokens.json.lock")).expect("lock file");
    lock.lock().expect("lock");
    std::thread::scope(|scope| {
        let refresh = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        assert_eq!(server.get("/health", &[]).status, 200);
        let bearer = format!("Bearer {READER_TOKEN}");
        let answer = server.get("/v1/access-token", &[("Authorization", &bearer)]);
        assert_eq!(answer.json()["access_token"], OLD_ACCESS, "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(!refresh.is_finished(), "the refresh did not wait for the lock");
        assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 0);
        lock.unlock().expect("unlock");
        let answer = refresh.join().expect("client");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["outcome"], "refreshed");
    });
    assert_eq!(env.stored_refresh_token(), "mock-refresh-1");
}

#[test]
fn failures_are_the_error_object_with_their_http_status() {
    // No answer from Withings: 502.
    let env = given_fresh_server_user(&closed_port_url());
    let server = env.serve(&["--retries", "0", "--lock-timeout", "0s"]);
    let answer = server.admin_post("/admin/token/refresh", None);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (502, "NETWORK_ERROR"),
        "{answer:?}"
    );
    // The store lock held elsewhere: 503 with Retry-After.
    let lock = std::fs::File::create(env.store_path().with_file_name("tokens.json.lock")).expect("lock file");
    lock.lock().expect("lock");
    let answer = server.admin_post("/admin/token/refresh", None);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (503, "LOCK_TIMEOUT"),
        "{answer:?}"
    );
    assert_eq!(answer.header("retry-after"), Some("30"));
    drop(lock);
    // A refused grant: 400, and the action says to re-authorise.
    let withings = withings_answering(refused_refresh()).times(1);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    let answer = server.admin_post("/admin/token/refresh", Some(ORIGIN_REFRESH_BODY));
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (400, "INVALID_REFRESH_TOKEN"),
        "{answer:?}"
    );
    assert!(answer.json()["error"]["action"].as_str().unwrap().contains("auth-url"));
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH, "the stored set is kept");
    // A body that is not the endpoint's JSON object: 400 before anything is sent.
    let answer = server.admin_post("/admin/token/refresh", Some(r#"{"update_railways": false}"#));
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (400, "BAD_REQUEST"),
        "{answer:?}"
    );
    withings.verify();
}

/// Review finding: `serve` read its env file once, so from its second
/// refresh on the file looked "changed" (it held what the server itself had
/// written) and was left holding a token already rotated away.
#[test]
fn a_server_rewrites_its_env_file_on_every_refresh() {
    let (_sandbox, mut env) = given_authorised_sandbox();
    env.serve_credentials();
    let env_file = env.write_env_file(&format!(
        "APP=1\nWITHINGS_REFRESH_TOKEN={}\n",
        env.stored_refresh_token()
    ));
    let server = env.serve(&["--env-file", &env_file.display().to_string()]);
    for round in 1..=3 {
        let answer = server.admin_post("/admin/token/refresh", Some(ORIGIN_REFRESH_BODY));
        assert_eq!(answer.status, 200, "round {round}: {answer:?}");
        assert_eq!(answer.json()["env_file"], "updated", "round {round}: {answer:?}");
        let text = std::fs::read_to_string(&env_file).unwrap();
        let line = format!("WITHINGS_REFRESH_TOKEN={}\n", env.stored_refresh_token());
        assert!(
            text.contains(&line),
            "round {round}: the env file holds the stored token:\n{text}"
        );
    }
}

/// The value of the sample line that starts with `name` (labels included).
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

#[test]
fn metrics_move_after_a_refresh_and_never_carry_a_token() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let before = server.get("/metrics", &[]);
    assert_eq!(before.status, 200, "{before:?}");
    assert!(before.header("content-type").unwrap().contains("openmetrics-text"));
    assert!(
        before.body.contains("withings_token_build_info{version=\""),
        "{before:?}"
    );
    assert_eq!(
        sample(&before.body, "withings_token_refresh_total{result=\"success\"}"),
        None
    );
    let expiry_before = sample(&before.body, "withings_token_access_expiry_timestamp_seconds").unwrap();
    let refreshed = server.admin_post("/admin/token/refresh", Some(r#"{"update_railway": false}"#));
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let after = server.get("/metrics", &[]).body;
    assert_eq!(
        sample(&after, "withings_token_refresh_total{result=\"success\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "withings_token_refresh_duration_seconds_count"),
        Some(1.0),
        "{after}"
    );
    assert!(sample(&after, "withings_token_access_expiry_timestamp_seconds").unwrap() >= expiry_before);
    let now = chrono::Utc::now().timestamp() as f64;
    let last = sample(&after, "withings_token_last_refresh_success_timestamp_seconds").unwrap();
    assert!((now - last).abs() < 60.0, "{after}");
    let broker = server.get(
        "/v1/access-token",
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    );
    assert_eq!(broker.status, 200);
    let after = server.get("/metrics", &[]).body;
    assert_eq!(
        sample(&after, "withings_token_broker_requests_total{result=\"served\"}"),
        Some(1.0),
        "{after}"
    );
    for secret in [
        OLD_ACCESS,
        OLD_REFRESH,
        NEW_ACCESS,
        NEW_REFRESH,
        ADMIN_TOKEN,
        READER_TOKEN,
    ] {
        assert!(!after.contains(secret), "{secret} in\n{after}");
    }
}

#[test]
fn metrics_ask_for_the_admin_token_under_metrics_auth() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--metrics-auth"]);
    assert_eq!(server.get("/metrics", &[]).status, 401);
    let reader = format!("Bearer {READER_TOKEN}");
    assert_eq!(server.get("/metrics", &[("Authorization", &reader)]).status, 401);
    assert_eq!(server.admin_get("/metrics").status, 200);
}

/// A user on another machine: nothing stored, only the server and its admin token.
fn given_remote_user(server: &ServeProcess, admin_token: &str) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_SERVER", format!("http://{}", server.addr))
        .set("ADMIN_API_TOKEN", admin_token);
    env
}

/// `value` without the keys that differ between two runs by nature.
fn without(mut value: Value, keys: &[&str]) -> Value {
    for key in keys {
        value.as_object_mut().expect("object").remove(*key);
    }
    value
}

#[test]
fn server_status_and_refresh_print_the_same_json_as_local_runs() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let remote = given_remote_user(&server, ADMIN_TOKEN);
    let local = env.run(&["status", "--json"]);
    let over_server = remote.run(&["status", "--json"]);
    assert_eq!(over_server.code, 0, "{over_server:?}");
    let volatile = ["expires_in_hours"];
    assert_eq!(without(over_server.json(), &volatile), without(local.json(), &volatile));
    let over_server = remote.run(&[
        "--server",
        &format!("http://{}", server.addr),
        "refresh",
        "--no-railway",
        "--json",
    ]);
    assert_eq!(over_server.code, 0, "{over_server:?}");
    assert_eq!(
        env.stored_refresh_token(),
        NEW_REFRESH,
        "the server's store has the new set"
    );
    // The same refresh run locally, against its own Withings, for comparison.
    let other_withings = withings_rotating(OLD_REFRESH);
    let other = given_expired_store(&other_withings.uri());
    let local = other.run_fast(&["refresh", "--no-railway", "--json"]);
    assert_eq!(local.code, 0, "{local:?}");
    let volatile = ["store", "expires_at", "last_refreshed", "env_file_updated"];
    assert_eq!(without(over_server.json(), &volatile), without(local.json(), &volatile));
    assert!(!over_server.stdout.contains(NEW_REFRESH), "{over_server:?}");
    assert_eq!(remote.run(&["status", "--check"]).code, 0);
}

#[test]
fn server_errors_keep_their_exit_codes_and_a_wrong_admin_token_names_it() {
    let withings = withings_answering(refused_refresh()).times(1);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let remote = given_remote_user(&server, "wrong-admin-token");
    let out = remote.run(&["status", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("ADMIN_API_TOKEN"), "{out:?}");
    let remote = given_remote_user(&server, ADMIN_TOKEN);
    let out = remote.run(&["refresh", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "INVALID_REFRESH_TOKEN");
    assert!(out.stderr.contains("`withings-token auth-url`"), "{out:?}");
    let out = remote.run(&["refresh", "--output-env"]);
    assert_eq!(out.code, 3, "tokens never leave the admin API: {out:?}");
    let out = remote.run(&["auth-url", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.json()["authorization_url"].as_str().unwrap().contains("state="));
    let insecure = remote.run(&["--server", "http://example.com", "status"]);
    assert_eq!(insecure.code, 3, "{insecure:?}");
}

/// Issue 18, the adversarial trial: a `--server` that answers, but is not
/// a withings-token serve (a 404 page), is a setting to fix (exit 3), not
/// an outage to retry later (exit 5).
#[test]
fn a_server_url_that_is_not_a_serve_is_a_configuration_error() {
    let peer = Upstream::start();
    peer.mount(
        Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(404).set_body_string("Not Found")),
    );
    let mut remote = TestEnv::new();
    remote
        .set("WITHINGS_TOKEN_SERVER", peer.uri())
        .set("ADMIN_API_TOKEN", ADMIN_TOKEN);
    let out = remote.run(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    let said = "error: the server answered HTTP 404 with 9 bytes of text/plain instead of a withings-token report [CONFIGURATION_ERROR]";
    assert!(out.stderr.lines().any(|l| l == said), "{out:?}");
    assert!(
        out.stderr
            .contains("next: point --server (or WITHINGS_TOKEN_SERVER) at a running `withings-token serve`"),
        "{out:?}"
    );
}

// --- the server's copy of the store (issue 14) ---

/// The server keeps a copy of a file store once the store's last change is
/// 2 s old (`store::file::SETTLE`); until then every request reads it. A
/// test waits that long, so that its change replaces a copy in use, and so
/// that a change is first looked at once settled, when only the file's
/// identity, size and times can tell it.
fn let_the_store_settle() {
    std::thread::sleep(Duration::from_millis(2100));
}

/// `GET /admin/token/status` and `GET /v1/access-token`, as JSON.
fn status_and_broker(server: &ServeProcess) -> (Value, Value) {
    let status = server.admin_get("/admin/token/status");
    assert_eq!(status.status, 200, "{status:?}");
    let bearer = format!("Bearer {READER_TOKEN}");
    let broker = server.get("/v1/access-token", &[("Authorization", &bearer)]);
    assert_eq!(broker.status, 200, "{broker:?}");
    (status.json(), broker.json())
}

/// The store's generation and access token, as the server answers them.
fn generation_and_access_token(server: &ServeProcess) -> (Value, Value) {
    let (status, broker) = status_and_broker(server);
    (status["generation"].clone(), broker["access_token"].clone())
}

#[test]
fn a_cli_refresh_is_what_the_very_next_status_and_broker_requests_answer() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let_the_store_settle();
    let before = env.store_json();
    for _ in 0..3 {
        let (status, broker) = status_and_broker(&server);
        assert_eq!(status["generation"], 1, "{status}");
        assert_eq!(status["expires_at"], before["tokens"]["expires_at"]);
        assert_eq!(broker["access_token"], OLD_ACCESS, "{broker}");
    }
    let refresh = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    let after = env.store_json();
    let expected_broker = json!({
        "access_token": NEW_ACCESS,
        "expires_at": after["tokens"]["expires_at"],
        "userid": "363",
        "scope": "user.info,user.metrics",
    });
    // At once, and again once the new file has settled.
    for round in ["at once", "settled"] {
        let (status, broker) = status_and_broker(&server);
        assert_eq!(status["generation"], 2, "{round}: {status}");
        assert_eq!(status["expires_at"], after["tokens"]["expires_at"], "{round}: {status}");
        assert_eq!(
            status["last_refreshed"], after["tokens"]["last_refreshed"],
            "{round}: {status}"
        );
        assert_ne!(status["expires_at"], before["tokens"]["expires_at"], "{round}");
        assert_eq!(broker, expected_broker, "{round}");
        let_the_store_settle();
    }
    withings.verify();
}

/// Writes `store` at `path` (0600), in place when it exists, with the
/// modification time `mtime`.
fn write_store_dated(path: &std::path::Path, store: &Value, mtime: std::time::SystemTime) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("open store");
    file.write_all(&serde_json::to_vec_pretty(store).expect("json"))
        .expect("write store");
    file.set_modified(mtime).expect("mtime");
}

/// Two changes that keep the old file's size and modification time (to the
/// nanosecond): a new file renamed over the store (another inode) and an
/// edit in place (only the change time moves). Each is seen by the very
/// next request, and by the first request after it settled unseen.
#[test]
fn a_store_replaced_by_rename_or_edited_in_place_with_the_same_size_and_mtime_is_seen_at_once() {
    use std::os::unix::fs::MetadataExt;
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let path = env.store_path();
    let_the_store_settle();
    assert_eq!(generation_and_access_token(&server), (json!(1), json!(OLD_ACCESS)));

    let old = std::fs::metadata(&path).expect("store");
    let mtime = old.modified().expect("mtime");
    let mut store = env.store_json();
    store["generation"] = json!(2);
    store["tokens"]["access_token"] = json!(NEW_ACCESS);
    store["tokens"]["refresh_token"] = json!(NEW_REFRESH);
    let next = path.with_file_name("tokens.json.next");
    write_store_dated(&next, &store, mtime);
    std::fs::rename(&next, &path).expect("rename");
    let renamed = std::fs::metadata(&path).expect("store");
    assert_eq!((renamed.len(), renamed.modified().ok()), (old.len(), Some(mtime)));
    assert_ne!(renamed.ino(), old.ino());
    assert_eq!(generation_and_access_token(&server), (json!(2), json!(NEW_ACCESS)));
    let_the_store_settle();
    assert_eq!(generation_and_access_token(&server), (json!(2), json!(NEW_ACCESS)));

    store["generation"] = json!(3);
    store["tokens"]["access_token"] = json!("hand-access-99");
    write_store_dated(&path, &store, mtime);
    let edited = std::fs::metadata(&path).expect("store");
    assert_eq!(
        (edited.ino(), edited.len(), edited.modified().ok()),
        (renamed.ino(), renamed.len(), Some(mtime))
    );
    let hand = (json!(3), json!("hand-access-99"));
    assert_eq!(generation_and_access_token(&server), hand);
    let_the_store_settle();
    assert_eq!(generation_and_access_token(&server), hand);
    withings.verify();
}
