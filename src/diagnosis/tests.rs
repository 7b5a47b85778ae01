use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::events::event_checks;
use super::railway::{PULL_ACTION, owner_check};
use super::tokens::age_check;
use super::withings::clock_check;
use super::{lines, plural};
use crate::output::{CheckResult, DoctorCheck};
use crate::tokens::{TOKEN_KEYS, TokenSet, rfc3339};
use crate::withings::{Probe, ProbeReply};

fn set(refresh: &str, last_refreshed: &str) -> TokenSet {
    let at: DateTime<Utc> = last_refreshed.parse().unwrap_or_default();
    TokenSet {
        access_token: Some(SecretString::from(format!("access-of-{refresh}"))),
        refresh_token: SecretString::from(refresh.to_owned()),
        expires_at: Some(at + chrono::Duration::hours(3)),
        last_refreshed: Some(at),
        userid: None,
        scope: None,
    }
}

/// Railway's variables holding exactly `tokens`.
fn holding(tokens: &TokenSet) -> BTreeMap<String, String> {
    crate::tokens::token_variables(tokens)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn said(check: &DoctorCheck) -> (CheckResult, &str, Option<&str>) {
    (check.result, check.detail.as_str(), check.action.as_deref())
}

#[test]
fn one_owner_tells_same_older_and_newer_sets_apart() {
    let stored = set("stored-refresh", "2026-01-02T00:00:00Z");
    let same = owner_check(Some(&stored), &holding(&stored));
    assert_eq!(
        said(&same),
        (
            CheckResult::Ok,
            "Railway holds the store's set (last refreshed 2026-01-02T00:00:00Z)",
            None
        )
    );
    let newer = owner_check(Some(&stored), &holding(&set("railway-refresh", "2026-01-03T00:00:00Z")));
    assert_eq!(newer.result, CheckResult::Warn);
    assert_eq!(
        newer.detail,
        "Railway holds a newer set (last refreshed 2026-01-03T00:00:00Z) than the store (2026-01-02T00:00:00Z): someone else is refreshing"
    );
    let action = newer.action.as_deref().unwrap_or_default();
    assert!(action.contains("`withings-token pull --from railway`"), "{action}");
    assert!(action.contains("\"One owner of the refresh\""), "{action}");
    let older = owner_check(Some(&stored), &holding(&set("railway-refresh", "2026-01-01T00:00:00Z")));
    assert_eq!(older.result, CheckResult::Warn);
    assert!(
        older.detail.starts_with("Railway holds an older set"),
        "{}",
        older.detail
    );
    assert!(
        older
            .action
            .unwrap_or_default()
            .contains("`withings-token railway-sync`")
    );
}

#[test]
fn one_owner_without_a_set_on_either_side() {
    let stored = set("stored-refresh", "2026-01-02T00:00:00Z");
    let nothing = BTreeMap::from([("OTHER".to_owned(), "x".to_owned())]);
    assert_eq!(owner_check(None, &nothing).result, CheckResult::Ok);
    let empty_railway = owner_check(Some(&stored), &nothing);
    assert_eq!(empty_railway.result, CheckResult::Warn);
    assert!(empty_railway.detail.contains("holds no WITHINGS_REFRESH_TOKEN"));
    let empty_store = owner_check(None, &holding(&stored));
    assert_eq!(empty_store.action.as_deref(), Some(PULL_ACTION));
    let mut garbled = holding(&stored);
    garbled.insert(TOKEN_KEYS[3].to_owned(), "yesterday".to_owned());
    assert_eq!(owner_check(Some(&stored), &garbled).result, CheckResult::Warn);
    let mut same_time = holding(&stored);
    same_time.insert(TOKEN_KEYS[1].to_owned(), "other-refresh".to_owned());
    let differs = owner_check(Some(&stored), &same_time);
    assert_eq!(
        differs.detail,
        "Railway's WITHINGS_REFRESH_TOKEN differ from the store's, with the same refresh time"
    );
}

#[test]
fn refresh_token_age_warns_from_300_days_and_fails_from_365() {
    let now: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap_or_default();
    let age = |days: i64| {
        let issued = rfc3339(now - chrono::Duration::days(days));
        age_check(&set("r", &issued), now)
    };
    assert_eq!(age(0).result, CheckResult::Ok);
    assert_eq!(age(299).result, CheckResult::Ok);
    assert_eq!(age(300).result, CheckResult::Warn);
    assert_eq!(age(364).result, CheckResult::Warn);
    assert_eq!(age(365).result, CheckResult::Fail);
    assert_eq!(
        age(1).detail,
        "issued 2026-05-31T00:00:00Z, 1 day ago (Withings drops one unused for a year)"
    );
    assert!(
        age(365)
            .action
            .unwrap_or_default()
            .contains("`withings-token auth-url`")
    );
    assert_eq!(age(-2).result, CheckResult::Warn);
}

#[test]
fn a_clock_more_than_a_minute_off_is_a_warning() {
    let at: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap_or_default();
    let probe = |skew: i64| Probe {
        reply: ProbeReply::Answered {
            status: 503,
            message: String::new(),
        },
        server_time: Some(at + chrono::Duration::seconds(skew)),
        received_at: at,
    };
    assert_eq!(clock_check(&probe(60)).result, CheckResult::Ok);
    assert_eq!(clock_check(&probe(-60)).result, CheckResult::Ok);
    let behind = clock_check(&probe(300));
    assert_eq!(behind.result, CheckResult::Warn);
    assert_eq!(
        behind.detail,
        "this host's clock is 300 s behind Withings' (its Date header)"
    );
    assert_eq!(
        clock_check(&probe(-61)).detail,
        "this host's clock is 61 s ahead of Withings' (its Date header)"
    );
}

#[test]
fn line_lists_and_plurals_read_naturally() {
    assert_eq!(lines(&[3]), "line 3");
    assert_eq!(lines(&[1, 3]), "lines 1, 3");
    assert_eq!(plural(1, "day"), "1 day");
    assert_eq!(plural(310, "day"), "310 days");
}

/// The settings of a host whose environment is `vars`.
fn settings_with(vars: &[(&str, &str)]) -> crate::settings::Settings {
    let global = crate::cli::overrides(&["--no-env-file", "--store", "/unused"]);
    let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
    crate::settings::Settings::resolve(&global, None, &lookup).unwrap()
}

fn lines_of(checks: &[DoctorCheck]) -> Vec<(CheckResult, &str, &str)> {
    checks.iter().map(|c| (c.result, c.name, c.detail.as_str())).collect()
}

#[test]
fn without_sinks_events_are_said_to_be_only_logged() {
    let checks = event_checks(&settings_with(&[]));
    assert_eq!(
        lines_of(&checks),
        vec![(
            CheckResult::Ok,
            "events",
            "no sink configured: events are only logged (on_event, webhook_url, ping_url: docs/events.md)"
        )]
    );
}

#[test]
fn every_sink_is_named_and_a_webhook_only_by_scheme_and_host() {
    let settings = settings_with(&[
        ("WITHINGS_TOKEN_ON_EVENT", "logger -t withings\nnotify-send hi"),
        (
            "WITHINGS_TOKEN_WEBHOOK_URL",
            "https://hooks.slack.com/services/T000/B000/SECRETPART",
        ),
        ("WITHINGS_TOKEN_WEBHOOK_FORMAT", "slack"),
        ("WITHINGS_TOKEN_PING_URL", "https://hc-ping.com/5f1e-uuid"),
        ("WITHINGS_TOKEN_NOTIFY_TIMEOUT", "3s"),
        ("WITHINGS_TOKEN_PUBLIC_URL", "https://tokens.example.com"),
        ("ADMIN_API_TOKEN", "admin-token-value-0123456789"),
    ]);
    let checks = event_checks(&settings);
    assert_eq!(
        lines_of(&checks),
        vec![
            (CheckResult::Ok, "events", "2 commands, 1 webhook, 1 ping URL"),
            (CheckResult::Ok, "event command", "logger -t withings"),
            (CheckResult::Ok, "event command", "notify-send hi"),
            (
                CheckResult::Ok,
                "event webhook",
                "https://hooks.slack.com/… (format slack, unsigned)"
            ),
            (
                CheckResult::Ok,
                "event ping",
                "https://hc-ping.com/… (`/start` when a run starts, `/fail` when it fails)"
            ),
            (
                CheckResult::Ok,
                "notify timeout",
                "3 s: a CLI run waits at most this long for its deliveries (what is not delivered waits in the outbox)"
            ),
            (
                CheckResult::Ok,
                "public url",
                "https://tokens.example.com/… (reauthorization_required carries a one-time link to /auth/start there, working for an hour)"
            ),
        ]
    );
    let all = format!("{checks:?}");
    for secret in ["SECRETPART", "T000", "5f1e-uuid", "admin-token-value"] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }
}

#[test]
fn an_unsigned_json_webhook_and_plain_http_to_another_host_are_warnings() {
    let webhook = |vars: &[(&str, &str)]| {
        let checks = event_checks(&settings_with(vars));
        let hook = checks.into_iter().find(|c| c.name == "event webhook").unwrap();
        (hook.result, hook.detail)
    };
    let unsigned = webhook(&[("WITHINGS_TOKEN_WEBHOOK_URL", "https://example.com/hook")]);
    assert_eq!(
        unsigned,
        (
            CheckResult::Warn,
            "https://example.com/… (format json, unsigned): the receiver cannot tell these events from forged ones"
                .to_owned()
        )
    );
    let signed = webhook(&[
        ("WITHINGS_TOKEN_WEBHOOK_URL", "https://example.com/hook"),
        ("WITHINGS_TOKEN_WEBHOOK_SECRET", "whsec_c2VjcmV0LXNpZ25pbmcta2V5"),
    ]);
    assert_eq!(
        signed,
        (
            CheckResult::Ok,
            "https://example.com/… (format json, signed with WITHINGS_TOKEN_WEBHOOK_SECRET)".to_owned()
        )
    );
    let http = webhook(&[
        ("WITHINGS_TOKEN_WEBHOOK_URL", "http://example.com:8080/hook"),
        ("WITHINGS_TOKEN_WEBHOOK_SECRET", "whsec_c2VjcmV0LXNpZ25pbmcta2V5"),
    ]);
    assert_eq!(http.0, CheckResult::Warn);
    assert!(
        http.1.starts_with("http://example.com:8080/… (format json, signed"),
        "{}",
        http.1
    );
    assert!(
        http.1
            .ends_with("plain http to another host, so every event crosses the network readable")
    );
    for loopback in [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
    ] {
        let local = webhook(&[
            ("WITHINGS_TOKEN_WEBHOOK_URL", loopback),
            ("WITHINGS_TOKEN_WEBHOOK_SECRET", "whsec_c2VjcmV0LXNpZ25pbmcta2V5"),
        ]);
        assert_eq!(local.0, CheckResult::Ok, "{loopback}: {}", local.1);
    }
}

#[test]
fn a_public_url_without_the_admin_token_cannot_sign_links() {
    let public = |vars: &[(&str, &str)]| {
        let checks = event_checks(&settings_with(vars));
        checks
            .into_iter()
            .find(|c| c.name == "public url")
            .map(|c| (c.result, c.detail))
    };
    let unsigned = public(&[("WITHINGS_TOKEN_PUBLIC_URL", "https://tokens.example.com/base")]);
    assert_eq!(
        unsigned,
        Some((
            CheckResult::Warn,
            "https://tokens.example.com/…: ADMIN_API_TOKEN is not set, so no one-time link can be signed and events carry none"
                .to_owned()
        ))
    );
    let not_a_url = public(&[
        ("WITHINGS_TOKEN_PUBLIC_URL", "tokens.example.com"),
        ("ADMIN_API_TOKEN", "admin-token-value-0123456789"),
    ]);
    assert_eq!(not_a_url.map(|(result, _)| result), Some(CheckResult::Fail));
    // With a sink but no public_url, the line says what is missing.
    let missing = public(&[("WITHINGS_TOKEN_ON_EVENT", "true")]).unwrap();
    assert_eq!(missing.0, CheckResult::Ok);
    assert!(
        missing
            .1
            .starts_with("not set: reauthorization_required events carry no one-tap link")
    );
}
