//! Many hosts, one token set (issue 12): a real `redis-server` per test,
//! "hosts" that share nothing but it (each its own HOME), and the sandbox,
//! which refuses any refresh token it has rotated away. The lease keeps
//! them to one Withings call; its fence keeps a paused holder from
//! overwriting a newer set; an unreachable Redis sends nothing.
//! `cargo test --features failpoints --test cli redis_store:: -- --nocapture`
//! prints the figures each concurrency test observed (`FIGURES` lines).

use crate::support::*;

use std::collections::HashSet;
use std::process::{Child, Output};
use std::time::Duration;

/// Starts `per_host` copies of `args` on every host at once; waits for all.
fn run_on_every_host(envs: &[TestEnv], per_host: usize, args: &[&str]) -> (Vec<Output>, Duration) {
    run_all_at_once((0..per_host).flat_map(|_| envs.iter()), args)
}

#[test]
fn twenty_four_if_needed_refreshes_on_three_hosts_make_exactly_one_upstream_call() {
    const HOSTS: usize = 3;
    const PER_HOST: usize = 8;
    let (sandbox, redis, envs) = given_fleet(HOSTS);
    redis.make_store_due();
    let generation_before = redis.store_json()["generation"].as_u64().unwrap();
    let before = sandbox.stats();

    let args = ["refresh", "--if-needed", "--no-railway", "--json", "--reveal"];
    let (outputs, wall) = run_on_every_host(&envs, PER_HOST, &args);
    assert_all_succeeded(&outputs);

    let after = sandbox.stats();
    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    let outcomes = outcome_counts(&reports);
    eprintln!(
        "FIGURES redis if-needed: hosts={HOSTS} processes={} upstream_token_requests={} refused={} outcomes={outcomes:?} wall_time_ms={}",
        HOSTS * PER_HOST,
        stat_delta(&before, &after, "token_requests"),
        stat_delta(&before, &after, "refused"),
        wall.as_millis()
    );
    assert_eq!(
        stat_delta(&before, &after, "token_requests"),
        1,
        "exactly one upstream call"
    );
    assert_eq!(stat_delta(&before, &after, "refused"), 0);
    assert_eq!(outcomes.get("refreshed"), Some(&1), "{outcomes:?}");
    let refreshed = reports.iter().find(|r| r["outcome"] == "refreshed").unwrap();
    let store = redis.store_json();
    assert_eq!(store["generation"].as_u64().unwrap(), generation_before + 1);
    assert_eq!(store["tokens"]["refresh_token"], refreshed["refresh_token"]);
    for report in &reports {
        assert_eq!(
            report["refresh_token"], refreshed["refresh_token"],
            "every host reports the saved set"
        );
    }
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("0"),
        "lease released"
    );
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
    for env in &envs {
        assert!(!env.store_path().exists(), "no host wrote a local store file");
    }
}

#[test]
fn nine_forced_refreshes_across_hosts_are_never_refused_and_end_with_the_last_set() {
    const HOSTS: usize = 3;
    const PER_HOST: usize = 3;
    let (sandbox, redis, envs) = given_fleet(HOSTS);
    let generation_before = redis.store_json()["generation"].as_u64().unwrap();
    let before = sandbox.stats();

    let (outputs, wall) = run_on_every_host(&envs, PER_HOST, &["refresh", "--no-railway", "--json", "--reveal"]);
    assert_all_succeeded(&outputs);

    let after = sandbox.stats();
    eprintln!(
        "FIGURES redis forced: processes={} upstream_token_requests={} refused={} wall_time_ms={}",
        HOSTS * PER_HOST,
        stat_delta(&before, &after, "token_requests"),
        stat_delta(&before, &after, "refused"),
        wall.as_millis()
    );
    assert_eq!(stat_delta(&before, &after, "refused"), 0, "no refused grant");
    assert_eq!(stat_delta(&before, &after, "token_requests"), (HOSTS * PER_HOST) as u64);
    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    let tokens: HashSet<&str> = reports.iter().map(|r| r["refresh_token"].as_str().unwrap()).collect();
    assert_eq!(tokens.len(), HOSTS * PER_HOST, "every run got its own set");
    let mut generations: Vec<u64> = reports.iter().map(|r| r["generation"].as_u64().unwrap()).collect();
    generations.sort_unstable();
    let expected: Vec<u64> = (1..=(HOSTS * PER_HOST) as u64).map(|i| generation_before + i).collect();
    assert_eq!(generations, expected, "consecutive generations, none lost");
    let last = reports
        .iter()
        .max_by_key(|r| r["generation"].as_u64().unwrap())
        .unwrap();
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], last["refresh_token"]);

    // The sandbox honours only the newest token: one more refresh proves it.
    envs[1].cmd().args(["refresh", "--no-railway"]).assert().success();
    assert_eq!(stat(&sandbox.stats(), "refused"), 0);
}

/// A holder paused (SIGSTOP) past its lease while Withings answers; another
/// host takes the lease and saves; the paused one, resumed, must not write.
#[test]
fn a_holder_whose_lease_expired_mid_refresh_cannot_overwrite_the_newer_set() {
    let redis = RedisServer::start();
    let withings = Upstream::start();
    // The first request is answered after 1.5 s (the paused holder's); later ones at once.
    withings.mount(
        token_request()
            .respond_with(new_tokens("paused-access", "paused-refresh").set_delay(Duration::from_millis(1500)))
            .up_to_n_times(1)
            .expect(1),
    );
    withings.mount(
        token_request()
            .respond_with(new_tokens("peer-access", "peer-refresh"))
            .expect(1),
    );
    let mut host_a = given_expired_store(&withings.uri());
    host_a.on_redis(&redis).set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    let seed = host_a.store_json();
    redis.write_store(&seed);
    let mut host_b = TestEnv::new();
    host_b
        .withings(&withings.uri())
        .on_redis(&redis)
        .set("WITHINGS_TOKEN_LEASE_TTL", "1s");

    let paused = pause_past_its_lease(
        &host_a,
        &["refresh", "--no-railway", "--json", "--timeout", "10s"],
        &withings,
    );
    let peer = host_b.run(&["refresh", "--no-railway", "--json", "--reveal", "--retry-delay", "0s"]);
    assert_eq!(peer.code, 0, "{peer:?}");
    assert_eq!(peer.json()["refresh_token"], "peer-refresh");
    signal(&paused, "CONT");
    let paused = paused.wait_with_output().expect("wait");

    let stderr = String::from_utf8_lossy(&paused.stderr);
    assert_eq!(paused.status.code(), Some(5), "stderr: {stderr}");
    assert!(stderr.contains("[STORE_UNAVAILABLE]"), "{stderr}");
    assert!(
        stderr.contains("error: this run's new set was not saved: the lease on redis://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("ran out while this run waited for Withings (paused for more than its 1 s?), and another run saved a newer set meanwhile, which stays [STORE_UNAVAILABLE]"), "{stderr}");
    assert!(
        stderr.contains("next: nothing to do: the store keeps the other run's set"),
        "{stderr}"
    );
    assert!(!stderr.contains("paused-refresh"), "no token in the error: {stderr}");
    let store = redis.store_json();
    assert_eq!(store["tokens"]["refresh_token"], "peer-refresh", "the newer set stays");
    assert_eq!(store["generation"], 2);
    withings.verify();
}

/// Starts `args` on `host`, waits until Withings got its request, then
/// stops it (SIGSTOP) for 2.5 s: well past a 1 s lease, which expires
/// unrenewed. Resume it with `signal(&child, "CONT")`.
fn pause_past_its_lease(host: &TestEnv, args: &[&str], withings: &Upstream) -> Child {
    let child = host.spawn(args);
    until_asked(withings);
    signal(&child, "STOP");
    std::thread::sleep(Duration::from_millis(2500));
    child
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

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
fn a_lease_held_elsewhere_is_lock_timeout_with_nothing_sent() {
    let redis = RedisServer::start();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    redis.write_store(&env.store_json());
    redis.command(&["SET", &format!("{REDIS_KEY}:lease"), "another-host", "PX", "60000"]);
    let out = env.run_fast(&["refresh", "--lock-timeout", "300ms"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("[LOCK_TIMEOUT]"), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the Redis lease {REDIS_KEY}:lease at redis://127.0.0.1:{}",
            redis.port
        )),
        "{out:?}"
    );
    assert_eq!(redis.store_json()["generation"], 1, "unchanged");
    assert_eq!(
        redis.command(&["GET", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("another-host")
    );
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

#[test]
fn a_killed_holder_keeps_others_waiting_no_longer_than_its_lease_and_is_reported() {
    let redis = RedisServer::start();
    let (withings, issued) = withings_always_rotating();
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis).set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    redis.write_store(&env.store_json());
    // What a holder killed mid-request leaves: its lease and its mark.
    redis.command(&["SET", &format!("{REDIS_KEY}:lease",), "dead-owner", "PX", "1000"]);
    let mark = json!({"pid": 4242, "started_at": "2026-01-01T00:00:00Z", "generation": 1, "grant": "refresh_token", "owner": "dead-owner"});
    redis.command(&["SET", &format!("{REDIS_KEY}:journal"), &mark.to_string()]);

    let out = env.run_fast(&["refresh", "--lock-timeout", "10s", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("a previous run (pid 4242) did not finish under its lease (it died, or paused past the lease) while asking Withings"),
        "{out:?}"
    );
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(redis.store_json()["generation"], 2);
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
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
fn a_refresh_that_fails_releases_the_lease_at_once() {
    let redis = RedisServer::start();
    let withings = withings_answering(refused_refresh()).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    redis.write_store(&env.store_json());
    let out = env.run_fast(&["refresh", "--if-needed"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("0"),
        "released, not left to expire"
    );
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
    assert_eq!(
        redis.store_json()["tokens"]["refresh_token"],
        OLD_REFRESH,
        "the refused set is kept, never emptied"
    );
    // The fence counts every lease taken.
    assert_eq!(
        redis.command(&["GET", &format!("{REDIS_KEY}:fence")]).as_deref(),
        Some("1")
    );
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

/// A paused holder (SIGSTOP) past its lease, while another host only looks
/// (`--if-needed`, not due) and sends nothing: the paused holder's answer
/// is the newest set there is, and it is kept.
#[test]
fn a_holder_whose_lease_lapsed_keeps_its_answer_when_nobody_else_asked_withings() {
    let redis = RedisServer::start();
    let withings = Upstream::start();
    withings.mount(
        token_request()
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1500)))
            .expect(1),
    );
    let mut host_a = given_store_expiring_in(3 * 3600);
    host_a
        .withings(&withings.uri())
        .on_redis(&redis)
        .set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    redis.write_store(&host_a.store_json());
    let mut host_b = TestEnv::new();
    host_b.withings(&withings.uri()).on_redis(&redis);

    let args = ["refresh", "--no-railway", "--json", "--reveal", "--timeout", "10s"];
    let paused = pause_past_its_lease(&host_a, &args, &withings);
    let look = host_b.run_fast(&["refresh", "--if-needed", "--no-railway", "--json"]);
    assert_eq!(look.code, 0, "{look:?}");
    assert_eq!(look.json()["outcome"], "not_due");
    signal(&paused, "CONT");
    let paused = paused.wait_with_output().expect("wait");

    let stderr = String::from_utf8_lossy(&paused.stderr);
    assert_eq!(paused.status.code(), Some(0), "stderr: {stderr}");
    let store = redis.store_json();
    assert_eq!(
        store["tokens"]["refresh_token"], NEW_REFRESH,
        "the fresh answer is kept"
    );
    assert_eq!(store["previous"]["refresh_token"], OLD_REFRESH);
    assert_eq!(store["generation"], 2);
    withings.verify();
}

/// The set copied to a new Redis without its fence counter (a migration):
/// the counter is raised past the stored fence, so refreshes keep working.
#[test]
fn a_store_whose_fence_is_ahead_of_the_counter_still_refreshes() {
    let redis = RedisServer::start();
    let (withings, issued) = withings_always_rotating();
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    let mut store = env.store_json();
    store["fence"] = json!(5);
    redis.write_store(&store);
    for round in 1..=2 {
        let out = env.run_fast(&["refresh", "--json", "--reveal"]);
        assert_eq!(out.code, 0, "round {round}: {out:?}");
        assert_eq!(out.json()["refresh_token"], format!("mock-refresh-{round}"));
    }
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 2, "no answer dropped");
    assert_eq!(redis.store_json()["fence"], 7);
}

/// Redis drops every client connection while Withings is answering: the
/// save reconnects and the rotated set is kept.
#[test]
fn a_redis_connection_dropped_mid_request_does_not_lose_the_answer() {
    let redis = RedisServer::start();
    let withings =
        withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(800))).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    redis.write_store(&env.store_json());
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

// ---------------------------------------------------------------------------
// Found by the adversarial trial of the release binary
// ---------------------------------------------------------------------------

/// Redis emptied (FLUSHALL, an eviction, a restart without persistence)
/// while Withings answers: the answer is the only live pair, and is saved.
#[test]
fn a_store_emptied_while_withings_answers_gets_the_new_set() {
    let redis = RedisServer::start();
    let withings =
        withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(800))).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    redis.write_store(&env.store_json());
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
fn an_unreadable_journal_is_reported_as_such_and_cleared() {
    let redis = RedisServer::start();
    let (withings, issued) = withings_always_rotating();
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    redis.write_store(&env.store_json());
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

// ---------------------------------------------------------------------------
// Issue 18, item 6: a Redis that can lose the set

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

/// Issue 18, the adversarial trial: a host that could not keep an answer
/// Redis will not take (no writable state directory) sends nothing, as a
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

/// Issue 18, the adversarial trial: with Redis stopped, `serve`'s waiting
/// requests each fail after one Redis timeout (5 s), not one after another
/// (5 s, 10 s, ... 50 s). Every one of ten concurrent broker calls gets its
/// 503 within a 20 s client timeout; queued behind each other, the last
/// seven would not.
#[test]
fn a_stopped_redis_fails_concurrent_requests_together_not_one_after_another() {
    let (_sandbox, redis, mut envs) = given_fleet(1);
    let env = &mut envs[0];
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    let broker = |timeout: Duration| {
        let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        let head = format!(
            "GET /v1/access-token HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {READER_TOKEN}\r\nConnection: close\r\n\r\n",
            server.addr
        );
        std::io::Write::write_all(&mut stream, head.as_bytes()).expect("write");
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    };
    assert!(broker(Duration::from_secs(20)).contains(" 200 "));

    redis.signal("STOP");
    assert!(
        broker(Duration::from_secs(20)).contains(" 503 "),
        "one request times out first"
    );
    let answers = concurrently(10, || broker(Duration::from_secs(20)));
    redis.signal("CONT");
    for status in &answers {
        assert!(status.contains(" 503 "), "{answers:?}\n{}", server.log());
    }
}

/// Issue 18, the adversarial trial: a run whose lease is found lost while
/// it waits to retry sends nothing more (it said so, and then sent).
#[test]
fn a_run_whose_lease_ran_out_between_attempts_sends_nothing_more() {
    let (sandbox, redis, mut envs) = given_fleet(1);
    let env = &mut envs[0];
    env.set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    redis.make_store_due();
    let stored = redis.store_json();
    sandbox.fault(json!({"kind": "http500", "count": 1}));
    let before = sandbox.stats();
    let child = env.spawn(&["refresh", "--no-railway", "--retry-delay", "3s"]);
    sandbox.until_asked(&before, 1);
    redis.command(&["DEL", &format!("{REDIS_KEY}:lease")]);
    let out = child.wait_with_output().expect("wait");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("ran out before it could be renewed"), "{stderr}");
    assert!(
        stderr.contains("this run's lease on the store ran out while it retried; nothing more was sent, and another run may be refreshing now [STORE_UNAVAILABLE]"),
        "{stderr}"
    );
    let after = sandbox.stats();
    assert_eq!(
        stat_delta(&before, &after, "token_requests"),
        1,
        "a second attempt was sent"
    );
    assert_eq!(redis.store_json()["tokens"], stored["tokens"]);
    // The stored token is still the live one.
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(stat_delta(&after, &sandbox.stats(), "refused"), 0);
}

/// Issue 18, the adversarial trial: a database number Redis does not have
/// is a setting to fix (exit 3), not an outage to retry (exit 5).
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
