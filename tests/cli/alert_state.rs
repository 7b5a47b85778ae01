//! The alert state is visible: `status` and `accounts` read each account's
//! event record (written here by hand beside the store, as the runs that
//! saw the failures would have left it) and show `needs_reauthorization`
//! since when, a passing failure with its attempts, and the events waiting;
//! `status --check` exits 4 when new consent is needed. `doctor` names the
//! event sinks, a webhook only by scheme and host.

use crate::support::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SINCE: &str = "2026-12-01T10:00:00Z";
const LOGIN: &str = "run `withings-token login --account default` (with `public_url` and ADMIN_API_TOKEN set, its reauthorization_required event carries a one-tap link to `serve`'s /auth/start)";

/// The event record beside the store at `store` (`tokens.json` →
/// `tokens.events.json`, `alice.json` → `alice.events.json`).
fn record_path(store: &Path) -> PathBuf {
    let stem = store.file_stem().unwrap().to_string_lossy().into_owned();
    store.with_file_name(format!("{stem}.events.json"))
}

fn write_record(store: &Path, record: &Value) {
    std::fs::write(record_path(store), serde_json::to_vec(record).unwrap()).unwrap();
}

/// An event waiting for one webhook, as `EventRecord`'s outbox keeps it.
fn waiting(id: &str, kind: &str) -> Value {
    json!({
        "event": {
            "id": id,
            "type": kind,
            "account": "default",
            "at": SINCE,
            "code": "INVALID_REFRESH_TOKEN",
            "message": "Withings refused the refresh token",
            "action": "run `withings-token login`",
        },
        "owed": ["webhook:0123456789ab"],
        "tries": 3,
    })
}

/// Withings refused the set of `generation`; two events still wait.
fn refused_at(generation: u64) -> Value {
    json!({
        "health": {"state": "needs_reauthorization", "since": SINCE, "code": "INVALID_REFRESH_TOKEN", "generation": generation},
        "outbox": [waiting("msg_00000000000000000000000000000001", "reauthorization_required"),
                   waiting("msg_00000000000000000000000000000002", "refresh_failed")],
        "dropped": 0,
    })
}

/// Refreshes of the set of `generation` fail for a passing reason.
fn failing_at(generation: u64, attempts: u32) -> Value {
    json!({
        "health": {"state": "failing", "since": SINCE, "code": "NETWORK_ERROR", "attempts": attempts, "generation": generation},
        "outbox": [],
        "dropped": 4,
    })
}

/// A private store not due for 1.5 h (expires in 2.5 h, 1 h buffer), and
/// the generation of its set.
fn given_a_private_store() -> (TestEnv, u64) {
    let env = given_store_expiring_in(150 * 60);
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let generation = out.json()["set_generation"].as_u64().unwrap();
    (env, generation)
}

/// The `(name, value)` rows of a two-column table.
fn rows(stdout: &str) -> Vec<(String, String)> {
    cells(stdout)
        .into_iter()
        .map(|row| {
            assert_eq!(row.len(), 2, "{stdout}");
            (row[0].clone(), row[1].clone())
        })
        .collect()
}

/// Every row of a table (the header first), its cells trimmed.
fn cells(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix('│')?.strip_suffix('│'))
        .map(|inner| inner.split('┆').map(|cell| cell.trim().to_owned()).collect())
        .collect()
}

/// The status rows a set written by `seed_store` (2.5 h left) shows.
fn status_rows_of(env: &TestEnv, generation: u64) -> Vec<(String, String)> {
    let tokens = env.store_json()["tokens"].clone();
    let expires = time(&tokens["expires_at"]);
    [
        ("token configured", "yes".to_owned()),
        ("source", "store".to_owned()),
        ("expires at", rfc3339(expires)),
        ("expires in", "2.5 h".to_owned()),
        ("refresh due", "no".to_owned()),
        ("refresh recommended at", rfc3339(expires - chrono::Duration::hours(1))),
        ("last refreshed", tokens["last_refreshed"].as_str().unwrap().to_owned()),
        ("user id", "363".to_owned()),
        ("scope", "user.info,user.metrics".to_owned()),
        ("set generation", generation.to_string()),
        ("store", env.store_path().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with_rows(mut base: Vec<(String, String)>, more: &[(&str, &str)]) -> Vec<(String, String)> {
    base.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    base
}

// ---------------------------------------------------------------------------
// status

#[test]
fn status_shows_a_refused_grant_since_when_and_check_exits_4() {
    let (env, generation) = given_a_private_store();
    write_record(&env.store_path(), &refused_at(generation));

    let out = env.run(&["status"]);
    assert_eq!(out.code, 0, "a report, not a check: {out:?}");
    assert_eq!(
        rows(&out.stdout),
        with_rows(
            status_rows_of(&env, generation),
            &[
                (
                    "alert",
                    "needs_reauthorization since 2026-12-01T10:00:00Z [INVALID_REFRESH_TOKEN]"
                ),
                ("events", "2 events waiting"),
            ]
        )
    );
    assert_eq!(
        out.stderr,
        format!(
            "warning: account default needs new consent: Withings refused its refresh token (since {SINCE}); {LOGIN}\n"
        )
    );

    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(
        report["alert"],
        json!({"state": "needs_reauthorization", "since": SINCE, "code": "INVALID_REFRESH_TOKEN", "attempts": null})
    );
    assert_eq!(report["events_waiting"], 2);
    assert_eq!(report["events_dropped"], 0);
    assert_eq!(report["should_refresh"], false, "the old keys are as they were");

    // The set is not due, yet --check must not say all is fine.
    let message = format!("account default needs new consent: Withings refused its refresh token (since {SINCE})");
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(rows(&out.stdout).len(), 13, "the report is printed: {out:?}");
    assert_eq!(
        out.stderr,
        format!("error: {message} [INVALID_REFRESH_TOKEN]\n  next: {LOGIN}\n")
    );
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["alert"]["state"], "needs_reauthorization");
    assert_stderr_error(&out.stderr, "INVALID_REFRESH_TOKEN", &message, LOGIN);

    // A refused grant outranks a refresh due.
    env.make_store_due();
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(error_lines(&out).len(), 1, "{out:?}");
}

#[test]
fn with_serve_reachable_the_action_names_the_one_time_link() {
    let (mut env, generation) = given_a_private_store();
    write_record(&env.store_path(), &refused_at(generation));
    env.set("WITHINGS_TOKEN_PUBLIC_URL", "https://tokens.example.com")
        .set("ADMIN_API_TOKEN", "admin-token-for-links-0123456789");

    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_stderr_error(
        &out.stderr,
        "INVALID_REFRESH_TOKEN",
        &format!("account default needs new consent: Withings refused its refresh token (since {SINCE})"),
        "run `withings-token login --account default`, or open the one-time link its reauthorization_required event carries (`serve`'s /auth/start)",
    );
    assert!(!out.stderr.contains("admin-token-for-links"), "{out:?}");
}

#[test]
fn a_passing_failure_shows_its_attempts_and_check_keeps_its_meaning() {
    let (env, generation) = given_a_private_store();
    write_record(&env.store_path(), &failing_at(generation, 3));

    let out = env.run(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        rows(&out.stdout),
        with_rows(
            status_rows_of(&env, generation),
            &[
                (
                    "alert",
                    "refresh_failed since 2026-12-01T10:00:00Z (3 attempts) [NETWORK_ERROR]"
                ),
                ("events", "4 events dropped from a full outbox"),
            ]
        )
    );
    let warning = format!(
        "warning: refreshes of account default have failed since {SINCE} (NETWORK_ERROR, 3 attempts so far); each run tries again, nothing to do unless it lasts\n"
    );
    assert_eq!(out.stderr, warning);

    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 0, "not due, and the set still works: {out:?}");
    let report = out.json();
    assert_eq!(
        report["alert"],
        json!({"state": "refresh_failing", "since": SINCE, "code": "NETWORK_ERROR", "attempts": 3})
    );
    assert_eq!(report["events_waiting"], 0);
    assert_eq!(report["events_dropped"], 4);
    assert_eq!(out.stderr, warning);

    // `--quiet` keeps the warning off a cron job's mail.
    let out = env.run(&["status", "--check", "--quiet"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );
}

#[test]
fn a_healthy_account_without_a_record_shows_no_alert() {
    let (env, generation) = given_a_private_store();
    assert!(!record_path(&env.store_path()).exists());

    let out = env.run(&["status"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(rows(&out.stdout), status_rows_of(&env, generation));
    let report = env.run(&["status", "--json"]).json();
    assert_eq!(
        report["alert"],
        json!({"state": "healthy", "since": null, "code": null, "attempts": null})
    );
    assert_eq!(
        (report["events_waiting"].clone(), report["events_dropped"].clone()),
        (json!(0), json!(0))
    );
}

#[test]
fn a_refusal_of_a_set_replaced_since_is_over() {
    let (env, generation) = given_a_private_store();
    // Withings refused the set before this one (new consent saved since).
    write_record(&env.store_path(), &refused_at(generation - 1));

    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["alert"]["state"], "healthy");
    assert_eq!(out.json()["events_waiting"], 2, "its events still wait");
    assert_eq!(out.stderr, "");
}

#[test]
fn an_unreadable_record_is_said_and_the_status_still_reported() {
    let (env, _) = given_a_private_store();
    std::fs::create_dir(record_path(&env.store_path())).unwrap();

    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["alert"]["state"], "healthy");
    assert!(
        out.stderr
            .contains("the account's alert state is not shown: cannot read the event record"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------------------
// several accounts

/// The default account (healthy), alice (refused) and bob (failing).
fn given_three_accounts() -> TestEnv {
    let (env, _) = given_a_private_store();
    seed_account(
        &env,
        "alice",
        ("alice-access-000", "alice-refresh-abc"),
        150 * 60,
        "271",
    );
    seed_account(&env, "bob", ("bob-access-000", "bob-refresh-abc"), 150 * 60, "272");
    write_record(&account_store(&env, "alice"), &refused_at(1));
    write_record(&account_store(&env, "bob"), &failing_at(1, 1));
    env
}

#[test]
fn accounts_and_status_rows_show_each_accounts_state() {
    let env = given_three_accounts();

    let out = env.run(&["accounts"]);
    assert_eq!(out.code, 0, "{out:?}");
    let table = cells(&out.stdout);
    assert_eq!(
        table[0],
        [
            "account",
            "user id",
            "access token expires",
            "refresh token age",
            "copies behind",
            "refresh due",
            "state"
        ]
    );
    let states: Vec<(&str, &str)> = table[1..]
        .iter()
        .map(|row| (row[0].as_str(), row[6].as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("default", "ok"),
            ("alice", "needs reauthorization"),
            ("bob", "refresh failing")
        ]
    );

    let listed = env.run(&["accounts", "--json"]).json();
    let alerts: Vec<Value> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["account"], a["alert"], a["events_waiting"], a["events_dropped"]]))
        .collect();
    assert_eq!(
        alerts,
        [
            json!(["default", {"state": "healthy", "since": null, "code": null, "attempts": null}, 0, 0]),
            json!(["alice", {"state": "needs_reauthorization", "since": SINCE, "code": "INVALID_REFRESH_TOKEN", "attempts": null}, 2, 0]),
            json!(["bob", {"state": "refresh_failing", "since": SINCE, "code": "NETWORK_ERROR", "attempts": 1}, 0, 4]),
        ]
    );

    let out = env.run(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    let table = cells(&out.stdout);
    assert_eq!(table[0].last().map(String::as_str), Some("alert"), "{out:?}");
    let alerts: Vec<(&str, &str)> = table[1..]
        .iter()
        .map(|row| (row[0].as_str(), row.last().unwrap().as_str()))
        .collect();
    assert_eq!(
        alerts,
        [
            ("default", "-"),
            (
                "alice",
                "needs_reauthorization since 2026-12-01T10:00:00Z [INVALID_REFRESH_TOKEN]; 2 events waiting"
            ),
            (
                "bob",
                "refresh_failed since 2026-12-01T10:00:00Z (1 attempt) [NETWORK_ERROR]; 4 events dropped from a full outbox"
            ),
        ]
    );

    let alice_action = "run `withings-token login --account alice` (with `public_url` and ADMIN_API_TOKEN set, its reauthorization_required event carries a one-tap link to `serve`'s /auth/start)";
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    let report = out.json();
    assert_eq!(report["accounts"][1]["account"], "alice");
    assert_eq!(report["accounts"][1]["alert"]["state"], "needs_reauthorization");
    assert_eq!(report["accounts"][2]["alert"]["attempts"], 1);
    assert_stderr_error(
        &out.stderr,
        "INVALID_REFRESH_TOKEN",
        &format!("account alice needs new consent: Withings refused its refresh token (since {SINCE})"),
        alice_action,
    );
    assert_eq!(error_lines(&out).len(), 1, "only alice's: {out:?}");
    assert!(
        out.stderr.contains(&format!(
            "warning: refreshes of account bob have failed since {SINCE} (NETWORK_ERROR, 1 attempt so far)"
        )),
        "{out:?}"
    );
}

#[test]
fn a_redis_store_shows_the_alert_kept_beside_its_key() {
    let redis = RedisServer::start();
    let mut env = given_store_expiring_in(150 * 60);
    env.on_redis(&redis).set("WITHINGS_CLIENT_ID", CLIENT_ID);
    redis.write_store(&env.store_json());
    let generation = env.run(&["status", "--json"]).json()["set_generation"]
        .as_u64()
        .unwrap();
    let events_key = format!("{REDIS_KEY}:events");
    redis.command(&["SET", &events_key, &refused_at(generation).to_string()]);

    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        out.json()["alert"],
        json!({"state": "needs_reauthorization", "since": SINCE, "code": "INVALID_REFRESH_TOKEN", "attempts": null})
    );
    assert_eq!(out.json()["events_waiting"], 2);
    let out = env.run(&["accounts", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["accounts"][0]["alert"]["state"], "needs_reauthorization");
}

// ---------------------------------------------------------------------------
// doctor

/// The `doctor` line of check `name`: (result, detail).
fn doctor_lines<'a>(stdout: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    stdout
        .lines()
        .filter(|l| l.get(6..23).map(str::trim_end) == Some(name))
        .map(|l| (l[..4].trim_end(), &l[25..]))
        .collect()
}

#[test]
fn doctor_names_the_sinks_and_a_webhook_only_by_scheme_and_host() {
    let mut env = given_store_expiring_in(150 * 60);
    env.set(
        "WITHINGS_TOKEN_WEBHOOK_URL",
        "https://hooks.slack.com/services/T000/B000/SECRETPART",
    )
    .set("WITHINGS_TOKEN_WEBHOOK_FORMAT", "slack")
    .set("WITHINGS_TOKEN_ON_EVENT", "logger -t withings-token")
    .set("WITHINGS_TOKEN_PING_URL", "https://hc-ping.com/ping-uuid-SECRETPING")
    .set("WITHINGS_TOKEN_PUBLIC_URL", "https://tokens.example.com");

    let out = env.run(&["doctor"]);
    assert_eq!(
        doctor_lines(&out.stdout, "events"),
        [("ok", "1 command, 1 webhook, 1 ping URL")]
    );
    assert_eq!(
        doctor_lines(&out.stdout, "event command"),
        [("ok", "logger -t withings-token")]
    );
    assert_eq!(
        doctor_lines(&out.stdout, "event webhook"),
        [("ok", "https://hooks.slack.com/… (format slack, unsigned)")]
    );
    assert_eq!(
        doctor_lines(&out.stdout, "event ping"),
        [(
            "ok",
            "https://hc-ping.com/… (`/start` when a run starts, `/fail` when it fails)"
        )]
    );
    assert_eq!(
        doctor_lines(&out.stdout, "public url"),
        [(
            "warn",
            "https://tokens.example.com/…: ADMIN_API_TOKEN is not set, so no one-time link can be signed and events carry none"
        )]
    );
    let json = env.run(&["doctor", "--json"]);
    for run in [&out, &json] {
        for secret in ["SECRETPART", "T000/B000", "SECRETPING"] {
            assert!(!run.stdout.contains(secret), "stdout shows {secret}: {run:?}");
            assert!(!run.stderr.contains(secret), "stderr shows {secret}: {run:?}");
        }
    }
    let checks = json.json()["checks"].clone();
    let webhook = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "event webhook")
        .cloned();
    assert_eq!(
        webhook,
        Some(
            json!({"name": "event webhook", "result": "ok", "detail": "https://hooks.slack.com/… (format slack, unsigned)", "action": null})
        )
    );
}

#[test]
fn doctor_warns_of_an_unsigned_json_webhook_and_plain_http() {
    let mut env = given_store_expiring_in(150 * 60);
    env.set(
        "WITHINGS_TOKEN_WEBHOOK_URL",
        "https://receiver.example.com/in/SECRETPART http://receiver.example.com/in/SECRETPART",
    );

    let out = env.run(&["doctor"]);
    assert_eq!(
        doctor_lines(&out.stdout, "event webhook"),
        [
            (
                "warn",
                "https://receiver.example.com/… (format json, unsigned): the receiver cannot tell these events from forged ones"
            ),
            (
                "warn",
                "http://receiver.example.com/… (format json, unsigned): plain http to another host, so every event crosses the network readable"
            ),
        ]
    );
    assert!(
        !out.stdout.contains("SECRETPART") && !out.stderr.contains("SECRETPART"),
        "{out:?}"
    );
}

#[test]
fn doctor_online_sends_a_test_event_to_each_webhook() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(refused_refresh()));
    let receiver = Upstream::start();
    receiver.mount(
        Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/services/T000/B000/SECRETPART"))
            .respond_with(ResponseTemplate::new(200)),
    );
    let mut env = given_store_expiring_in(150 * 60);
    env.withings(&withings.uri()).set(
        "WITHINGS_TOKEN_WEBHOOK_URL",
        format!("{}/services/T000/B000/SECRETPART", receiver.uri()),
    );

    let out = env.run(&["doctor", "--online"]);
    assert_eq!(
        doctor_lines(&out.stdout, "test event"),
        [("ok", format!("delivered to webhook {}/…", receiver.uri()).as_str())],
        "{out:?}"
    );
    let delivered = receiver.requests();
    assert_eq!(delivered.len(), 1, "one test event: {delivered:?}");
    let body: Value = serde_json::from_slice(&delivered[0].body).unwrap();
    assert_eq!(
        (body["type"].clone(), body["account"].clone()),
        (json!("test"), json!("default"))
    );
    assert!(
        !out.stdout.contains("SECRETPART") && !out.stderr.contains("SECRETPART"),
        "{out:?}"
    );
}
