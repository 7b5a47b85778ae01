//! The proxy after Withings refused the token it sent (`{"status": 401}`
//! inside HTTP 200): the token is replaced by one refresh, however many
//! calls saw it refused; a read is sent once more, a write never is (its
//! answer carries the proxy's own object saying so).

use crate::support::*;

use std::time::Duration;

use wiremock::matchers::{body_string_contains, header, method, path};

const READING: &str = "{\"status\":0,\"body\":{\"updatetime\":1700000000,\"measuregrps\":[]}}";
const REFUSED: &str = "{\"status\":401,\"body\":{},\"error\":\"XRequestID: Not provided invalid_token: The access token provided is invalid\"}";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// `route` answering a call with `token` as the bearer, `n` times exactly.
fn answers(withings: &Upstream, route: &str, token: &str, body: &str, n: u64) {
    withings.mount(
        Mock::given(method("POST"))
            .and(path(route))
            .and(header("authorization", bearer(token).as_str()))
            .respond_with(json(body))
            .expect(n),
    );
}

/// A served user whose set was issued an hour ago (2 h left): old enough
/// to be replaced when Withings refuses its token.
fn given_set_issued_an_hour_ago(withings_url: &str) -> TestEnv {
    let mut env = given_store_expiring_in(2 * 3600);
    env.withings(withings_url).serve_credentials();
    env
}

fn proxied(server: &ServeProcess, route: &str, form: &str) -> Answer {
    server.post(
        &format!("/v1/withings/{route}"),
        &[
            ("Authorization", &bearer(READER_TOKEN)),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(form),
    )
}

#[test]
fn a_read_refused_for_its_token_is_sent_again_once_with_the_token_of_one_refresh() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    answers(&withings, "/measure", OLD_ACCESS, REFUSED, 1);
    answers(&withings, "/measure", NEW_ACCESS, READING, 1);
    let env = given_set_issued_an_hour_ago(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = proxied(&server, "measure", "action=getmeas&meastype=1");
    assert_eq!((answer.status, answer.body.as_str()), (200, READING));
    withings.verify();
    let sent: Vec<String> = requests_to(&withings, "/measure")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(sent, ["action=getmeas&meastype=1"; 2], "the same call both times");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    // Usage says the read was sent again, and ended well.
    let usage = server.get("/admin/usage", &[("X-Admin-Token", ADMIN_TOKEN)]).body;
    let usage: serde_json::Value = serde_json::from_str(&usage).expect("usage JSON");
    let hour = &usage["usage"][0]["last_hour"];
    assert_eq!(
        (hour["calls"].as_u64(), hour["retried"].as_u64()),
        (Some(1), Some(1)),
        "{usage}"
    );
    assert_eq!(hour["outcomes"], serde_json::json!({"ok": 1}));
    assert_eq!(hour["upstream"]["calls"], 1, "one call, sent twice: {usage}");
    let metrics = server.get("/metrics", &[]).body;
    let line = "withings_token_proxy_requests_total{reader=\"(reader)\",action=\"getmeas\",outcome=\"ok\"} 1";
    assert!(metrics.lines().any(|l| l == line), "{line} not in\n{metrics}");
    assert!(server.log().contains("retried=true"), "{}", server.log());
    for text in [
        server.log(),
        metrics,
        usage.to_string(),
        format!("{:?}", answer.headers),
    ] {
        assert_no_secret_in(&text);
    }
}

#[test]
fn a_read_refused_again_after_the_refresh_is_passed_on_as_withings_said() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    answers(&withings, "/measure", OLD_ACCESS, REFUSED, 1);
    answers(&withings, "/measure", NEW_ACCESS, REFUSED, 1);
    let env = given_set_issued_an_hour_ago(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = proxied(&server, "measure", "action=getmeas");
    assert_eq!((answer.status, answer.body.as_str()), (200, REFUSED));
    withings.verify();
}

#[test]
fn a_write_refused_for_its_token_is_not_sent_again_and_says_so() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    answers(&withings, "/notify", OLD_ACCESS, REFUSED, 1);
    answers(&withings, "/notify", NEW_ACCESS, "{\"status\":0,\"body\":{}}", 1);
    let env = given_set_issued_an_hour_ago(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let form = "action=subscribe&callbackurl=https%3A%2F%2Fexample.org%2Fhook&appli=1";
    let answer = proxied(&server, "notify", form);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.body,
        concat!(
            "{\"status\":401,\"body\":{},\"error\":\"XRequestID: Not provided invalid_token: The access token provided is invalid\",",
            "\"proxy\":{\"code\":\"WRITE_NOT_RETRIED\",",
            "\"message\":\"Withings refused the access token sent with `subscribe` (status 401); a call that changes state at Withings is never sent twice by the proxy; the account's token was refreshed\",",
            "\"action\":\"send the call again if it should still be made: the next one carries the new token\"}}"
        )
    );
    assert_eq!(requests_to(&withings, "/notify").len(), 1, "never sent twice");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the token was replaced");
    // The consumer's own second try carries the new token.
    let again = proxied(&server, "notify", form);
    assert_eq!((again.status, again.body.as_str()), (200, "{\"status\":0,\"body\":{}}"));
    withings.verify();
    for text in [server.log(), answer.body, format!("{:?}", answer.headers)] {
        assert_no_secret_in(&text);
    }
}

#[test]
fn a_write_whose_token_cannot_be_replaced_says_why_and_what_to_do() {
    let withings = withings_answering(refused_refresh()).times(1);
    answers(&withings, "/notify", OLD_ACCESS, REFUSED, 1);
    let env = given_set_issued_an_hour_ago(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = proxied(
        &server,
        "notify",
        "action=revoke&callbackurl=https%3A%2F%2Fexample.org%2Fhook",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let object: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(object["status"], 401);
    assert_eq!(object["proxy"]["code"], "WRITE_NOT_RETRIED");
    let message = object["proxy"]["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with(
            "the token could not be refreshed: Withings refused the refresh token: status 503: Invalid Params: invalid refresh_token [INVALID_REFRESH_TOKEN]"
        ),
        "{message}"
    );
    assert!(
        object["proxy"]["action"]
            .as_str()
            .unwrap_or_default()
            .contains("auth-url"),
        "{object}"
    );
    withings.verify();
}

#[test]
fn forty_reads_refused_for_one_token_share_one_refresh_and_all_get_their_answer() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(300));
    let withings = withings_answering(slow).times(1);
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .and(header("authorization", bearer(OLD_ACCESS).as_str()))
            .respond_with(json(REFUSED)),
    );
    answers(&withings, "/measure", NEW_ACCESS, READING, 40);
    let env = given_set_issued_an_hour_ago(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let answers = concurrently(40, || proxied(&server, "measure", "action=getmeas"));
    for answer in &answers {
        assert_eq!((answer.status, answer.body.as_str()), (200, READING), "{answer:?}");
    }
    withings.verify();
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 1, "one refresh for all");
    let refused = requests_to(&withings, "/measure").len() - 40;
    assert!((1..=40).contains(&refused), "{refused} calls sent with the old token");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

#[test]
fn a_read_refused_for_a_token_a_peer_already_replaced_takes_the_peer_s_token() {
    // A peer (a CLI run, another host) saves a new set while the refused
    // call is on its way back: here the fake Withings saves it itself
    // before it answers the refusal, so the order is certain. No rotation
    // follows; the peer's token is used.
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let env = given_set_issued_an_hour_ago(&withings.uri());
    let store = env.store_path();
    let peer = PeerSavesThenRefuses { store };
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .and(header("authorization", bearer(OLD_ACCESS).as_str()))
            .and(body_string_contains("action=getmeas"))
            .respond_with(peer)
            .expect(1),
    );
    answers(&withings, "/measure", "peer-access", READING, 1);
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = proxied(&server, "measure", "action=getmeas");
    assert_eq!((answer.status, answer.body.as_str()), (200, READING));
    withings.verify();
    assert_eq!(env.stored_refresh_token(), "peer-refresh");
}

/// Saves a peer's new set in the store, then answers Withings' refusal.
struct PeerSavesThenRefuses {
    store: std::path::PathBuf,
}

impl wiremock::Respond for PeerSavesThenRefuses {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let now = chrono::Utc::now();
        let saved = serde_json::json!({
            "version": 1,
            "generation": 2,
            "tokens": {
                "access_token": "peer-access",
                "refresh_token": "peer-refresh",
                "expires_at": rfc3339(now + chrono::Duration::hours(3)),
                "last_refreshed": rfc3339(now),
            },
        });
        std::fs::write(&self.store, serde_json::to_vec(&saved).expect("json")).expect("the peer's save");
        json(REFUSED)
    }
}

#[test]
fn a_token_issued_a_moment_ago_is_not_replaced_and_its_refusal_is_passed_on() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    answers(&withings, "/measure", OLD_ACCESS, REFUSED, 1);
    answers(&withings, "/notify", OLD_ACCESS, REFUSED, 1);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let read = proxied(&server, "measure", "action=getmeas");
    assert_eq!(
        (read.status, read.body.as_str()),
        (200, REFUSED),
        "sent once, passed on"
    );
    let write = proxied(&server, "notify", "action=subscribe&appli=1");
    let object: serde_json::Value = serde_json::from_str(&write.body).expect("JSON");
    assert_eq!(
        object["proxy"]["message"],
        "Withings refused the access token sent with `subscribe` (status 401); a call that changes state at Withings is never sent twice by the proxy; the account's token was kept: it was issued less than 60 s ago, so the refusal is not about its age"
    );
    withings.verify();
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH, "no rotation");
}

#[test]
fn a_seed_from_the_environment_whose_token_is_refused_is_replaced_once() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    answers(&withings, "/measure", OLD_ACCESS, REFUSED, 1);
    answers(&withings, "/measure", NEW_ACCESS, READING, 1);
    let mut env = TestEnv::new();
    let issued = chrono::Utc::now() - chrono::Duration::hours(1);
    env.set("WITHINGS_ACCESS_TOKEN", OLD_ACCESS)
        .set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH)
        .set(
            "WITHINGS_TOKEN_EXPIRES_AT",
            rfc3339(issued + chrono::Duration::hours(3)),
        )
        .set("WITHINGS_TOKEN_LAST_REFRESHED", rfc3339(issued));
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = proxied(&server, "measure", "action=getmeas");
    assert_eq!((answer.status, answer.body.as_str()), (200, READING));
    withings.verify();
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the new set is in the store");
}
