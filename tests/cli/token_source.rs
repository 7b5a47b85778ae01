//! Which refresh token a refresh sends: the store's newest over an older
//! seed in the environment, a refused seed falling back to the store's own,
//! a seed that cannot be trusted never beating the store, the previous
//! generation's token while Withings still honours it, and a token with a
//! control character never sent.

use crate::support::*;

use serde_json::Value;
use wiremock::ResponseTemplate;

// ---------------------------------------------------------------------------
// the store over the environment

#[test]
fn second_refresh_uses_the_rotated_token_while_the_environment_holds_the_dead_one() {
    // The seed is accepted once; afterwards it is dead, as at Withings.
    let withings = Upstream::start();
    withings.mount(
        refresh_of("seed-original-111")
            .respond_with(new_tokens("rotated-access-aaa", "rotated-refresh-222"))
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1),
    );
    withings.mount(
        refresh_of("seed-original-111")
            .respond_with(refused_refresh())
            .with_priority(2)
            .expect(0),
    );
    withings.mount(
        refresh_of("rotated-refresh-222")
            .respond_with(new_tokens("third-access-bbb", "third-refresh-333"))
            .expect(1),
    );
    let now = chrono::Utc::now();
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_ACCESS_TOKEN", "seed-access-000")
        .set("WITHINGS_REFRESH_TOKEN", "seed-original-111")
        .set("WITHINGS_TOKEN_EXPIRES_AT", rfc3339(now - chrono::Duration::minutes(5)))
        .set(
            "WITHINGS_TOKEN_LAST_REFRESHED",
            rfc3339(now - chrono::Duration::minutes(185)),
        );

    let out = env.run_fast(&["refresh", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "env");
    assert_eq!(env.stored_refresh_token(), "rotated-refresh-222");

    // Same environment, still holding the dead seed.
    let out = env.run_fast(&["refresh", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["source"], "store");
    assert_eq!(report["refresh_token"], "token_*****333");
    assert_eq!(env.stored_refresh_token(), "third-refresh-333");
    assert_eq!(env.store_json()["generation"], 2);

    let sent: Vec<String> = withings
        .requests()
        .iter()
        .map(|r| form(r)["refresh_token"].clone())
        .collect();
    assert_eq!(sent, ["seed-original-111", "rotated-refresh-222"]);
    withings.verify();

    let out = env.run(&["status", "--json"]);
    assert_eq!(out.json()["source"], "store");
}

#[test]
fn sandbox_second_refresh_uses_the_stored_token_not_the_environment() {
    let (sandbox, mut env) = given_authorised_sandbox();
    let seed = env.stored_refresh_token();
    // The user copies the first refresh token into the environment, as the seed guide says.
    env.set("WITHINGS_REFRESH_TOKEN", seed.clone());
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rotated = env.stored_refresh_token();
    assert_ne!(rotated, seed);
    // The sandbox now refuses `seed`; only the stored token can work.
    let out = env.run_fast(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "store");
    assert_ne!(env.stored_refresh_token(), rotated);
    let stats = sandbox.stats();
    assert_eq!(stats["refused"], 0, "{stats}");
    assert_eq!(stats["tokens_issued"], 3, "{stats}");
}

/// A newer-dated but dead token in the environment must not hide the
/// store's working one: it is refused, the store's token is tried once.
#[test]
fn refused_environment_token_falls_back_to_the_stores_own() {
    let (sandbox, mut env) = given_authorised_sandbox();
    let stored = env.stored_refresh_token();
    env.set("WITHINGS_REFRESH_TOKEN", "dead-token-from-elsewhere").set(
        "WITHINGS_TOKEN_LAST_REFRESHED",
        rfc3339(chrono::Utc::now() + chrono::Duration::minutes(5)),
    );

    let out = env.run(&["refresh", "--no-railway", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("recovered with the store's refresh token"),
        "{}",
        out.stderr
    );
    assert_ne!(env.stored_refresh_token(), stored);
    assert_eq!(env.store_json()["previous"]["refresh_token"], stored);
    assert_eq!(sandbox.stats()["refused"], 1);
}

#[test]
fn a_recovery_with_the_stores_token_is_reported_as_such() {
    let withings = Upstream::start();
    withings.mount(refresh_of("dead-env-token").respond_with(refused_refresh()).expect(1));
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    let mut env = given_expired_store(&withings.uri());
    env.set("WITHINGS_REFRESH_TOKEN", "dead-env-token").set(
        "WITHINGS_TOKEN_LAST_REFRESHED",
        rfc3339(chrono::Utc::now() + chrono::Duration::minutes(5)),
    );

    let out = env.run_fast(&["refresh", "--json", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report: Value = out.json();
    assert_eq!(report["via"], "store_fallback");
    assert_eq!(report["source"], "env");
    assert!(!out.stderr.contains("previous generation"), "{out:?}");
    withings.verify();
}

#[test]
fn a_refused_seed_with_an_empty_store_does_not_claim_the_store_is_older() {
    let withings = withings_answering(refused_refresh()).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token");

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 4, "{out:?}");
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("newer than the store's"), "{message}");
    assert!(message.contains("the store holds no set to fall back on"), "{message}");
}

/// A future-dated WITHINGS_TOKEN_LAST_REFRESHED does not make a stale
/// environment token win, nor one the store has rotated away.
#[test]
fn a_seed_dated_in_the_future_or_already_rotated_never_beats_the_store() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    let mut env = given_expired_store(&withings.uri());
    let later = |minutes| rfc3339(chrono::Utc::now() + chrono::Duration::minutes(minutes));
    env.set("WITHINGS_REFRESH_TOKEN", "stale-env-token")
        .set("WITHINGS_TOKEN_LAST_REFRESHED", later(120));

    let out = env.run_fast(&["refresh", "--json", "--no-env-file"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "store", "a seed from the future is not trusted");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);

    // The store's previous token, dated just after the store's set: still ignored.
    env.set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH)
        .set("WITHINGS_TOKEN_LAST_REFRESHED", later(1));
    let status = env.run(&["status", "--json", "--no-env-file"]).json();
    assert_eq!(status["source"], "store", "{status}");
    withings.verify();
}

#[test]
fn a_control_character_in_a_token_from_the_environment_is_refused_by_name_and_never_sent() {
    let withings = silent_withings();
    for (name, value) in [
        ("WITHINGS_REFRESH_TOKEN", "s3cret\u{1}tail"),
        ("WITHINGS_ACCESS_TOKEN", "s3cret\ttail"),
    ] {
        let mut env = TestEnv::new();
        env.withings(&withings.uri()).set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH);
        env.set(name, value);
        let out = env.run_fast(&["refresh", "--no-railway"]);
        assert_refused(&out, name, "holds a control character");
        assert!(!out.stderr.contains("s3cret"), "{out:?}");
    }
    withings.verify();
}

// ---------------------------------------------------------------------------
// the previous generation

/// A user (Withings at `withings_url`) whose store's current refresh token,
/// `dead-current`, is refused, and whose previous one, `valid-previous`, was
/// rotated `previous_rotated_ago`.
fn given_a_dead_current_token(withings_url: &str, previous_rotated_ago: chrono::Duration) -> TestEnv {
    let mut env = TestEnv::new();
    env.withings(withings_url);
    let now = chrono::Utc::now();
    let store = json!({
        "version": 1,
        "generation": 5,
        "tokens": {
            "access_token": "current-access",
            "refresh_token": "dead-current",
            "expires_at": rfc3339(now - chrono::Duration::minutes(1)),
            "last_refreshed": rfc3339(now - chrono::Duration::hours(3)),
            "userid": "363",
            "scope": "user.info,user.metrics",
        },
        "previous": { "refresh_token": "valid-previous", "rotated_at": rfc3339(now - previous_rotated_ago) },
    });
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).unwrap());
    env
}

/// A Withings that refuses `dead-current` once and answers `valid-previous`
/// with `previous_answer`, exactly `previous_calls` times.
fn withings_refusing_the_current_token(previous_answer: ResponseTemplate, previous_calls: u64) -> Upstream {
    let withings = Upstream::start();
    withings.mount(refresh_of("dead-current").respond_with(refused_refresh()).expect(1));
    withings.mount(
        refresh_of("valid-previous")
            .respond_with(previous_answer)
            .expect(previous_calls),
    );
    withings
}

#[test]
fn refused_current_token_recovers_with_the_previous_generation_in_grace() {
    let withings = withings_refusing_the_current_token(new_tokens(NEW_ACCESS, NEW_REFRESH), 1);
    let env = given_a_dead_current_token(&withings.uri(), chrono::Duration::hours(1));

    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let out = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("previous generation"), "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["outcome"], "refreshed");
    assert!(
        report["message"].as_str().unwrap().contains("previous generation"),
        "{report}"
    );

    let store = env.store_json();
    assert_eq!(store["generation"], 6);
    assert_eq!(store["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(store["tokens"]["access_token"], NEW_ACCESS);
    // The token that was rotated (and is now in its grace period) is the previous one.
    assert_eq!(store["previous"]["refresh_token"], "valid-previous");
    let rotated_at = chrono::DateTime::parse_from_rfc3339(store["previous"]["rotated_at"].as_str().unwrap()).unwrap();
    assert!(rotated_at >= started);
    assert_eq!(withings.requests().len(), 2);
    withings.verify();
}

#[test]
fn previous_generation_rotated_more_than_8_hours_ago_is_not_tried() {
    let withings = withings_refusing_the_current_token(new_tokens(NEW_ACCESS, NEW_REFRESH), 0);
    let env = given_a_dead_current_token(&withings.uri(), chrono::Duration::hours(9));
    let stored = env.store_bytes();

    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("INVALID_REFRESH_TOKEN"), "{}", out.stderr);
    assert_eq!(withings.requests().len(), 1, "exactly one request");
    assert_eq!(env.store_bytes(), stored, "store touched");
    withings.verify();
}

#[test]
fn previous_generation_refused_too_is_exit_4_with_the_store_untouched() {
    let withings = withings_refusing_the_current_token(refused_refresh(), 1);
    let env = given_a_dead_current_token(&withings.uri(), chrono::Duration::hours(2));
    let stored = env.store_bytes();

    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("INVALID_REFRESH_TOKEN"), "{}", out.stderr);
    assert_eq!(withings.requests().len(), 2);
    assert_eq!(env.store_bytes(), stored, "store touched");
    assert!(!env.journal_path().exists());
    withings.verify();
}
