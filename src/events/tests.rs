//! Unit tests of the event record's transitions: once per change of state.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::record::MAX_OUTBOX;
use super::*;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, minute, 0).single().unwrap()
}

fn problem(code: &str) -> Problem {
    Problem {
        code: code.to_owned(),
        message: format!("{code} happened"),
        action: "retry later".to_owned(),
    }
}

/// The kinds of the events `observations` cause, in order, each observed a
/// minute after the one before.
fn kinds(record: &mut EventRecord, observations: &[Observation]) -> Vec<&'static str> {
    let link = || Some("https://tokens.example.com/auth/start?account=alice&sig=x".to_owned());
    let mut seen = Vec::new();
    for (minute, observation) in observations.iter().enumerate() {
        let cx = Context {
            account: "alice",
            now: at(minute as u32),
            aging_after: Duration::days(300),
            reconsent_link: &link,
        };
        seen.extend(record.observe(observation, &cx).iter().map(|e| e.kind.as_str()));
    }
    seen
}

fn checked(generation: u64, rotated: bool) -> Observation {
    Observation::Checked {
        generation,
        rotated,
        refresh_token_age: Some(Duration::hours(1)),
    }
}

#[test]
fn an_outage_of_many_failed_ticks_is_one_refresh_failed_then_one_recovered() {
    let mut record = EventRecord::default();
    let failed = || Observation::RefreshFailed {
        problem: problem("NETWORK_ERROR"),
        generation: 4,
    };
    let seen = kinds(&mut record, &[failed(), failed(), failed()]);
    assert_eq!(seen, ["refresh_failed"]);
    assert!(matches!(record.health, Health::Failing { attempts: 3, since, .. } if since == at(0)));
    // A set found not due proves nothing: no recovery, no flapping.
    assert!(kinds(&mut record, &[checked(4, false)]).is_empty());
    let failed_again = Observation::RefreshFailed {
        problem: problem("NETWORK_ERROR"),
        generation: 5,
    };
    let seen = kinds(
        &mut record,
        &[checked(5, true), checked(5, false), failed(), failed_again],
    );
    // The failure of set 4 recorded late (after 5 worked) is over already.
    assert_eq!(seen, ["recovered", "refreshed", "refresh_failed"]);
}

#[test]
fn a_refusal_recorded_after_a_newer_set_worked_is_over_already() {
    let mut record = EventRecord::default();
    let refused = || Observation::GrantRefused {
        problem: problem("INVALID_REFRESH_TOKEN"),
        generation: 3,
    };
    // Refused, then new consent (set 4) saved by `login`; then `serve`'s
    // refusal of set 3, recorded half a second late.
    let seen = kinds(
        &mut record,
        &[refused(), Observation::Consented { generation: 4 }, refused()],
    );
    assert_eq!(seen, ["reauthorization_required", "recovered"]);
    assert_eq!(record.health, Health::Healthy);
}

#[test]
fn a_refused_grant_is_said_once_with_its_link_and_only_a_new_set_recovers_it() {
    let mut record = EventRecord::default();
    let refused = || Observation::GrantRefused {
        problem: problem("INVALID_REFRESH_TOKEN"),
        generation: 7,
    };
    let link = || Some("https://t.example/auth/start?x".to_owned());
    let cx = Context {
        account: "alice",
        now: at(0),
        aging_after: Duration::days(300),
        reconsent_link: &link,
    };
    let events = record.observe(&refused(), &cx);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::ReauthorizationRequired);
    assert_eq!(events[0].link.as_deref(), Some("https://t.example/auth/start?x"));
    assert!(
        events[0]
            .action
            .starts_with("open https://t.example/auth/start?x and approve access")
    );
    assert!(matches!(record.health, Health::NeedsReauthorization { since, .. } if since == at(0)));
    // Failing again, or the old set found still not due, changes nothing.
    let seen = kinds(
        &mut record,
        &[
            refused(),
            checked(7, false),
            Observation::RefreshFailed {
                problem: problem("NETWORK_ERROR"),
                generation: 7,
            },
        ],
    );
    assert!(seen.is_empty(), "{seen:?}");
    // A set saved by consent elsewhere (a newer generation) is the recovery.
    assert_eq!(kinds(&mut record, &[checked(8, false)]), ["recovered"]);
    assert_eq!(record.health, Health::Healthy);
}

#[test]
fn consent_after_a_refusal_recovers_and_consent_on_a_working_account_says_nothing() {
    let mut record = EventRecord::default();
    assert!(kinds(&mut record, &[Observation::Consented { generation: 1 }]).is_empty());
    let refused = Observation::GrantRefused {
        problem: problem("INVALID_REFRESH_TOKEN"),
        generation: 3,
    };
    let seen = kinds(&mut record, &[refused, Observation::Consented { generation: 4 }]);
    assert_eq!(seen, ["reauthorization_required", "recovered"]);
}

#[test]
fn a_copy_failing_on_every_run_is_one_copy_failed_then_one_copy_healed() {
    let mut record = EventRecord::default();
    let failed = || Observation::CopyFailed {
        copy: "railway:p/s@production".to_owned(),
        problem: problem("RAILWAY_UPDATE_FAILED"),
    };
    let healed = || Observation::CopyDelivered {
        copy: "railway:p/s@production".to_owned(),
    };
    let other = Observation::CopyDelivered {
        copy: "env_file:/srv/.env".to_owned(),
    };
    let seen = kinds(&mut record, &[failed(), failed(), other, healed(), healed()]);
    assert_eq!(seen, ["copy_failed", "copy_healed"]);
    assert!(record.copies_failing.is_empty());
}

#[test]
fn an_old_refresh_token_is_said_once_per_set() {
    let mut record = EventRecord::default();
    let old = |generation| Observation::Checked {
        generation,
        rotated: false,
        refresh_token_age: Some(Duration::days(301)),
    };
    let young = Observation::Checked {
        generation: 3,
        rotated: false,
        refresh_token_age: Some(Duration::days(299)),
    };
    assert_eq!(
        kinds(&mut record, &[young, old(3), old(3), old(4)]),
        ["refresh_token_aging", "refresh_token_aging"]
    );
}

#[test]
fn an_unreachable_store_is_said_once_and_its_return_is_a_recovery() {
    let mut record = EventRecord::default();
    let down = || Observation::StoreUnavailable(problem("STORE_UNAVAILABLE"));
    let seen = kinds(
        &mut record,
        &[down(), down(), Observation::StoreAvailable, Observation::StoreAvailable],
    );
    assert_eq!(seen, ["store_unavailable", "recovered"]);
}

#[test]
fn the_outbox_keeps_the_newest_hundred_counts_the_dropped_and_forgets_delivered_events() {
    let mut record = EventRecord::default();
    let sinks = ["command:a".to_owned(), "webhook:b".to_owned()];
    let event = |n: u32| {
        Event::new(
            EventKind::Refreshed,
            "alice",
            at(n % 60),
            "REFRESHED",
            format!("{n}"),
            String::new(),
        )
    };
    record.enqueue(event(0), &[]);
    assert!(record.outbox.is_empty(), "an event no sink wants is not kept");
    for n in 0..(MAX_OUTBOX as u32 + 5) {
        record.enqueue(event(n), &sinks);
    }
    assert_eq!((record.outbox.len(), record.dropped), (MAX_OUTBOX, 5));
    assert_eq!(record.outbox[0].event.message, "5");
    let first = record.outbox[0].event.id.clone();
    record.delivered(&first, "command:a");
    assert_eq!(record.outbox[0].owed, ["webhook:b"]);
    record.delivered(&first, "webhook:b");
    assert_eq!(record.outbox[0].event.message, "6");
    record.forget_sinks_except(&["command:a".to_owned()]);
    assert!(record.outbox.iter().all(|p| p.owed == ["command:a"]));
    record.forget_sinks_except(&[]);
    assert!(record.outbox.is_empty());
}

#[test]
fn a_link_nonce_is_accepted_once_until_it_expires() {
    let mut record = EventRecord::default();
    let expires = at(30);
    assert!(record.use_link("n1", expires, at(0)));
    assert!(!record.use_link("n1", expires, at(1)));
    assert!(record.use_link("n2", expires, at(1)));
    // Past its expiry it is forgotten (the link itself is refused by then).
    assert!(record.use_link("n1", at(50), at(31)));
}

#[test]
fn an_event_is_json_with_its_type_and_scrubbed_texts_and_as_variables() {
    crate::redact::remember_secret("event test", "secret-refresh-token-123");
    let mut event = Event::new(
        EventKind::RefreshFailed,
        "alice",
        at(0),
        "NETWORK_ERROR",
        "Withings echoed secret-refresh-token-123".to_owned(),
        "retry".to_owned(),
    );
    event.attempts = Some(1);
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "refresh_failed");
    assert_eq!(json["account"], "alice");
    assert_eq!(json["at"], "2026-12-07T10:00:00Z");
    assert_eq!(json["message"], "Withings echoed [redacted]");
    assert_eq!(json["attempts"], 1);
    assert!(json.get("link").is_none() && json.get("copy").is_none());
    assert!(event.id.starts_with("msg_") && event.id.len() == 36, "{}", event.id);
    let vars = event.variables();
    assert!(vars.contains(&("WITHINGS_TOKEN_EVENT_TYPE", "refresh_failed".to_owned())));
    assert!(vars.contains(&("WITHINGS_TOKEN_EVENT_ATTEMPTS", "1".to_owned())));
    assert!(!vars.iter().any(|(k, _)| *k == "WITHINGS_TOKEN_EVENT_LINK"));
}
