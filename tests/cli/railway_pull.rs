//! `pull --from railway`: a host recovers Railway's copy of the set (newer
//! only, unless forced), into a file store or a Redis store, and a pasted
//! value is cleaned of a trailing newline or refused for a control
//! character inside.

use crate::support::*;

use std::time::Duration;

// ---------------------------------------------------------------------------
// recovery: pull --from railway

/// Railway holding a whole set whose last refresh was `hours_from_now`.
fn railway_set_refreshed(peer: &Peer, refresh: &str, hours_from_now: i64) -> String {
    let refreshed = chrono::Utc::now() + chrono::Duration::hours(hours_from_now);
    railway_holds(
        peer,
        &[
            ("WITHINGS_ACCESS_TOKEN", json!("railway-access-aaa")),
            ("WITHINGS_REFRESH_TOKEN", json!(refresh)),
            (
                "WITHINGS_TOKEN_EXPIRES_AT",
                json!(rfc3339(refreshed + chrono::Duration::hours(3))),
            ),
            ("WITHINGS_TOKEN_LAST_REFRESHED", json!(rfc3339(refreshed))),
        ],
    );
    rfc3339(refreshed)
}

/// A host with a stored set, Railway on `peer`, and Withings on `peer` too,
/// so that any call to it would be seen.
fn given_host_and_railway(peer: &Peer) -> TestEnv {
    let mut env = given_fresh_store_and_railway_service(peer);
    env.withings(&peer.withings_url());
    env
}

#[test]
fn pull_from_railway_imports_a_newer_set_keeping_the_store_token_as_previous() {
    let peer = Peer::start();
    let env = given_host_and_railway(&peer);
    let refreshed = railway_set_refreshed(&peer, "railway-refresh-new-rrr", 1);

    let run = env.run_with(&["pull", "--from", "railway", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["outcome"], "pulled");
    assert_eq!(run.json()["refresh_token"], "token_*****rrr");
    assert_eq!(run.json()["railway"], "skipped");
    assert_eq!(run.json()["railway_reason"], "the set was read from it");
    let store = env.store_json();
    assert_eq!(store["tokens"]["refresh_token"], "railway-refresh-new-rrr");
    assert_eq!(store["tokens"]["access_token"], "railway-access-aaa");
    assert_eq!(store["tokens"]["last_refreshed"], refreshed.as_str());
    assert_eq!(store["tokens"]["userid"], "363", "the account's id is kept");
    assert_eq!(store["previous"]["refresh_token"], "stored-refresh-xyz");
    assert!(!run.stdout.contains("railway-refresh-new-rrr") && !run.stderr.contains("railway-refresh-new-rrr"));
    assert_eq!(peer.token_requests(), 0, "no Withings call");
    assert_no_mutation(&peer);
    // Railway now holds the stored set: the drift check agrees.
    let check = env.run_with(&["railway-sync", "--check"], &NO_RETRY_DELAY);
    assert_eq!(check.code, 0, "{check:?}");
}

#[test]
fn pull_from_railway_into_an_empty_store_recovers_the_host() {
    let peer = Peer::start();
    let mut env = TestEnv::new();
    configure_railway(&mut env, &peer);
    env.withings(&peer.withings_url());
    railway_set_refreshed(&peer, "railway-refresh-new-rrr", -1);

    let run = env.run_with(&["pull", "--from", "railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("into an empty store"), "{run:?}");
    assert_eq!(env.stored_refresh_token(), "railway-refresh-new-rrr");
    assert_eq!(env.store_json()["previous"], Value::Null);
    assert_eq!(peer.token_requests(), 0, "no Withings call");
}

#[test]
fn pull_from_railway_never_replaces_a_newer_store_set_with_an_older_one() {
    let peer = Peer::start();
    let env = given_host_and_railway(&peer);
    railway_set_refreshed(&peer, "railway-refresh-old-ooo", -2);
    let before = env.store_bytes();

    let run = env.run_with(&["pull", "--from", "railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("not pulled: the store's set"), "{run:?}");
    assert_eq!(env.store_bytes(), before, "the store is untouched");
    let json_run = env.run_with(&["pull", "--from", "railway", "--json"], &NO_RETRY_DELAY);
    assert_eq!(json_run.json()["outcome"], "not_pulled");
    assert_eq!(env.store_bytes(), before);
    assert_eq!(peer.token_requests(), 0, "no Withings call");
}

#[test]
fn pull_from_railway_force_imports_an_older_set_with_a_warning() {
    let peer = Peer::start();
    let env = given_host_and_railway(&peer);
    railway_set_refreshed(&peer, "railway-refresh-old-ooo", -2);

    let run = env.run_with(&["pull", "--from", "railway", "--force"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("warning: --force"), "{run:?}");
    assert_eq!(env.stored_refresh_token(), "railway-refresh-old-ooo");
    assert_eq!(env.store_json()["previous"]["refresh_token"], "stored-refresh-xyz");
    assert_eq!(peer.token_requests(), 0, "no Withings call");
}

#[test]
fn pull_from_railway_without_a_refresh_token_is_exit_3_and_writes_nothing() {
    let peer = Peer::start();
    let env = given_host_and_railway(&peer);
    let later = rfc3339(chrono::Utc::now() + chrono::Duration::hours(1));
    railway_holds(
        &peer,
        &[
            ("WITHINGS_ACCESS_TOKEN", json!("railway-access-aaa")),
            ("WITHINGS_REFRESH_TOKEN", json!("   ")),
            ("WITHINGS_TOKEN_LAST_REFRESHED", json!(later)),
        ],
    );
    let before = env.store_bytes();

    let run = env.run_with(&["pull", "--from", "railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("WITHINGS_REFRESH_TOKEN"), "{run:?}");
    assert!(run.stderr.contains("[CONFIGURATION_ERROR]"), "{run:?}");
    assert_eq!(env.store_bytes(), before, "the store is untouched");
    assert_eq!(peer.token_requests(), 0, "no Withings call");
}

#[test]
fn pull_from_railway_takes_a_pasted_newline_off_and_refuses_a_control_character_inside() {
    let peer = Peer::start();
    let mut env = TestEnv::new();
    configure_railway(&mut env, &peer);
    let refreshed = rfc3339(chrono::Utc::now());
    railway_holds(
        &peer,
        &[
            ("WITHINGS_ACCESS_TOKEN", json!("railway-access-aaa")),
            ("WITHINGS_REFRESH_TOKEN", json!("railway-refresh-rrr\n")),
            ("WITHINGS_TOKEN_LAST_REFRESHED", json!(refreshed)),
        ],
    );
    let run = env.run_with(&["pull", "--from", "railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        env.stored_refresh_token(),
        "railway-refresh-rrr",
        "the value itself, not a display form"
    );

    let inside = Peer::start();
    let mut env = TestEnv::new();
    configure_railway(&mut env, &inside);
    railway_holds(
        &inside,
        &[("WITHINGS_REFRESH_TOKEN", json!("railway\u{1b}[31mrefresh"))],
    );
    let run = env.run_with(&["pull", "--from", "railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(
            "the Railway service's WITHINGS_REFRESH_TOKEN holds a control character inside it; nothing was written"
        ),
        "{run:?}"
    );
    assert!(!env.store_path().exists());
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
}

#[test]
fn pull_from_railway_into_an_empty_redis_store_then_keeps_the_newer_set_it_refreshed() {
    let redis = RedisServer::start();
    let peer = Peer::start();
    let mut env = TestEnv::new();
    configure_railway(&mut env, &peer);
    env.withings(&peer.withings_url()).on_redis(&redis);
    railway_set_refreshed(&peer, "railway-refresh-new-rrr", -1);

    let run = env.run_with(&["pull", "--from", "railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("into an empty store"), "{run:?}");
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], "railway-refresh-new-rrr");
    assert!(!env.store_path().exists(), "nothing was written to a local file");
    assert_eq!(peer.token_requests(), 0, "no Withings call");

    // The store rotates past Railway's set; a second pull must keep the newer one.
    let refresh = env.run_with(&["refresh", "--no-railway"], &NO_RETRY_DELAY);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    let before = redis.store_json();
    assert_eq!(before["tokens"]["refresh_token"], NEW_REFRESH);
    let again = env.run_with(&["pull", "--from", "railway", "--json"], &NO_RETRY_DELAY);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["outcome"], "not_pulled");
    assert_eq!(redis.store_json(), before, "the newer set stays, untouched");
}

// ---------------------------------------------------------------------------
// the built-in sandbox

#[test]
fn sandbox_exchange_then_railway_sync_with_one_deployment() {
    let (sandbox, env) = given_sandbox();
    let Consent { redirect, .. } = sandbox.consent(&env);

    let exchanged = env.run_with(&["exchange", &redirect, "--json"], &NO_RETRY_DELAY);
    assert_eq!(exchanged.code, 0, "{exchanged:?}");
    assert_eq!(exchanged.json()["railway"], "updated");
    let stats = sandbox.stats();
    assert_eq!(stats["railway_upserts"], 1, "{stats}");
    assert_eq!(stats["deployments"], 0, "skipDeploys honoured: {stats}");

    let synced = env.run_with(&["railway-sync", "--trigger-deployment", "--json"], &NO_RETRY_DELAY);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert_eq!(synced.json()["deployment_triggered"], true);
    let stats = sandbox.stats();
    assert_eq!(stats["railway_upserts"], 2, "{stats}");
    assert_eq!(stats["deployments"], 1, "exactly one deployment: {stats}");

    // Railway now holds the stored set.
    let dry = env.run_with(&["railway-sync", "--dry-run", "--json"], &NO_RETRY_DELAY);
    assert_eq!(dry.code, 0, "{dry:?}");
    let report = dry.json();
    for v in report["variables"].as_array().unwrap() {
        assert_eq!(v["status"], "unchanged", "{report}");
    }
    assert_eq!(report["environment_id"], "sandbox-env-production");
    assert!(!dry.stdout.contains(env.stored_refresh_token().as_str()));
    assert_eq!(sandbox.stats()["railway_upserts"], 2, "dry run sent no upsert");
}

#[test]
fn sandbox_failure_path_exit_6_then_railway_sync_repairs() {
    let (sandbox, mut env) = given_authorised_sandbox();
    // The id given, no lookup comes first: the push itself is refused.
    env.set("RAILWAY_ENVIRONMENT_ID", "sandbox-env-production");
    assert_eq!(
        sandbox.stats()["railway_requests"],
        0,
        "--no-railway: {}",
        sandbox.stats()
    );
    let after_exchange = env.stored_refresh_token();

    // Railway refuses the next push (HTTP 200 with an errors array).
    sandbox.fault(json!({ "target": "railway", "kind": "graphql_error" }));
    let refreshed = env.run_with(&["refresh", "--output-env"], &NO_RETRY_DELAY);
    assert_eq!(refreshed.code, 6, "{refreshed:?}");
    let rotated = env.stored_refresh_token();
    assert_ne!(rotated, after_exchange, "the token rotated and was saved");
    assert!(
        refreshed
            .stdout
            .contains(&format!("WITHINGS_REFRESH_TOKEN={rotated}\n")),
        "{refreshed:?}"
    );
    assert_eq!(sandbox.stats()["railway_upserts"], 0);

    let dry = env.run_with(&["railway-sync", "--dry-run", "--json"], &NO_RETRY_DELAY);
    assert_eq!(dry.code, 0, "{dry:?}");
    for v in dry.json()["variables"].as_array().unwrap() {
        assert_eq!(v["status"], "missing", "{}", dry.stdout);
    }

    let synced = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(synced.code, 0, "{synced:?}");
    let stats = sandbox.stats();
    assert_eq!(stats["railway_upserts"], 1, "{stats}");
    assert_eq!(stats["deployments"], 0, "{stats}");
    assert_eq!(stats["tokens_issued"], 2, "railway-sync did not refresh: {stats}");

    let dry = env.run_with(&["railway-sync", "--dry-run", "--json"], &NO_RETRY_DELAY);
    for v in dry.json()["variables"].as_array().unwrap() {
        assert_eq!(v["status"], "unchanged", "{}", dry.stdout);
    }
}

#[test]
fn sandbox_refuses_a_wrong_railway_token_without_retrying() {
    let (sandbox, mut env) = given_authorised_sandbox();

    env.set("RAILWAY_TOKEN", "not-the-sandbox-token");
    let synced = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(synced.code, 6, "{synced:?}");
    assert!(
        synced.stderr.contains("environments failed: Not Authorized"),
        "{synced:?}"
    );
    let stats = sandbox.stats();
    assert_eq!(
        stats["railway_requests"], 1,
        "environment lookup refused once, not retried: {stats}"
    );
    assert_eq!(stats["railway_upserts"], 0);
}

/// Two overlapping refreshes whose pushes would race: the slower one must
/// not leave Railway holding the older (now dead) set.
#[test]
fn a_slow_push_never_leaves_railway_with_an_older_set_than_the_store() {
    let (sandbox, env) = given_authorised_sandbox();
    // The first Railway call of the first refresh stalls 1.5 s, then fails
    // once (503) and is retried; the second refresh runs meanwhile.
    sandbox.fault(json!({ "target": "railway", "kind": "slow", "delay_ms": 1500 }));
    let mut first = env.std_cmd();
    let first = first
        .args(["refresh", "--retry-delay", "0s", "--quiet"])
        .spawn()
        .expect("first refresh");
    std::thread::sleep(Duration::from_millis(300));
    let second = env
        .std_cmd()
        .args(["refresh", "--retry-delay", "0s", "--quiet"])
        .output()
        .expect("second");
    let first = first.wait_with_output().expect("first");
    assert!(first.status.success(), "{first:?}");
    assert!(second.status.success(), "{second:?}");

    let out = env
        .cmd()
        .args(["railway-sync", "--dry-run", "--json"])
        .output()
        .expect("dry run");
    let diff: Value = serde_json::from_slice(&out.stdout).expect("json");
    let statuses: Vec<&str> = diff["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["unchanged"; 4], "{diff}");
}
