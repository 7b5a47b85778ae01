use super::*;

use crate::http::answer;

#[test]
fn errors_array_fails_even_on_http_200() {
    let v = classify(
        &answer(200, r#"{"data":null,"errors":[{"message":"Not Authorized"}]}"#),
        "upsert",
        &[],
    );
    let Verdict::Stop(e) = v else { panic!() };
    assert_eq!(e.exit_code(), 6);
    assert!(e.to_string().contains("Not Authorized"));
}

fn client(auth: RailwayAuth) -> RailwayClient {
    let http = HttpClient::new(crate::settings::HttpPolicy {
        timeout: std::time::Duration::from_secs(1),
        retries: 0,
        retry_delay: std::time::Duration::ZERO,
    })
    .unwrap();
    let (var, token) = match auth {
        RailwayAuth::Project(t) => ("RAILWAY_TOKEN", t),
        RailwayAuth::Account(t) => ("RAILWAY_API_TOKEN", t),
    };
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let global = crate::cli::overrides(&["--no-env-file"]);
    let lookup = |name: &str| match name {
        "HOME" => Some("/home/test".to_owned()),
        _ if name == var => Some(token.clone()),
        _ => None,
    };
    let settings = crate::settings::Settings::resolve(&global, None, &lookup).unwrap();
    RailwayClient::new(http, &settings.railway).unwrap()
}

fn graphql_error(message: &str) -> Answer {
    answer(
        200,
        &json!({ "data": null, "errors": [{ "message": message }] }).to_string(),
    )
}

#[test]
fn upstream_messages_never_echo_what_was_sent() {
    let railway = client(RailwayAuth::Account("account-token-value".into()));
    let variables = json!({ "input": { "variables": { "WITHINGS_REFRESH_TOKEN": "secret-refresh-value" } } });
    let sent = railway.sent_values(&variables);
    let message = "Invalid value \"secret-refresh-value\" for field; token account-token-value";
    let Verdict::Stop(e) = classify(&graphql_error(message), "upsert", &sent) else {
        panic!("not a stop")
    };
    assert_eq!(
        e.to_string(),
        "Railway was not updated: upsert failed: Invalid value \"[redacted]\" for field; token [redacted]"
    );
}

#[test]
fn a_sent_value_across_the_clip_is_scrubbed_whole() {
    // Clipping first would cut the value at character 200 and leave
    // its first half for the match to miss.
    let message = format!("{} secret-refresh-value", "x".repeat(190));
    let Verdict::Stop(e) = classify(&graphql_error(&message), "upsert", &["secret-refresh-value"]) else {
        panic!("not a stop")
    };
    assert!(!e.to_string().contains("secret-re"), "{e}");
}

#[test]
fn only_the_redeploy_is_never_sent_twice_blindly() {
    for operation in [ENVIRONMENTS, VARIABLES, UPSERT, REDEPLOY] {
        let blind_repeat_is_harmless = operation.name != "serviceInstanceRedeploy";
        assert_eq!(operation.idempotent, blind_repeat_is_harmless, "{}", operation.name);
    }
}

#[test]
fn each_operation_sends_the_query_it_is_named_after() {
    for operation in [ENVIRONMENTS, VARIABLES, UPSERT, REDEPLOY] {
        let word = operation.document.split_whitespace().nth(1).unwrap_or_default();
        assert!(word.starts_with(&format!("{}(", operation.name)), "{}", operation.name);
    }
}

#[test]
fn html_and_429_are_retried() {
    assert!(matches!(
        classify(&answer(403, "<html>Access denied</html>"), "x", &[]),
        Verdict::Retry { .. }
    ));
    assert!(matches!(
        classify(&answer(429, ""), "x", &[]),
        Verdict::Retry {
            kind: Transient::RateLimited,
            ..
        }
    ));
}

#[test]
fn json_without_data_or_errors_is_retried() {
    for body in [r#"{"status":522,"body":{}}"#, r#"{"data":null}"#, "{}"] {
        assert!(
            matches!(
                classify(&answer(200, body), "x", &[]),
                Verdict::Retry {
                    kind: Transient::Upstream,
                    ..
                }
            ),
            "{body}"
        );
    }
}

#[test]
fn a_mutation_is_done_only_when_railway_answers_true() {
    for operation in ["variableCollectionUpsert", "serviceInstanceRedeploy"] {
        assert!(confirmed(operation, &json!({ operation: true })).is_ok());
        for (data, shown) in [
            (json!({ operation: false }), "false"),
            (json!({ operation: null }), "null"),
            (json!({ operation: "true" }), "\"true\""),
            (json!({}), "nothing"),
        ] {
            let Err(e) = confirmed(operation, &data) else {
                panic!("{data} counted as done")
            };
            assert_eq!(e.code(), "RAILWAY_UPDATE_FAILED");
            assert_eq!(
                e.to_string(),
                format!("Railway was not updated: {operation} answered {shown} instead of true")
            );
        }
    }
}

#[test]
fn a_graphql_error_message_is_shown_on_one_line_without_terminal_controls() {
    let message = "Problem\u{1b}[2J\u{202e}\r\nerror: fake line\n";
    let Verdict::Stop(e) = classify(&graphql_error(message), "upsert", &[]) else {
        panic!("not a stop")
    };
    assert_eq!(
        e.to_string(),
        r"Railway was not updated: upsert failed: Problem\u{1b}[2J\u{202e}\u{d}\u{a}error: fake line"
    );
}

#[test]
fn data_is_returned() {
    let Verdict::Done(v) = classify(&answer(200, r#"{"data":{"variableCollectionUpsert":true}}"#), "x", &[]) else {
        panic!()
    };
    assert_eq!(v["variableCollectionUpsert"], Value::Bool(true));
}
