//! The budget of `serve`'s Withings proxy: every proxied call takes a unit
//! of the app's upstream budget (the refreshes' one) and of its reader's
//! share when the config file gives one; a call over either is a 429 with
//! `Retry-After` and the contract's error object, and nothing reaches
//! Withings. Through Redis, the hosts sharing it give a reader its share
//! once between them.

use crate::support::*;

use wiremock::matchers::{method, path};

use crate::serve_accounts::sha256_hex;

const READING: &str = "{\"status\":0,\"body\":{\"updatetime\":1700000000,\"measuregrps\":[]}}";
const FORM: &str = "action=getmeas&meastype=1";
const SCRIPT_TOKEN: &str = "script-reader-token-0123456789";
const MCP_TOKEN: &str = "mcp-reader-token-0123456789ab";

/// Withings answering `expected` data calls, and no more.
fn withings_reading(expected: u64) -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(READING, "application/json"))
            .expect(expected),
    );
    withings
}

/// `getmeas` through the proxy, as the holder of `token`.
fn getmeas(server: &ServeProcess, token: &str) -> Answer {
    server.post(
        "/v1/withings/measure?account=default",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(FORM),
    )
}

fn assert_passed(answer: &Answer) {
    assert_eq!((answer.status, answer.body.as_str()), (200, READING), "{answer:?}");
}

/// The 429 of a spent budget: its `Retry-After` and its whole error object.
fn assert_refused(answer: &Answer, retry_after: &str, message: &str, action: &str) {
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some(retry_after), "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"), "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"error": {"code": "RATE_LIMITED", "message": message, "action": action}}),
        "{answer:?}"
    );
}

/// Readers `script` (2 calls a minute) and `mcp` (no share of its own),
/// both of every account, in the config file.
fn with_script_and_mcp_readers(env: &mut TestEnv) {
    let config = env.home().join("config.toml");
    let text = format!(
        "[reader.script]\nsha256 = \"{}\"\naccounts = [\"*\"]\nbudget = \"2/min\"\n\n[reader.mcp]\nsha256 = \"{}\"\naccounts = [\"*\"]\n",
        sha256_hex(SCRIPT_TOKEN),
        sha256_hex(MCP_TOKEN)
    );
    std::fs::write(&config, text).expect("config");
    env.set("WITHINGS_TOKEN_CONFIG", config.display().to_string());
}

const SCRIPT_SPENT: &str = "reader script's share of the budget (2/min) is spent; nothing was sent to Withings; its next call may be sent in 30 s";
const SCRIPT_ACTION: &str = "send it again after Retry-After (30 s); if script needs more, raise `budget` in [reader.script] of the config file and restart `serve`";

#[test]
fn a_call_over_the_app_s_budget_is_429_with_retry_after_and_nothing_is_sent() {
    let withings = withings_reading(2);
    let env = given_fresh_server_user(&withings.uri());
    // 2 a minute: the third call may go once the first is a minute old,
    // far beyond the 5 s a call may wait, so it is refused at once.
    let server = env.serve(&["--check-interval", "1h", "--upstream-budget", "2"]);

    let answers: Vec<Answer> = (0..3).map(|_| getmeas(&server, READER_TOKEN)).collect();

    assert_passed(&answers[0]);
    assert_passed(&answers[1]);
    assert_refused(
        &answers[2],
        "60",
        "the app's budget of 2 requests a minute to Withings, shared by every consumer and every token refresh, is spent; nothing was sent to Withings; its next unit is free in 60 s",
        "send it again after Retry-After (60 s); if Withings allows your app more than 2 requests a minute, raise `serve --upstream-budget` (WITHINGS_TOKEN_UPSTREAM_BUDGET)",
    );
    withings.verify();
    assert_eq!(
        requests_to(&withings, "/measure").len(),
        2,
        "the third call was not sent"
    );
}

#[test]
fn a_reader_over_its_share_is_refused_while_another_reader_passes() {
    let withings = withings_reading(3);
    let mut env = given_fresh_server_user(&withings.uri());
    with_script_and_mcp_readers(&mut env);
    let server = env.serve(&["--check-interval", "1h"]);

    let script: Vec<Answer> = (0..3).map(|_| getmeas(&server, SCRIPT_TOKEN)).collect();
    let mcp = getmeas(&server, MCP_TOKEN);

    assert_passed(&script[0]);
    assert_passed(&script[1]);
    assert_refused(&script[2], "30", SCRIPT_SPENT, SCRIPT_ACTION);
    assert_passed(&mcp);
    withings.verify();
    assert_eq!(
        requests_to(&withings, "/measure").len(),
        3,
        "the refused call was not sent"
    );
    // Usage names the refusal: its reader, its budget, its outcome.
    let metrics = server.get("/metrics", &[]).body;
    for line in [
        "withings_token_proxy_budget_refusals_total{reader=\"script\",budget=\"reader\"} 1",
        "withings_token_proxy_requests_total{reader=\"script\",action=\"getmeas\",outcome=\"budget_refused\"} 1",
        "withings_token_proxy_requests_total{reader=\"script\",action=\"getmeas\",outcome=\"ok\"} 2",
        "withings_token_proxy_requests_total{reader=\"mcp\",action=\"getmeas\",outcome=\"ok\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in\n{metrics}");
    }
    let usage = server.get("/admin/usage", &[("X-Admin-Token", ADMIN_TOKEN)]);
    let usage: serde_json::Value = serde_json::from_str(&usage.body).expect("usage JSON");
    let script = usage["usage"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["reader"] == "script"))
        .expect("a row for script");
    assert_eq!(script["last_hour"]["calls"], 3, "{script}");
    assert_eq!(
        script["last_hour"]["budget_refusals"],
        serde_json::json!({"app": 0, "reader": 1})
    );
    assert_eq!(
        script["last_hour"]["outcomes"],
        serde_json::json!({"ok": 2, "budget_refused": 1})
    );
}

#[test]
fn two_hosts_on_one_redis_give_a_reader_its_share_once() {
    let withings = withings_reading(3);
    let redis = RedisServer::start();
    let mut env = given_fresh_server_user(&withings.uri());
    redis.write_store(&env.store_json());
    env.on_redis(&redis);
    with_script_and_mcp_readers(&mut env);
    let host_a = env.serve(&["--check-interval", "1h"]);
    let host_b = env.serve(&["--check-interval", "1h"]);

    let first = getmeas(&host_a, SCRIPT_TOKEN);
    let second = getmeas(&host_b, SCRIPT_TOKEN);
    // Each host alone has a unit of the share left: only Redis refuses.
    let third_on_a = getmeas(&host_a, SCRIPT_TOKEN);
    let third_on_b = getmeas(&host_b, SCRIPT_TOKEN);
    let mcp = getmeas(&host_a, MCP_TOKEN);

    assert_passed(&first);
    assert_passed(&second);
    assert_refused(&third_on_a, "30", SCRIPT_SPENT, SCRIPT_ACTION);
    assert_refused(&third_on_b, "30", SCRIPT_SPENT, SCRIPT_ACTION);
    assert_passed(&mcp);
    withings.verify();
    assert_eq!(
        requests_to(&withings, "/measure").len(),
        3,
        "the refused calls were not sent"
    );
}

#[test]
fn a_refresh_and_the_proxied_calls_take_from_one_budget() {
    let (withings, issued) = withings_always_rotating();
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(READING, "application/json"))
            .expect(1),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h", "--upstream-budget", "2"]);

    let refreshed = server.admin_post("/admin/token/refresh", None);
    let passed = getmeas(&server, READER_TOKEN);
    let refused = getmeas(&server, READER_TOKEN);

    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_passed(&passed);
    assert_eq!(
        (refused.status, refused.error_code()),
        (429, "RATE_LIMITED".to_owned()),
        "{refused:?}"
    );
    assert_eq!(refused.header("retry-after"), Some("60"), "{refused:?}");
    withings.verify();
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        requests_to(&withings, "/measure").len(),
        1,
        "the refused call was not sent"
    );
}
