//! The HTTP layer under hostile or broken peers, end to end: the real binary
//! against wiremock playing Withings and Railway on loopback. A server that
//! echoes our secrets gets them scrubbed; one that answers without end is cut
//! off at a cap; a redeploy whose answer is lost is not sent twice.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CLIENT_SECRET: &str = "test-client-secret-value";
const OLD_ACCESS: &str = "old-access-hardening-000";
const OLD_REFRESH: &str = "old-refresh-hardening-111";
const RAILWAY_TOKEN: &str = "railway-project-token-222";
const GRAPHQL: &str = "/graphql/v2";

/// A wiremock server and the runtime keeping it alive (the server drops first).
struct Peer {
    server: MockServer,
    rt: tokio::runtime::Runtime,
}

impl Peer {
    fn start() -> Peer {
        let rt = runtime();
        let server = rt.block_on(MockServer::start());
        Peer { server, rt }
    }

    fn mount(&self, mock: Mock) {
        self.rt.block_on(mock.mount(&self.server));
    }

    /// Answers every token request with `template`.
    fn withings(&self, template: ResponseTemplate) {
        self.mount(
            Mock::given(method("POST"))
                .and(path("/v2/oauth2"))
                .respond_with(template),
        );
    }

    /// Answers the GraphQL operation `name` with `template`.
    fn railway(&self, name: &str, template: ResponseTemplate) {
        self.mount(
            Mock::given(method("POST"))
                .and(path(GRAPHQL))
                .and(body_string_contains(format!("{name}(")))
                .respond_with(template),
        );
    }

    fn requests_to(&self, route: &str) -> Vec<Request> {
        self.rt
            .block_on(self.server.received_requests())
            .expect("request recording is on")
            .into_iter()
            .filter(|r| r.url.path() == route)
            .collect()
    }

    /// How many GraphQL requests named `name` arrived.
    fn graphql_count(&self, name: &str) -> usize {
        self.requests_to(GRAPHQL)
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(&format!("{name}(")))
            .count()
    }
}

/// A user with a due store and Withings pointed at `peer`.
fn due_store(peer: &Peer) -> TestEnv {
    let mut env = TestEnv::new();
    env.withings(&peer.server.uri());
    env.seed_store(OLD_ACCESS, OLD_REFRESH, -60);
    env
}

/// Railway fully configured against `peer`, with a project token.
fn with_railway(env: &mut TestEnv, peer: &Peer) {
    env.set("RAILWAY_API_URL", format!("{}{GRAPHQL}", peer.server.uri()))
        .set("RAILWAY_TOKEN", RAILWAY_TOKEN)
        .set("RAILWAY_PROJECT_ID", "proj-hardening")
        .set("RAILWAY_SERVICE_ID", "svc-hardening")
        .set("RAILWAY_ENVIRONMENT_ID", "env-hardening");
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// `--json`: the error object, the last document on stdout.
    fn json_error(&self) -> Value {
        let docs: Vec<Value> = serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"));
        docs.last()
            .and_then(|doc| doc.get("error"))
            .cloned()
            .unwrap_or_else(|| panic!("no error object on stdout: {self:#?}"))
    }

    /// Table mode: the message of the `error: MESSAGE [CODE]` line on stderr.
    fn stderr_error(&self, code: &str) -> String {
        let suffix = format!(" [{code}]");
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: ")?.strip_suffix(suffix.as_str()))
            .unwrap_or_else(|| panic!("no `error: ... [{code}]` line: {self:#?}"))
            .to_owned()
    }

    fn assert_no_leak(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(!self.stdout.contains(secret), "stdout leaks {secret}: {self:#?}");
            assert!(!self.stderr.contains(secret), "stderr leaks {secret}: {self:#?}");
        }
    }
}

fn run(env: &TestEnv, args: &[&str]) -> Run {
    let output = env
        .cmd()
        .args(args)
        .args(["--retry-delay", "0s", "--timeout", "2s"])
        .output()
        .expect("run withings-token");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Withings' error texts are scrubbed of what was sent

#[test]
fn a_withings_error_text_quoting_the_refresh_token_and_client_secret_never_reaches_the_output() {
    let echo = format!("Unauthorized: refresh token {OLD_REFRESH} refused for app secret {CLIENT_SECRET}");
    for mode in ["table", "json"] {
        let peer = Peer::start();
        peer.withings(ResponseTemplate::new(200).set_body_json(json!({ "status": 2555, "body": {}, "error": echo })));
        let env = due_store(&peer);
        let before = env.store_bytes();

        let mut args = vec!["refresh", "-vvv", "--retries", "2"];
        if mode == "json" {
            args.push("--json");
        }
        let out = run(&env, &args);

        // Status 2555 is a refused grant, as before the scrubbing: exit 4.
        assert_eq!(out.code, 4, "{mode}: {out:#?}");
        let message = if mode == "json" {
            let error = out.json_error();
            assert_eq!(error["code"], "INVALID_REFRESH_TOKEN", "{out:#?}");
            error["message"].as_str().unwrap_or_default().to_owned()
        } else {
            out.stderr_error("INVALID_REFRESH_TOKEN")
        };
        assert_eq!(
            message,
            "Withings refused the refresh token: status 2555: Unauthorized: refresh token [redacted] refused for app secret [redacted]"
        );
        out.assert_no_leak(&[OLD_REFRESH, CLIENT_SECRET, "test-client-id"]);
        assert_eq!(env.store_bytes(), before, "a refusal leaves the store untouched");
        assert_eq!(peer.requests_to("/v2/oauth2").len(), 1, "a refusal is not retried");
    }
}

// ---------------------------------------------------------------------------
// Answers are read up to a cap

/// 5 MB of JSON-looking bytes: far over either cap, quick to serve.
fn huge_answer() -> ResponseTemplate {
    let mut body = b"{\"status\":0,\"pad\":\"".to_vec();
    body.resize(5 * 1024 * 1024, b'x');
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

#[test]
fn an_oversized_withings_answer_is_a_retried_upstream_error_naming_the_cap() {
    let peer = Peer::start();
    peer.withings(huge_answer());
    let env = due_store(&peer);
    let before = env.store_bytes();

    let out = run(&env, &["refresh", "--json", "--retries", "2"]);

    assert_eq!(out.code, 5, "{out:#?}");
    let error = out.json_error();
    assert_eq!(error["code"], "UPSTREAM_ERROR");
    assert_eq!(
        error["message"],
        "Withings gave no usable answer after 3 attempt(s): HTTP 200 with an answer larger than 64 KiB"
    );
    assert!(out.stderr.contains("Withings: attempt 1/3 failed"), "{}", out.stderr);
    assert_eq!(
        peer.requests_to("/v2/oauth2").len(),
        3,
        "retried like any unusable answer"
    );
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn an_oversized_railway_answer_fails_the_push_naming_the_cap() {
    let peer = Peer::start();
    peer.railway("variableCollectionUpsert", huge_answer());
    let mut env = due_store(&peer);
    with_railway(&mut env, &peer);

    let out = run(&env, &["railway-sync", "--retries", "1"]);

    assert_eq!(out.code, 6, "{out:#?}");
    assert_eq!(
        out.stderr_error("RAILWAY_UPDATE_FAILED"),
        "Railway was not updated: Railway gave no usable answer after 2 attempt(s): HTTP 200 with an answer larger than 1 MiB"
    );
    assert_eq!(peer.graphql_count("variableCollectionUpsert"), 2);
}

// ---------------------------------------------------------------------------
// A non-idempotent request is not repeated blindly

#[test]
fn a_redeploy_whose_answer_is_lost_is_not_sent_again() {
    let peer = Peer::start();
    peer.railway(
        "variableCollectionUpsert",
        ResponseTemplate::new(200).set_body_json(json!({ "data": { "variableCollectionUpsert": true } })),
    );
    peer.railway(
        "serviceInstanceRedeploy",
        ResponseTemplate::new(200)
            .set_body_json(json!({ "data": { "serviceInstanceRedeploy": true } }))
            .set_delay(Duration::from_secs(4)),
    );
    let mut env = due_store(&peer);
    with_railway(&mut env, &peer);

    let out = run(&env, &["railway-sync", "--trigger-deployment", "--retries", "3"]);

    assert_eq!(out.code, 6, "{out:#?}");
    let message = out.stderr_error("RAILWAY_UPDATE_FAILED");
    assert!(
        message.starts_with(
            "Railway was not updated: Railway gave no usable answer after 1 attempt(s): serviceInstanceRedeploy got no answer (timed out after 2 s"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("it may have been carried out, so it was not sent again: check Railway before repeating it"),
        "{message}"
    );
    assert_eq!(peer.graphql_count("variableCollectionUpsert"), 1);
    assert_eq!(peer.graphql_count("serviceInstanceRedeploy"), 1, "never sent twice");
    out.assert_no_leak(&[RAILWAY_TOKEN, OLD_REFRESH, OLD_ACCESS]);
}
