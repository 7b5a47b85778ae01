//! Railway on `refresh`: the four variables upserted on the service (never
//! replacing the others), the environment found by name or id (and
//! remembered), Railway's settings checked before rotating, the two kinds
//! of token in their headers, and one redeploy when asked. The real binary
//! against a loopback GraphQL peer (wiremock, which also answers Withings'
//! token endpoint).

use crate::support::*;

use wiremock::matchers::header;

// ---------------------------------------------------------------------------
// the upsert

#[test]
fn refresh_upserts_exactly_the_four_variables_on_the_service_without_replace() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["railway"], "updated");
    assert_eq!(report["deployment_triggered"], false);

    // The environment id was given: one call, the upsert, nothing else.
    assert_eq!(peer.operations(), [UPSERT], "{run:?}");
    let variables = only_upsert(&peer);
    assert_eq!(variables.as_object().unwrap().len(), 1, "only `input`: {variables}");
    let input = &variables["input"];
    let keys: Vec<&str> = input.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["environmentId", "projectId", "serviceId", "skipDeploys", "variables"],
        "no `replace` (or anything else) in the input: {input}"
    );
    assert!(input.get("replace").is_none(), "replace must never be sent: {input}");
    assert_eq!(input["projectId"], PROJECT);
    assert_eq!(input["serviceId"], SERVICE, "service variables, never shared ones");
    assert_eq!(input["environmentId"], ENVIRONMENT);
    assert_eq!(input["skipDeploys"], true);

    let tokens = stored_tokens(&env);
    assert_eq!(
        input["variables"],
        json!({
            "WITHINGS_ACCESS_TOKEN": NEW_ACCESS,
            "WITHINGS_REFRESH_TOKEN": NEW_REFRESH,
            "WITHINGS_TOKEN_EXPIRES_AT": report["expires_at"],
            "WITHINGS_TOKEN_LAST_REFRESHED": report["last_refreshed"],
        })
    );
    assert_eq!(tokens["refresh_token"], NEW_REFRESH);
    assert_eq!(input["variables"]["WITHINGS_TOKEN_EXPIRES_AT"], tokens["expires_at"]);
    let expires = input["variables"]["WITHINGS_TOKEN_EXPIRES_AT"].as_str().unwrap();
    assert!(
        expires.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(expires).is_ok(),
        "{expires}"
    );
}

#[test]
fn no_railway_sends_nothing_to_railway() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--no-railway", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["outcome"], "refreshed", "--no-railway still rotates");
    assert_eq!(report["railway"], "skipped");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert!(peer.graphql_requests().is_empty(), "{:?}", peer.operations());
}

#[test]
fn no_railway_conflicts_with_trigger_deployment() {
    let peer = Peer::start();
    let env = given_expired_store_and_railway(&peer);
    let run = env.run_with(&["refresh", "--no-railway", "--trigger-deployment"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH);
}

// ---------------------------------------------------------------------------
// the environment, by name or id

#[test]
fn environment_defaults_to_the_one_named_production() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_fresh_store_and_railway_service(&peer);

    let run = env.run_with(&["railway-sync", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "updated");
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT]);
    assert_eq!(
        peer.bodies(ENVIRONMENTS)[0]["variables"],
        json!({ "projectId": PROJECT })
    );
    assert_eq!(only_upsert(&peer)["input"]["environmentId"], "env-prod-id");
}

#[test]
fn environment_name_setting_picks_another_environment() {
    let peer = Peer::start();
    peer.railway_ok();
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_NAME", "staging");

    let run = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT]);
    assert_eq!(only_upsert(&peer)["input"]["environmentId"], "env-staging-id");
}

#[test]
fn environment_id_setting_skips_the_lookup() {
    let peer = Peer::start();
    peer.railway_ok();
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT)
        .set("RAILWAY_ENVIRONMENT_NAME", "staging");

    let run = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(peer.operations(), [UPSERT]);
    assert_eq!(only_upsert(&peer)["input"]["environmentId"], ENVIRONMENT);
}

#[test]
fn unknown_environment_name_is_a_configuration_error_listing_the_names() {
    let peer = Peer::start();
    peer.railway_ok();
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_NAME", "prod");

    let run = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("CONFIGURATION_ERROR"), "{run:?}");
    assert!(run.stderr.contains("`prod`"), "names the wanted environment: {run:?}");
    assert!(
        run.stderr.contains("production, staging"),
        "lists the names that exist: {run:?}"
    );
    assert!(
        run.stderr.contains("RAILWAY_ENVIRONMENT_NAME"),
        "says what to set: {run:?}"
    );
    assert_eq!(peer.operations(), [ENVIRONMENTS], "no mutation after a failed lookup");

    // The same with --json: the error object on stdout.
    let json_run = env.run_with(&["railway-sync", "--json"], &NO_RETRY_DELAY);
    assert_eq!(json_run.code, 3, "{json_run:?}");
    let error = &json_run.json()["error"];
    assert_eq!(error["code"], "CONFIGURATION_ERROR");
    assert!(
        error["message"].as_str().unwrap().contains("production, staging"),
        "{error}"
    );

    // --dry-run does the same lookup and fails the same way.
    let dry = env.run_with(&["railway-sync", "--dry-run"], &NO_RETRY_DELAY);
    assert_eq!(dry.code, 3, "{dry:?}");
    assert!(dry.stderr.contains("production, staging"), "{dry:?}");
    assert!(peer.bodies(UPSERT).is_empty());
}

/// A user whose stored set is `expires_in_secs` from expiry, with Withings
/// on `peer` and Railway at `railway_url` (project token, the environment
/// looked up by `name`).
fn given_store_and_railway_by_name(peer: &Peer, expires_in_secs: i64, railway_url: &str, name: &str) -> TestEnv {
    let mut env = given_store_expiring_in(expires_in_secs);
    env.withings(&peer.withings_url());
    env.set("RAILWAY_API_URL", railway_url)
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE)
        .set("RAILWAY_ENVIRONMENT_NAME", name);
    env
}

#[test]
fn a_wrong_environment_name_stops_refresh_before_withings_with_exit_3() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_store_and_railway_by_name(&peer, -60, &peer.graphql_url(), "prod");
    let before = env.store_bytes();

    for args in [&["refresh", "--json"][..], &["refresh", "--if-needed", "--json"]] {
        let run = env.run_with(args, &NO_RETRY_DELAY);
        assert_eq!(run.code, 3, "nothing rotated, so the setting is the error: {run:?}");
        let error = &run.json()["error"];
        assert_eq!(error["code"], "CONFIGURATION_ERROR");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("no environment named `prod`"), "{message}");
        assert!(message.contains("production, staging"), "{message}");
        assert!(message.ends_with("; nothing was sent to Withings"), "{message}");
        assert!(
            error["action"].as_str().unwrap().contains("RAILWAY_ENVIRONMENT_NAME"),
            "{error}"
        );
    }
    assert_eq!(peer.token_requests(), 0, "nothing was sent to Withings");
    assert_eq!(
        peer.operations(),
        [ENVIRONMENTS, ENVIRONMENTS],
        "one lookup per run, no mutation"
    );
    assert_eq!(env.store_bytes(), before, "the store is unchanged");
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH);
}

#[test]
fn an_environment_found_by_name_is_recorded_so_the_next_runs_do_not_look_it_up() {
    let peer = Peer::start();
    peer.railway_ok();
    let mut env = given_store_and_railway_by_name(&peer, -60, &peer.graphql_url(), "production");

    let first = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT]);
    let key = format!("railway:{PROJECT}/{SERVICE}@production");
    let recorded = env.store_json()["railway_environments"].clone();
    let entries: Vec<(&String, &Value)> = recorded.as_object().expect("a record").iter().collect();
    assert_eq!(entries.len(), 1, "{recorded}");
    let (production, id) = entries[0];
    assert!(
        production.starts_with(&format!("{key}#")),
        "keyed as the copy record, and the settings: {production}"
    );
    assert_eq!(id, "env-prod-id");
    assert_eq!(env.store_json()["copies"][&key], first.json()["set_generation"]);

    // A cron tick with nothing due asks Railway nothing at all.
    let idle = env.run_with(&["refresh", "--if-needed"], &NO_RETRY_DELAY);
    assert_eq!(idle.code, 0, "{idle:?}");
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT]);
    // The next due refresh uses the recorded id: the upsert only.
    env.make_store_due();
    let second = env.run_with(&["refresh", "--if-needed"], &NO_RETRY_DELAY);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT, UPSERT]);
    assert_eq!(
        peer.bodies(UPSERT)[1]["variables"]["input"]["environmentId"],
        "env-prod-id"
    );
    assert_eq!(peer.token_requests(), 2);

    // Another name is another setting: one lookup, recorded beside the first.
    env.set("RAILWAY_ENVIRONMENT_NAME", "staging");
    env.make_store_due();
    let third = env.run_with(&["refresh", "--if-needed"], &NO_RETRY_DELAY);
    assert_eq!(third.code, 0, "{third:?}");
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT, UPSERT, ENVIRONMENTS, UPSERT]);
    assert_eq!(
        peer.bodies(UPSERT)[2]["variables"]["input"]["environmentId"],
        "env-staging-id"
    );
    let recorded = env.store_json()["railway_environments"].clone();
    assert_eq!(recorded.as_object().unwrap().len(), 2, "{recorded}");
    assert_eq!(recorded[production.as_str()], "env-prod-id");
    let staging = format!("railway:{PROJECT}/{SERVICE}@staging#");
    assert!(
        recorded
            .as_object()
            .unwrap()
            .iter()
            .any(|(k, v)| k.starts_with(&staging) && v == "env-staging-id"),
        "{recorded}"
    );
    assert_eq!(peer.token_requests(), 3);
}

#[test]
fn another_railway_token_is_another_setting_checked_before_rotating() {
    let peer = Peer::start();
    peer.mount(
        gql(ENVIRONMENTS)
            .and(header("Project-Access-Token", PROJECT_TOKEN))
            .respond_with(environments()),
    );
    peer.mount(gql(ENVIRONMENTS).respond_with(graphql_error("Not Authorized")));
    peer.mount(gql(UPSERT).respond_with(data(json!({ UPSERT: true }))));
    let mut env = given_store_and_railway_by_name(&peer, -60, &peer.graphql_url(), "production");
    assert_eq!(env.run_with(&["refresh"], &NO_RETRY_DELAY).code, 0);
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT]);
    let after_first = env.store_bytes();

    env.set("RAILWAY_TOKEN", "a-token-railway-refuses");
    env.make_store_due();
    let due = env.store_bytes();
    let run = env.run_with(&["refresh", "--if-needed"], &NO_RETRY_DELAY);

    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("Not Authorized"), "{run:?}");
    assert_eq!(
        peer.operations(),
        [ENVIRONMENTS, UPSERT, ENVIRONMENTS],
        "looked up again, nothing pushed"
    );
    assert_eq!(peer.token_requests(), 1, "nothing more was sent to Withings");
    assert_eq!(env.store_bytes(), due, "the store is unchanged");
    assert_ne!(after_first, due);
}

#[test]
fn railway_unreachable_before_rotating_keeps_a_live_token_under_if_needed_and_rotates_when_asked() {
    let peer = Peer::start();
    let unreachable = format!("{}{GRAPHQL}", closed_port_url());
    // Due (a 3 h token is due in its last hour) but still working for 30 min.
    let env = given_store_and_railway_by_name(&peer, 30 * 60, &unreachable, "production");
    let before = env.store_bytes();

    let cron = env.run_with(&["refresh", "--if-needed", "--retries", "0"], &NO_RETRY_DELAY);
    assert_eq!(cron.code, 5, "{cron:?}");
    assert!(cron.stderr.contains("[NETWORK_ERROR]"), "{cron:?}");
    assert!(
        cron.stderr
            .contains("note: not refreshed: Railway could not be reached before rotating, and the token works until "),
        "{cron:?}"
    );
    assert_eq!(peer.token_requests(), 0);
    assert_eq!(env.store_bytes(), before);

    // A plain refresh is asked for: it rotates, and Railway is stale (exit 6).
    let asked = env.run_with(&["refresh", "--json", "--retries", "0"], &NO_RETRY_DELAY);
    assert_eq!(asked.code, 6, "{asked:?}");
    assert_eq!(asked.json()["railway"], "failed");
    assert!(
        asked
            .stderr
            .contains("warning: Railway could not be reached before rotating"),
        "{asked:?}"
    );
    assert_eq!(peer.token_requests(), 1);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

#[test]
fn railway_unreachable_never_keeps_an_expired_token_from_being_refreshed() {
    let peer = Peer::start();
    let unreachable = format!("{}{GRAPHQL}", closed_port_url());
    let env = given_store_and_railway_by_name(&peer, -60, &unreachable, "production");

    let cron = env.run_with(&["refresh", "--if-needed", "--json", "--retries", "0"], &NO_RETRY_DELAY);

    assert_eq!(cron.code, 6, "the new set is saved, Railway is stale: {cron:?}");
    let report = cron.json();
    assert_eq!(report["outcome"], "refreshed");
    assert_eq!(report["railway"], "failed");
    assert_eq!(peer.token_requests(), 1);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert!(
        env.store_json()["railway_environments"].is_null(),
        "nothing found, nothing recorded"
    );
}

#[test]
fn a_lookup_railway_refuses_stops_refresh_before_withings_with_exit_3() {
    let peer = Peer::start();
    peer.mount(gql(ENVIRONMENTS).respond_with(graphql_error("Not Authorized")));
    let env = given_store_and_railway_by_name(&peer, -60, &peer.graphql_url(), "production");

    let run = env.run_with(&["refresh"], &NO_RETRY_DELAY);

    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("error: Railway refused the lookup of the target service: Railway was not updated: environments failed: Not Authorized"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("nothing was sent to Withings [CONFIGURATION_ERROR]"),
        "{run:?}"
    );
    assert_eq!(peer.token_requests(), 0);
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH);
}

// ---------------------------------------------------------------------------
// authentication headers

#[test]
fn project_token_goes_in_project_access_token_and_wins_over_an_account_token() {
    let peer = Peer::start();
    peer.mount(
        gql(UPSERT)
            .and(header("Project-Access-Token", PROJECT_TOKEN))
            .respond_with(data(json!({ UPSERT: true }))),
    );
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT)
        .set("RAILWAY_API_TOKEN", ACCOUNT_TOKEN);

    let run = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let requests = peer.graphql_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.headers.get("project-access-token").unwrap(), PROJECT_TOKEN);
    assert!(
        request.headers.get("authorization").is_none(),
        "only one credential is sent: {:?}",
        request.headers
    );
    assert_eq!(
        request.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
}

#[test]
fn account_token_goes_in_authorization_bearer() {
    let peer = Peer::start();
    let bearer = format!("Bearer {ACCOUNT_TOKEN}");
    peer.mount(
        gql(ENVIRONMENTS)
            .and(header("Authorization", bearer.as_str()))
            .respond_with(environments()),
    );
    peer.mount(
        gql(UPSERT)
            .and(header("Authorization", bearer.as_str()))
            .respond_with(data(json!({ UPSERT: true }))),
    );
    let mut env = TestEnv::new();
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_API_TOKEN", ACCOUNT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE);
    env.seed_store("stored-access-abc", "stored-refresh-xyz", 3 * 3600);

    let run = env.run_with(&["railway-sync"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let requests = peer.graphql_requests();
    assert_eq!(requests.len(), 2, "lookup then upsert");
    for request in &requests {
        assert_eq!(request.headers.get("authorization").unwrap(), bearer.as_str());
        assert!(request.headers.get("project-access-token").is_none());
    }
}

// ---------------------------------------------------------------------------
// deployment

#[test]
fn trigger_deployment_redeploys_exactly_once_after_the_upsert() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--trigger-deployment", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["railway"], "updated");
    assert_eq!(report["deployment_triggered"], true);
    assert_eq!(peer.operations(), [UPSERT, REDEPLOY], "upsert first, then one redeploy");
    assert_eq!(
        only_upsert(&peer)["input"]["skipDeploys"],
        true,
        "the upsert itself never deploys"
    );
    assert_eq!(
        peer.bodies(REDEPLOY)[0]["variables"],
        json!({ "serviceId": SERVICE, "environmentId": ENVIRONMENT })
    );
}

#[test]
fn railway_sync_trigger_deployment_redeploys_once() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_fresh_store_and_railway_service(&peer);

    let run = env.run_with(&["railway-sync", "--trigger-deployment", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["outcome"], "pushed");
    assert_eq!(report["deployment_triggered"], true);
    assert_eq!(peer.operations(), [ENVIRONMENTS, UPSERT, REDEPLOY]);
    assert_eq!(
        peer.bodies(REDEPLOY)[0]["variables"],
        json!({ "serviceId": SERVICE, "environmentId": "env-prod-id" })
    );
}

#[test]
fn without_trigger_deployment_no_deploy_is_requested() {
    let peer = Peer::start();
    peer.railway_ok();
    let env = given_fresh_store_and_railway_service(&peer);

    let run = env.run_with(&["railway-sync", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["deployment_triggered"], false);
    assert!(peer.bodies(REDEPLOY).is_empty());
}
