//! `status`: offline (whatever the URLs say), `--check` exits 7 when a
//! refresh is due and 0 on a fresh set, the JSON report names the
//! generation as `refresh` does, and absurd dates never panic.

use crate::support::*;

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

// ---------------------------------------------------------------------------
// status --check

#[test]
fn status_check_is_exit_7_when_a_refresh_is_due() {
    let env = given_store_expiring_in(30 * 60);

    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stdout.contains("refresh due"), "{}", out.stdout);
    let expires_at = env.store_json()["tokens"]["expires_at"].as_str().unwrap().to_owned();
    assert_stderr_error(
        &out.stderr,
        "REFRESH_DUE",
        &format!("a refresh is due: the access token expires at {expires_at}"),
        "run `withings-token refresh`",
    );

    // With --json, stdout is the one status report (it says due); the exit
    // code and stderr carry the error, so `jq` sees a single document.
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 7, "{out:?}");
    let docs = out.json_docs();
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["should_refresh"], true);
    assert_eq!(docs[0]["refresh_buffer_minutes"], 60);
    assert_stderr_error(
        &out.stderr,
        "REFRESH_DUE",
        &format!("a refresh is due: the access token expires at {expires_at}"),
        "run `withings-token refresh`",
    );

    // Not due with a shorter buffer; due again once expired.
    let out = env.run(&["status", "--check", "--buffer", "10m"]);
    assert_eq!(out.code, 0, "{out:?}");
    env.seed_store(OLD_ACCESS, OLD_REFRESH, -1);
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.json()["should_refresh"], true);
    assert_eq!(out.json()["expires_in_hours"], 0.0);
    assert!(out.stderr.contains("a refresh is due"), "{}", out.stderr);
}

#[test]
fn status_check_is_exit_0_on_a_fresh_set_and_reports_it() {
    let env = given_store_expiring_in(2 * 3600 + 30 * 60);
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "");
    let status = out.json();
    let store = env.store_json();
    assert_eq!(status["token_configured"], true);
    assert_eq!(status["source"], "store");
    assert_eq!(status["should_refresh"], false);
    assert_eq!(status["expires_at"], store["tokens"]["expires_at"]);
    assert_eq!(status["last_refreshed"], store["tokens"]["last_refreshed"]);
    assert_eq!(status["expires_in_hours"], 2.5);
    assert_eq!(status["refresh_buffer_minutes"], 60);
    let recommended = time(&store["tokens"]["expires_at"]) - chrono::Duration::hours(1);
    assert_eq!(status["next_refresh_recommended"], rfc3339(recommended));
    assert_eq!(status["userid"], "363");
    assert_eq!(status["scope"], "user.info,user.metrics");
}

#[test]
fn status_check_with_no_token_is_exit_3() {
    let env = TestEnv::new();
    let out = env.run(&["status", "--check", "--json"]);
    let (message, _) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
    assert!(message.starts_with("no token to work with"), "{message}");
    assert_eq!(out.json_docs().len(), 1, "{}", out.stdout);
}

// ---------------------------------------------------------------------------
// the report

#[test]
fn status_json_shows_generation_and_previous_rotated_at() {
    let (_sandbox, env) = given_authorised_sandbox();
    let status = |env: &TestEnv| -> Value {
        let out = env.run(&["status", "--json"]);
        assert_eq!(out.code, 0, "{out:?}");
        out.json()
    };
    let first = status(&env);
    let generation = first["generation"].as_u64().expect("generation is a number");
    assert_eq!(generation, env.store_json()["generation"].as_u64().unwrap());
    assert!(first["previous_rotated_at"].is_null(), "{first}");

    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    env.cmd().args(["refresh", "--no-railway"]).assert().success();
    let second = status(&env);
    assert_eq!(second["generation"].as_u64().unwrap(), generation + 1);
    let rotated_at = second["previous_rotated_at"].as_str().expect("previous_rotated_at");
    let rotated_at = chrono::DateTime::parse_from_rfc3339(rotated_at).unwrap();
    assert!(rotated_at >= started, "{rotated_at} is before the refresh");
    assert!(rotated_at <= chrono::Utc::now());
}

#[test]
fn refresh_and_status_give_the_set_generation_one_name_and_the_same_number() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));

    let refreshed = env.run_fast(&["refresh", "--json"]);
    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    let status = env.run(&["status", "--json"]).json();
    let table = env.run(&["status"]).stdout;

    let set = refreshed.json()["set_generation"].as_u64().unwrap();
    assert_eq!(set, 2, "the seeded store was at 1");
    assert_eq!(refreshed.json()["generation"], set, "the old key keeps its meaning");
    assert_eq!(status["set_generation"], set);
    // The env file's copy record was one more save of the store.
    assert_eq!(status["store_generation"], set + 1);
    assert_eq!(status["generation"], set + 1, "the old key keeps its meaning");
    assert!(table.contains(&format!("│ set generation         ┆ {set} ")), "{table}");
    assert!(!table.contains("store generation"), "one number for people: {table}");
    withings.verify();
}

#[test]
fn status_works_whatever_the_urls_say() {
    let mut env = given_store_expiring_in(7200);
    env.set("WITHINGS_API_URL", "http://example.com")
        .set("WITHINGS_AUTHORIZE_URL", "not a url")
        .set("RAILWAY_API_URL", "ftp://example.com");
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "store");

    // A command that uses the URL still refuses it, before touching the store.
    env.set("WITHINGS_CLIENT_ID", "id")
        .set("WITHINGS_REDIRECT_URI", "https://example.com/cb");
    let before = env.store_bytes();
    let out = env.run(&["auth-url", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "CONFIGURATION_ERROR");
    assert!(
        out.stderr.contains("WITHINGS_AUTHORIZE_URL is not usable"),
        "{}",
        out.stderr
    );
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn absurd_dates_and_buffers_never_panic() {
    let env = TestEnv::new();
    let store = serde_json::json!({
        "version": 1, "generation": 1,
        "tokens": {"access_token": "a", "refresh_token": "r", "expires_at": "-262143-01-01T00:00:00Z", "last_refreshed": "+262142-12-31T23:59:59Z"},
    });
    env.write_store_bytes(store.to_string().as_bytes());
    for args in [
        &["status"][..],
        &["status", "--json", "--buffer", "366d"],
        &["refresh", "--dry-run"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.json()["should_refresh"], true);
}
