//! `serve`'s admin API against the real binary: health without a
//! credential, every admin endpoint behind the admin token, `exchange` by
//! query or body, failures as the error object with their HTTP status,
//! metrics, the port, an env file rewritten on every refresh, and the CLI's
//! `--server` (the same JSON as a local run, the same exit codes).

use crate::support::*;

use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// the admin API

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

/// Every admin endpoint, with its method.
const ADMIN_ENDPOINTS: [(&str, &str); 4] = [
    ("GET", "/admin/token/status"),
    ("POST", "/admin/token/refresh"),
    ("GET", "/admin/authorization-url"),
    ("POST", "/admin/token/exchange?code=some-code"),
];

/// The body of the MCP service guide's "recommended" refresh command.
const ORIGIN_REFRESH_BODY: &str = r#"{"update_railway": true, "trigger_deployment": false}"#;

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
    let lines: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON log lines"))
        .collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    // Core dumps go first, before the settings are read (see docs/serve.md).
    assert_eq!(lines[0]["level"], "INFO");
    assert!(
        lines[0]["message"].as_str().unwrap().starts_with("core dumps are "),
        "{out:?}"
    );
    let line = &lines[1];
    assert_eq!(line["level"], "ERROR");
    assert!(line["message"].as_str().unwrap().contains("ADMIN_API_TOKEN"));
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

fn code_of(redirect: &str) -> String {
    let query = redirect.split_once('?').expect("query").1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .expect("code")
        .to_owned()
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

/// `serve` reads its env file again at every refresh: read once, from its
/// second refresh on the file would look "changed" (it holds what the
/// server itself wrote) and be left holding a token already rotated away.
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

// ---------------------------------------------------------------------------
// metrics

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
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
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

// ---------------------------------------------------------------------------
// the CLI with --server

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

/// A `--server` that answers, but is not
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
