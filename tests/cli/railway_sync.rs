//! `railway-sync`: it pushes the stored set (repairing a failed push),
//! `--dry-run` sends no mutation and shows no secret, `--check` finds drift
//! (exit 8) on a file store and on Redis, and the same flows run against the
//! built-in sandbox.

use crate::support::*;

use wiremock::matchers::header;

// ---------------------------------------------------------------------------
// railway-sync

#[test]
fn railway_sync_after_a_failed_push_repairs_railway() {
    let peer = Peer::start();
    // A wrong token is refused; the right one is accepted.
    peer.mount(
        gql(UPSERT)
            .and(header("Project-Access-Token", "wrong-project-token"))
            .respond_with(graphql_error("Not Authorized")),
    );
    peer.mount(
        gql(UPSERT)
            .and(header("Project-Access-Token", PROJECT_TOKEN))
            .respond_with(data(json!({ UPSERT: true }))),
    );
    let mut env = given_expired_store_and_railway(&peer);
    env.set("RAILWAY_TOKEN", "wrong-project-token");

    let failed = env.run_with(&["refresh"], &NO_RETRY_DELAY);
    assert_eq!(failed.code, 6, "{failed:?}");
    assert!(failed.stderr.contains("withings-token railway-sync"), "{failed:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);

    // The user fixes the token (the later setting wins) and syncs.
    env.set("RAILWAY_TOKEN", PROJECT_TOKEN);
    let repaired = env.run_with(&["railway-sync", "--json"], &NO_RETRY_DELAY);
    assert_eq!(repaired.code, 0, "{repaired:?}");
    let report = repaired.json();
    assert_eq!(report["railway"], "updated");
    assert_eq!(report["outcome"], "pushed");

    let upserts = peer.bodies(UPSERT);
    assert_eq!(upserts.len(), 2, "one refused, one accepted");
    assert_eq!(
        upserts[0]["variables"], upserts[1]["variables"],
        "the same set both times"
    );
    let tokens = stored_tokens(&env);
    assert_eq!(
        upserts[1]["variables"]["input"]["variables"],
        json!({
            "WITHINGS_ACCESS_TOKEN": NEW_ACCESS,
            "WITHINGS_REFRESH_TOKEN": NEW_REFRESH,
            "WITHINGS_TOKEN_EXPIRES_AT": tokens["expires_at"],
            "WITHINGS_TOKEN_LAST_REFRESHED": tokens["last_refreshed"],
        })
    );
    // railway-sync did not refresh: Withings was asked once, by `refresh`.
    assert_eq!(peer.token_requests(), 1);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

#[test]
fn railway_sync_failure_is_exit_6_with_the_report() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error("Not Authorized")));
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT);

    let run = env.run_with(&["railway-sync", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    let report = run.json();
    assert_eq!(report["railway"], "failed");
    assert_eq!(report["error"]["code"], "RAILWAY_UPDATE_FAILED");
    assert_eq!(peer.bodies(UPSERT).len(), 1, "Not Authorized is not retried");
}

#[test]
fn railway_sync_dry_run_sends_no_mutation_and_prints_no_secret() {
    let peer = Peer::start();
    let mut env = given_fresh_store_and_railway_service(&peer);
    let stored = env.store_json()["tokens"].clone();
    // Railway holds the same access token, an older refresh token, the same
    // expiry and no last-refreshed time.
    peer.mount(gql(VARIABLES).respond_with(data(json!({ VARIABLES: {
        "WITHINGS_ACCESS_TOKEN": "stored-access-abc",
        "WITHINGS_REFRESH_TOKEN": "railway-old-refresh-qqq",
        "WITHINGS_TOKEN_EXPIRES_AT": stored["expires_at"],
        "OTHER_VARIABLE": "unrelated",
    } }))));
    peer.railway_ok();
    env.set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT);

    let secrets = [
        "stored-access-abc",
        "stored-refresh-xyz",
        "railway-old-refresh-qqq",
        PROJECT_TOKEN,
    ];
    let check_no_secret = |run: &Run| {
        for secret in secrets {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{secret} leaked: {run:?}"
            );
        }
    };

    // Table, for people.
    let table = env.run_with(&["railway-sync", "--dry-run"], &NO_RETRY_DELAY);
    assert_eq!(table.code, 0, "{table:?}");
    check_no_secret(&table);
    assert!(
        table.stdout.contains("token_*****xyz"),
        "the stored refresh token, masked: {table:?}"
    );
    assert!(
        table.stdout.contains("token_*****qqq"),
        "Railway's current one, masked: {table:?}"
    );
    for word in ["unchanged", "would change", "missing"] {
        assert!(table.stdout.contains(word), "{word}: {table:?}");
    }
    assert!(table.stdout.contains(stored["expires_at"].as_str().unwrap()));

    // JSON, for programs.
    let json_run = env.run_with(&["railway-sync", "--dry-run", "--json"], &NO_RETRY_DELAY);
    assert_eq!(json_run.code, 0, "{json_run:?}");
    check_no_secret(&json_run);
    let report = json_run.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["service_id"], SERVICE);
    assert_eq!(report["environment_id"], ENVIRONMENT);
    let status: Vec<(String, String)> = report["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = withings_token::TOKEN_KEYS
        .iter()
        .zip(["unchanged", "would change", "unchanged", "missing"])
        .map(|(n, s)| ((*n).to_owned(), s.to_owned()))
        .collect();
    assert_eq!(status, expected, "{report}");
    let refresh = &report["variables"][1];
    assert_eq!(refresh["current"], "token_*****qqq");
    assert_eq!(refresh["new"], "token_*****xyz");

    // Verbose logs carry no secret either.
    let verbose = env.run_with(&["railway-sync", "--dry-run", "-vvv"], &NO_RETRY_DELAY);
    assert_eq!(verbose.code, 0, "{verbose:?}");
    check_no_secret(&verbose);

    // Only queries went out: three `variables` reads, no mutation.
    let requests = peer.graphql_requests();
    assert_eq!(requests.len(), 3, "{:?}", peer.operations());
    for request in &requests {
        let query = body(request)["query"].as_str().unwrap().to_owned();
        assert!(query.trim_start().starts_with("query "), "{query}");
        assert!(!query.contains("mutation"), "{query}");
    }
    assert_eq!(peer.operations(), [VARIABLES, VARIABLES, VARIABLES]);
    assert_eq!(
        peer.bodies(VARIABLES)[0]["variables"],
        json!({ "projectId": PROJECT, "environmentId": ENVIRONMENT, "serviceId": SERVICE })
    );
}

#[test]
fn railway_sync_without_stored_tokens_says_to_run_refresh_or_exchange() {
    let peer = Peer::start();
    peer.railway_ok();
    let mut env = TestEnv::new();
    configure_railway(&mut env, &peer);

    let run = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("CONFIGURATION_ERROR"), "{run:?}");
    assert!(run.stderr.contains("withings-token refresh"), "{run:?}");
    assert!(run.stderr.contains("withings-token exchange"), "{run:?}");
    assert!(peer.graphql_requests().is_empty());

    let json_run = env.run_with(&["railway-sync", "--json"], &NO_RETRY_DELAY);
    assert_eq!(json_run.code, 3);
    assert_eq!(json_run.json()["error"]["code"], "CONFIGURATION_ERROR");
}

#[test]
fn railway_sync_without_railway_settings_names_the_missing_variables() {
    let env = TestEnv::new();
    env.seed_store("stored-access-abc", "stored-refresh-xyz", 3 * 3600);
    let nothing = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(nothing.code, 3, "{nothing:?}");
    for var in [
        "RAILWAY_TOKEN",
        "RAILWAY_API_TOKEN",
        "RAILWAY_PROJECT_ID",
        "RAILWAY_SERVICE_ID",
    ] {
        assert!(nothing.stderr.contains(var), "{var}: {nothing:?}");
    }

    let mut partial = TestEnv::new();
    partial.seed_store("stored-access-abc", "stored-refresh-xyz", 3 * 3600);
    partial
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT);
    let run = partial.run_with(&["railway-sync", "--dry-run"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    let first_line = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(first_line.contains("missing RAILWAY_SERVICE_ID"), "{run:?}");
    assert!(
        !first_line.contains("RAILWAY_PROJECT_ID"),
        "only what is missing: {run:?}"
    );
    assert!(!run.stderr.contains(PROJECT_TOKEN));
}

// ---------------------------------------------------------------------------
// drift: railway-sync --check

/// The four variables exactly as the store of `env` holds them.
fn stored_variables(env: &TestEnv) -> Vec<(&'static str, Value)> {
    let t = stored_tokens(env);
    vec![
        ("WITHINGS_ACCESS_TOKEN", t["access_token"].clone()),
        ("WITHINGS_REFRESH_TOKEN", t["refresh_token"].clone()),
        ("WITHINGS_TOKEN_EXPIRES_AT", t["expires_at"].clone()),
        ("WITHINGS_TOKEN_LAST_REFRESHED", t["last_refreshed"].clone()),
    ]
}

#[test]
fn railway_sync_check_in_sync_exits_0_and_sends_no_mutation() {
    let peer = Peer::start();
    let env = given_fresh_store_and_railway_service(&peer);
    railway_holds(&peer, &stored_variables(&env));

    let run = env.run_with(&["railway-sync", "--check", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["check"], true);
    assert_eq!(report["in_sync"], true);
    assert_eq!(report["railway_newer"], false);
    assert_eq!(statuses(&report), ["same"; 4]);
    let table = env.run_with(&["railway-sync", "--check"], &NO_RETRY_DELAY);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(!table.stderr.contains("DRIFT"), "{table:?}");
    assert_no_mutation(&peer);
}

#[test]
fn railway_sync_check_with_a_differing_refresh_token_is_drift_8_naming_it_masked() {
    let peer = Peer::start();
    let env = given_fresh_store_and_railway_service(&peer);
    let mut vars = stored_variables(&env);
    vars[1].1 = json!("railway-other-refresh-qqq");
    railway_holds(&peer, &vars);

    let run = env.run_with(&["railway-sync", "--check"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 8, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: Railway's variables differ from the store: WITHINGS_REFRESH_TOKEN [DRIFT]\n  next: run `withings-token railway-sync` (or `withings-token pull --from railway` when Railway is newer)"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("token_*****qqq") && run.stdout.contains("token_*****xyz"),
        "{run:?}"
    );
    for secret in ["railway-other-refresh-qqq", "stored-refresh-xyz", "stored-access-abc"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret}: {run:?}"
        );
    }
    let json_run = env.run_with(&["railway-sync", "--check", "--json"], &NO_RETRY_DELAY);
    assert_eq!(json_run.code, 8, "{json_run:?}");
    let report = json_run.json();
    assert_eq!(report["in_sync"], false);
    assert_eq!(statuses(&report), ["same", "differs", "same", "same"]);
    assert_eq!(report["variables"][1]["railway"], "token_*****qqq");
    assert_eq!(report["variables"][1]["store"], "token_*****xyz");
    assert_no_mutation(&peer);
}

#[test]
fn railway_sync_check_with_a_missing_variable_is_drift_8_and_says_when_railway_is_newer() {
    let peer = Peer::start();
    let env = given_fresh_store_and_railway_service(&peer);
    let later = rfc3339(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut vars = stored_variables(&env);
    vars[3].1 = json!(later);
    vars.remove(0);
    railway_holds(&peer, &vars);

    let run = env.run_with(&["railway-sync", "--check", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 8, "{run:?}");
    let report = run.json();
    assert_eq!(statuses(&report), ["missing", "same", "same", "differs"]);
    assert_eq!(report["variables"][0]["railway"], Value::Null);
    assert_eq!(report["variables"][3]["railway"], later.as_str());
    assert_eq!(report["railway_newer"], true);
    assert!(
        run.stderr.contains(
            "differ from the store: WITHINGS_ACCESS_TOKEN, WITHINGS_TOKEN_LAST_REFRESHED (Railway's set is newer) [DRIFT]"
        ),
        "{run:?}"
    );
    assert_no_mutation(&peer);
}

#[test]
fn railway_sync_check_against_a_redis_store_is_0_in_sync_and_8_on_drift() {
    let redis = RedisServer::start();
    let file_env = given_fresh_store_and_railway_service(&Peer::start());
    redis.write_store(&file_env.store_json());
    let on_redis = |peer: &Peer| {
        let mut env = TestEnv::new();
        configure_railway(&mut env, peer);
        env.set("WITHINGS_CLIENT_ID", CLIENT_ID).on_redis(&redis);
        env
    };

    let in_sync = Peer::start();
    railway_holds(&in_sync, &stored_variables(&file_env));
    let run = on_redis(&in_sync).run_with(&["railway-sync", "--check", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["in_sync"], true);

    let drifted = Peer::start();
    let mut vars = stored_variables(&file_env);
    vars[1].1 = json!("railway-other-refresh-qqq");
    railway_holds(&drifted, &vars);
    let run = on_redis(&drifted).run_with(&["railway-sync", "--check", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 8, "{run:?}");
    assert_eq!(statuses(&run.json()), ["same", "differs", "same", "same"]);
    assert_no_mutation(&drifted);
}
