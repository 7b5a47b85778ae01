//! `refresh`: an expired set is rotated and saved, a refused grant leaves the
//! store byte-identical, `--dry-run` sends and writes nothing, and
//! `--if-needed` leaves a fresh set alone.

use crate::support::*;

use std::collections::HashMap;

// ---------------------------------------------------------------------------
// a rotation saved

#[test]
fn refresh_of_an_expired_store_saves_the_rotated_set_and_exits_0() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body(NEW_ACCESS, NEW_REFRESH, 5000)))
            .expect(1),
    );
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH, OLD_REFRESH]);
    let report = out.json();
    assert_eq!(report["outcome"], "refreshed");
    assert_eq!(report["source"], "store");
    assert_eq!(report["generation"], 2);
    assert_eq!(report["railway"], "skipped");
    assert_eq!(report["userid"], "363");
    let store = env.store_json();
    assert_eq!(store["generation"], 2);
    assert_eq!(store["tokens"]["access_token"], NEW_ACCESS);
    assert_eq!(store["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(store["previous"]["refresh_token"], OLD_REFRESH);
    // expires_at is the response time plus the expires_in Withings sent.
    let lifetime = time(&store["tokens"]["expires_at"]) - time(&store["tokens"]["last_refreshed"]);
    assert_eq!(lifetime, chrono::Duration::seconds(5000));
    assert!(
        (chrono::Utc::now() - time(&store["tokens"]["last_refreshed"]))
            .num_seconds()
            .abs()
            < 30
    );
    assert_eq!(report["expires_at"], store["tokens"]["expires_at"]);
    assert_eq!(report["last_refreshed"], store["tokens"]["last_refreshed"]);
    // The request is the documented form: requesttoken, no redirect_uri.
    let sent = withings.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-www-form-urlencoded"
    );
    let fields = form(&sent[0]);
    let expected: HashMap<String, String> = [
        ("action", "requesttoken"),
        ("grant_type", "refresh_token"),
        ("client_id", "test-client-id"),
        ("client_secret", "test-client-secret-value"),
        ("refresh_token", OLD_REFRESH),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(fields, expected);
    // Saved privately, with no temp or journal file left behind.
    assert_eq!(file_mode(&env.store_path()), 0o600);
    assert_eq!(env.store_dir_entries(), ["tokens.json", "tokens.json.lock"]);
}

#[test]
fn refused_refresh_is_exit_4_sends_one_request_and_leaves_the_store_byte_identical() {
    let withings = withings_answering(refused_refresh()).times(1);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--json", "--retries", "3"]);

    let (message, action) = assert_json_error(&out, 4, "INVALID_REFRESH_TOKEN");
    assert_eq!(
        message,
        "Withings refused the refresh token: status 503: Invalid Params: invalid refresh_token"
    );
    assert!(
        action.starts_with("re-authorise: run `withings-token auth-url`"),
        "{action}"
    );
    assert!(action.contains("`withings-token exchange"), "{action}");
    assert_no_secrets(&out, &[OLD_REFRESH, OLD_ACCESS]);
    assert_eq!(env.store_bytes(), before);
    assert_eq!(env.store_dir_entries(), STORE_WITH_ALERT_STATE);
    let sent = withings.requests();
    assert_eq!(sent.len(), 1, "a refused grant must not be retried");
    assert_eq!(form(&sent[0])["refresh_token"], OLD_REFRESH);
    withings.verify();
}

#[test]
fn refresh_with_no_token_anywhere_is_exit_3() {
    let mut env = TestEnv::new();
    env.withings("http://127.0.0.1:9");
    let out = env.run_fast(&["refresh", "--json"]);
    let (message, action) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
    assert!(message.starts_with("no token to work with"), "{message}");
    assert!(action.contains("`withings-token auth-url`"), "{action}");
}

// ---------------------------------------------------------------------------
// --dry-run and --if-needed

#[test]
fn dry_run_sends_nothing_and_writes_nothing() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let dot_env = env.write_env_file("WITHINGS_REFRESH_TOKEN=env-refresh-old\n");
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--dry-run", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["would_refresh"], true);
    assert_eq!(report["source"], "store");
    assert_eq!(report["store"], env.store_path().display().to_string());
    assert_eq!(
        report["env_file"],
        dot_env.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(report["railway"], Value::Null);
    assert_eq!(report["expires_at"], env.store_json()["tokens"]["expires_at"]);

    let out = env.run_fast(&["refresh", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("nothing was sent or written"), "{}", out.stdout);

    assert_eq!(env.store_bytes(), before);
    assert_eq!(env.store_dir_entries(), ["tokens.json"]);
    assert_eq!(
        std::fs::read_to_string(&dot_env).unwrap(),
        "WITHINGS_REFRESH_TOKEN=env-refresh-old\n"
    );
    assert!(withings.requests().is_empty());
    withings.verify();
}

#[test]
fn if_needed_on_a_fresh_set_exits_0_without_a_request() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(2 * 3600 + 30 * 60);
    env.withings(&withings.uri());
    let before = env.store_bytes();
    let tokens = env.store_json()["tokens"].clone();
    let refresh_at = rfc3339(time(&tokens["expires_at"]) - chrono::Duration::hours(1));
    let why = format!(
        "not refreshed: the token expires at {} and is due from {refresh_at}",
        tokens["expires_at"].as_str().unwrap()
    );

    let out = env.run_fast(&["refresh", "--if-needed", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["outcome"], "not_due");
    assert_eq!(report["message"], why.as_str());
    assert_eq!(report["generation"], 1);
    assert_eq!(report["refresh_token"], "token_*****abc");

    let out = env.run_fast(&["refresh", "--if-needed"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("not due"), "{}", out.stdout);
    assert!(out.stderr.contains(&why), "{}", out.stderr);

    // With --output-env the unchanged set is printed for the pipeline.
    let out = env.run_fast(&["refresh", "--if-needed", "--output-env"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!(
            "WITHINGS_ACCESS_TOKEN={OLD_ACCESS}\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"
        )),
        "{}",
        out.stdout
    );

    assert_eq!(env.store_bytes(), before);
    assert!(withings.requests().is_empty());
    withings.verify();
}
