//! Unit tests of the output module: what the reports look like.

use super::*;

#[test]
fn a_mask_is_written_as_the_runner_decodes_it() {
    assert_eq!(ci_command_data("at%0Aabc"), "at%250Aabc");
    assert_eq!(ci_command_data("a\r\nb"), "a%0D%0Ab");
    assert_eq!(ci_command_data("plain-token"), "plain-token");
}

/// A status report as a server (or an older one) sends it, with `extra`
/// keys added.
fn status_report(extra: serde_json::Value) -> StatusReport {
    let mut report = serde_json::json!({
        "version": 1,
        "token_configured": true,
        "source": "store",
        "expires_at": "2026-12-01T13:00:00Z",
        "expires_in_hours": 2.5,
        "should_refresh": false,
        "next_refresh_recommended": "2026-12-01T12:00:00Z",
        "last_refreshed": "2026-12-01T10:00:00Z",
        "refresh_buffer_minutes": 60,
        "userid": "363",
        "scope": "user.metrics",
        "generation": 4,
        "previous_rotated_at": null,
        "store": "/s/tokens.json",
        "copies": [],
    });
    if let (Some(all), Some(more)) = (report.as_object_mut(), extra.as_object()) {
        all.extend(more.clone());
    }
    serde_json::from_value(report).unwrap()
}

fn needing_consent() -> serde_json::Value {
    serde_json::json!({
        "alert": {"state": "needs_reauthorization", "since": "2026-12-01T10:00:00Z", "code": "INVALID_REFRESH_TOKEN", "attempts": null},
        "events_waiting": 2,
    })
}

fn rows_of(human: Human) -> Vec<(&'static str, String)> {
    match human {
        Human::Rows(rows) => rows,
        _ => panic!("not rows"),
    }
}

#[test]
fn a_report_without_an_alert_reads_as_healthy_and_says_so_in_json() {
    let report = status_report(serde_json::json!({}));
    assert_eq!(report.alert, AlertReport::default());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["alert"],
        serde_json::json!({"state": "healthy", "since": null, "code": null, "attempts": null})
    );
    assert_eq!(json["events_waiting"], 0);
    assert_eq!(json["events_dropped"], 0);
    let names: Vec<&str> = rows_of(report.human()).into_iter().map(|(name, _)| name).collect();
    assert!(!names.contains(&"alert") && !names.contains(&"events"), "{names:?}");
}

#[test]
fn an_account_needing_consent_has_an_alert_row_and_its_outbox_a_row() {
    let rows = rows_of(status_report(needing_consent()).human());
    let tail: Vec<(&str, &str)> = rows[rows.len() - 3..].iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        tail,
        vec![
            ("store", "/s/tokens.json"),
            (
                "alert",
                "needs_reauthorization since 2026-12-01T10:00:00Z [INVALID_REFRESH_TOKEN]"
            ),
            ("events", "2 events waiting"),
        ]
    );
}

#[test]
fn a_passing_failure_says_since_when_and_how_many_attempts() {
    let failing = |attempts: u32| AlertReport {
        state: AlertState::RefreshFailing,
        since: Some("2026-12-01T10:00:00Z".into()),
        code: Some("UPSTREAM_ERROR".into()),
        attempts: Some(attempts),
    };
    assert_eq!(
        failing(1).words().as_deref(),
        Some("refresh_failed since 2026-12-01T10:00:00Z (1 attempt) [UPSTREAM_ERROR]")
    );
    assert_eq!(
        failing(3).words().as_deref(),
        Some("refresh_failed since 2026-12-01T10:00:00Z (3 attempts) [UPSTREAM_ERROR]")
    );
    assert_eq!(failing(3).state_words(), "refresh failing");
    assert_eq!(AlertReport::default().words(), None);
    assert_eq!(AlertReport::default().state_words(), "ok");
}

#[test]
fn an_outbox_is_counted_with_what_it_dropped() {
    assert_eq!(reports::outbox_words(0, 0), None);
    assert_eq!(reports::outbox_words(1, 0).as_deref(), Some("1 event waiting"));
    assert_eq!(
        reports::outbox_words(0, 4).as_deref(),
        Some("4 events dropped from a full outbox")
    );
    assert_eq!(
        reports::outbox_words(100, 7).as_deref(),
        Some("100 events waiting, 7 dropped from a full outbox")
    );
}

#[test]
fn several_accounts_get_an_alert_column_only_when_one_alerts() {
    let row = |name: &str, extra: serde_json::Value| AccountStatus {
        account: name.to_owned(),
        status: Some(status_report(extra)),
        error: None,
    };
    let table = |accounts| match (StatusRowsReport { version: 1, accounts }).human() {
        Human::Table { header, rows } => (header, rows),
        _ => panic!("not a table"),
    };
    let (header, rows) = table(vec![
        row("alice", serde_json::json!({})),
        row("bob", serde_json::json!({})),
    ]);
    assert_eq!(header.last(), Some(&"stale copies"));
    assert!(rows.iter().all(|r| r.len() == 7));
    let (header, rows) = table(vec![row("alice", serde_json::json!({})), row("bob", needing_consent())]);
    assert_eq!(header.last(), Some(&"alert"));
    assert_eq!(rows[0].last().map(String::as_str), Some("-"));
    assert_eq!(
        rows[1].last().map(String::as_str),
        Some("needs_reauthorization since 2026-12-01T10:00:00Z [INVALID_REFRESH_TOKEN]; 2 events waiting")
    );
}

#[test]
fn accounts_have_a_state_column() {
    let entry = |name: &str, alert: Option<AlertReport>| AccountEntry {
        account: name.to_owned(),
        userid: Some("363".into()),
        expires_at: None,
        refresh_token_age_hours: Some(50.0),
        copies_behind: Vec::new(),
        should_refresh: false,
        refresh_reason: None,
        alert,
        events_waiting: 0,
        events_dropped: 0,
        error: None,
    };
    let refused = AlertReport {
        state: AlertState::NeedsReauthorization,
        since: Some("2026-12-01T10:00:00Z".into()),
        code: Some("INVALID_REFRESH_TOKEN".into()),
        attempts: None,
    };
    let report = AccountsReport {
        version: 1,
        accounts: vec![
            entry("alice", Some(AlertReport::default())),
            entry("bob", Some(refused)),
        ],
    };
    let Human::Table { header, rows } = report.human() else {
        panic!("not a table");
    };
    assert_eq!(header.last(), Some(&"state"));
    assert_eq!(rows[0], ["alice", "363", "-", "2d 2h", "none", "no", "ok"]);
    assert_eq!(rows[1].last().map(String::as_str), Some("needs reauthorization"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["accounts"][1]["alert"]["state"], "needs_reauthorization");
    assert_eq!(json["accounts"][0]["alert"]["since"], serde_json::Value::Null);
}
