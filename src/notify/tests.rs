//! Unit tests of the outbox and the sinks.

use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use ring::hmac;

use super::command::{CommandSink, withheld};
use super::ping::{MAX_PING_BODY, PingStage, ping_body, stage_url};
use super::sent::Sent;
use super::webhook::{
    Answered, Body, Judged, discord_content, http_url, judge, plain_text, retry_after, signature, signing_key,
    slack_text,
};
use crate::events::{Event, EventKind};
use crate::settings::WebhookFormat;

const LINK: &str = "https://tokens.example.com/auth/start?account=alice&expires=1700000000&nonce=n0&sig=s1";

fn event(kind: EventKind, message: &str, action: &str) -> Event {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap();
    let mut event = Event::new(
        kind,
        "alice",
        at,
        "INVALID_REFRESH_TOKEN",
        message.to_owned(),
        action.to_owned(),
    );
    event.id = "msg_0123456789abcdef0123456789abcdef".to_owned();
    event
}

/// The event a refused grant makes when `serve` has a public address.
fn reauthorization() -> Event {
    let action = format!(
        "open {LINK} and approve access (the link works once, for an hour); or run `withings-token login --account alice`"
    );
    let mut event = event(
        EventKind::ReauthorizationRequired,
        "Withings refused the refresh token: invalid_grant <b>&</b>",
        &action,
    );
    event.link = Some(LINK.to_owned());
    event
}

fn recovered() -> Event {
    let mut event = event(EventKind::Recovered, "refreshes work again", "");
    event.code = "RECOVERED".to_owned();
    event
}

#[test]
fn signatures_match_the_standard_webhooks_published_vector() {
    // standard-webhooks/standard-webhooks, libraries/*/tests:
    // `testSignFunctionWorks` (the same vector in every library).
    let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[test]
fn a_secret_without_the_whsec_prefix_is_the_key_as_it_is() {
    let key = signing_key("plain text secret").unwrap();
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"plain text secret"), b"msg_1.42.{}");
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(expected.as_ref())
    );
    assert_eq!(signature(&key, "msg_1", 42, b"{}"), expected);
}

#[test]
fn a_whsec_secret_is_read_with_or_without_padding_and_refused_when_not_base64() {
    // 25 bytes: base64 with one `=` of padding.
    let padded = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ==";
    let bare = padded.trim_end_matches('=');
    let sign = |secret: &str| signature(&signing_key(secret).unwrap(), "msg_1", 1, b"x");
    assert_eq!(sign(padded), sign(bare));
    let raw: Vec<u8> = (1..=25).collect();
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &raw), b"msg_1.1.x");
    assert_eq!(
        sign(padded),
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(expected.as_ref())
        )
    );
    for bad in ["whsec_not base64!", "whsec_"] {
        let Err(error) = signing_key(bad) else {
            panic!("{bad} was taken as a key")
        };
        assert_eq!(error.code(), "CONFIGURATION_ERROR");
        assert!(
            error.to_string().starts_with("WITHINGS_TOKEN_WEBHOOK_SECRET "),
            "{error}"
        );
    }
}

#[test]
fn only_http_and_https_urls_are_webhooks() {
    assert!(http_url("https://hooks.slack.com/services/T0/B0/XYZ").is_ok());
    assert!(http_url("http://127.0.0.1:8080/hook").is_ok());
    assert_eq!(
        http_url("ftp://example.com/x").unwrap_err(),
        "a `ftp:` URL, not an http(s) one"
    );
    assert_eq!(
        http_url("mailto:me@example.com").unwrap_err(),
        "a `mailto:` URL, not an http(s) one"
    );
    assert!(
        http_url("hooks.slack.com/x")
            .unwrap_err()
            .starts_with("a value that is not a URL")
    );
}

#[test]
fn the_json_body_is_the_event_itself() {
    let event = reauthorization();
    let body = Body::of(WebhookFormat::Json, &event).unwrap();
    assert_eq!(body.content_type, "application/json");
    assert!(body.headers.is_empty());
    let sent: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    assert_eq!(sent, serde_json::to_value(&event).unwrap());
    assert_eq!(sent["type"], "reauthorization_required");
    assert_eq!(sent["id"], "msg_0123456789abcdef0123456789abcdef");
    assert_eq!(sent["at"], "2026-03-01T12:00:00Z");
    assert_eq!(sent["link"], LINK);
}

#[test]
fn the_slack_body_is_one_escaped_line_with_the_link_as_a_slack_link() {
    let body = Body::of(WebhookFormat::Slack, &reauthorization()).unwrap();
    assert_eq!(body.content_type, "application/json");
    let sent: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    let expected = "🚨 alice: reauthorization_required (INVALID_REFRESH_TOKEN): Withings refused the refresh token: \
invalid_grant &lt;b&gt;&amp;&lt;/b&gt; — next: open \
<https://tokens.example.com/auth/start?account=alice&amp;expires=1700000000&amp;nonce=n0&amp;sig=s1|Re-authorise alice> \
and approve access (the link works once, for an hour); or run `withings-token login --account alice`";
    assert_eq!(sent, serde_json::json!({ "text": expected }));
    assert_eq!(slack_text(&reauthorization()), expected);
    // Good news carries no marker and, with no action, no `next:`.
    assert_eq!(
        slack_text(&recovered()),
        "alice: recovered (RECOVERED): refreshes work again"
    );
}

#[test]
fn a_link_the_action_does_not_name_is_added_after_it() {
    let mut event = event(
        EventKind::ReauthorizationRequired,
        "refused",
        "run `withings-token login`",
    );
    event.link = Some(LINK.to_owned());
    assert!(
        slack_text(&event).ends_with(" — next: run `withings-token login` <https://tokens.example.com/auth/start?account=alice&amp;expires=1700000000&amp;nonce=n0&amp;sig=s1|Re-authorise alice>"),
        "{}",
        slack_text(&event)
    );
}

#[test]
fn a_text_that_would_be_a_discord_link_is_written_as_text() {
    let mut event = reauthorization();
    event.message = "[Re-authorise](http://elsewhere.example)".to_owned();
    let body = Body::of(WebhookFormat::Discord, &event).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    let content = sent["content"].as_str().unwrap();
    assert!(
        content.contains("\\[Re-authorise\\](http://elsewhere.example)"),
        "{content}"
    );
    assert_eq!(
        content.matches("](<").count(),
        1,
        "only the event's own link: {content}"
    );
}

#[test]
fn the_discord_body_is_content_with_a_masked_link_and_no_mentions() {
    let body = Body::of(WebhookFormat::Discord, &reauthorization()).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    let expected = format!(
        "🚨 alice: reauthorization\\_required (INVALID\\_REFRESH\\_TOKEN): Withings refused the refresh token: \
invalid\\_grant <b>&</b> — next: open [Re-authorise alice](<{LINK}>) and approve access (the link works once, for an \
hour); or run \\`withings-token login --account alice\\`"
    );
    assert_eq!(
        sent,
        serde_json::json!({ "content": expected, "allowed_mentions": { "parse": [] } })
    );
}

#[test]
fn a_long_discord_message_is_cut_to_2000_characters_keeping_the_link() {
    let mut event = reauthorization();
    event.message = "é".repeat(5000);
    let content = discord_content(&event);
    assert_eq!(content.chars().count(), 2000);
    assert!(
        content.contains(&format!("[Re-authorise alice](<{LINK}>)")),
        "{content}"
    );
    assert!(content.contains("é… — next: open "), "{content}");
}

#[test]
fn the_text_body_is_two_plain_lines_with_ntfy_headers() {
    let body = Body::of(WebhookFormat::Text, &reauthorization()).unwrap();
    assert_eq!(body.content_type, "text/plain; charset=utf-8");
    let expected = format!(
        "🚨 alice: reauthorization_required (INVALID_REFRESH_TOKEN): Withings refused the refresh token: invalid_grant \
<b>&</b>\nnext: open {LINK} and approve access (the link works once, for an hour); or run \
`withings-token login --account alice`\n"
    );
    assert_eq!(String::from_utf8(body.bytes).unwrap(), expected);
    assert_eq!(
        body.headers,
        vec![
            ("Title", "withings-token: alice reauthorization_required".to_owned()),
            ("Priority", "high".to_owned()),
            ("Click", LINK.to_owned()),
        ]
    );
    assert_eq!(
        plain_text(&recovered()),
        "alice: recovered (RECOVERED): refreshes work again\n"
    );
    let good = Body::of(WebhookFormat::Text, &recovered()).unwrap();
    assert_eq!(
        good.headers,
        vec![("Title", "withings-token: alice recovered".to_owned())]
    );
}

#[test]
fn retry_after_is_read_in_seconds_or_as_an_http_date() {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap();
    assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
    assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
    assert_eq!(
        retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now), Some(Duration::ZERO));
    assert_eq!(retry_after("soon", now), None);
    assert_eq!(retry_after("-5", now), None);
}

#[test]
fn answers_are_judged_as_standard_webhooks_advise() {
    let status = |status, wait| {
        judge(&Answered::Status {
            status,
            retry_after: wait,
        })
    };
    let wait = Some(Duration::from_secs(2));
    assert_eq!(status(200, None), Judged::Delivered);
    assert_eq!(status(204, wait), Judged::Delivered);
    for code in [429, 503] {
        assert_eq!(
            status(code, wait),
            Judged::Again {
                wait,
                why: format!("HTTP {code}")
            }
        );
    }
    // Only a 429 or a 503 asks for a wait.
    assert_eq!(
        status(500, wait),
        Judged::Again {
            wait: None,
            why: "HTTP 500".into()
        }
    );
    for code in [400, 401, 404, 410] {
        assert_eq!(status(code, wait), Judged::Refused(format!("HTTP {code}")));
    }
    assert_eq!(
        status(301, None),
        Judged::Refused("HTTP 301, a redirect (not followed: set the URL it leads to)".into())
    );
    assert_eq!(
        judge(&Answered::Nothing("connection failed".into())),
        Judged::Again {
            wait: None,
            why: "connection failed".into()
        }
    );
}

#[test]
fn a_hook_inherits_no_secret() {
    for name in [
        "WITHINGS_REFRESH_TOKEN",
        "WITHINGS_ACCESS_TOKEN",
        "WITHINGS_CLIENT_SECRET",
        "ADMIN_API_TOKEN",
        "WITHINGS_TOKEN_READER_TOKEN",
        "RAILWAY_TOKEN",
        "RAILWAY_API_TOKEN",
        "WITHINGS_TOKEN_WEBHOOK_SECRET",
        "WITHINGS_TOKEN_WEBHOOK_URL",
        "WITHINGS_TOKEN_PING_URL",
        "ALICE_WITHINGS_REFRESH_TOKEN",
        "BOB_SMITH_WITHINGS_ACCESS_TOKEN",
        "WITHINGS_TOKEN_EVENT_LINK",
    ] {
        assert!(withheld(name, "x"), "{name} is passed on");
    }
    for name in ["PATH", "HOME", "WITHINGS_CLIENT_ID", "WITHINGS_TOKEN_STORE", "LANG"] {
        assert!(!withheld(name, "/usr/bin:/bin"), "{name} is withheld");
    }
    // Whatever its name, a value holding a secret this process knows.
    crate::redact::remember_secret("notify test", "unit-test-known-secret-4242");
    assert!(withheld("MY_HOOK_TOKEN", "prefix unit-test-known-secret-4242 suffix"));
    assert!(!withheld("MY_HOOK_TOKEN", "nothing known here"));
}

#[test]
fn ping_urls_get_start_and_fail_on_their_path() {
    let url = url::Url::parse("https://hc-ping.com/abc-123?rid=7").unwrap();
    assert_eq!(
        stage_url(&url, PingStage::Start).as_str(),
        "https://hc-ping.com/abc-123/start?rid=7"
    );
    assert_eq!(
        stage_url(&url, PingStage::Success).as_str(),
        "https://hc-ping.com/abc-123?rid=7"
    );
    assert_eq!(
        stage_url(&url, PingStage::Fail).as_str(),
        "https://hc-ping.com/abc-123/fail?rid=7"
    );
    let slash = url::Url::parse("https://hc-ping.com/abc/").unwrap();
    assert_eq!(
        stage_url(&slash, PingStage::Fail).as_str(),
        "https://hc-ping.com/abc/fail"
    );
}

#[test]
fn a_ping_body_is_scrubbed_line_by_line_and_capped() {
    crate::redact::remember_secret("notify ping test", "ping-body-secret-777");
    assert_eq!(
        ping_body("refresh failed\ntoken ping-body-secret-777 refused\n"),
        "refresh failed\ntoken [redacted] refused"
    );
    let long = "é".repeat(MAX_PING_BODY);
    let body = ping_body(&long);
    assert!(
        body.len() <= MAX_PING_BODY && body.len() > MAX_PING_BODY - 2,
        "{}",
        body.len()
    );
    assert!(body.chars().all(|c| c == 'é'));
}

fn run_hook(command: &str, deadline: Instant) -> Sent {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(CommandSink::new(command).run(&recovered(), deadline))
}

#[test]
fn a_hook_that_exits_0_delivered_and_another_status_is_retried() {
    let deadline = Instant::now() + Duration::from_secs(30);
    assert_eq!(run_hook("cat >/dev/null; exit 0", deadline), Sent::Delivered);
    assert_eq!(
        run_hook("echo oops >&2; exit 3", deadline),
        Sent::Retry {
            after: None,
            why: "exited with status 3".into()
        }
    );
    assert_eq!(
        run_hook("no-such-command-anywhere", deadline),
        Sent::Retry {
            after: None,
            why: "exited with status 127 (the shell found no such command)".into()
        }
    );
}

#[test]
fn a_hook_still_running_at_the_deadline_is_killed() {
    let deadline = Instant::now() + Duration::from_millis(300);
    let Sent::Retry { why, .. } = run_hook("sleep 30", deadline) else {
        panic!("a sleeping hook was delivered")
    };
    assert!(why.starts_with("killed at the notify timeout, after "), "{why}");
}
