use super::*;
use serde_json::json;

use crate::http::answer;
use crate::tokens::now;

fn answer_with_date(status: u16, body: &str, date: &str) -> Answer {
    let mut answer = answer(status, body);
    if let Ok(value) = reqwest::header::HeaderValue::from_str(date) {
        answer.headers.insert(reqwest::header::DATE, value);
    }
    answer
}

#[test]
fn the_probe_reads_any_answer_and_the_date_header() {
    let refused = r#"{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token"}"#;
    let probe = read_probe(
        &answer_with_date(200, refused, "Tue, 15 Nov 1994 08:12:31 GMT"),
        &[CLIENT_SECRET],
        true,
    );
    assert!(
        matches!(&probe.reply, ProbeReply::Answered { status: 503, message } if message == "Invalid Params: invalid refresh_token"),
        "{probe:?}"
    );
    assert_eq!(
        probe.server_time.map(crate::tokens::rfc3339).as_deref(),
        Some("1994-11-15T08:12:31Z")
    );
    let garbled = read_probe(&answer_with_date(502, "<html>", "yesterday"), &[], true);
    assert!(matches!(garbled.reply, ProbeReply::Unusable(_)), "{garbled:?}");
    assert_eq!(garbled.server_time, None);
}

#[test]
fn the_probe_names_refused_credentials_only_when_it_sent_them() {
    let body = r#"{"status":503,"body":{},"error":"Invalid Params: invalid client_id"}"#;
    let with = read_probe(&answer(200, body), &[CLIENT_ID, CLIENT_SECRET], true);
    match with.reply {
        ProbeReply::CredentialsRefused(e) => {
            assert_eq!(e.exit_code(), 3);
            assert!(e.to_string().starts_with("Withings refused the app credentials"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let without = read_probe(&answer(200, body), &[], false);
    assert!(
        matches!(without.reply, ProbeReply::Answered { status: 503, .. }),
        "{without:?}"
    );
}

fn refresh_grant() -> SecretString {
    SecretString::from("old-refresh-token")
}

const CLIENT_ID: &str = "client-id-123";
const CLIENT_SECRET: &str = "client-secret-456";

fn judge(status: u16, body: &str) -> Verdict<TokenSet> {
    let token = refresh_grant();
    let sent = [CLIENT_ID, CLIENT_SECRET, token.expose_secret()];
    classify(&answer(status, body), &Grant::Refresh(&token), &sent, now())
}

/// Every text a verdict carries: what could reach stderr or stdout.
fn texts(verdict: &Verdict<TokenSet>) -> String {
    match verdict {
        Verdict::Done(_) => String::new(),
        Verdict::Stop(e) => format!("{e} {}", e.action()),
        Verdict::Retry { detail, .. } | Verdict::Unsure { detail } | Verdict::GiveUp { detail, .. } => detail.clone(),
    }
}

#[test]
fn withings_error_texts_never_echo_a_sent_value() {
    let echo = format!("refresh_token old-refresh-token with {CLIENT_ID} and {CLIENT_SECRET} refused");
    for status in [2555, 401, 503, 601, 522, 999] {
        let body = json!({ "status": status, "body": {}, "error": echo }).to_string();
        let verdict = judge(200, &body);
        let text = texts(&verdict);
        assert!(text.contains("[redacted]"), "{status}: {text}");
        for value in ["old-refresh-token", CLIENT_ID, CLIENT_SECRET] {
            assert!(!text.contains(value), "{status} leaks {value}: {text}");
        }
    }
}

#[test]
fn a_sent_value_across_the_clip_is_scrubbed_whole() {
    // Clipping first would cut the token at character 200 and leave its
    // first half for the match to miss.
    let error = format!("{} old-refresh-token", "x".repeat(190));
    let body = json!({ "status": 2555, "body": {}, "error": error }).to_string();
    let text = texts(&judge(200, &body));
    assert!(!text.contains("old-refr"), "{text}");
}

#[test]
fn a_code_grant_scrubs_the_code_and_the_redirect_uri() {
    let sent = [CLIENT_ID, CLIENT_SECRET, "one-time-code-789", "https://example.com/cb"];
    let grant = Grant::Code {
        code: "one-time-code-789",
        redirect_uri: "https://example.com/cb",
    };
    let error = "Invalid Params: invalid code one-time-code-789 for https://example.com/cb";
    let body = json!({ "status": 503, "body": {}, "error": error }).to_string();
    let verdict = classify(&answer(200, &body), &grant, &sent, now());
    let Verdict::Stop(e) = &verdict else {
        panic!("not a stop")
    };
    assert_eq!(e.code(), "INVALID_CODE");
    assert_eq!(
        e.to_string(),
        "Withings refused the authorization code: status 503: Invalid Params: invalid code [redacted] for [redacted]"
    );
}

#[test]
fn tokens_come_only_from_status_zero() {
    let ok = r#"{"status":0,"body":{"userid":363,"access_token":"a","refresh_token":"r","expires_in":10800,"scope":"user.info"}}"#;
    let Verdict::Done(set) = judge(200, ok) else {
        panic!("not done")
    };
    assert_eq!(set.userid.as_deref(), Some("363"));
    assert_eq!(
        set.expires_at.unwrap() - set.last_refreshed.unwrap(),
        chrono::Duration::seconds(10800)
    );
    let nulls = r#"{"status":503,"body":{"access_token":"a","refresh_token":"r","expires_in":1}}"#;
    assert!(!matches!(judge(200, nulls), Verdict::Done(_)));
}

/// The lifetime (seconds), user id, scope and whether an access token
/// came, of a `status: 0` answer whose body is `body`; panics unless
/// the answer is a new set holding `NEWR`.
fn saved(body: &str) -> (i64, Option<String>, Option<String>, bool) {
    let Verdict::Done(set) = judge(200, body) else {
        panic!("not saved: {body}")
    };
    assert_eq!(set.refresh_token.expose_secret(), "NEWR", "{body}");
    let (Some(expires), Some(refreshed)) = (set.expires_at, set.last_refreshed) else {
        panic!("no expiry: {body}")
    };
    let lifetime = (expires - refreshed).num_seconds();
    (lifetime, set.userid, set.scope, set.access_token.is_some())
}

fn with_expires_in(expires_in: &str) -> String {
    format!(
        r#"{{"status":0,"body":{{"access_token":"A","refresh_token":"NEWR","expires_in":{expires_in},"userid":"1"}}}}"#
    )
}

#[test]
fn a_new_refresh_token_is_saved_whatever_shape_expires_in_has() {
    for (expires_in, lifetime) in [
        (r#""10800""#, 10800),
        ("10800.5", 10800),
        (r#"" 3600.9 ""#, 3600),
        ("null", DOCUMENTED_LIFETIME_SECS),
        ("0", DOCUMENTED_LIFETIME_SECS),
        ("-5", DOCUMENTED_LIFETIME_SECS),
        ("0.5", DOCUMENTED_LIFETIME_SECS),
        ("18446744073709551616", DOCUMENTED_LIFETIME_SECS),
        ("1e400", DOCUMENTED_LIFETIME_SECS),
        (&format!("-{}", "9".repeat(400)), DOCUMENTED_LIFETIME_SECS),
        (r#""NaN""#, DOCUMENTED_LIFETIME_SECS),
        (r#""soon""#, DOCUMENTED_LIFETIME_SECS),
        ("[10800]", DOCUMENTED_LIFETIME_SECS),
    ] {
        let body = with_expires_in(expires_in);
        assert_eq!(saved(&body).0, lifetime, "{body}");
    }
    let missing = r#"{"status":0,"body":{"access_token":"A","refresh_token":"NEWR","userid":"1"}}"#;
    assert_eq!(saved(missing).0, DOCUMENTED_LIFETIME_SECS);
}

#[test]
fn an_unusable_lifetime_is_assumed_and_says_why() {
    assert_eq!(lifetime(Some(&json!(10800))), Lifetime::Given(10800));
    assert_eq!(lifetime(None), Lifetime::Assumed("expires_in is missing or null"));
    assert_eq!(
        lifetime(Some(&json!("x"))),
        Lifetime::Assumed("expires_in is not a number")
    );
    assert_eq!(
        lifetime(Some(&json!(-5))),
        Lifetime::Assumed("expires_in is not positive")
    );
    assert_eq!(
        lifetime(Some(&json!(1e300))),
        Lifetime::Assumed("expires_in is out of range")
    );
    assert_eq!(lifetime(Some(&json!(86_400))), Lifetime::Given(86_400));
    for absurd in [
        json!(86_401),
        json!(1_000_000_000),
        json!(4_611_686_018_427_387_904_u64),
    ] {
        assert_eq!(
            lifetime(Some(&absurd)),
            Lifetime::Assumed("expires_in is more than a day, far beyond the documented 3 h"),
            "{absurd}"
        );
    }
}

#[test]
fn a_new_refresh_token_is_saved_whatever_shape_the_other_fields_have() {
    let body = |fields: &str| format!(r#"{{"status":0,"body":{{"refresh_token":"NEWR","expires_in":10800{fields}}}}}"#);
    let (_, userid, _, _) = saved(&body(r#","access_token":"A","userid":363.0"#));
    assert_eq!(userid.as_deref(), Some("363"));
    let (_, userid, _, _) = saved(&body(r#","access_token":"A","userid":363"#));
    assert_eq!(userid.as_deref(), Some("363"));
    let (_, userid, scope, _) = saved(&body(r#","access_token":"A","userid":[1],"scope":5"#));
    assert_eq!((userid, scope), (None, None));
    let (_, _, scope, _) = saved(&body(r#","access_token":"A","scope":"user.info""#));
    assert_eq!(scope.as_deref(), Some("user.info"));
    for access in [
        r#","access_token":"""#,
        r#","access_token":null"#,
        r#","access_token":7"#,
        "",
    ] {
        let (_, _, _, has_access) = saved(&body(access));
        assert!(!has_access, "{access}");
    }
}

#[test]
fn a_new_refresh_token_is_saved_from_a_body_with_a_bom_or_trailing_bytes() {
    let tokens = with_expires_in("10800");
    for body in [
        format!("\u{feff}{tokens}"),
        format!("{tokens}\n<!-- cached -->"),
        format!("\u{feff} {tokens}{{\"status\":503}}"),
    ] {
        assert_eq!(saved(&body).0, 10800, "{body}");
    }
    let huge_userid =
        r#"{"status":0,"body":{"refresh_token":"NEWR","expires_in":10800,"userid":1e999,"x":"1e999 \"-2e999"}}"#;
    assert_eq!(saved(huge_userid).1, None);
    let status_as_text = r#"{"status":"0","body":{"refresh_token":"NEWR","expires_in":10800}}"#;
    assert_eq!(saved(status_as_text).0, 10800);
}

#[test]
fn only_numbers_beyond_f64_are_replaced_and_never_inside_strings() {
    let body = br#"{"a":1e400,"b":"2e400 \" 3e400","c":[-1e999,1.5e3],"d":"\\"}"#;
    let tamed = without_huge_numbers(body).map(String::from_utf8);
    assert_eq!(
        tamed,
        Some(Ok(
            r#"{"a":null,"b":"2e400 \" 3e400","c":[null,1.5e3],"d":"\\"}"#.to_owned()
        ))
    );
    assert_eq!(without_huge_numbers(br#"{"a":1e300,"b":"1e400"}"#), None);
}

#[test]
fn only_an_answer_without_a_usable_refresh_token_is_retried() {
    for refresh in [
        r#""refresh_token":"","#,
        r#""refresh_token":null,"#,
        r#""refresh_token":5,"#,
        "",
    ] {
        let body = format!(r#"{{"status":0,"body":{{{refresh}"access_token":"A","expires_in":10800}}}}"#);
        assert!(matches!(judge(200, &body), Verdict::Retry { .. }), "{body}");
    }
    for body in [r#"{"status":0,"body":"NEWR"}"#, r#"{"status":0}"#, r#"[0]"#, "\u{feff}"] {
        assert!(matches!(judge(200, body), Verdict::Retry { .. }), "{body}");
    }
}

#[test]
fn absurd_expires_in_is_capped_not_a_panic() {
    let body = r#"{"status":0,"body":{"access_token":"a","refresh_token":"r","expires_in":9000000000000}}"#;
    let Verdict::Done(set) = judge(200, body) else {
        panic!("not done")
    };
    assert_eq!(
        set.expires_at.unwrap() - set.last_refreshed.unwrap(),
        chrono::Duration::hours(3)
    );
}

#[test]
fn a_withings_error_text_is_shown_on_one_line_without_terminal_controls() {
    let error = "Invalid Params: invalid refresh_token \u{1b}]0;TITLE\u{7}\u{202e}\r\nerror: fake line\r\n";
    let body = json!({ "status": 503, "body": {}, "error": error }).to_string();
    let Verdict::Stop(e) = judge(200, &body) else {
        panic!("not a stop")
    };
    assert_eq!(
        e.to_string(),
        r"Withings refused the refresh token: status 503: Invalid Params: invalid refresh_token \u{1b}]0;TITLE\u{7}\u{202e}\u{d}\u{a}error: fake line"
    );
}

#[test]
fn the_token_endpoint_is_appended_to_the_base_path_keeping_its_query() {
    let token_url = |base: &str| {
        let http = HttpClient::new(crate::settings::HttpPolicy {
            timeout: Duration::from_secs(1),
            retries: 0,
            retry_delay: Duration::ZERO,
        });
        let base = Url::parse(base).map_err(|e| e.to_string());
        let client = http
            .map_err(|e| e.to_string())
            .and_then(|http| WithingsClient::new(http, &base?, CLIENT_ID, &refresh_grant()).map_err(|e| e.to_string()));
        client.map(|c| c.token_url.to_string())
    };
    assert_eq!(
        token_url("https://wbsapi.withings.net").as_deref(),
        Ok("https://wbsapi.withings.net/v2/oauth2")
    );
    assert_eq!(
        token_url("http://u:p@127.0.0.1:9/proxy/?key=v#f").as_deref(),
        Ok("http://u:p@127.0.0.1:9/proxy/v2/oauth2?key=v#f")
    );
}

#[test]
fn refused_refresh_token_stops_with_exit_4() {
    let body = r#"{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token"}"#;
    let Verdict::Stop(e) = judge(200, body) else {
        panic!("not a stop")
    };
    assert_eq!(e.code(), "INVALID_REFRESH_TOKEN");
    let Verdict::Stop(e) = judge(200, r#"{"status":401,"body":{},"error":"invalid_token"}"#) else {
        panic!()
    };
    assert_eq!(e.exit_code(), 4);
}

#[test]
fn wrong_client_secret_is_a_configuration_error() {
    let body = r#"{"status":503,"body":{},"error":"Invalid Params: invalid client_secret"}"#;
    let Verdict::Stop(e) = judge(200, body) else { panic!() };
    assert_eq!(e.code(), "CONFIGURATION_ERROR");
}

#[test]
fn transient_answers_are_retried() {
    for (status, body) in [
        (500, ""),
        (502, "<html>Bad gateway</html>"),
        (200, r#"{"status":0,"body":{"access_"#),
        (200, r#"{"status":522,"body":{}}"#),
        (200, r#"{"status":0,"body":{}}"#),
        (200, r#"{"status":2554,"body":{}}"#),
        (200, r#"{"status":2555,"body":{},"error":"An unknown error occurred"}"#),
    ] {
        assert!(matches!(judge(status, body), Verdict::Retry { .. }), "{status} {body}");
    }
}

#[test]
fn an_access_token_check_reads_valid_refused_or_unknown() {
    let check = |status: u16, body: &str| classify_check(&answer(status, body), &["acc-tok-1"]);
    let ok = r#"{"status":0,"body":{"devices":[]}}"#;
    assert_eq!(check(200, ok).done(), Some(AccessCheck::Valid));
    let refused = r#"{"status":401,"body":{},"error":"invalid_token: acc-tok-1 is invalid"}"#;
    let Some(AccessCheck::Refused { detail }) = check(200, refused).done() else {
        panic!("not refused")
    };
    assert_eq!(detail, "Withings status 401 (invalid_token: [redacted] is invalid)");
    for (status, body) in [
        (200, r#"{"status":2554}"#),
        (200, r#"{"status":2555}"#),
        (502, "<html>"),
        (200, ""),
    ] {
        assert!(matches!(check(status, body), Verdict::Retry { .. }), "{body}");
    }
}

impl<T> Verdict<T> {
    fn done(self) -> Option<T> {
        match self {
            Verdict::Done(value) => Some(value),
            _ => None,
        }
    }
}

#[test]
fn rate_limit_carries_the_wait() {
    let body = r#"{"status":601,"body":{"wait_seconds":5},"error":"Same arguments in less than 10 seconds"}"#;
    let Verdict::Retry { kind, wait, .. } = judge(200, body) else {
        panic!()
    };
    assert_eq!(kind, Transient::RateLimited);
    assert_eq!(wait, Some(Duration::from_secs(5)));
}
