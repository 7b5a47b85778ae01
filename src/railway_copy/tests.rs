use std::collections::BTreeMap;

use secrecy::SecretString;

use super::pull::{PullDecision, decide, railway_set};
use crate::tokens::{TokenSet, rfc3339};

fn set(refresh: &str, last_refreshed: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: None,
        refresh_token: SecretString::from(refresh.to_owned()),
        expires_at: None,
        last_refreshed: last_refreshed.and_then(|t| t.parse().ok()),
        userid: None,
        scope: None,
    }
}

#[test]
fn only_a_strictly_newer_set_is_imported_without_force() {
    let stored = set("s", Some("2026-01-02T00:00:00Z"));
    let older = set("r", Some("2026-01-01T00:00:00Z"));
    let same = set("r", Some("2026-01-02T00:00:00Z"));
    let newer = set("r", Some("2026-01-03T00:00:00Z"));
    let untimed = set("r", None);
    assert_eq!(decide(None, &older, false), PullDecision::Import);
    assert_eq!(decide(Some(&stored), &newer, false), PullDecision::Import);
    for railway in [&older, &same, &untimed] {
        assert_eq!(decide(Some(&stored), railway, false), PullDecision::Keep);
        assert_eq!(decide(Some(&stored), railway, true), PullDecision::ImportForced);
    }
    assert_eq!(decide(Some(&set("s", None)), &newer, false), PullDecision::Import);
}

#[test]
fn railway_variables_need_a_refresh_token_and_readable_times() {
    let vars = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    for blank in [vars(&[]), vars(&[("WITHINGS_REFRESH_TOKEN", "  ")])] {
        let e = railway_set(&blank).err().map(|e| (e.exit_code(), e.to_string()));
        assert!(
            matches!(&e, Some((3, m)) if m.contains("WITHINGS_REFRESH_TOKEN")),
            "{e:?}"
        );
    }
    let bad_time = vars(&[
        ("WITHINGS_REFRESH_TOKEN", "r"),
        ("WITHINGS_TOKEN_LAST_REFRESHED", "yesterday-secret"),
    ]);
    let e = railway_set(&bad_time).err().map(|e| (e.exit_code(), e.to_string()));
    assert!(
        matches!(&e, Some((3, m)) if m.contains("WITHINGS_TOKEN_LAST_REFRESHED") && !m.contains("yesterday")),
        "{e:?}"
    );
    let good = vars(&[
        ("WITHINGS_REFRESH_TOKEN", "r"),
        ("WITHINGS_TOKEN_LAST_REFRESHED", "2026-01-01T00:00:00Z"),
    ]);
    let tokens = railway_set(&good).ok();
    assert_eq!(
        tokens.and_then(|t| t.last_refreshed).map(rfc3339).as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
}
