//! A fake Railway: the GraphQL endpoint on a wiremock server, either
//! beside a fake Withings ([`Peer`], one server playing both) or given to
//! [`with_railway`] by URL.

use super::*;

use wiremock::Request;
use wiremock::matchers::{body_string_contains, method, path};

/// Railway's GraphQL endpoint, as a path on a fake's base URL.
pub const GRAPHQL: &str = "/graphql/v2";

/// A GraphQL POST for one operation (matched on the query text).
pub fn gql(op: &str) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains(format!("{op}(")))
}

pub const RAILWAY_TOKEN: &str = "railway-project-token-333";

/// Railway fully configured against `railway_url` (the GraphQL endpoint),
/// with a project token and an environment id, so that no environment is
/// looked up.
pub fn with_railway(env: &mut TestEnv, railway_url: &str) {
    env.set("RAILWAY_API_URL", railway_url)
        .set("RAILWAY_TOKEN", RAILWAY_TOKEN)
        .set("RAILWAY_PROJECT_ID", "proj-0000")
        .set("RAILWAY_SERVICE_ID", "svc-0000")
        .set("RAILWAY_ENVIRONMENT_ID", "env-0000");
}

pub const PROJECT: &str = "proj-1111";

pub const SERVICE: &str = "svc-2222";

pub const ENVIRONMENT: &str = "env-3333";

pub const PROJECT_TOKEN: &str = "project-token-secret-ppp";

pub const ACCOUNT_TOKEN: &str = "account-token-secret-qqq";

pub const UPSERT: &str = "variableCollectionUpsert";

pub const REDEPLOY: &str = "serviceInstanceRedeploy";

pub const ENVIRONMENTS: &str = "environments";

pub const VARIABLES: &str = "variables";

/// One wiremock server playing both Withings (POST /v2/oauth2) and Railway
/// (POST /graphql/v2).
pub struct Peer(Upstream);

impl Peer {
    /// Withings answers every refresh with [`NEW_ACCESS`] / [`NEW_REFRESH`].
    pub fn start() -> Peer {
        let upstream = Upstream::start();
        upstream.mount(token_request().respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH)));
        Peer(upstream)
    }

    pub fn mount(&self, mock: Mock) {
        self.0.mount(mock);
    }

    pub fn withings_url(&self) -> String {
        self.0.uri()
    }

    pub fn graphql_url(&self) -> String {
        format!("{}{GRAPHQL}", self.0.uri())
    }

    pub fn graphql_requests(&self) -> Vec<Request> {
        self.0
            .requests()
            .into_iter()
            .filter(|r| r.url.path() == GRAPHQL)
            .collect()
    }

    /// How many requests reached Withings' token endpoint.
    pub fn token_requests(&self) -> usize {
        self.0
            .requests()
            .iter()
            .filter(|r| r.url.path() == "/v2/oauth2")
            .count()
    }

    /// The GraphQL operation names received, in order.
    pub fn operations(&self) -> Vec<String> {
        self.graphql_requests().iter().map(|r| operation(&body(r))).collect()
    }

    /// The bodies of the requests for one operation.
    pub fn bodies(&self, op: &str) -> Vec<Value> {
        self.graphql_requests()
            .iter()
            .map(body)
            .filter(|b| operation(b) == op)
            .collect()
    }

    /// Mounts the success answers of every operation this tool uses (upsert,
    /// redeploy, environments production/staging, empty variables).
    pub fn railway_ok(&self) {
        self.mount(gql(UPSERT).respond_with(data(json!({ UPSERT: true }))));
        self.mount(gql(REDEPLOY).respond_with(data(json!({ REDEPLOY: true }))));
        self.mount(gql(ENVIRONMENTS).respond_with(environments()));
        self.mount(gql(VARIABLES).respond_with(data(json!({ VARIABLES: {} }))));
    }
}

pub fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("GraphQL request body is JSON")
}

/// `mutation variableCollectionUpsert($input: ...)` → `variableCollectionUpsert`.
pub fn operation(body: &Value) -> String {
    let query = body["query"].as_str().expect("query is a string");
    let word = query.split_whitespace().nth(1).unwrap_or_default();
    word.split('(').next().unwrap_or_default().to_owned()
}

pub fn data(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": value }))
}

pub fn graphql_error(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": null, "errors": [{ "message": message }] }))
}

pub fn environments() -> ResponseTemplate {
    data(json!({ "environments": { "edges": [
        { "node": { "id": "env-prod-id", "name": "production" } },
        { "node": { "id": "env-staging-id", "name": "staging" } },
    ] } }))
}

/// Railway fully configured on `peer`: a project token and an environment id.
pub fn configure_railway(env: &mut TestEnv, peer: &Peer) {
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE)
        .set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT);
}

/// A user whose stored set expired a minute ago, with Withings and a fully
/// configured Railway both on `peer`: `refresh` rotates, then pushes.
pub fn given_expired_store_and_railway(peer: &Peer) -> TestEnv {
    let mut env = given_expired_store(&peer.withings_url());
    configure_railway(&mut env, peer);
    env
}

/// A user whose store holds a set with 3 h left, and a Railway service on
/// `peer` (project token, no environment id, so it is looked up by name):
/// what `railway-sync` needs, and no Withings.
pub fn given_fresh_store_and_railway_service(peer: &Peer) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE);
    env.seed_store("stored-access-abc", "stored-refresh-xyz", 3 * 3600);
    env
}

pub fn stored_tokens(env: &TestEnv) -> Value {
    env.store_json()["tokens"].clone()
}

/// The `variables` object of the one upsert the peer received.
pub fn only_upsert(peer: &Peer) -> Value {
    let upserts = peer.bodies(UPSERT);
    assert_eq!(upserts.len(), 1, "exactly one upsert: {upserts:#?}");
    upserts[0]["variables"].clone()
}

/// Railway's `variables` answer holding `pairs` (and one unrelated variable).
pub fn railway_holds(peer: &Peer, pairs: &[(&str, Value)]) {
    let mut variables = json!({ "OTHER_VARIABLE": "unrelated" });
    for (name, value) in pairs {
        variables[*name] = value.clone();
    }
    peer.mount(gql(VARIABLES).respond_with(data(json!({ VARIABLES: variables }))));
    peer.railway_ok();
}

pub fn assert_no_mutation(peer: &Peer) {
    for op in peer.operations() {
        assert!(
            op != UPSERT && op != REDEPLOY,
            "a mutation was sent: {:?}",
            peer.operations()
        );
    }
}

pub fn statuses(report: &Value) -> Vec<String> {
    report["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}
