//! `serve`'s token broker and background refresh: the loop refreshes an
//! expired set once, concurrent broker calls share one upstream call, the
//! reader credential opens only the broker, and a change to the store (by a
//! CLI run, another server, or an edit) is what the very next request sees.

use crate::support::*;

use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// the background loop and the broker

#[test]
fn the_background_loop_refreshes_an_expired_set_once_and_not_again_while_fresh() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "100ms"]);
    let refreshed = wait_until(Duration::from_secs(10), || env.stored_refresh_token() == NEW_REFRESH);
    assert!(refreshed, "the loop never refreshed:\n{}", server.log());
    // Ten more checks of a fresh set.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(withings.requests().len(), 1, "{}", server.log());
    withings.verify();
    let log = server.log();
    assert!(
        log.contains("Token refresh successful. Expires at: ") && log.contains("(schedule, set generation 2)"),
        "{log}"
    );
    for line in log.lines() {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert_eq!(line["service"], "withings-token", "{line}");
    }
    for secret in [
        OLD_ACCESS,
        OLD_REFRESH,
        NEW_ACCESS,
        NEW_REFRESH,
        CLIENT_SECRET,
        ADMIN_TOKEN,
        READER_TOKEN,
    ] {
        assert!(!log.contains(secret), "a secret was logged:\n{log}");
    }
}

#[test]
fn forty_broker_requests_on_an_expiring_set_make_one_upstream_call_and_share_its_token() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(300));
    let withings = withings_answering(slow).times(1);
    // Two minutes left: inside the broker's default min_ttl (5m), outside
    // the loop's buffer (1m), so only the broker refreshes.
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--buffer", "1m"]);
    let bearer = format!("Bearer {READER_TOKEN}");
    let answers = concurrently(40, || server.get("/v1/access-token", &[("Authorization", &bearer)]));
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        let body = answer.json();
        assert_eq!(body["access_token"], NEW_ACCESS, "{body}");
        assert_eq!(body["userid"], "363");
        assert!(body["expires_at"].is_string() && body["scope"].is_string(), "{body}");
    }
    withings.verify();
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    // Fresh now: a later consumer is answered from the store.
    let answer = server.get("/v1/access-token?min_ttl=1h", &[("Authorization", &bearer)]);
    assert_eq!(answer.json()["access_token"], NEW_ACCESS);
    assert_eq!(withings.requests().len(), 1);
}

#[test]
fn health_and_the_broker_answer_while_a_refresh_waits_for_the_store_lock() {
    let (withings, issued) = withings_always_rotating();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    // A CLI run (here: this test) holds the store lock.
    let lock = std::fs::File::create(env.store_path().with_file_name("tokens.json.lock")).expect("lock file");
    lock.lock().expect("lock");
    std::thread::scope(|scope| {
        let refresh = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        assert_eq!(server.get("/health", &[]).status, 200);
        let bearer = format!("Bearer {READER_TOKEN}");
        let answer = server.get("/v1/access-token", &[("Authorization", &bearer)]);
        assert_eq!(answer.json()["access_token"], OLD_ACCESS, "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(!refresh.is_finished(), "the refresh did not wait for the lock");
        assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 0);
        lock.unlock().expect("unlock");
        let answer = refresh.join().expect("client");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["outcome"], "refreshed");
    });
    assert_eq!(env.stored_refresh_token(), "mock-refresh-1");
}

// ---------------------------------------------------------------------------
// one store, several writers

#[test]
fn two_servers_and_a_cli_run_on_one_store_refresh_an_expired_set_once() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(300));
    let withings = withings_answering(slow).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let first = env.serve(&["--check-interval", "100ms"]);
    let second = env.serve(&["--check-interval", "100ms"]);
    let cli = env.run(&["refresh", "--if-needed", "--json"]);
    assert_eq!(cli.code, 0, "{cli:?}");
    let refreshed = wait_until(Duration::from_secs(10), || env.stored_refresh_token() == NEW_REFRESH);
    assert!(refreshed, "{}\n{}", first.log(), second.log());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(withings.requests().len(), 1, "{}\n{}", first.log(), second.log());
    withings.verify();
}

/// The server keeps a copy of a file store once the store's last change is
/// 2 s old (`store::file::SETTLE`); until then every request reads it. A
/// test waits that long, so that its change replaces a copy in use, and so
/// that a change is first looked at once settled, when only the file's
/// identity, size and times can tell it.
fn let_the_store_settle() {
    std::thread::sleep(Duration::from_millis(2100));
}

/// `GET /admin/token/status` and `GET /v1/access-token`, as JSON.
fn status_and_broker(server: &ServeProcess) -> (Value, Value) {
    let status = server.admin_get("/admin/token/status");
    assert_eq!(status.status, 200, "{status:?}");
    let bearer = format!("Bearer {READER_TOKEN}");
    let broker = server.get("/v1/access-token", &[("Authorization", &bearer)]);
    assert_eq!(broker.status, 200, "{broker:?}");
    (status.json(), broker.json())
}

#[test]
fn a_cli_refresh_is_what_the_very_next_status_and_broker_requests_answer() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let_the_store_settle();
    let before = env.store_json();
    for _ in 0..3 {
        let (status, broker) = status_and_broker(&server);
        assert_eq!(status["generation"], 1, "{status}");
        assert_eq!(status["expires_at"], before["tokens"]["expires_at"]);
        assert_eq!(broker["access_token"], OLD_ACCESS, "{broker}");
    }
    let refresh = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    let after = env.store_json();
    let expected_broker = json!({
        "access_token": NEW_ACCESS,
        "expires_at": after["tokens"]["expires_at"],
        "userid": "363",
        "scope": "user.info,user.metrics",
    });
    // At once, and again once the new file has settled.
    for round in ["at once", "settled"] {
        let (status, broker) = status_and_broker(&server);
        assert_eq!(status["generation"], 2, "{round}: {status}");
        assert_eq!(status["expires_at"], after["tokens"]["expires_at"], "{round}: {status}");
        assert_eq!(
            status["last_refreshed"], after["tokens"]["last_refreshed"],
            "{round}: {status}"
        );
        assert_ne!(status["expires_at"], before["tokens"]["expires_at"], "{round}");
        assert_eq!(broker, expected_broker, "{round}");
        let_the_store_settle();
    }
    withings.verify();
}

/// The store's generation and access token, as the server answers them.
fn generation_and_access_token(server: &ServeProcess) -> (Value, Value) {
    let (status, broker) = status_and_broker(server);
    (status["generation"].clone(), broker["access_token"].clone())
}

/// Writes `store` at `path` (0600), in place when it exists, with the
/// modification time `mtime`.
fn write_store_dated(path: &std::path::Path, store: &Value, mtime: std::time::SystemTime) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("open store");
    file.write_all(&serde_json::to_vec_pretty(store).expect("json"))
        .expect("write store");
    file.set_modified(mtime).expect("mtime");
}

/// Two changes that keep the old file's size and modification time (to the
/// nanosecond): a new file renamed over the store (another inode) and an
/// edit in place (only the change time moves). Each is seen by the very
/// next request, and by the first request after it settled unseen.
#[test]
fn a_store_replaced_by_rename_or_edited_in_place_with_the_same_size_and_mtime_is_seen_at_once() {
    use std::os::unix::fs::MetadataExt;
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let path = env.store_path();
    let_the_store_settle();
    assert_eq!(generation_and_access_token(&server), (json!(1), json!(OLD_ACCESS)));

    let old = std::fs::metadata(&path).expect("store");
    let mtime = old.modified().expect("mtime");
    let mut store = env.store_json();
    store["generation"] = json!(2);
    store["tokens"]["access_token"] = json!(NEW_ACCESS);
    store["tokens"]["refresh_token"] = json!(NEW_REFRESH);
    let next = path.with_file_name("tokens.json.next");
    write_store_dated(&next, &store, mtime);
    std::fs::rename(&next, &path).expect("rename");
    let renamed = std::fs::metadata(&path).expect("store");
    assert_eq!((renamed.len(), renamed.modified().ok()), (old.len(), Some(mtime)));
    assert_ne!(renamed.ino(), old.ino());
    assert_eq!(generation_and_access_token(&server), (json!(2), json!(NEW_ACCESS)));
    let_the_store_settle();
    assert_eq!(generation_and_access_token(&server), (json!(2), json!(NEW_ACCESS)));

    store["generation"] = json!(3);
    store["tokens"]["access_token"] = json!("hand-access-99");
    write_store_dated(&path, &store, mtime);
    let edited = std::fs::metadata(&path).expect("store");
    assert_eq!(
        (edited.ino(), edited.len(), edited.modified().ok()),
        (renamed.ino(), renamed.len(), Some(mtime))
    );
    let hand = (json!(3), json!("hand-access-99"));
    assert_eq!(generation_and_access_token(&server), hand);
    let_the_store_settle();
    assert_eq!(generation_and_access_token(&server), hand);
    withings.verify();
}
