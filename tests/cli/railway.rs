//! Railway end to end (issue 4): the real binary against a loopback GraphQL
//! peer (wiremock, which also answers Withings' token endpoint), and one flow
//! against the built-in sandbox.

use crate::support::*;

use std::time::{Duration, Instant};

use wiremock::Request;
use wiremock::matchers::header;

const PROJECT: &str = "proj-1111";
const SERVICE: &str = "svc-2222";
const ENVIRONMENT: &str = "env-3333";
const PROJECT_TOKEN: &str = "project-token-secret-ppp";
const ACCOUNT_TOKEN: &str = "account-token-secret-qqq";

const UPSERT: &str = "variableCollectionUpsert";
const REDEPLOY: &str = "serviceInstanceRedeploy";
const ENVIRONMENTS: &str = "environments";
const VARIABLES: &str = "variables";

/// One wiremock server playing both Withings (POST /v2/oauth2) and Railway
/// (POST /graphql/v2).
struct Peer(Upstream);

impl Peer {
    /// Withings answers every refresh with [`NEW_ACCESS`] / [`NEW_REFRESH`].
    fn start() -> Peer {
        let upstream = Upstream::start();
        upstream.mount(token_request().respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH)));
        Peer(upstream)
    }

    fn mount(&self, mock: Mock) {
        self.0.mount(mock);
    }

    fn withings_url(&self) -> String {
        self.0.uri()
    }

    fn graphql_url(&self) -> String {
        format!("{}{GRAPHQL}", self.0.uri())
    }

    fn graphql_requests(&self) -> Vec<Request> {
        self.0
            .requests()
            .into_iter()
            .filter(|r| r.url.path() == GRAPHQL)
            .collect()
    }

    /// How many requests reached Withings' token endpoint.
    fn token_requests(&self) -> usize {
        self.0
            .requests()
            .iter()
            .filter(|r| r.url.path() == "/v2/oauth2")
            .count()
    }

    /// The GraphQL operation names received, in order.
    fn operations(&self) -> Vec<String> {
        self.graphql_requests().iter().map(|r| operation(&body(r))).collect()
    }

    /// The bodies of the requests for one operation.
    fn bodies(&self, op: &str) -> Vec<Value> {
        self.graphql_requests()
            .iter()
            .map(body)
            .filter(|b| operation(b) == op)
            .collect()
    }

    /// Mounts the success answers of every operation this tool uses (upsert,
    /// redeploy, environments production/staging, empty variables).
    fn railway_ok(&self) {
        self.mount(gql(UPSERT).respond_with(data(json!({ UPSERT: true }))));
        self.mount(gql(REDEPLOY).respond_with(data(json!({ REDEPLOY: true }))));
        self.mount(gql(ENVIRONMENTS).respond_with(environments()));
        self.mount(gql(VARIABLES).respond_with(data(json!({ VARIABLES: {} }))));
    }
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("GraphQL request body is JSON")
}

/// `mutation variableCollectionUpsert($input: ...)` → `variableCollectionUpsert`.
fn operation(body: &Value) -> String {
    let query = body["query"].as_str().expect("query is a string");
    let word = query.split_whitespace().nth(1).unwrap_or_default();
    word.split('(').next().unwrap_or_default().to_owned()
}

fn data(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": value }))
}

fn graphql_error(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": null, "errors": [{ "message": message }] }))
}

fn environments() -> ResponseTemplate {
    data(json!({ "environments": { "edges": [
        { "node": { "id": "env-prod-id", "name": "production" } },
        { "node": { "id": "env-staging-id", "name": "staging" } },
    ] } }))
}

/// Railway fully configured on `peer`: a project token and an environment id.
fn configure_railway(env: &mut TestEnv, peer: &Peer) {
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE)
        .set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT);
}

/// A user whose stored set expired a minute ago, with Withings and a fully
/// configured Railway both on `peer`: `refresh` rotates, then pushes.
fn given_expired_store_and_railway(peer: &Peer) -> TestEnv {
    let mut env = given_expired_store(&peer.withings_url());
    configure_railway(&mut env, peer);
    env
}

/// A user whose store holds a set with 3 h left, and a Railway service on
/// `peer` (project token, no environment id, so it is looked up by name):
/// what `railway-sync` needs, and no Withings.
fn given_fresh_store_and_railway_service(peer: &Peer) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE);
    env.seed_store("stored-access-abc", "stored-refresh-xyz", 3 * 3600);
    env
}

/// The `variables` object of the one upsert the peer received.
fn only_upsert(peer: &Peer) -> Value {
    let upserts = peer.bodies(UPSERT);
    assert_eq!(upserts.len(), 1, "exactly one upsert: {upserts:#?}");
    upserts[0]["variables"].clone()
}

fn stored_tokens(env: &TestEnv) -> Value {
    env.store_json()["tokens"].clone()
}

// ---------------------------------------------------------------------------
// The upsert itself
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Environment lookup by name
// ---------------------------------------------------------------------------

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
// Authentication headers
// ---------------------------------------------------------------------------

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
// Deployment
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Failures: exit 6 keeps the new tokens
// ---------------------------------------------------------------------------

#[test]
fn graphql_errors_on_http_200_fail_with_exit_6_keeping_the_new_tokens() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error("Not Authorized")));
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    // The store has the new set.
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(stored_tokens(&env)["access_token"], NEW_ACCESS);
    // One JSON document: the token report, with the failure inside it.
    let report = run.json();
    assert_eq!(report["outcome"], "refreshed");
    assert_eq!(report["railway"], "failed");
    assert_eq!(report["deployment_triggered"], false);
    assert_eq!(report["refresh_token"], "token_*****xyz");
    assert_eq!(report["error"]["code"], "RAILWAY_UPDATE_FAILED");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("variableCollectionUpsert failed: Not Authorized"),
        "names the operation and Railway's message: {report}"
    );
    assert!(
        report["error"]["action"].as_str().unwrap().contains("railway-sync"),
        "{report}"
    );
    // Human side: the action line says what to do.
    assert!(run.stderr.contains("RAILWAY_UPDATE_FAILED"), "{run:?}");
    assert!(run.stderr.contains("withings-token railway-sync"), "{run:?}");
    assert!(!run.stdout.contains(NEW_REFRESH) && !run.stderr.contains(NEW_REFRESH));
    // `Not Authorized` is not retried.
    assert_eq!(peer.bodies(UPSERT).len(), 1, "{run:?}");
}

#[test]
fn graphql_errors_with_output_env_still_print_the_four_lines() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error("Not Authorized")));
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--output-env"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    let tokens = stored_tokens(&env);
    let expected = format!(
        "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
        tokens["expires_at"].as_str().unwrap(),
        tokens["last_refreshed"].as_str().unwrap()
    );
    assert_eq!(run.stdout, expected, "{run:?}");
    assert!(run.stderr.contains("RAILWAY_UPDATE_FAILED"), "{run:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

/// Issue 9, item 4: Railway down during a refresh (exit 6) is not left
/// behind for hours: the next `refresh --if-needed` finds nothing due, and
/// still pushes the stored set, without rotating; `status` shows it behind
/// meanwhile; once Railway has it, nothing more is pushed.
#[test]
fn a_railway_copy_left_stale_is_pushed_by_the_next_if_needed_without_rotating() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(ResponseTemplate::new(503)).up_to_n_times(1));
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let failed = env.run_with(&["refresh", "--quiet", "--retries", "0"], &NO_RETRY_DELAY);
    assert_eq!(failed.code, 6, "{failed:?}");
    assert_eq!(failed.stdout, "", "--quiet: no table");
    assert!(
        failed.stderr.contains("[RAILWAY_UPDATE_FAILED]"),
        "never hidden: {failed:?}"
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let status = env.run(&["status", "--json"]).json();
    assert_eq!(
        status["copies"][0]["copy"],
        format!("railway:{PROJECT}/{SERVICE}@{ENVIRONMENT}")
    );
    assert_eq!(status["copies"][0]["behind"], true, "{status}");

    let healed = env.run_with(&["refresh", "--if-needed", "--json"], &NO_RETRY_DELAY);
    assert_eq!(healed.code, 0, "{healed:?}");
    let report = healed.json();
    assert_eq!(report["outcome"], "not_due");
    assert_eq!(report["railway"], "updated");
    let message = report["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("; brought Railway up to date without rotating"),
        "{message}"
    );
    assert_eq!(peer.token_requests(), 1, "one rotation only");
    let upserts = peer.bodies(UPSERT);
    assert_eq!(upserts.len(), 2, "the failed push and the healing one");
    assert_eq!(
        upserts[1]["variables"]["input"]["variables"]["WITHINGS_REFRESH_TOKEN"],
        NEW_REFRESH
    );
    assert_eq!(env.run(&["status", "--json"]).json()["copies"][0]["behind"], false);

    let again = env.run_with(&["refresh", "--if-needed", "--json"], &NO_RETRY_DELAY);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["railway"], "skipped", "already up to date");
    assert_eq!(peer.bodies(UPSERT).len(), 2, "nothing more pushed");
}

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

// ---------------------------------------------------------------------------
// Retries: Cloudflare HTML and 429
// ---------------------------------------------------------------------------

const CLOUDFLARE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Access denied | backboard.railway.com used Cloudflare to restrict access</title></head><body><h1>Error 1020</h1><p>Access denied</p></body></html>";

#[test]
fn cloudflare_html_403_is_retried_then_succeeds() {
    let peer = Peer::start();
    peer.mount(
        gql(UPSERT)
            .respond_with(ResponseTemplate::new(403).set_body_raw(CLOUDFLARE_PAGE, "text/html; charset=UTF-8"))
            .up_to_n_times(2)
            .with_priority(1),
    );
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "updated");
    assert_eq!(peer.bodies(UPSERT).len(), 3, "two HTML pages, then the answer");
    assert!(run.stderr.contains("HTML"), "the retry says why: {run:?}");
    assert!(
        !run.stderr.contains("Error 1020"),
        "the page itself is not dumped: {run:?}"
    );
}

#[test]
fn cloudflare_html_every_time_ends_in_exit_6() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(ResponseTemplate::new(403).set_body_raw(CLOUDFLARE_PAGE, "text/html")));
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--retries", "2"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(peer.bodies(UPSERT).len(), 3, "1 + --retries 2");
    assert!(run.stderr.contains("RAILWAY_UPDATE_FAILED"), "{run:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

#[test]
fn rate_limit_429_honours_retry_after_then_succeeds() {
    let peer = Peer::start();
    // First 429 asks for 1 s, the second for 0 s; then the answer.
    peer.mount(
        gql(UPSERT)
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .insert_header("X-RateLimit-Remaining", "0"),
            )
            .up_to_n_times(1)
            .with_priority(1),
    );
    peer.mount(
        gql(UPSERT)
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
            .up_to_n_times(1)
            .with_priority(2),
    );
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let started = Instant::now();
    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "updated");
    assert_eq!(peer.bodies(UPSERT).len(), 3, "{run:?}");
    assert!(
        elapsed >= Duration::from_millis(950),
        "Retry-After: 1 was honoured although --retry-delay is 0s ({elapsed:?})"
    );
}

#[test]
fn rate_limit_with_a_long_retry_after_stops_at_once_with_exit_6() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600")));
    let env = given_expired_store_and_railway(&peer);

    let started = Instant::now();
    let run = env.run_with(&["refresh"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "no hour-long sleep");
    assert_eq!(peer.bodies(UPSERT).len(), 1);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

// ---------------------------------------------------------------------------
// --no-railway
// ---------------------------------------------------------------------------

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
// railway-sync --dry-run
// ---------------------------------------------------------------------------

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
    let expected: Vec<(String, String)> = withings_token::tokens::TOKEN_KEYS
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

// ---------------------------------------------------------------------------
// railway-sync preconditions
// ---------------------------------------------------------------------------

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

/// Issue 9, item 17: a half-configured Railway (a typo such as
/// `RAILWAY_SERVICE` for `RAILWAY_SERVICE_ID`) must not let a refresh rotate
/// the token and leave Railway behind with a warning `-q` hides.
#[test]
fn refresh_with_half_configured_railway_is_exit_3_before_anything_is_sent() {
    let peer = Peer::start();
    let mut env = given_expired_store(&peer.withings_url());
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_SERVICE", SERVICE);
    let before = env.store_bytes();

    let run = env.run_with(&["refresh", "--json", "--quiet"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    let error = &run.json()["error"];
    assert_eq!(error["code"], "CONFIGURATION_ERROR");
    assert_eq!(
        error["message"],
        "Railway is only partly configured: missing RAILWAY_PROJECT_ID, RAILWAY_SERVICE_ID; nothing was sent"
    );
    assert!(
        error["action"].as_str().unwrap_or_default().contains("`--no-railway`"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("[CONFIGURATION_ERROR]"),
        "-q never hides it: {run:?}"
    );
    assert_eq!(env.store_bytes(), before, "nothing was rotated");
    assert_eq!(peer.token_requests(), 0, "nothing was sent to Withings");
    assert!(peer.graphql_requests().is_empty());

    // `--no-railway` is the documented way past it: the refresh goes ahead.
    let run = env.run_with(&["refresh", "--json", "--no-railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "skipped");
}

#[test]
fn trigger_deployment_without_railway_is_exit_3_before_anything_is_sent() {
    let peer = Peer::start();
    let env = given_expired_store(&peer.withings_url());
    let before = env.store_bytes();

    let run = env.run_with(&["refresh", "--trigger-deployment"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("error: --trigger-deployment needs Railway, which is not configured [CONFIGURATION_ERROR]"),
        "{run:?}"
    );
    assert_eq!(env.store_bytes(), before);
    assert_eq!(peer.token_requests(), 0);
}

// ---------------------------------------------------------------------------
// The built-in sandbox
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Drift (`railway-sync --check`) and recovery (`pull --from railway`)
// ---------------------------------------------------------------------------

/// Railway's `variables` answer holding `pairs` (and one unrelated variable).
fn railway_holds(peer: &Peer, pairs: &[(&str, Value)]) {
    let mut variables = json!({ "OTHER_VARIABLE": "unrelated" });
    for (name, value) in pairs {
        variables[*name] = value.clone();
    }
    peer.mount(gql(VARIABLES).respond_with(data(json!({ VARIABLES: variables }))));
    peer.railway_ok();
}

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

fn assert_no_mutation(peer: &Peer) {
    for op in peer.operations() {
        assert!(
            op != UPSERT && op != REDEPLOY,
            "a mutation was sent: {:?}",
            peer.operations()
        );
    }
}

fn statuses(report: &Value) -> Vec<String> {
    report["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["status"].as_str().unwrap_or_default().to_owned())
        .collect()
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

// ---------------------------------------------------------------------------
// The same, with the set in a shared Redis store (issue 12)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Found by the adversarial trial of the release binary
// ---------------------------------------------------------------------------

#[test]
fn a_railway_error_quoting_the_withings_client_secret_never_shows_it() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error(
        "denied; WITHINGS_CLIENT_SECRET=TopSecretClientValue is not allowed",
    )));
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT)
        .set("WITHINGS_CLIENT_SECRET", "TopSecretClientValue");
    for args in [
        vec!["railway-sync"],
        vec!["railway-sync", "--json", "--log-format", "json"],
    ] {
        let run = env.run_with(&args, &NO_RETRY_DELAY);
        assert_eq!(run.code, 6, "{run:?}");
        assert!(
            run.stderr.contains("[redacted] is not allowed") || run.stdout.contains("[redacted] is not allowed"),
            "{run:?}"
        );
        assert!(
            !run.stdout.contains("TopSecretClientValue") && !run.stderr.contains("TopSecretClientValue"),
            "{run:?}"
        );
    }
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
