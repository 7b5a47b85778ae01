//! The HTTP layer under hostile or broken peers, end to end: the real binary
//! against wiremock playing Withings and Railway on loopback. A server that
//! echoes our secrets gets them scrubbed; one that answers without end is cut
//! off at a cap; a redeploy whose answer is lost is not sent twice.

use crate::support::*;

use std::time::Duration;

use wiremock::Request;

const RAILWAY_TOKEN: &str = "railway-project-token-222";

/// No pause between attempts and 2 s per request: the lost redeploy pins
/// "timed out after 2 s", and 5 MB answers need more than [`FAST`]'s 300 ms.
const PACE: [&str; 4] = ["--retry-delay", "0s", "--timeout", "2s"];

/// Railway fully configured against `peer`, with a project token.
fn with_railway(env: &mut TestEnv, peer: &Upstream) {
    env.set("RAILWAY_API_URL", format!("{}{GRAPHQL}", peer.uri()))
        .set("RAILWAY_TOKEN", RAILWAY_TOKEN)
        .set("RAILWAY_PROJECT_ID", "proj-hardening")
        .set("RAILWAY_SERVICE_ID", "svc-hardening")
        .set("RAILWAY_ENVIRONMENT_ID", "env-hardening");
}

fn requests_to(peer: &Upstream, route: &str) -> Vec<Request> {
    peer.requests().into_iter().filter(|r| r.url.path() == route).collect()
}

/// How many GraphQL requests named `name` arrived.
fn graphql_count(peer: &Upstream, name: &str) -> usize {
    requests_to(peer, GRAPHQL)
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&format!("{name}(")))
        .count()
}

/// `--json`: the error object, the last document on stdout.
fn json_error(run: &Run) -> Value {
    run.json_docs()
        .last()
        .and_then(|doc| doc.get("error"))
        .cloned()
        .unwrap_or_else(|| panic!("no error object on stdout: {run:?}"))
}

/// Table mode: the message of the `error: MESSAGE [CODE]` line on stderr.
fn stderr_error(run: &Run, code: &str) -> String {
    let suffix = format!(" [{code}]");
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: ")?.strip_suffix(suffix.as_str()))
        .unwrap_or_else(|| panic!("no `error: ... [{code}]` line: {run:?}"))
        .to_owned()
}

fn assert_no_leak(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(!run.stdout.contains(secret), "stdout leaks {secret}: {run:?}");
        assert!(!run.stderr.contains(secret), "stderr leaks {secret}: {run:?}");
    }
}

// ---------------------------------------------------------------------------
// Withings' error texts are scrubbed of what was sent

#[test]
fn a_withings_error_text_quoting_the_refresh_token_and_client_secret_never_reaches_the_output() {
    let echo = format!("Unauthorized: refresh token {OLD_REFRESH} refused for app secret {CLIENT_SECRET}");
    for mode in ["table", "json"] {
        let withings = withings_answering(
            ResponseTemplate::new(200).set_body_json(json!({ "status": 401, "body": {}, "error": echo })),
        )
        .times(1);
        let env = given_expired_store(&withings.uri());
        let before = env.store_bytes();

        let mut args = vec!["refresh", "-vvv", "--retries", "2"];
        if mode == "json" {
            args.push("--json");
        }
        let out = env.run_with(&args, &PACE);

        // Status 401 is a refused grant: exit 4, not retried.
        assert_eq!(out.code, 4, "{mode}: {out:?}");
        let message = if mode == "json" {
            let error = json_error(&out);
            assert_eq!(error["code"], "INVALID_REFRESH_TOKEN", "{out:?}");
            error["message"].as_str().unwrap_or_default().to_owned()
        } else {
            stderr_error(&out, "INVALID_REFRESH_TOKEN")
        };
        assert_eq!(
            message,
            "Withings refused the refresh token: status 401: Unauthorized: refresh token [redacted] refused for app secret [redacted]"
        );
        assert_no_leak(&out, &[OLD_REFRESH, CLIENT_SECRET, CLIENT_ID]);
        assert_eq!(env.store_bytes(), before, "a refusal leaves the store untouched");
        assert_eq!(
            requests_to(&withings, "/v2/oauth2").len(),
            1,
            "a refusal is not retried"
        );
    }
}

/// Issue 18, item 16: Withings' status 2555 ("an unknown error occurred")
/// is its own trouble, not a verdict on the grant: retried, then exit 5
/// with the stored token kept, never "re-authorise".
#[test]
fn withings_status_2555_is_a_retried_upstream_error_not_a_refused_grant() {
    let echo = format!("An unknown error occurred for {OLD_REFRESH}");
    let withings = withings_answering(
        ResponseTemplate::new(200).set_body_json(json!({ "status": 2555, "body": {}, "error": echo })),
    )
    .times(3);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_with(&["refresh", "--json", "--retries", "2"], &PACE);

    assert_eq!(out.code, 5, "{out:?}");
    let error = json_error(&out);
    assert_eq!(error["code"], "UPSTREAM_ERROR", "{out:?}");
    assert_eq!(
        error["message"],
        "Withings gave no usable answer after 3 attempt(s): Withings status 2555 (An unknown error occurred for [redacted])"
    );
    assert!(
        !error["action"].as_str().unwrap_or_default().contains("re-authorise"),
        "{out:?}"
    );
    assert_no_leak(&out, &[OLD_REFRESH, CLIENT_SECRET]);
    assert_eq!(env.store_bytes(), before);
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 3);
}

// ---------------------------------------------------------------------------
// Answers are read up to a cap

/// 5 MB of JSON-looking bytes: far over either cap, quick to serve.
fn huge_answer() -> ResponseTemplate {
    let mut body = b"{\"status\":0,\"pad\":\"".to_vec();
    body.resize(5 * 1024 * 1024, b'x');
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// Issue 18, item 7: past the 1 MiB cap the answer is not read, and the
/// same refresh token is not sent again in this run (the answer may have
/// rotated it).
#[test]
fn an_oversized_withings_answer_is_not_retried_with_the_same_token() {
    let withings = withings_answering(huge_answer()).times(1);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_with(&["refresh", "--json", "--retries", "2"], &PACE);

    assert_eq!(out.code, 5, "{out:?}");
    let error = json_error(&out);
    assert_eq!(error["code"], "UPSTREAM_ERROR");
    assert_eq!(
        error["message"],
        "Withings gave no usable answer after 1 attempt(s): HTTP 200 with an answer larger than 1 MiB; not sent again with the same token in this run (the answer may have carried a new set, and the token sent stays valid for a few hours because that set was never used)"
    );
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 1);
    assert_eq!(env.store_bytes(), before);
}

/// Issue 18, item 7: a valid token answer padded past the old 64 KiB cap
/// (a proxy's trailer, a long scope) is read and saved, not thrown away.
#[test]
fn a_valid_token_answer_of_a_few_hundred_kib_is_saved() {
    let mut body = token_body(NEW_ACCESS, NEW_REFRESH, 10800);
    body["body"]["padding"] = json!("x".repeat(300 * 1024));
    let withings =
        withings_answering(ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json")).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_with(&["refresh", "--json", "--no-railway"], &PACE);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "refreshed");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 1);
}

#[test]
fn an_oversized_railway_answer_fails_the_push_naming_the_cap() {
    let peer = Upstream::start();
    peer.mount(gql("variableCollectionUpsert").respond_with(huge_answer()));
    let mut env = given_expired_store(&peer.uri());
    with_railway(&mut env, &peer);

    let out = env.run_with(&["railway-sync", "--retries", "1"], &PACE);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(
        stderr_error(&out, "RAILWAY_UPDATE_FAILED"),
        "Railway was not updated: Railway gave no usable answer after 2 attempt(s): HTTP 200 with an answer larger than 1 MiB"
    );
    assert_eq!(graphql_count(&peer, "variableCollectionUpsert"), 2);
}

// ---------------------------------------------------------------------------
// A non-idempotent request is not repeated blindly

#[test]
fn a_redeploy_whose_answer_is_lost_is_not_sent_again() {
    let peer = Upstream::start();
    peer.mount(gql("variableCollectionUpsert").respond_with(
        ResponseTemplate::new(200).set_body_json(json!({ "data": { "variableCollectionUpsert": true } })),
    ));
    peer.mount(
        gql("serviceInstanceRedeploy").respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": { "serviceInstanceRedeploy": true } }))
                .set_delay(Duration::from_secs(4)),
        ),
    );
    let mut env = given_expired_store(&peer.uri());
    with_railway(&mut env, &peer);

    let out = env.run_with(&["railway-sync", "--trigger-deployment", "--retries", "3"], &PACE);

    assert_eq!(out.code, 6, "{out:?}");
    let message = stderr_error(&out, "RAILWAY_UPDATE_FAILED");
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
    assert_eq!(graphql_count(&peer, "variableCollectionUpsert"), 1);
    assert_eq!(graphql_count(&peer, "serviceInstanceRedeploy"), 1, "never sent twice");
    assert_no_leak(&out, &[RAILWAY_TOKEN, OLD_REFRESH, OLD_ACCESS]);
}

/// Issue 18, the adversarial trial: an `expires_in` of years was believed
/// (up to a year), so nothing refreshed and the refresh token, unused for a
/// year, would die. Beyond a day the documented 3 h is assumed, and said.
#[test]
fn an_expires_in_of_years_is_not_believed() {
    let withings = withings_answering(ResponseTemplate::new(200).set_body_json(token_body(
        NEW_ACCESS,
        NEW_REFRESH,
        1_000_000_000,
    )))
    .times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_with(&["refresh", "--no-railway"], &PACE);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(
            "Withings gave no usable token lifetime (expires_in is more than a day, far beyond the documented 3 h); assumed the documented 3 h"
        ),
        "{out:?}"
    );
    let store = env.store_json();
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(store["tokens"][key].as_str().expect("time")).expect("rfc3339")
    };
    assert_eq!(at("expires_at") - at("last_refreshed"), chrono::Duration::hours(3));
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}
