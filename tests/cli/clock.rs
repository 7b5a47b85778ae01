//! A wrong clock never poisons the store: a Withings answer's `Date` gives
//! the new set's times when this host's clock is off by more than a minute;
//! a stored time that lies ahead of the clock by more than the token's
//! lifetime makes the set due; a host found behind records its lag and is
//! not made to refresh on every run. Clocks are moved with Debian's
//! `faketime` (installed by `.ci/test`).

use crate::support::*;

use chrono::{DateTime, Duration, Utc};

fn time_of(store: &Value, key: &str) -> DateTime<Utc> {
    let text = store["tokens"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}: {store}"));
    DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc)
}

/// `t` is within a minute of the real now.
fn is_about_now(t: DateTime<Utc>) -> bool {
    (t - Utc::now()).abs() < Duration::minutes(1)
}

#[test]
fn a_refresh_under_a_clock_a_year_ahead_saves_withings_times_and_says_so() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());

    let out = env.run_with_clock("+365d", &["refresh", "--no-railway", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("this host's clock is 365 d 0 h ahead of Withings' (the Date of its answer): the new set's times are Withings' own"),
        "{out:?}"
    );
    let store = env.store_json();
    assert!(is_about_now(time_of(&store, "last_refreshed")), "{store}");
    assert_eq!(
        time_of(&store, "expires_at") - time_of(&store, "last_refreshed"),
        Duration::hours(3)
    );
    assert!(
        store.get("clock_lags").is_none(),
        "an ahead clock records no lag: {store}"
    );
    withings.verify();

    // Back on the right clock: fresh, not due, nothing sent.
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["should_refresh"], false);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

/// What one refresh under a clock a year ahead left before this fix: every
/// time a year in the future.
fn given_a_store_saved_a_year_ahead(withings_url: &str) -> TestEnv {
    let env = given_expired_store(withings_url);
    let mut store = env.store_json();
    let ahead = Utc::now() + Duration::days(365);
    store["tokens"]["last_refreshed"] = json!(rfc3339(ahead));
    store["tokens"]["expires_at"] = json!(rfc3339(ahead + Duration::hours(3)));
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    env
}

const TIMES_AHEAD: &str = "the stored times lie ahead of this host's clock by more than the token's lifetime (saved under a clock that ran ahead?), so its expiry cannot be trusted";

#[test]
fn a_store_whose_times_lie_a_year_ahead_is_due_and_status_says_why() {
    let withings = silent_withings();
    let env = given_a_store_saved_a_year_ahead(&withings.uri());

    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stdout.contains(&format!("yes: {TIMES_AHEAD}")), "{}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("error: a refresh is due: {TIMES_AHEAD} [REFRESH_DUE]")),
        "{out:?}"
    );
    let json = env.run(&["status", "--json"]).json();
    assert_eq!(json["should_refresh"], true);
    assert_eq!(json["refresh_reason"], TIMES_AHEAD);

    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains(&format!("but {TIMES_AHEAD}")),
        "doctor says why: {doctor:?}"
    );
    withings.verify();
}

#[test]
fn a_store_whose_times_lie_a_year_ahead_is_refreshed_by_the_next_if_needed_run() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_a_store_saved_a_year_ahead(&withings.uri());

    let out = env.run_fast(&["refresh", "--if-needed", "--no-railway", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "refreshed");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert!(is_about_now(time_of(&env.store_json(), "last_refreshed")));
    withings.verify();
}

#[test]
fn the_broker_refreshes_a_set_whose_times_lie_ahead_instead_of_handing_it_out() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_a_store_saved_a_year_ahead(&withings.uri());

    let out = env.run_fast(&["access-token"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), NEW_ACCESS);
    withings.verify();
}

#[test]
fn a_host_ten_minutes_behind_records_its_lag_and_does_not_refresh_on_every_run() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());

    let out = env.run_with_clock("-10m", &["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Withings' Date has whole seconds, so the lag measured is 10 min less
    // up to a second (and the run's own time).
    assert!(says_about_ten_minutes(&out.stderr, "this host's clock is"), "{out:?}");
    assert!(out.stderr.contains("behind Withings'"), "{out:?}");
    let store = env.store_json();
    assert!(
        is_about_now(time_of(&store, "last_refreshed")),
        "Withings' time: {store}"
    );
    let lag = store["clock_offsets"]
        .as_object()
        .expect("a lag recorded")
        .values()
        .next()
        .cloned();
    let lag = lag.and_then(|v| v["secs"].as_i64()).expect("seconds");
    assert!((595..=605).contains(&lag), "{lag}");

    // The same host, still behind: the set is not due, nothing is sent
    // (`withings_rotating` takes exactly one request).
    for args in [&["refresh", "--if-needed", "--no-railway"][..], &["status", "--check"]] {
        let out = env.run_with_clock("-10m", args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    }
    let doctor = env.run_with_clock("-10m", &["doctor"]);
    assert!(
        says_about_ten_minutes(&doctor.stdout, "this host's clock was"),
        "{doctor:?}"
    );
    withings.verify();
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

/// `text` says `lead` followed by a lag of 10 min, give or take the second
/// that Withings' whole-second Date and the run itself take off it.
fn says_about_ten_minutes(text: &str, lead: &str) -> bool {
    [" 10 min", " 9 min 5"]
        .iter()
        .any(|lag| text.contains(&format!("{lead}{lag}")))
}

/// A host hours ahead would see every set as expired and rotate on every
/// call. It judges expiry by Withings' clock for ten minutes after
/// measuring it: five calls, one rotation.
#[test]
fn a_host_three_hours_ahead_does_not_rotate_on_every_call() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    for _ in 0..5 {
        let out = env.run_with_clock("+3h", &["access-token"]);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout.trim(), NEW_ACCESS);
    }
    withings.verify();
    let doctor = env.run_with_clock("+3h", &["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("this host's clock was 3 h 0 min ahead of Withings'"),
        "{doctor:?}"
    );
}
