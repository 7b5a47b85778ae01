//! A Redis store (a real `redis-server` per test): its URL, keys and
//! database checked before anything is sent, an unreachable or corrupt one
//! refused, one that can lose the set named by `doctor` and `serve`, a key
//! that vanished reported as such, and `serve` and the CLI sharing it.

use crate::support::*;

use std::time::Duration;

// ---------------------------------------------------------------------------
// reaching the store

#[test]
fn an_unreachable_redis_is_exit_5_and_sends_nothing() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_TOKEN_STORE", format!("redis://127.0.0.1:{}", free_port()));
    for args in [vec!["refresh"], vec!["refresh", "--if-needed"], vec!["status"]] {
        let out = env.run_fast(&args);
        assert_eq!(out.code, 5, "{args:?}: {out:?}");
        assert!(out.stderr.contains("[STORE_UNAVAILABLE]"), "{out:?}");
        assert!(
            out.stderr.contains("cannot connect to Redis at redis://127.0.0.1:"),
            "{out:?}"
        );
        assert!(out.stderr.contains("nothing was sent to Withings"), "{out:?}");
    }
    withings.verify();
}

#[test]
fn a_wrong_redis_password_is_a_configuration_error_that_never_shows_the_password() {
    let redis = RedisServer::start_with(&["--requirepass", "right-pass-123"]);
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let mut env = TestEnv::new();
    env.withings(&withings.uri()).set(
        "WITHINGS_TOKEN_STORE",
        format!("redis://:wrong-pass-456@127.0.0.1:{}", redis.port),
    );
    let out = env.run_fast(&["refresh", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "CONFIGURATION_ERROR");
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(&format!("Redis at redis://127.0.0.1:{}", redis.port)),
        "{message}"
    );
    assert!(
        !out.stdout.contains("wrong-pass-456") && !out.stderr.contains("wrong-pass-456"),
        "{out:?}"
    );

    // With the right one, in the URL, the store works.
    env.set(
        "WITHINGS_TOKEN_STORE",
        format!("redis://:right-pass-123@127.0.0.1:{}/3", redis.port),
    )
    .set("WITHINGS_REFRESH_TOKEN", "seed-refresh");
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    env.withings(&withings.uri());
    let out = env.run_fast(&["refresh", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["store"],
        format!("redis://127.0.0.1:{}/3 key {REDIS_KEY}", redis.port),
        "the report names the store without its password"
    );
}

#[test]
fn a_redis_url_in_capitals_or_with_blanks_is_redis_and_another_scheme_is_refused() {
    let redis = RedisServer::start();
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    redis.write_store(&env.store_json());
    std::fs::remove_file(env.store_path()).unwrap();
    env.set("WITHINGS_TOKEN_STORE", format!(" REDIS://127.0.0.1:{}\n", redis.port));
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["store"],
        format!("redis://127.0.0.1:{} key {REDIS_KEY}", redis.port)
    );

    env.set("WITHINGS_TOKEN_STORE", "unix://:MyRedisPassw0rd@/run/redis.sock");
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("the token store is a `unix://` URL; only redis:// and rediss:// stores are supported"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains("MyRedisPassw0rd") && !out.stderr.contains("MyRedisPassw0rd"),
        "{out:?}"
    );
    assert!(
        std::fs::read_dir(env.work_dir()).unwrap().next().is_none(),
        "no file named after the URL"
    );
}

/// A database number Redis does not have is a setting to fix (exit 3), not an outage to retry (exit 5).
#[test]
fn a_redis_database_that_does_not_exist_is_a_configuration_error() {
    let redis = RedisServer::start();
    let mut env = TestEnv::new();
    env.withings("http://127.0.0.1:9")
        .set("WITHINGS_TOKEN_STORE", format!("{}/99", redis.url()));
    let out = env.run(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("has no such database"), "{out:?}");
    assert!(out.stderr.contains("[CONFIGURATION_ERROR]"), "{out:?}");
    assert!(out.stderr.contains("next: name a database this Redis has"), "{out:?}");
}

/// Keys that are not the store's own: exit 3, nothing sent, nothing wedged.
#[test]
fn unusable_keys_are_exit_3_naming_the_key_and_send_nothing() {
    let redis = RedisServer::start();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    let lease = format!("{REDIS_KEY}:lease");
    let fence = format!("{REDIS_KEY}:fence");
    let mut huge = env.store_json();
    huge["fence"] = json!(1u64 << 60);
    type Arrange<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(Arrange, &str)> = vec![
        (
            Box::new(|| redis.write_store(&huge)),
            "is unreadable: not a withings-token store",
        ),
        (
            Box::new(|| {
                redis.write_store(&env.store_json());
                redis.command(&["HSET", &lease, "x", "y"]);
            }),
            "exists and never expires: it is not a withings-token lease",
        ),
        (
            Box::new(|| {
                redis.command(&["DEL", &lease]);
                redis.command(&["RPUSH", &fence, "x"]);
            }),
            "holds another kind of value",
        ),
        (
            Box::new(|| {
                redis.command(&["DEL", &fence]);
                redis.command(&["SET", &fence, "9007199254740995"]);
            }),
            "is not a usable number; nothing was sent",
        ),
    ];
    for (arrange, expected) in cases {
        arrange();
        let out = env.run_fast(&["refresh"]);
        assert_eq!(out.code, 3, "{expected}: {out:?}");
        assert!(out.stderr.contains(expected), "{expected}: {out:?}");
    }
    withings.verify();
}

#[test]
fn a_corrupt_value_at_the_key_is_exit_3_and_left_untouched() {
    let redis = RedisServer::start();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let mut env = TestEnv::new();
    env.withings(&withings.uri()).on_redis(&redis);
    redis.command(&["SET", REDIS_KEY, "not json at all"]);
    let out = env.run_fast(&["refresh"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "token store redis://127.0.0.1:{} key {REDIS_KEY} is unreadable",
            redis.port
        )),
        "{out:?}"
    );
    assert_eq!(redis.command(&["GET", REDIS_KEY]).as_deref(), Some("not json at all"));
    withings.verify();
}

#[test]
fn status_export_and_auth_url_work_against_redis_as_against_a_file() {
    let (_sandbox, redis, envs) = given_fleet(2);
    let env = &envs[1];
    let status = env.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let report = status.json();
    assert_eq!(report["token_configured"], true);
    assert_eq!(report["source"], "store");
    assert_eq!(
        report["store"],
        format!("redis://127.0.0.1:{} key {REDIS_KEY}", redis.port)
    );
    let export = env.run(&["export"]);
    assert_eq!(export.code, 0, "{export:?}");
    let stored = redis.store_json();
    let refresh = stored["tokens"]["refresh_token"].as_str().unwrap();
    assert!(
        export.stdout.contains(&format!("WITHINGS_REFRESH_TOKEN={refresh}\n")),
        "{export:?}"
    );

    let auth = env.run(&["auth-url", "--json"]);
    assert_eq!(auth.code, 0, "{auth:?}");
    assert_eq!(redis.store_json()["pending_auth"]["state"], auth.json()["state"]);
}

/// `serve` on one host and the CLI on another share the Redis store: the
/// broker hands out the set a CLI refresh saved, and a broker refresh is
/// seen by the CLI, one upstream call each.
#[test]
fn serve_and_a_cli_on_another_host_share_one_redis_store() {
    let redis = RedisServer::start();
    let (withings, issued) = withings_always_rotating();
    let mut service = given_store_expiring_in(120);
    service.withings(&withings.uri()).on_redis(&redis).serve_credentials();
    redis.write_store(&service.store_json());
    std::fs::remove_file(service.store_path()).expect("no local store on the service host");
    let mut cron_host = TestEnv::new();
    cron_host.withings(&withings.uri()).on_redis(&redis);

    let server = service.serve(&["--buffer", "1m"]);
    let bearer = format!("Bearer {READER_TOKEN}");
    // Two minutes left, below the broker's 5 min: the broker refreshes once.
    let answer = server.get("/v1/access-token", &[("Authorization", &bearer)]);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["access_token"], "mock-access-1");
    let status = cron_host.run(&["status", "--json", "--reveal"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], "mock-refresh-1");

    // The cron host rotates; the broker answers with that set, sending nothing.
    let refresh = cron_host.run_fast(&["refresh", "--json", "--reveal"]);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    assert_eq!(refresh.json()["access_token"], "mock-access-2");
    let answer = server.get("/v1/access-token", &[("Authorization", &bearer)]);
    assert_eq!(answer.json()["access_token"], "mock-access-2");
    // The status too: a Redis store is read on every request.
    let status = server.admin_get("/admin/token/status").json();
    assert_eq!(status["generation"], redis.store_json()["generation"], "{status}");
    assert_eq!(status["expires_at"], refresh.json()["expires_at"], "{status}");
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(!service.store_path().exists() && !cron_host.store_path().exists());
}

// ---------------------------------------------------------------------------
// a Redis that can lose the set

/// `doctor`'s line for `name` (its result word and text).
fn doctor_line(out: &Run, name: &str) -> String {
    out.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name) || l.contains(&format!(" {name} ")))
        .unwrap_or_else(|| panic!("no `{name}` line: {out:?}"))
        .to_owned()
}

#[test]
fn doctor_fails_a_redis_that_evicts_or_persists_nothing_and_passes_one_that_keeps_the_set() {
    let cases: [(&[&str], i32, &str); 3] = [
        // The kit's default: no snapshots, no append-only file.
        (
            &[],
            3,
            "Redis persists nothing (appendonly no, no save points): a restart loses the set",
        ),
        (
            &["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"],
            3,
            "maxmemory-policy is allkeys-lru: under memory pressure Redis may evict the store's key",
        ),
        (
            &["--appendonly", "yes", "--maxmemory-policy", "noeviction"],
            0,
            "maxmemory-policy noeviction, appendonly yes, appendfsync everysec",
        ),
    ];
    for (extra, code, said) in cases {
        let redis = RedisServer::start_with(extra);
        let mut env = given_store_expiring_in(3600);
        env.withings("http://127.0.0.1:9").on_redis(&redis);
        redis.write_store(&env.store_json());
        let out = env.run(&["doctor"]);
        assert_eq!(out.code, code, "{extra:?}: {out:?}");
        let line = doctor_line(&out, "durability");
        assert!(line.contains(said), "{extra:?}: {line}");
        let word = if code == 0 { "ok" } else { "fail" };
        assert!(line.trim_start().starts_with(word), "{extra:?}: {line}");
    }
}

#[test]
fn serve_warns_at_start_of_a_redis_that_can_evict_the_set() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"]);
    let mut env = given_store_expiring_in(3600);
    env.withings("http://127.0.0.1:9").on_redis(&redis).serve_credentials();
    redis.write_store(&env.store_json());
    let server = env.serve(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || server
            .log()
            .contains("may lose the set: maxmemory-policy is allkeys-lru")),
        "{}",
        server.log()
    );
}

/// The store's key evicted (or deleted) after it held a set: an error that
/// says what happened, never "no token configured" with exit 0.
#[test]
fn a_redis_store_whose_key_vanished_after_holding_a_set_is_an_error_not_no_token() {
    let (sandbox, redis, envs) = given_fleet(1);
    let env = &envs[0];
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:held")]).as_deref(),
        Some("1")
    );
    redis.command(&["DEL", REDIS_KEY]);
    let said = "the token store redis://127.0.0.1:";
    let what = format!(
        "key {REDIS_KEY} lost its set: its key is gone although it held one (evicted under memory pressure, flushed, or Redis restarted without persistence); nothing was sent [CONFIGURATION_ERROR]"
    );
    let before = sandbox.stats();
    for args in [
        &["status"][..],
        &["status", "--check"],
        &["refresh", "--no-railway"],
        &["access-token"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(said) && out.stderr.contains(&what),
            "{args:?}: {out:?}"
        );
        assert!(
            out.stderr
                .contains("next: restore it: `withings-token pull --from railway`"),
            "{out:?}"
        );
    }
    assert_eq!(stat_delta(&before, &sandbox.stats(), "token_requests"), 0);

    // Re-authorising brings it back.
    sandbox.authorise(env);
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["token_configured"], true);
}

// ---------------------------------------------------------------------------
// answers Redis did not take

/// A host that could not keep an answer Redis will not take (no writable state directory) sends nothing, as a
/// file store whose rescue cannot be reserved.
#[test]
fn a_redis_host_without_a_writable_state_directory_sends_nothing() {
    let (sandbox, redis, mut envs) = given_fleet(1);
    let env = &mut envs[0];
    redis.make_store_due();
    env.set("XDG_STATE_HOME", "/proc/1/no-such-dir");
    let before = sandbox.stats();
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("error: cannot prepare the rescue file /proc/1/no-such-dir/withings-token/redis-rescue/"),
        "{out:?}"
    );
    assert!(out.stderr.contains("nothing was sent to Withings"), "{out:?}");
    assert!(
        out.stderr
            .contains("next: make XDG_STATE_HOME (or HOME) a writable directory"),
        "{out:?}"
    );
    assert_eq!(stat_delta(&before, &sandbox.stats(), "token_requests"), 0);
}

/// Redis emptied (FLUSHALL, an eviction, a restart without persistence)
/// while Withings answers: the answer is the only live pair, and is saved.
#[test]
fn a_store_emptied_while_withings_answers_gets_the_new_set() {
    let withings =
        withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(800))).times(1);
    let (redis, env) = given_expired_redis_store(&withings.uri());
    let args = ["refresh", "--json", "--timeout", "10s"];
    let out = while_withings_answers(&env, &args, &withings, || {
        redis.command(&["FLUSHALL"]);
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("was emptied while Withings answered"), "{stderr}");
    let store = redis.store_json();
    assert_eq!(store["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(store["previous"]["refresh_token"], OLD_REFRESH);
    withings.verify();
}

/// Redis drops every client connection while Withings is answering: the
/// save reconnects and the rotated set is kept.
#[test]
fn a_redis_connection_dropped_mid_request_does_not_lose_the_answer() {
    let withings =
        withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(800))).times(1);
    let (redis, env) = given_expired_redis_store(&withings.uri());
    let args = ["refresh", "--json", "--timeout", "10s"];
    let out = while_withings_answers(&env, &args, &withings, || {
        redis.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("saving the new set failed (cannot read from Redis at redis://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("trying again"), "{stderr}");
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("0")
    );
    withings.verify();
}

#[test]
fn an_unreadable_journal_is_reported_as_such_and_cleared() {
    let (withings, issued) = withings_always_rotating();
    let (redis, env) = given_expired_redis_store(&withings.uri());
    redis.command(&["SET", &format!("{REDIS_KEY}:journal"), "junk{"]);
    let out = env.run_fast(&["refresh"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("an in-flight mark that cannot be read was found"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("1970"), "{out:?}");
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
}
