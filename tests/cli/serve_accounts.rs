//! `serve` with several accounts: the loop refreshes each on its own
//! (one upstream request per account), `?account=` picks the account on
//! every endpoint (none named: the only one; several: 400 listing them;
//! unknown: 404), an account created while it runs is served, `GET
//! /admin/accounts` lists them, metrics carry the `account` label, `--server
//! --account NAME` asks for that account, and a named reader of the config
//! file reads its accounts only.

use crate::support::*;

use std::time::Duration;

const BOB_OLD_ACCESS: &str = "bob-access-000";
const BOB_OLD_REFRESH: &str = "bob-refresh-000";
const BOB_NEW_ACCESS: &str = "bob-access-111";
const BOB_NEW_REFRESH: &str = "bob-refresh-111";

fn stored_refresh_token_of(env: &TestEnv, name: &str) -> String {
    let bytes = std::fs::read(account_store(env, name)).unwrap_or_default();
    let store: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    store["tokens"]["refresh_token"].as_str().unwrap_or_default().to_owned()
}

/// A Withings that rotates the default account's set into [`NEW_ACCESS`]
/// and bob's (user 364) into [`BOB_NEW_ACCESS`], each exactly once.
/// Withings answers bob's refresh token once, with his new set.
fn expect_bobs_refresh(withings: &Upstream) {
    let mut bob = token_body(BOB_NEW_ACCESS, BOB_NEW_REFRESH, 10800);
    bob["body"]["userid"] = json!("364");
    withings.mount(
        refresh_of(BOB_OLD_REFRESH)
            .respond_with(ResponseTemplate::new(200).set_body_json(bob))
            .expect(1)
            .named("bob's refresh"),
    );
}

fn withings_for_the_household() -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1)
            .named("the default account's refresh"),
    );
    expect_bobs_refresh(&withings);
    withings
}

/// A household of two: `default` (user 363) and `bob` (user 364), both
/// sets expiring in `expires_in_secs`, with Withings at `withings_url`.
fn given_a_household(withings_url: &str, expires_in_secs: i64) -> TestEnv {
    let mut env = given_store_expiring_in(expires_in_secs);
    seed_account(&env, "bob", (BOB_OLD_ACCESS, BOB_OLD_REFRESH), expires_in_secs, "364");
    env.withings(withings_url).serve_credentials();
    env
}

fn broker_of(server: &ServeProcess, query: &str) -> Answer {
    server.get(
        &format!("/v1/access-token{query}"),
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    )
}

/// The sample lines of `metrics` that start with `name`, sorted.
fn samples<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines: Vec<&str> = metrics.lines().filter(|line| line.starts_with(name)).collect();
    lines.sort();
    lines
}

// ---------------------------------------------------------------------------
// the loop and the broker

#[test]
fn the_loop_refreshes_each_account_once_and_the_broker_answers_each_its_own() {
    let withings = withings_for_the_household();
    let env = given_a_household(&withings.uri(), -60);
    let server = env.serve(&["--check-interval", "100ms"]);
    let both = wait_until(Duration::from_secs(10), || {
        env.stored_refresh_token() == NEW_REFRESH && stored_refresh_token_of(&env, "bob") == BOB_NEW_REFRESH
    });
    assert!(both, "the loop did not refresh both accounts:\n{}", server.log());
    // More checks of two fresh sets send nothing more.
    std::thread::sleep(Duration::from_millis(500));
    withings.verify();
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 2, "{}", server.log());

    let bob = broker_of(&server, "?account=bob");
    assert_eq!(bob.status, 200, "{bob:?}");
    assert_eq!(bob.json()["access_token"], BOB_NEW_ACCESS);
    assert_eq!(bob.json()["userid"], "364");
    let default = broker_of(&server, "?account=default&min_ttl=1m");
    assert_eq!(default.status, 200, "{default:?}");
    assert_eq!(default.json()["access_token"], NEW_ACCESS);
    assert_eq!(default.json()["userid"], "363");

    let log = server.log();
    assert_eq!(lines_with(&log, "account bob: Token refresh successful."), 1, "{log}");
    assert_eq!(lines_with(&log, "Token refresh successful."), 2, "{log}");
    for secret in [
        OLD_REFRESH,
        NEW_REFRESH,
        BOB_OLD_REFRESH,
        BOB_NEW_REFRESH,
        BOB_NEW_ACCESS,
    ] {
        assert!(!log.contains(secret), "a secret was logged:\n{log}");
    }
}

/// The loop judges each account by its own refresh policy: bob's table
/// says `refresh_at_least = "1h"` and his set is two hours old, so bob is
/// refreshed; the default account (7 days) is not.
#[test]
fn the_loop_refreshes_an_account_by_its_own_policy() {
    let withings = Upstream::start();
    expect_bobs_refresh(&withings);
    let mut env = given_store_expiring_in(3600);
    seed_account(&env, "bob", (BOB_OLD_ACCESS, BOB_OLD_REFRESH), 3600, "364");
    env.withings(&withings.uri()).serve_credentials();
    let config = env.home().join("config.toml");
    std::fs::write(&config, "buffer = \"10m\"\n[account.bob]\nrefresh_at_least = \"1h\"\n").expect("config");
    env.set("WITHINGS_TOKEN_CONFIG", config.display().to_string());
    let default_before = env.stored_refresh_token();

    let server = env.serve(&["--check-interval", "100ms"]);
    let refreshed = wait_until(Duration::from_secs(10), || {
        stored_refresh_token_of(&env, "bob") == BOB_NEW_REFRESH
    });
    assert!(refreshed, "bob was not refreshed:\n{}", server.log());
    std::thread::sleep(Duration::from_millis(500));
    withings.verify();
    assert_eq!(env.stored_refresh_token(), default_before, "{}", server.log());
}

#[test]
fn with_two_accounts_a_request_must_name_one_that_exists() {
    let withings = silent_withings();
    let env = given_a_household(&withings.uri(), 3 * 3600);
    let server = env.serve(&["--check-interval", "1h"]);

    let unnamed = broker_of(&server, "");
    assert_eq!(unnamed.status, 400, "{unnamed:?}");
    assert_eq!(
        unnamed.json(),
        json!({"error": {
            "code": "BAD_REQUEST",
            "message": "this server keeps several accounts (default, bob) and none was named; nothing was sent",
            "action": "name one with `?account=NAME` (`--account NAME` with --server)",
        }})
    );
    let status = server.admin_get("/admin/token/status");
    assert_eq!(status.status, 400, "{status:?}");
    assert_eq!(status.error_code(), "BAD_REQUEST");

    for path in ["/v1/access-token?account=carol", "/admin/token/status?account=carol"] {
        let unknown = server.get(
            path,
            &[
                ("Authorization", &format!("Bearer {READER_TOKEN}")),
                ("X-Admin-Token", ADMIN_TOKEN),
            ],
        );
        assert_eq!(unknown.status, 404, "{path}: {unknown:?}");
        assert_eq!(unknown.error_code(), "NOT_FOUND");
        assert_eq!(
            unknown.json()["error"]["message"],
            "there is no account carol on this server (accounts: default, bob)",
            "{path}"
        );
    }
    let malformed = broker_of(&server, "?account=..%2Fx");
    assert_eq!(malformed.status, 400, "{malformed:?}");

    let bob = server.admin_get("/admin/token/status?account=bob");
    assert_eq!(bob.status, 200, "{bob:?}");
    let store = bob.json()["store"].as_str().unwrap_or_default().to_owned();
    assert!(store.ends_with("tokens.accounts/bob.json"), "{store}");
    withings.verify();
}

#[test]
fn admin_refresh_of_one_account_leaves_the_other_alone() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(BOB_OLD_REFRESH)
            .respond_with(new_tokens(BOB_NEW_ACCESS, BOB_NEW_REFRESH))
            .expect(1),
    );
    let env = given_a_household(&withings.uri(), 3 * 3600);
    let default_before = env.store_bytes();
    let server = env.serve(&["--check-interval", "1h"]);
    let refreshed = server.admin_post("/admin/token/refresh?account=bob", Some(r#"{"update_railway": false}"#));
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_eq!(stored_refresh_token_of(&env, "bob"), BOB_NEW_REFRESH);
    assert_eq!(
        env.store_bytes(),
        default_before,
        "the default account's store is untouched"
    );
    withings.verify();
}

#[test]
fn an_account_created_while_serve_runs_is_served_and_refreshed() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(BOB_OLD_REFRESH)
            .respond_with(new_tokens(BOB_NEW_ACCESS, BOB_NEW_REFRESH))
            .expect(1),
    );
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--check-interval", "100ms"]);
    assert_eq!(broker_of(&server, "").json()["access_token"], OLD_ACCESS);
    // As `login --account bob` on this host would leave it, but due.
    seed_account(&env, "bob", (BOB_OLD_ACCESS, BOB_OLD_REFRESH), -60, "364");
    let refreshed = wait_until(Duration::from_secs(10), || {
        stored_refresh_token_of(&env, "bob") == BOB_NEW_REFRESH
    });
    assert!(refreshed, "the new account was never refreshed:\n{}", server.log());
    assert_eq!(
        broker_of(&server, "?account=bob").json()["access_token"],
        BOB_NEW_ACCESS
    );
    assert_eq!(
        env.stored_refresh_token(),
        OLD_REFRESH,
        "the fresh default set is not refreshed"
    );
    withings.verify();
}

#[test]
fn a_single_account_needs_no_parameter_and_takes_its_own_name() {
    let withings = silent_withings();
    let (_env, server) = given_server(&withings, 3 * 3600);
    for query in ["", "?account=default"] {
        let answer = broker_of(&server, query);
        assert_eq!(answer.status, 200, "{query}: {answer:?}");
        assert_eq!(answer.json()["access_token"], OLD_ACCESS);
        let status = server.admin_get(&format!("/admin/token/status{query}"));
        assert_eq!(status.status, 200, "{query}: {status:?}");
    }
    let other = broker_of(&server, "?account=bob");
    assert_eq!(other.status, 404, "{other:?}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// the listing and the metrics

#[test]
fn admin_accounts_lists_every_account_and_its_set() {
    let withings = silent_withings();
    let env = given_a_household(&withings.uri(), 3 * 3600);
    let server = env.serve(&["--check-interval", "1h"]);
    let refused = server.get(
        "/admin/accounts",
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    );
    assert_eq!(refused.status, 401, "{refused:?}");
    let listed = server.admin_get("/admin/accounts");
    assert_eq!(listed.status, 200, "{listed:?}");
    let body = listed.json();
    assert_eq!(body["version"], 1, "{body}");
    let accounts = body["accounts"].as_array().expect("accounts");
    let names: Vec<&str> = accounts.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "bob"], "{body}");
    for (account, userid) in accounts.iter().zip(["363", "364"]) {
        assert_eq!(account["authorised"], true, "{account}");
        assert_eq!(account["userid"], userid, "{account}");
        assert_eq!(account["generation"], 1, "{account}");
        assert!(account["expires_at"].is_string(), "{account}");
        assert_eq!(account["error"], Value::Null, "{account}");
    }
    assert!(!listed.body.contains(OLD_ACCESS) && !listed.body.contains(BOB_OLD_ACCESS));
    withings.verify();
}

/// One account's broken store does not make `/health` fail for the whole
/// household (a platform would restart the service of every account):
/// `/admin/accounts` names it.
#[test]
fn one_accounts_corrupt_store_leaves_health_ok_and_is_named_in_the_listing() {
    let withings = silent_withings();
    let env = given_a_household(&withings.uri(), 3 * 3600);
    std::fs::write(account_store(&env, "bob"), "not a store").expect("corrupt bob");
    let server = env.serve(&["--check-interval", "1h"]);
    let health = server.get("/health", &[]);
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["token_configured"], true, "{health:?}");
    let listed = server.admin_get("/admin/accounts").json();
    let bob = listed["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["name"] == "bob")
        .cloned()
        .expect("bob listed");
    assert_eq!(bob["error"]["code"], "CONFIGURATION_ERROR", "{listed}");
    assert!(
        bob["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bob.json is unreadable")),
        "{listed}"
    );
    withings.verify();
}

#[test]
fn metrics_carry_the_account_label_and_none_for_default() {
    let withings = withings_for_the_household();
    let env = given_a_household(&withings.uri(), 3 * 3600);
    let server = env.serve(&["--check-interval", "1h"]);
    for query in ["?account=bob", "?account=default"] {
        let refreshed = server.admin_post(
            &format!("/admin/token/refresh{query}"),
            Some(r#"{"update_railway": false}"#),
        );
        assert_eq!(refreshed.status, 200, "{query}: {refreshed:?}");
    }
    let metrics = server.get("/metrics", &[]).body;
    assert_eq!(
        samples(&metrics, "withings_token_refresh_total"),
        [
            "withings_token_refresh_total{account=\"bob\",result=\"success\"} 1",
            "withings_token_refresh_total{result=\"success\"} 1",
        ],
        "{metrics}"
    );
    let expiry = samples(&metrics, "withings_token_access_expiry_timestamp_seconds");
    assert_eq!(expiry.len(), 2, "{metrics}");
    assert!(
        expiry
            .iter()
            .any(|l| l.starts_with("withings_token_access_expiry_timestamp_seconds ")),
        "{metrics}"
    );
    assert!(
        expiry
            .iter()
            .any(|l| l.starts_with("withings_token_access_expiry_timestamp_seconds{account=\"bob\"} ")),
        "{metrics}"
    );
    withings.verify();
}

// ---------------------------------------------------------------------------
// --server --account

#[test]
fn server_clients_name_the_account_with_account() {
    let withings = silent_withings();
    let env = given_a_household(&withings.uri(), 3 * 3600);
    let server = env.serve(&["--check-interval", "1h"]);
    let mut reader = given_server_reader(&server, "WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN);
    reader.set("ADMIN_API_TOKEN", ADMIN_TOKEN);

    let token = reader.run(&["access-token", "--account", "bob"]);
    assert_eq!(
        (token.code, token.stdout.as_str()),
        (0, "bob-access-000\n"),
        "{token:?}"
    );
    let status = reader.run(&["status", "--json", "--account", "bob"]);
    assert_eq!(status.code, 0, "{status:?}");
    let store = status.json()["store"].as_str().unwrap_or_default().to_owned();
    assert!(store.ends_with("tokens.accounts/bob.json"), "{store}");

    let unnamed = reader.run(&["access-token"]);
    assert_eq!(unnamed.code, 3, "{unnamed:?}");
    assert!(
        unnamed
            .stderr
            .contains("this server keeps several accounts (default, bob) and none was named"),
        "{unnamed:?}"
    );
    let unknown = reader.run(&["status", "--account", "carol"]);
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert!(
        unknown.stderr.contains("there is no account carol on this server"),
        "{unknown:?}"
    );
    assert!(!reader.store_path().exists(), "no local store was made");
    withings.verify();
}

// ---------------------------------------------------------------------------
// named readers

const ALICE_READER: &str = "mcp-alice-token-0123456789";

/// The SHA-256 of `token` in hex, by coreutils' `sha256sum`.
pub(crate) fn sha256_hex(token: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(token.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8(out.stdout).expect("utf-8")[..64].to_owned()
}

/// `default` and `alice`, each with a set for 3 h, `serve`'s credentials,
/// Withings at `withings_uri`, and a config file naming one reader,
/// `mcp-alice`, whose token `reader` opens `alice` only.
pub(crate) fn given_alice_and_her_reader(withings_uri: &str, reader: &str) -> TestEnv {
    let mut env = given_store_expiring_in(3 * 3600);
    seed_account(
        &env,
        "alice",
        ("alice-access-000", "alice-refresh-000"),
        3 * 3600,
        "365",
    );
    env.withings(withings_uri).serve_credentials();
    let config = env.home().join("config.toml");
    let text = format!(
        "[reader.mcp-alice]\nsha256 = \"{}\"\naccounts = [\"alice\"]\n",
        sha256_hex(reader)
    );
    std::fs::write(&config, text).expect("config");
    env.set("WITHINGS_TOKEN_CONFIG", config.display().to_string());
    env
}

#[test]
fn a_named_reader_reads_its_account_and_is_refused_and_counted_on_another() {
    let withings = silent_withings();
    let env = given_alice_and_her_reader(&withings.uri(), ALICE_READER);
    let server = env.serve(&["--check-interval", "1h"]);
    let as_alice = |query: &str| {
        server.get(
            &format!("/v1/access-token{query}"),
            &[("Authorization", &format!("Bearer {ALICE_READER}"))],
        )
    };

    let own = as_alice("?account=alice");
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.json()["access_token"], "alice-access-000");
    for query in ["?account=default", "?account=default", "?account=zed"] {
        let refused = as_alice(query);
        assert_eq!(refused.status, 403, "{query}: {refused:?}");
        assert_eq!(refused.error_code(), "FORBIDDEN");
        assert!(!refused.body.contains(OLD_ACCESS), "{refused:?}");
    }
    // None named: of the two, the one it may read is the only one it sees.
    let unnamed = as_alice("");
    assert_eq!(unnamed.status, 200, "{unnamed:?}");
    assert_eq!(unnamed.json()["access_token"], "alice-access-000");
    // The reader opens no admin endpoint.
    let admin = server.get("/admin/token/status?account=alice", &[("X-Admin-Token", ALICE_READER)]);
    assert_eq!(admin.status, 403, "{admin:?}");

    let metrics = server.get("/metrics", &[]).body;
    assert_eq!(
        samples(&metrics, "withings_token_reader_refusals_total"),
        [
            "withings_token_reader_refusals_total{reader=\"mcp-alice\",account=\"default\"} 2",
            "withings_token_reader_refusals_total{reader=\"mcp-alice\"} 1",
        ],
        "{metrics}"
    );
    withings.verify();
}
