//! `validate`: the access token is used once with Withings' `getdevice`;
//! valid exits 0, invalid 4, unknown 5.

use crate::support::*;

use wiremock::matchers::{body_string_contains, header, method, path};

/// `getdevice` on Withings' user endpoint, sent with `access_token`.
fn getdevice_with(access_token: &str) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v2/user"))
        .and(body_string_contains("action=getdevice"))
        .and(header("authorization", format!("Bearer {access_token}").as_str()))
}

fn devices() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": 0, "body": {"devices": []}}))
}

/// Withings' answer to a dead access token; it quotes the token back.
fn refused_access(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": 401,
        "body": {},
        "error": format!("XRequestID: Not provided invalid_token: The access token provided is invalid ({token})"),
    }))
}

/// A fresh store (3 h left) whose access token is [`OLD_ACCESS`].
fn given_fresh_user(withings: &Upstream) -> TestEnv {
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    env
}

#[test]
fn validate_says_valid_and_exits_0_when_withings_takes_the_access_token() {
    let withings = Upstream::start();
    withings.mount(getdevice_with(OLD_ACCESS).respond_with(devices()).expect(2));
    let env = given_fresh_user(&withings);
    let out = env.run_fast(&["validate", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["version"], 1);
    assert_eq!(report["validation"], "valid");
    assert_eq!(report["refreshed"], false);
    assert!(report.get("error").is_none(), "{report}");
    assert!(!out.stdout.contains(OLD_ACCESS), "{out:?}");
    let table = env.run_fast(&["validate"]);
    assert!(table.stdout.contains("valid"), "{table:?}");
}

#[test]
fn validate_says_invalid_and_exits_4_when_withings_refuses_the_access_token() {
    let withings = Upstream::start();
    withings.mount(
        getdevice_with(OLD_ACCESS)
            .respond_with(refused_access(OLD_ACCESS))
            .expect(1),
    );
    let env = given_fresh_user(&withings);
    let store_before = env.store_bytes();
    let out = env.run_fast(&["validate", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    let report = out.json();
    assert_eq!(report["validation"], "invalid");
    assert_eq!(report["error"]["code"], "INVALID_ACCESS_TOKEN");
    assert!(
        report["error"]["action"]
            .as_str()
            .unwrap()
            .contains("`withings-token refresh`")
    );
    assert!(out.stderr.contains("[INVALID_ACCESS_TOKEN]"), "{out:?}");
    // Withings quoted the token back: it is scrubbed from every text.
    assert!(
        !out.stdout.contains(OLD_ACCESS) && !out.stderr.contains(OLD_ACCESS),
        "{out:?}"
    );
    assert_eq!(
        env.store_bytes(),
        store_before,
        "validate alone never changes the store"
    );
}

#[test]
fn validate_says_unknown_and_exits_5_when_no_answer_can_tell() {
    let withings = Upstream::start();
    withings.mount(
        getdevice_with(OLD_ACCESS)
            .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
            .expect(4),
    );
    let env = given_fresh_user(&withings);
    let out = env.run_fast(&["validate", "--json"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.json()["validation"], "unknown");
    assert_eq!(out.json()["error"]["code"], "UPSTREAM_ERROR");
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&closed_port_url());
    let out = env.run_fast(&["validate", "--json", "--retries", "0"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "NETWORK_ERROR");
}

#[test]
fn validate_refresh_if_invalid_refreshes_once_saves_and_validates_the_new_token() {
    let withings = withings_rotating(OLD_REFRESH);
    withings.mount(
        getdevice_with(OLD_ACCESS)
            .respond_with(refused_access(OLD_ACCESS))
            .expect(1),
    );
    withings.mount(getdevice_with(NEW_ACCESS).respond_with(devices()).expect(1));
    let env = given_fresh_user(&withings);
    let out = env.run_fast(&["validate", "--refresh-if-invalid", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["validation"], "valid");
    assert_eq!(report["refreshed"], true);
    assert_eq!(report["refresh"]["outcome"], "refreshed");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert!(!out.stdout.contains(NEW_ACCESS), "tokens stay masked: {out:?}");
    withings.verify();
}

#[test]
fn the_sandbox_accepts_only_its_current_access_token() {
    let (sandbox, env) = given_authorised_sandbox();
    let out = env.run_fast(&["validate", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["validation"], "valid");
    // A refresh issues a new access token; the old one is refused from then on.
    let old_store = env.store_bytes();
    assert_eq!(env.run_fast(&["refresh", "--no-railway"]).code, 0);
    let new_store = env.store_bytes();
    env.write_store_bytes(&old_store);
    let out = env.run_fast(&["validate", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    env.write_store_bytes(&new_store);
    assert_eq!(env.run_fast(&["validate"]).code, 0);
    assert_eq!(stat(&sandbox.stats(), "access_checks"), 3);
}

#[test]
fn the_validate_endpoint_answers_the_report_with_the_error_status() {
    let withings = Upstream::start();
    withings.mount(getdevice_with(OLD_ACCESS).respond_with(devices()).up_to_n_times(1));
    withings.mount(getdevice_with(OLD_ACCESS).respond_with(refused_access(OLD_ACCESS)));
    let mut env = given_fresh_user(&withings);
    env.serve_credentials();
    let server = env.serve(&[]);
    assert_eq!(server.get("/admin/token/validate", &[]).status, 401);
    let answer = server.admin_get("/admin/token/validate");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["validation"], "valid");
    let answer = server.admin_get("/admin/token/validate");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["validation"], "invalid");
    assert_eq!(answer.error_code(), "INVALID_ACCESS_TOKEN");
    assert!(!answer.body.contains(OLD_ACCESS), "{answer:?}");
}
