mod support;

use serde_json::Value;
use support::*;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[test]
fn refresh_against_wiremock_saves_the_rotated_set() {
    let rt = runtime();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/v2/oauth2"))
            .and(body_string_contains("refresh_token=old-refresh-abc"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body(
                "new-access-123",
                "new-refresh-xyz",
                10800,
            )))
            .expect(1)
            .mount(&server),
    );
    let mut env = TestEnv::new();
    env.withings(&server.uri());
    env.seed_store("old-access-000", "old-refresh-abc", -60);
    let out = env
        .cmd()
        .args(["refresh", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["refresh_token"], "token_*****xyz");
    assert_eq!(env.stored_refresh_token(), "new-refresh-xyz");
}

#[test]
fn sandbox_child_serves_a_full_consent() {
    let sandbox = SandboxProcess::start();
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    let out = env
        .cmd()
        .args(["auth-url", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    let redirect = sandbox.consent(report["authorization_url"].as_str().unwrap());
    env.cmd()
        .args(["exchange", &redirect, "--no-railway"])
        .assert()
        .success();
    assert_eq!(sandbox.stats()["tokens_issued"], 1);
}
